"""Sanitised records: the only shapes that may reach storage."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

RecordType = Literal["transaction", "payment_method", "subscription"]

RECORD_TYPES: Final[tuple[RecordType, ...]] = ("transaction", "payment_method", "subscription")

# The field that, with provider and account, identifies each record type.
IDENTITY: Final[dict[str, str]] = {
    "transaction": "id",
    "payment_method": "token",
    "subscription": "id",
}

BRANDS: Final = frozenset(
    {
        "visa",
        "mastercard",
        "amex",
        "discover",
        "diners",
        "jcb",
        "unionpay",
        "rupay",
        "maestro",
        "unknown",
    }
)
TRANSACTION_KINDS: Final = frozenset({"payment", "refund", "dispute", "invoice"})
TRANSACTION_STATUSES: Final = (
    "pending",
    "requires_action",
    "authorized",
    "failed",
    "canceled",
    "succeeded",
    "partially_refunded",
    "refunded",
    "disputed",
)
PAYMENT_METHOD_STATUSES: Final = frozenset({"active", "detached", "expired", "deleted"})
SUBSCRIPTION_STATUSES: Final = (
    "incomplete",
    "trialing",
    "active",
    "past_due",
    "paused",
    "canceled",
    "expired",
)
EVENT_OUTCOMES: Final = frozenset({"stored", "ignored"})


@dataclass(slots=True)
class Record:
    """One sanitised record an event creates or changes.

    ``values`` holds only allowlisted fields, each already validated to its
    shape; a field the event does not carry is absent (and left untouched on
    update), never ``None`` by default.
    """

    type: RecordType
    values: dict[str, Any]
    # Fields this event may only fill when the record lacks them, never overwrite
    # (a card seen on a later charge must not reactivate a detached card).
    fill_only: frozenset[str] = frozenset()

    @property
    def key(self) -> str:
        """Return the record's identity value (id or token)."""
        return str(self.values[IDENTITY[self.type]])


@dataclass(slots=True)
class EventMeta:
    """What the pipeline needs to know about one provider event."""

    id: str
    type: str
    occurred_at: datetime
    # True when the body gives no time at all and occurred_at is the time of receipt:
    # such an event may be older than it looks, so an erasure always wins over it.
    time_unknown: bool = False


@dataclass(slots=True)
class Sanitised:
    """The result of running an event through its allowlist schemas."""

    records: list[Record] = field(default_factory=list)
    # Paths of fields that were sent inside kept objects but failed their shape.
    dropped: list[str] = field(default_factory=list)
    handled: bool = True
