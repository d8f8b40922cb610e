"""Export: everything held about a customer, as the read API serves it.

A transaction's payment_method is the same object (or null) as in GET /v1/transactions,
never a bare token: the records pass through the read API's serializer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Connection, Table, and_, or_, select
from sqlalchemy.sql.elements import ColumnElement

from gateway.audit import audit_log
from gateway.privacy.batching import BATCH_SIZE, EXPORT_TABLES, plain, write_privacy_log
from gateway.privacy.erasure import customer_rows, erasure_times
from gateway.storage.joined import SERVED_BOOKKEEPING, open_transaction, transactions_with_methods
from gateway.storage.store import Store
from gateway.storage.tables import field_columns, payment_methods, transactions

EXPORT_LEGAL_BASIS: Final = "GDPR art. 15 and 20: data-subject access and portability"

# An export's erasure history: one row per tombstoned account (gateway.storage.tables.erasures).
ERASURE_COLUMNS: Final = ("account", "erased_at")


def _served(table: Table) -> list[str]:
    record_type = {"transactions": "transaction", "payment_methods": "payment_method"}.get(
        table.name, "subscription"
    )
    # str(): column names are SQLAlchemy quoted_name, which orjson refuses as keys.
    return [*SERVED_BOOKKEEPING, *(str(name) for name in field_columns(record_type))]


def export_columns() -> dict[str, list[str]]:
    """Return the exported columns of each record type, in order (the CSV headers)."""
    return {name: _served(table) for name, table in EXPORT_TABLES}


# A record's served form, given its opened values: the read API's serializer
# (gateway.api.records.serve_record), so an export holds records exactly as the API serves them.
Serialize = Callable[[str, Mapping[str, Any]], dict[str, Any]]


def _iter_customer(
    conn: Connection,
    store: Store,
    table: Table,
    provider: str,
    customer: str,
    accounts: Sequence[str] | None,
    serialize: Serialize,
) -> Iterator[dict[str, Any]]:
    """Yield a customer's records of one table, opened and served, in pk batches."""
    record_type = {"transactions": "transaction", "payment_methods": "payment_method"}.get(
        table.name, "subscription"
    )
    condition = _held_about(conn, store, table, provider, customer, accounts)
    base = transactions_with_methods() if table is transactions else select(table)
    last = 0
    while True:
        rows = (
            conn.execute(
                base.where(condition, table.c.pk > last).order_by(table.c.pk).limit(BATCH_SIZE)
            )
            .mappings()
            .all()
        )
        if not rows:
            return
        last = int(rows[-1]["pk"])
        for mapping in rows:
            row = dict(mapping)
            if table is transactions:
                opened = open_transaction(store.cipher, row)
            else:
                opened = store.cipher.open_row(table.name, row)
            yield serialize(record_type, opened)


def _held_about(
    conn: Connection,
    store: Store,
    table: Table,
    provider: str,
    customer: str,
    accounts: Sequence[str] | None,
) -> ColumnElement[bool]:
    """Return the condition of a table's rows about a customer: theirs, or paid with their card."""
    own = and_(*customer_rows(table, store, provider, customer, accounts))
    if table is not transactions:
        return own
    pm = payment_methods
    cards: dict[str, list[str]] = {}
    for account, token in conn.execute(
        select(pm.c.account, pm.c.token_bidx).where(
            *customer_rows(pm, store, provider, customer, accounts)
        )
    ):
        cards.setdefault(account, []).append(token)
    paid = [
        and_(
            table.c.provider == provider,
            table.c.account == account,
            table.c.payment_method_bidx.in_(sorted(tokens)),
        )
        for account, tokens in sorted(cards.items())
    ]
    return or_(own, *paid)


def export(
    store: Store,
    *,
    provider: str,
    customer: str,
    serialize: Serialize,
    accounts: Sequence[str] | None = None,
    actor: str = audit_log.ACTOR_CLI,
    route: str = "cli",
) -> dict[str, Any]:
    """Return every record held about a customer, served as the read API serves it, and
    record the request."""
    document: dict[str, Any] = {
        "provider": provider,
        "customer": customer,
        "generated_at": plain(datetime.now(UTC)),
        "legal_basis": EXPORT_LEGAL_BASIS,
    }
    with store.engine.connect() as conn:
        for name, table in EXPORT_TABLES:
            document[name] = list(
                _iter_customer(conn, store, table, provider, customer, accounts, serialize)
            )
        # That (and when) the subject was erased, from the tombstones: no erased value.
        document["erasures"] = erasure_times(conn, store, provider, customer, accounts)
    counts = {name: len(document[name]) for name, _ in EXPORT_TABLES}
    with store.writing() as conn:
        audit_log.append(
            conn,
            actor=actor,
            action="customers.export",
            route=route,
            outcome="ok",
            count=sum(counts.values()),
        )
        write_privacy_log(
            conn,
            actor=actor,
            action="export",
            provider=provider,
            subject=store.cipher.pseudonym(provider, customer),
            events=0,
            audit_entries=0,
            legal_basis=EXPORT_LEGAL_BASIS,
            outcome="ok",
            **counts,
        )
    return document
