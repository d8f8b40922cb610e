"""The database schema: typed columns only, no column that could hold a payload."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only auto-increments an INTEGER PRIMARY KEY.
Serial = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored")
        value = value.astimezone(UTC)
        # SQLite has no time zones: store naive UTC so text order is time order.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]


def _ref(name: str, **kwargs: Any) -> Column[Any]:
    """Return a provider id/reference column."""
    return Column(name, String(128), nullable=True, **kwargs)


def _record_columns() -> list[Column[Any]]:
    """Return the bookkeeping columns every record table carries."""
    return [
        Column("provider", String(16), nullable=False),
        Column("account", String(64), nullable=False),
        Column("created_at", UTCDateTime(), nullable=False),
        Column("updated_at", UTCDateTime(), nullable=False),
        Column("last_event_id", String(128), nullable=False),
        # When the provider says the last applied event happened; orders deliveries.
        Column("last_event_at", UTCDateTime(), nullable=False),
    ]


events = Table(
    "events",
    metadata,
    Column("seq", Serial, primary_key=True, autoincrement=True),
    Column("provider", String(16), nullable=False),
    Column("account", String(64), nullable=False),
    Column("id", String(128), nullable=False),
    Column("type", String(128), nullable=False),
    Column("occurred_at", UTCDateTime(), nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("dropped_fields", Integer, nullable=False, default=0),
    # PostgreSQL: the id of the transaction that wrote the row (pg_current_xact_id), so the
    # change feed can hold back rows a still-running transaction could precede. NULL on SQLite.
    Column("txid", BigInteger, nullable=True),
    UniqueConstraint("provider", "account", "id"),
    Index(None, "received_at"),
)

event_objects = Table(
    "event_objects",
    metadata,
    Column(
        "event_seq",
        Serial,
        ForeignKey("events.seq", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("record_type", String(32), nullable=False),
    Column("object_id", String(128), nullable=False),
    PrimaryKeyConstraint("event_seq", "record_type", "object_id"),
)

transactions = Table(
    "transactions",
    metadata,
    Column("pk", Serial, primary_key=True, autoincrement=True),
    *_record_columns(),
    Column("id", String(128), nullable=False),
    Column("kind", String(16), nullable=True),
    Column("status", String(32), nullable=True),
    Column("provider_status", String(64), nullable=True),
    Column("amount", BigInteger, nullable=True),
    Column("currency", String(3), nullable=True),
    _ref("customer"),
    _ref("payment_intent"),
    _ref("charge"),
    _ref("order"),
    _ref("invoice"),
    _ref("subscription"),
    _ref("refund_of"),
    _ref("payment_method"),
    UniqueConstraint("provider", "account", "id"),
    # (filter, pk): the read API's keyset pages are index range scans in pk order.
    Index(None, "customer", "pk"),
    Index(None, "account", "pk"),
    Index(None, "updated_at"),
)

payment_methods = Table(
    "payment_methods",
    metadata,
    Column("pk", Serial, primary_key=True, autoincrement=True),
    *_record_columns(),
    Column("token", String(128), nullable=False),
    _ref("customer"),
    Column("brand", String(16), nullable=True),
    Column("last4", String(4), nullable=True),
    Column("exp_month", SmallInteger, nullable=True),
    Column("exp_year", SmallInteger, nullable=True),
    Column("status", String(16), nullable=True),
    UniqueConstraint("provider", "account", "token"),
    # (filter, pk): the read API's keyset pages are index range scans in pk order.
    Index(None, "customer", "pk"),
    Index(None, "account", "pk"),
    Index(None, "updated_at"),
)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("pk", Serial, primary_key=True, autoincrement=True),
    *_record_columns(),
    Column("id", String(128), nullable=False),
    _ref("customer"),
    _ref("plan"),
    Column("status", String(16), nullable=True),
    Column("provider_status", String(64), nullable=True),
    Column("current_period_end", UTCDateTime(), nullable=True),
    Column("cancel_at_period_end", Boolean, nullable=True),
    UniqueConstraint("provider", "account", "id"),
    # (filter, pk): the read API's keyset pages are index range scans in pk order.
    Index(None, "customer", "pk"),
    Index(None, "account", "pk"),
    Index(None, "updated_at"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("pk", Serial, primary_key=True, autoincrement=True),
    # The key's public lookup part; the key itself is never stored, only its SHA-256.
    Column("prefix", String(16), nullable=False),
    Column("key_hash", String(64), nullable=False),
    Column("name", String(64), nullable=False),
    # Space-separated words from a closed vocabulary (gateway.keys.SCOPES).
    Column("scopes", String(128), nullable=False),
    # Space-separated account names; NULL means every account.
    Column("accounts", String(1024), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_used_at", UTCDateTime(), nullable=True),
    Column("revoked_at", UTCDateTime(), nullable=True),
    UniqueConstraint("prefix"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", Serial, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime(), nullable=False),
    # A key prefix, "cli" or "anonymous": who, never with which credential.
    Column("actor", String(32), nullable=False),
    Column("action", String(64), nullable=False),
    # A route template such as /v1/transactions/<provider>/<id>: never the values in it.
    Column("route", String(128), nullable=False),
    Column("outcome", String(32), nullable=False),
    Column("count", Integer, nullable=False, default=0),
    Index(None, "at"),
)

RECORD_TABLES: dict[str, Table] = {
    "transaction": transactions,
    "payment_method": payment_methods,
    "subscription": subscriptions,
}

# Columns the pipeline manages; every other column of a record table is an allowlisted field.
BOOKKEEPING = frozenset(
    {"pk", "provider", "account", "created_at", "updated_at", "last_event_id", "last_event_at"}
)


def field_columns(record_type: str) -> list[str]:
    """Return the allowlisted field columns of a record type, in table order."""
    return [c.name for c in RECORD_TABLES[record_type].columns if c.name not in BOOKKEEPING]
