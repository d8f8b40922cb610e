"""A transaction with its payment method: the one join the read API and the export share."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, Final

from sqlalchemy import Select, and_, select

from gateway.core.crypto import JOINED_PM_PREFIX, Cipher
from gateway.storage.tables import field_columns, payment_methods, transactions

# Served for every record besides its allowlisted fields; pk and last_event_at stay inside.
SERVED_BOOKKEEPING: Final = ("provider", "account", "created_at", "updated_at", "last_event_id")
PAYMENT_METHOD_FIELDS: Final = (*SERVED_BOOKKEEPING, *field_columns("payment_method"))


@functools.cache
def transactions_with_methods() -> Select[Any]:
    """Return a select of transactions, each with its payment method's columns (prefixed).

    Built once per process: a select is immutable (each .where() returns a new one), and
    building this join was a tenth of a one-record read.
    """
    pm = payment_methods
    # Tokens are sealed with random nonces: they join on their blind indexes.
    joined = transactions.outerjoin(
        pm,
        and_(
            pm.c.provider == transactions.c.provider,
            pm.c.account == transactions.c.account,
            pm.c.token_bidx == transactions.c.payment_method_bidx,
        ),
    )
    columns = [c.label(f"{JOINED_PM_PREFIX}{c.name}") for c in pm.columns]
    return select(transactions, *columns).select_from(joined)


def open_transaction(cipher: Cipher, row: Mapping[str, Any]) -> dict[str, Any]:
    """Return a joined transaction row opened, its payment method an object (or None).

    The object is the stored payment method when its own event has arrived, else only
    what the transaction's event named: the token, with every other field null.
    """
    values = cipher.open_row(transactions.name, row)
    token = values.get("payment_method")
    if values.get(f"{JOINED_PM_PREFIX}pk") is not None:
        method = {c.name: values[f"{JOINED_PM_PREFIX}{c.name}"] for c in payment_methods.columns}
        values["payment_method"] = cipher.open_row(payment_methods.name, method)
    elif token is not None:
        values["payment_method"] = dict.fromkeys(PAYMENT_METHOD_FIELDS) | {
            "token": token,
            "provider": values["provider"],
            "account": values["account"],
        }
    return values
