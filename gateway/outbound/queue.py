"""The outbox as operators see it: attempts listed (never a body), windows replayed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, select, update

from gateway.outbound.subscribers import require
from gateway.storage.tables import outbound_deliveries, subscribers

# What a replay puts back in the queue: what was sent, or given up on or still failing.
REPLAYABLE = ("delivered", "failed", "dead")


@dataclass(frozen=True)
class Delivery:
    """One delivery's last attempt: state, status code, duration; never the answer's body."""

    id: int
    subscriber: str
    event_seq: int
    record_type: str
    state: str
    attempts: int
    last_status: int | None
    last_error: str | None
    last_duration_ms: int | None
    last_attempt_at: datetime | None
    next_attempt_at: datetime


def list_deliveries(
    conn: Connection, *, failed: bool = False, subscriber: str | None = None, limit: int = 100
) -> list[Delivery]:
    """Return the newest deliveries (only failed and dead ones if failed), newest first."""
    d = outbound_deliveries
    query = select(d, subscribers.c.name).join(subscribers, subscribers.c.id == d.c.subscriber_id)
    if failed:
        query = query.where(d.c.state.in_(("failed", "dead")))
    if subscriber is not None:
        query = query.where(subscribers.c.id == require(conn, subscriber).id)
    rows = conn.execute(query.order_by(d.c.id.desc()).limit(limit)).all()
    return [
        Delivery(
            id=int(r.id),
            subscriber=r.name,
            event_seq=int(r.event_seq),
            record_type=r.record_type,
            state=r.state,
            attempts=int(r.attempts),
            last_status=r.last_status,
            last_error=r.last_error,
            last_duration_ms=r.last_duration_ms,
            last_attempt_at=r.last_attempt_at,
            next_attempt_at=r.next_attempt_at,
        )
        for r in rows
    ]


OPEN_STATES = ("pending", "failed", "dead")


def depth(conn: Connection) -> dict[str, int]:
    """Return how many deliveries wait in each state that is not delivered."""
    d = outbound_deliveries
    query = select(d.c.state, func.count()).where(d.c.state.in_(OPEN_STATES)).group_by(d.c.state)
    counted = {state: int(n) for state, n in conn.execute(query).all()}
    return {state: counted.get(state, 0) for state in OPEN_STATES}


def replay(
    conn: Connection, name: str, *, since: datetime, until: datetime | None, now: datetime
) -> int:
    """Queue again a subscriber's deliveries of changes committed in [since, until)."""
    d = outbound_deliveries
    sub = require(conn, name)
    conditions = [d.c.subscriber_id == sub.id, d.c.state.in_(REPLAYABLE), d.c.created_at >= since]
    if until is not None:
        conditions.append(d.c.created_at < until)
    # The same rows, so the same webhook-id: a receiver that has one deduplicates it.
    result = conn.execute(
        update(d)
        .where(*conditions)
        .values(state="pending", attempts=0, next_attempt_at=now, lease_until=None)
    )
    return int(result.rowcount or 0)
