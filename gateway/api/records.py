"""The record collections and the change feed: keyset-paged, filtered, account-bound."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from flask import Blueprint
from marshmallow import Schema
from sqlalchemy import Connection, Table, func, literal_column, select
from sqlalchemy.sql.elements import ColumnElement

from gateway.api.answers import load_query
from gateway.api.auth import audited_read, current_store, reading
from gateway.api.cursors import cursor_scope, decode_cursor, encode_cursor
from gateway.api.keys import ApiKey
from gateway.api.schemas import (
    ID_PATTERN,
    PROVIDER_PATTERN,
    Dumper,
    EventOut,
    EventQuery,
    PaymentMethodOut,
    PaymentMethodPage,
    PaymentMethodQuery,
    RecordQuery,
    SubscriptionOut,
    SubscriptionPage,
    SubscriptionQuery,
    TransactionOut,
    TransactionPage,
    TransactionQuery,
    dumper,
)
from gateway.core import guard
from gateway.core.crypto import SEALED, Cipher, bidx_column
from gateway.core.errors import BadRequest, NotFound
from gateway.core.records import RECORD_TYPES
from gateway.storage.joined import open_transaction, transactions_with_methods
from gateway.storage.tables import (
    event_objects,
    events,
    payment_methods,
    subscriptions,
    transactions,
)

log = logging.getLogger(__name__)

bp = Blueprint("api", __name__, url_prefix="/v1")


@dataclass(frozen=True)
class Collection:
    """One record list and its single-record route."""

    record_type: str
    path: str
    table: Table
    identity: str
    query: type[Schema]
    item: type[Schema]
    page: type[Schema]
    filters: tuple[str, ...]


COLLECTIONS: Final = (
    Collection(
        "transaction",
        "transactions",
        transactions,
        "id",
        TransactionQuery,
        TransactionOut,
        TransactionPage,
        ("provider", "account", "customer", "status", "kind"),
    ),
    Collection(
        "payment_method",
        "payment-methods",
        payment_methods,
        "token",
        PaymentMethodQuery,
        PaymentMethodOut,
        PaymentMethodPage,
        ("provider", "account", "customer", "status"),
    ),
    Collection(
        "subscription",
        "subscriptions",
        subscriptions,
        "id",
        SubscriptionQuery,
        SubscriptionOut,
        SubscriptionPage,
        ("provider", "account", "customer", "status"),
    ),
)

# Built once per process: a schema instance per record was most of a page's time.
_DUMPERS: Final[dict[str, Dumper]] = {c.record_type: dumper(c.item) for c in COLLECTIONS}


def serve_record(record_type: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """Return a record's served form; the dumper drops every undeclared column.

    The one serializer of records: the record lists, the single reads, the export and
    outbound webhooks.
    """
    return _DUMPERS[record_type](values)


def _equals(table: Table, column: str, value: str) -> ColumnElement[bool]:
    """Return column = value; a sealed column is matched through its blind index."""
    kind = SEALED.get(table.name, {}).get(column)
    if kind is None:
        return table.c[column] == value
    return table.c[bidx_column(column)] == current_store().cipher.bidx(kind, value)


def _visible(table: Table, key: ApiKey) -> list[ColumnElement[bool]]:
    """Return the condition limiting rows to the key's accounts."""
    if key.accounts is None:
        return []
    return [table.c.account.in_(sorted(key.accounts))]


# ------------------------------------------------------------------ record queries


def select_rows(collection: Collection) -> Any:
    """Return the select of a collection's rows (transactions with their payment method)."""
    if collection.record_type != "transaction":
        return select(collection.table)
    return transactions_with_methods()


def _record(collection: Collection, row: Mapping[Any, Any]) -> dict[str, Any]:
    """Return the served form of a row."""
    return serve_row(current_store().cipher, collection, row)


def serve_row(cipher: Cipher, collection: Collection, row: Mapping[Any, Any]) -> dict[str, Any]:
    """Return a stored row as the record routes serve it (outbound webhooks send the same)."""
    if collection.record_type == "transaction":
        return serve_record("transaction", open_transaction(cipher, row))
    return serve_record(collection.record_type, cipher.open_row(collection.table.name, row))


def collection_of(record_type: str) -> Collection:
    """Return the collection serving a record type."""
    return next(c for c in COLLECTIONS if c.record_type == record_type)


def select_record(
    cipher: Cipher, collection: Collection, provider: str, account: str, ident: str
) -> Any:
    """Return the select of one record by its identity, as the record routes read it."""
    table = collection.table
    kind = SEALED.get(table.name, {}).get(collection.identity)
    match = (
        table.c[collection.identity] == ident
        if kind is None
        else table.c[bidx_column(collection.identity)] == cipher.bidx(kind, ident)
    )
    return select_rows(collection).where(
        table.c.provider == provider, table.c.account == account, match
    )


def _list(collection: Collection, key: ApiKey) -> tuple[dict[str, Any], int]:
    args = load_query(collection.query)
    table = collection.table
    conditions = _visible(table, key)
    conditions += [_equals(table, name, args[name]) for name in collection.filters if name in args]
    if "updated_since" in args:
        conditions.append(table.c.updated_at >= args["updated_since"])
    scope = cursor_scope(collection.path, args)
    if "cursor" in args:
        conditions.append(table.c.pk > decode_cursor(args["cursor"], scope))
    limit: int = args["limit"]
    # Keyset on pk, never OFFSET: records existing when a walk starts keep their place, and
    # ones added during it land after the cursor, so each existing record is served once.
    query = select_rows(collection).where(*conditions).order_by(table.c.pk).limit(limit + 1)
    with reading() as conn:
        rows = conn.execute(query).all()
    page = rows[:limit]
    next_cursor = encode_cursor(int(page[-1].pk), scope) if len(rows) > limit else None
    # open_row copies each row into the dict it returns: the row mappings are read as they are.
    data = [_record(collection, row._mapping) for row in page]
    return {"data": data, "next_cursor": next_cursor}, len(data)


def _one(
    collection: Collection, key: ApiKey, provider: str, ident: str
) -> tuple[dict[str, Any], int]:
    args = load_query(RecordQuery)
    if (
        not re.fullmatch(PROVIDER_PATTERN, provider)
        or not re.fullmatch(ID_PATTERN, ident)
        # No record can have such an id: storage refuses card data.
        or guard.card_data_reason(ident) is not None
    ):
        raise NotFound("no such record")
    table = collection.table
    conditions = [
        table.c.provider == provider,
        _equals(table, collection.identity, ident),
        *_visible(table, key),
    ]
    if "account" in args:
        conditions.append(table.c.account == args["account"])
    query = select_rows(collection).where(*conditions).order_by(table.c.pk).limit(2)
    with reading() as conn:
        rows = [dict(row._mapping) for row in conn.execute(query)]
    if not rows:
        raise NotFound("no such record")
    if len(rows) > 1:
        raise BadRequest(
            "two accounts hold a record with this id: pass account", code="ambiguous_record"
        )
    return _record(collection, rows[0]), 1


def _register(collection: Collection) -> None:
    name = collection.path.replace("-", "_")

    @audited_read
    def list_view(key: ApiKey) -> tuple[dict[str, Any], int]:
        return _list(collection, key)

    @audited_read
    def one_view(key: ApiKey, provider: str, ident: str) -> tuple[dict[str, Any], int]:
        return _one(collection, key, provider, ident)

    bp.add_url_rule(f"/{collection.path}", f"list_{name}", list_view, methods=["GET"])
    bp.add_url_rule(
        f"/{collection.path}/<provider>/<ident>", f"get_{name}", one_view, methods=["GET"]
    )


for _collection in COLLECTIONS:
    _register(_collection)


# ------------------------------------------------------------------ change feed

_dump_event: Final = dumper(EventOut)


def _horizon() -> ColumnElement[bool] | None:
    """Return the condition holding back events a running transaction could still precede."""
    if current_store().dialect != "postgresql":
        # SQLite writers are serialised from BEGIN IMMEDIATE to commit: seq order is commit order.
        return None
    # Store._insert_events_in_seq_order takes xid and seqs under one lock, so seq order is
    # xid order: every event below the oldest running xid is final, and a running one can
    # only get a higher seq.
    oldest_running: ColumnElement[int] = literal_column(
        "pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
    )
    return func.coalesce(events.c.txid, 0) < oldest_running


@bp.get("/events")
@audited_read
def list_events(key: ApiKey) -> tuple[dict[str, Any], int]:
    """Serve the change feed: events after a seq, in seq order, with the ids they touched."""
    args = load_query(EventQuery)
    after: int = args["after"]
    limit: int = args["limit"]
    conditions = [events.c.seq > after, *_visible(events, key)]
    conditions += [events.c[name] == args[name] for name in ("provider", "account") if name in args]
    horizon = _horizon()
    if horizon is not None:
        conditions.append(horizon)
    query = select(events).where(*conditions).order_by(events.c.seq).limit(limit + 1)
    with reading() as conn:
        rows = [dict(row._mapping) for row in conn.execute(query)][: limit + 1]
        page = rows[:limit]
        data = serve_events(conn, current_store().cipher, page)
    next_after = int(page[-1]["seq"]) if page else after
    return {"data": data, "next_after": next_after, "has_more": len(rows) > limit}, len(data)


def serve_events(
    conn: Connection, cipher: Cipher, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Return event rows as the change feed serves them, with the ids each touched."""
    touched: dict[int, dict[str, list[str]]] = {
        int(row["seq"]): {record_type: [] for record_type in RECORD_TYPES} for row in rows
    }
    if touched:
        objects = conn.execute(
            select(event_objects)
            .where(event_objects.c.event_seq.in_(sorted(touched)))
            .order_by(
                event_objects.c.event_seq,
                event_objects.c.record_type,
                event_objects.c.object_id,
            )
        )
        for obj in objects:
            ident = obj.object_id
            if obj.record_type == "payment_method":
                aad = Cipher.object_aad(int(obj.event_seq), obj.record_type)
                ident = cipher.open(ident, aad)
            touched[int(obj.event_seq)].setdefault(obj.record_type, []).append(ident)
        for ids in touched.values():
            for names in ids.values():
                names.sort()
    return [_dump_event(dict(row) | {"object_ids": touched[int(row["seq"])]}) for row in rows]
