"""Helpers for the read-API tests: keys, records and events made directly in the store."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import Engine

from gateway.api import keys
from gateway.core.records import EventMeta, Record
from gateway.storage.store import Store

T0 = datetime(2026, 3, 2, 14, 0, 0, tzinfo=UTC)
_counter = iter(range(1, 10**9))


def make_key(
    engine: Engine,
    *scopes: str,
    accounts: Iterable[str] = (),
    revoked: bool = False,
) -> str:
    """Create a key in the database and return it."""
    with engine.begin() as conn:
        key, record = keys.create(
            conn, name="test", scopes=scopes or ("records:read",), accounts=accounts
        )
        if revoked:
            keys.revoke(conn, record.prefix)
    return key


def bearer(key: str) -> dict[str, str]:
    """Return the Authorization header for a key."""
    return {"Authorization": f"Bearer {key}"}


def store_of(app: Flask) -> Store:
    """Return the app's store."""
    store: Store = app.extensions["paysieve.store"]
    return store


def apply(
    store: Store,
    *records: Record,
    provider: str = "stripe",
    account: str = "default",
    event_id: str | None = None,
    at: datetime | None = None,
    event_type: str = "test.event",
) -> str:
    """Apply one event carrying records; return its id."""
    n = next(_counter)
    event_id = event_id or f"evt_{n}"
    store.apply(
        provider=provider,
        account=account,
        meta=EventMeta(id=event_id, type=event_type, occurred_at=at or T0 + timedelta(seconds=n)),
        records=list(records),
        outcome="stored",
        dropped_fields=0,
    )
    return event_id


def txn(ident: str, **values: Any) -> Record:
    """Return a transaction record."""
    return Record("transaction", {"id": ident, **values})


def pm(token: str, **values: Any) -> Record:
    """Return a payment-method record."""
    return Record("payment_method", {"token": token, **values})


def sub(ident: str, **values: Any) -> Record:
    """Return a subscription record."""
    return Record("subscription", {"id": ident, **values})
