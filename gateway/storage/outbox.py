"""The outbox side of a write: which subscribers a stored change is owed to, and their rows.

Delivery rows are written by the webhook's own transaction (gateway.storage.store), so a
change that commits is never without them and one that rolls back leaves none. The
enabled subscribers are read once every few seconds, not per delivery: with none there
is nothing to do but one cached, empty tuple.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Engine, bindparam, select

from gateway.core.crypto import Cipher
from gateway.storage.prepared import PreparedCache
from gateway.storage.tables import outbound_deliveries, subscribers

# How long a read of the subscribers is used; a subscriber added or disabled elsewhere is
# seen by this process's writes within this many seconds.
REFRESH_SECONDS: Final = 2.0
# The blind-index kind of a delivery's record identity (Cipher.bidx).
RECORD_REF_KIND: Final = "outbound_record"


def pattern_regex(patterns: Iterable[str]) -> re.Pattern[str]:
    """Return the regex matching an event type any of the * patterns matches."""
    alternatives = [".*".join(re.escape(part) for part in p.split("*")) for p in patterns]
    return re.compile("|".join(f"(?:{a})" for a in alternatives) or "(?!)")


@dataclass(frozen=True, slots=True)
class Target:
    """An enabled subscriber as the write path needs it."""

    id: int
    types: re.Pattern[str]
    accounts: frozenset[str] | None

    def wants(self, account: str, event_type: str) -> bool:
        """Return whether a change of this account and event type is owed to the subscriber."""
        if self.accounts is not None and account not in self.accounts:
            return False
        return self.types.fullmatch(event_type) is not None


class Targets:
    """The enabled subscribers, read at most every REFRESH_SECONDS."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._read_at = float("-inf")
        self._targets: tuple[Target, ...] = ()
        # Set when this process commits deliveries: a sender thread here starts at once.
        self._queued = threading.Event()

    def current(self) -> tuple[Target, ...]:
        """Return the enabled subscribers (a cached tuple; refreshed when it is old)."""
        if time.monotonic() - self._read_at < REFRESH_SECONDS:
            return self._targets
        with self._lock:
            if time.monotonic() - self._read_at >= REFRESH_SECONDS:
                self._targets = self._read()
                self._read_at = time.monotonic()
        return self._targets

    def queued(self) -> None:
        """Say that this process committed deliveries."""
        self._queued.set()

    def wait_queued(self, timeout: float) -> bool:
        """Wait until this process commits deliveries, or timeout; return whether it did."""
        found = self._queued.wait(timeout)
        self._queued.clear()
        return found

    def invalidate(self) -> None:
        """Read the subscribers again on next use (after a change made by this process)."""
        self._read_at = float("-inf")

    def _read(self) -> tuple[Target, ...]:
        query = select(subscribers.c.id, subscribers.c.event_types, subscribers.c.accounts).where(
            subscribers.c.enabled.is_(True)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(query.order_by(subscribers.c.id)).all()
        return tuple(
            Target(
                id=int(row.id),
                types=pattern_regex(row.event_types.split()),
                accounts=frozenset(row.accounts.split()) if row.accounts is not None else None,
            )
            for row in rows
        )


def record_ref(cipher: Cipher, provider: str, account: str, record_type: str, key: str) -> str:
    """Return the blind identity of one record: its deliveries are sent in seq order."""
    ref = cipher.bidx(RECORD_REF_KIND, "\x00".join((provider, account, record_type, key)))
    assert ref is not None  # noqa: S101 - bidx of a str is a str
    return ref


def delivery_rows(
    targets: Sequence[Target],
    *,
    seq: int,
    objects: Sequence[tuple[str, str, str]],
    now: datetime,
) -> list[dict[str, Any]]:
    """Return the outbox rows of one stored event: per target, per (type, object id, ref)."""
    return [
        {
            "subscriber_id": target.id,
            "event_seq": seq,
            "record_type": record_type,
            "object_id": object_id,
            "record_ref": ref,
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for target in targets
        for record_type, object_id, ref in objects
    ]


def insert_statement(cache: PreparedCache) -> Any:
    """Return the prepared outbox insert."""
    columns = (
        "subscriber_id",
        "event_seq",
        "record_type",
        "object_id",
        "record_ref",
        "state",
        "attempts",
        "next_attempt_at",
        "created_at",
    )
    return cache.get(
        "outbound_deliveries",
        lambda: outbound_deliveries.insert().values(
            {name: bindparam(name, type_=outbound_deliveries.c[name].type) for name in columns}
        ),
    )
