"""The database schema: typed columns only, no column that could hold a payload."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
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

from gateway.core import guard
from gateway.core.errors import CardDataRefused

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


# The storage boundary. Every text and number column below is one of these types, so
# every value bound into any INSERT or UPDATE, through SQLAlchemy or a prepared
# statement (gateway.storage.prepared uses the same type processors), passes the card-number
# detector first; a hit refuses the statement and so the whole transaction. Digest
# columns hold only hex digests the gateway computes, and are held to that shape instead.
_REFUSED = "a value to be stored looks like card data; nothing was stored"


def _refuse_card_data(value: Any) -> Any:
    if value is not None and guard.card_data_reason(value) is not None:
        raise CardDataRefused(_REFUSED)
    return value


class Text(TypeDecorator[str]):
    """Text that is stored only once the card-number detector has passed it."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return _refuse_card_data(value)  # type: ignore[no-any-return]


class EventId(Text):
    """An event id: the same check, reading a PayPal-shaped id group by group (gateway.guard)."""

    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is not None and guard.scan_event_id(value) is not None:
            raise CardDataRefused(_REFUSED)
        return value


class Number(TypeDecorator[int]):
    """An integer that is stored only once the card-number detector has passed it."""

    impl: Any = BigInteger
    cache_ok = True

    def process_bind_param(self, value: int | None, dialect: Dialect) -> int | None:
        return _refuse_card_data(value)  # type: ignore[no-any-return]


class SmallNumber(Number):
    """A small integer held to the same check."""

    impl = SmallInteger
    cache_ok = True


class Count(Number):
    """A count held to the same check."""

    impl = Integer
    cache_ok = True


class HexDigest(TypeDecorator[str]):
    """A lower-case hex digest of a fixed length: a value the gateway computed, nothing else."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        length = self.impl_instance.length  # type: ignore[attr-defined]
        if len(value) != length or value.strip("0123456789abcdef"):
            raise ValueError("only a hex digest of the column's length is stored here")
        return value


def _ref(name: str, **kwargs: Any) -> Column[Any]:
    """Return a provider id/reference column."""
    return Column(name, Text(128), nullable=True, **kwargs)


def _sealed(name: str, *, nullable: bool = True) -> list[Column[Any]]:
    """Return a column sealed with AES-GCM (gateway.core.crypto) and its blind index column."""
    return [
        # v1.<kid>.<base64url(nonce, ciphertext, tag)> of an id of up to 128 characters.
        # The plaintext passed the detector when it was sealed (gateway.core.crypto); the
        # envelope passes it again here, so a value written without sealing is checked too.
        Column(name, Text(256), nullable=nullable),
        # HMAC-SHA256 (own key) truncated to 128 bits, hex: equality lookups and joins.
        Column(f"{name}_bidx", HexDigest(32), nullable=True),
    ]


def _record_columns() -> list[Column[Any]]:
    """Return the bookkeeping columns every record table carries."""
    return [
        Column("provider", Text(16), nullable=False),
        Column("account", Text(64), nullable=False),
        Column("created_at", UTCDateTime(), nullable=False),
        Column("updated_at", UTCDateTime(), nullable=False),
        Column("last_event_id", EventId(128), nullable=False),
        # When the provider says the last applied event happened; orders deliveries.
        Column("last_event_at", UTCDateTime(), nullable=False),
    ]


events = Table(
    "events",
    metadata,
    Column("seq", Serial, primary_key=True, autoincrement=True),
    Column("provider", Text(16), nullable=False),
    Column("account", Text(64), nullable=False),
    Column("id", EventId(128), nullable=False),
    Column("type", Text(128), nullable=False),
    Column("occurred_at", UTCDateTime(), nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("outcome", Text(16), nullable=False),
    Column("dropped_fields", Count(), nullable=False, default=0),
    # PostgreSQL: the id of the transaction that wrote the row (pg_current_xact_id), so the
    # change feed can hold back rows a still-running transaction could precede. NULL on SQLite.
    # Generated by the database, like the serial keys: the only numbers not checked.
    Column("txid", BigInteger, nullable=True),
    # SHA-256 (hex) of the raw body as received: an identical signed body is the same
    # event whatever id an unsigned header gives it (Razorpay's event id is not signed).
    Column("body_digest", HexDigest(64), nullable=True),
    # SHA-256 (hex) of the provider's id for one signed transmission (PayPal's
    # PAYPAL-TRANSMISSION-ID, a UUID), so the same signed headers never admit two
    # different bodies. A digest, not the header: only equality is needed, and a random
    # UUID holds a Luhn-valid run of digits often enough to be refused as card data.
    Column("transmission_digest", HexDigest(64), nullable=True),
    UniqueConstraint("provider", "account", "id"),
    UniqueConstraint("provider", "account", "body_digest"),
    UniqueConstraint("provider", "account", "transmission_digest"),
    Index(None, "received_at"),
    # Never reuse a seq on SQLite, even after the newest event is purged or erased:
    # a change-feed consumer polling after=<seq> would miss the new one.
    sqlite_autoincrement=True,
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
    Column("record_type", Text(32), nullable=False),
    # A payment method's token is sealed here too (gateway.core.crypto); other ids are in clear.
    Column("object_id", Text(256), nullable=False),
    # The token's blind index, so erasure can find the change-feed rows naming it.
    Column("object_bidx", HexDigest(32), nullable=True),
    PrimaryKeyConstraint("event_seq", "record_type", "object_id"),
)

transactions = Table(
    "transactions",
    metadata,
    Column("pk", Serial, primary_key=True, autoincrement=True),
    *_record_columns(),
    Column("id", Text(128), nullable=False),
    Column("kind", Text(16), nullable=True),
    Column("status", Text(32), nullable=True),
    Column("provider_status", Text(64), nullable=True),
    Column("amount", Number(), nullable=True),
    Column("currency", Text(3), nullable=True),
    *_sealed("customer"),
    _ref("payment_intent"),
    _ref("charge"),
    _ref("order"),
    _ref("invoice"),
    _ref("subscription"),
    _ref("refund_of"),
    *_sealed("payment_method"),
    UniqueConstraint("provider", "account", "id"),
    # (filter, pk): the read API's keyset pages are index range scans in pk order.
    Index(None, "customer_bidx", "pk"),
    Index(None, "account", "pk"),
    Index(None, "updated_at"),
)

payment_methods = Table(
    "payment_methods",
    metadata,
    Column("pk", Serial, primary_key=True, autoincrement=True),
    *_record_columns(),
    *_sealed("token", nullable=False),
    *_sealed("customer"),
    Column("brand", Text(16), nullable=True),
    Column("last4", Text(4), nullable=True),
    Column("exp_month", SmallNumber(), nullable=True),
    Column("exp_year", SmallNumber(), nullable=True),
    Column("status", Text(16), nullable=True),
    # The token is sealed with a random nonce: its blind index is the identity.
    UniqueConstraint("provider", "account", "token_bidx"),
    # (filter, pk): the read API's keyset pages are index range scans in pk order.
    Index(None, "customer_bidx", "pk"),
    Index(None, "account", "pk"),
    Index(None, "updated_at"),
)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("pk", Serial, primary_key=True, autoincrement=True),
    *_record_columns(),
    Column("id", Text(128), nullable=False),
    *_sealed("customer"),
    _ref("plan"),
    Column("status", Text(16), nullable=True),
    Column("provider_status", Text(64), nullable=True),
    Column("current_period_end", UTCDateTime(), nullable=True),
    Column("cancel_at_period_end", Boolean, nullable=True),
    UniqueConstraint("provider", "account", "id"),
    # (filter, pk): the read API's keyset pages are index range scans in pk order.
    Index(None, "customer_bidx", "pk"),
    Index(None, "account", "pk"),
    Index(None, "updated_at"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("pk", Serial, primary_key=True, autoincrement=True),
    # The key's public lookup part; the key itself is never stored, only its SHA-256.
    Column("prefix", Text(16), nullable=False),
    Column("key_hash", HexDigest(64), nullable=False),
    Column("name", Text(64), nullable=False),
    # Space-separated words from a closed vocabulary (gateway.api.keys.SCOPES).
    Column("scopes", Text(128), nullable=False),
    # Space-separated account names; NULL means every account.
    Column("accounts", Text(1024), nullable=True),
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
    # A key prefix, "cli", "anonymous" or "outbound": who, never with which credential.
    Column("actor", Text(32), nullable=False),
    Column("action", Text(64), nullable=False),
    # A route template such as /v1/transactions/<provider>/<id>: never the values in it.
    Column("route", Text(128), nullable=False),
    Column("outcome", Text(32), nullable=False),
    Column("count", Count(), nullable=False, default=0),
    Index(None, "at"),
)

# The minimisation trail (gateway.storage.trail): counts of what arrived and what was kept,
# by field path with free-form keys collapsed. Counts and path names only, never values.
trail_counts = Table(
    "trail_counts",
    metadata,
    Column("provider", Text(16), nullable=False),
    Column("event_type", Text(128), nullable=False),
    # The first 16 hex digits of a SHA-256 over the payload's collapsed path set.
    Column("shape_hash", HexDigest(16), nullable=False),
    Column("day", Date, nullable=False),
    Column("count", Number(), nullable=False),
    PrimaryKeyConstraint("provider", "event_type", "shape_hash", "day"),
)

trail_shapes = Table(
    "trail_shapes",
    metadata,
    Column("shape_hash", HexDigest(16), nullable=False),
    Column("provider", Text(16), nullable=False),
    Column("event_type", Text(128), nullable=False),
    Column("path", Text(512), nullable=False),
    Column("kept", Boolean, nullable=False),
    Column("first_seen", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("shape_hash", "path"),
)

trail_guard_hits = Table(
    "trail_guard_hits",
    metadata,
    Column("provider", Text(16), nullable=False),
    Column("reason", Text(16), nullable=False),
    Column("day", Date, nullable=False),
    Column("count", Number(), nullable=False),
    PrimaryKeyConstraint("provider", "reason", "day"),
)

# Privacy operations (gateway.privacy): who asked for what, under which legal basis, how
# much. The data subject appears only as a keyed-hash pseudonym, never by a value.
privacy_log = Table(
    "privacy_log",
    metadata,
    Column("seq", Serial, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime(), nullable=False),
    # A key prefix or "cli", as in audit_log.
    Column("actor", Text(32), nullable=False),
    # erase, export, purge, rotate_keys
    Column("action", Text(32), nullable=False),
    Column("provider", Text(16), nullable=True),
    Column("account", Text(64), nullable=True),
    # HMAC-SHA256 of (provider, account, customer) under a key derived from the index key.
    Column("subject", HexDigest(64), nullable=True),
    Column("transactions", Count(), nullable=False, default=0),
    Column("payment_methods", Count(), nullable=False, default=0),
    Column("subscriptions", Count(), nullable=False, default=0),
    Column("events", Count(), nullable=False, default=0),
    Column("audit_entries", Count(), nullable=False, default=0),
    # What was kept and why, in words (erase: the transactions' billing core).
    Column("legal_basis", Text(256), nullable=True),
    Column("outcome", Text(32), nullable=False),
    Index(None, "at"),
    Index(None, "subject"),
)

# Erasure tombstones (gateway.privacy.erasure): the blind index of each erased customer and
# of each card erased with them, and when. An event the provider created before that time
# never links them again; no value of the customer or card is kept.
erasures = Table(
    "erasures",
    metadata,
    Column("provider", Text(16), nullable=False),
    Column("account", Text(64), nullable=False),
    # "customer" or "token": which blind index (gateway.core.crypto.Cipher.bidx kind) this is.
    Column("kind", Text(16), nullable=False),
    Column("bidx", HexDigest(32), nullable=False),
    Column("erased_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("provider", "account", "kind", "bidx"),
)

# Where a `paysieve backfill` of one endpoint stopped (gateway.ingest.backfill), so a rerun of
# the same window resumes there. Provider cursors and counts only: never a payload.
backfill_checkpoints = Table(
    "backfill_checkpoints",
    metadata,
    Column("provider", Text(16), nullable=False),
    Column("account", Text(64), nullable=False),
    # The window being backfilled: a rerun with another window starts over.
    Column("since", UTCDateTime(), nullable=False),
    Column("until", UTCDateTime(), nullable=False),
    # The provider collection being read (events, payments, refunds, ...).
    Column("resource", Text(32), nullable=False),
    # The provider's page cursor (an object id, or a next link's query), if it has one.
    Column("cursor", Text(2048), nullable=True),
    # Objects of the resource read so far (Razorpay's skip).
    Column("position", Count(), nullable=False, default=0),
    Column("objects", Count(), nullable=False, default=0),
    Column("updated_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("provider", "account"),
)

# Outbound webhooks (gateway.outbound): the endpoints billing services register, and the
# outbox of what each is owed. Payloads are never stored: a delivery names a change-feed
# entry and a record, and the body is rebuilt from them, by the API's serializer, when sent.
subscribers = Table(
    "subscribers",
    metadata,
    Column("id", Serial, primary_key=True, autoincrement=True),
    Column("name", Text(64), nullable=False),
    Column("url", Text(2048), nullable=False),
    # The signing secret (whsec_...), sealed like a token (gateway.core.crypto), bound to the
    # subscriber's name; during a rotation the previous one signs too until it expires.
    Column("secret", Text(256), nullable=False),
    Column("previous_secret", Text(256), nullable=True),
    Column("previous_secret_expires_at", UTCDateTime(), nullable=True),
    # Space-separated change-feed event type patterns (* wildcards).
    Column("event_types", Text(1024), nullable=False),
    # Space-separated account names; NULL means every account.
    Column("accounts", Text(1024), nullable=True),
    Column("enabled", Boolean, nullable=False),
    # A word: operator, gone (the endpoint answered 410), failing (for too long).
    Column("disabled_reason", Text(32), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    # The first failure since the last success; NULL while the endpoint answers.
    Column("failing_since", UTCDateTime(), nullable=True),
    UniqueConstraint("name"),
)

# The transactional outbox: written in the webhook's own transaction (gateway.storage.store).
outbound_deliveries = Table(
    "outbound_deliveries",
    metadata,
    Column("id", Serial, primary_key=True, autoincrement=True),
    Column(
        "subscriber_id",
        Serial,
        ForeignKey("subscribers.id", ondelete="CASCADE"),
        nullable=False,
    ),
    # A purged or erased change-feed entry takes its deliveries with it.
    Column(
        "event_seq",
        Serial,
        ForeignKey("events.seq", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("record_type", Text(32), nullable=False),
    # As in event_objects: a payment method's token sealed to (seq, record type).
    Column("object_id", Text(256), nullable=False),
    # Blind index of (provider, account, record type, id): one record's deliveries, in order.
    Column("record_ref", HexDigest(32), nullable=False),
    # pending (never tried), failed (tried, will be retried), delivered, dead (gave up).
    Column("state", Text(16), nullable=False),
    Column("attempts", Count(), nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    # Held by the sender trying it now; an expired lease is another sender's to take.
    Column("lease_until", UTCDateTime(), nullable=True),
    Column("last_status", SmallNumber(), nullable=True),
    Column("last_duration_ms", Count(), nullable=True),
    # A word for a failure without a status: timeout, connect, address, redirect, gone.
    Column("last_error", Text(32), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_attempt_at", UTCDateTime(), nullable=True),
    Column("delivered_at", UTCDateTime(), nullable=True),
    UniqueConstraint("subscriber_id", "event_seq", "record_ref"),
    Index(None, "state", "next_attempt_at"),
    Index(None, "subscriber_id", "record_ref", "event_seq"),
    Index(None, "event_seq"),
)

RECORD_TABLES: dict[str, Table] = {
    "transaction": transactions,
    "payment_method": payment_methods,
    "subscription": subscriptions,
}

# Columns the pipeline manages; every other column of a record table is an allowlisted field.
BOOKKEEPING = frozenset(
    {
        "pk",
        "provider",
        "account",
        "created_at",
        "updated_at",
        "last_event_id",
        "last_event_at",
        # Blind indexes of sealed columns (gateway.core.crypto): derived, not fields.
        "customer_bidx",
        "token_bidx",
        "payment_method_bidx",
    }
)


def field_columns(record_type: str) -> list[str]:
    """Return the allowlisted field columns of a record type, in table order."""
    return [c.name for c in RECORD_TABLES[record_type].columns if c.name not in BOOKKEEPING]
