"""Backfill checkpoints: where one endpoint's backfill of one window stopped."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite

from gateway.storage.store import Store
from gateway.storage.tables import backfill_checkpoints as table


@dataclass(frozen=True, slots=True)
class Cursor:
    """A place in a provider's listing: the collection, its page cursor, objects read."""

    resource: str
    token: str | None = None
    position: int = 0


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A saved place for one (provider, account) and the window it belongs to."""

    since: datetime
    until: datetime
    cursor: Cursor
    objects: int


def load(store: Store, provider: str, account: str) -> Checkpoint | None:
    """Return the endpoint's saved checkpoint, if any."""
    query = select(table).where(table.c.provider == provider, table.c.account == account)
    with store.engine.connect() as conn:
        row = conn.execute(query).mappings().first()
    if row is None:
        return None
    return Checkpoint(
        since=row["since"],
        until=row["until"],
        cursor=Cursor(row["resource"], row["cursor"], row["position"]),
        objects=row["objects"],
    )


def save(store: Store, provider: str, account: str, checkpoint: Checkpoint) -> None:
    """Replace the endpoint's checkpoint in one statement.

    An upsert rather than a delete and an insert: two backfills of one endpoint at once
    (two terminals, a cron job and a person) then never collide on the row; the later
    save wins, and a rerun resumes from it (storing nothing twice).
    """
    values = {
        "provider": provider,
        "account": account,
        "since": checkpoint.since,
        "until": checkpoint.until,
        "resource": checkpoint.cursor.resource,
        "cursor": checkpoint.cursor.token,
        "position": checkpoint.cursor.position,
        "objects": checkpoint.objects,
        "updated_at": datetime.now(UTC),
    }
    insert = postgresql.insert if store.dialect == "postgresql" else sqlite.insert
    stmt = insert(table).values(values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["provider", "account"],
        set_={name: stmt.excluded[name] for name in values if name not in ("provider", "account")},
    )
    with store.writing() as conn:
        conn.execute(stmt)


def clear(store: Store, provider: str, account: str) -> None:
    """Forget the endpoint's checkpoint (its backfill finished)."""
    with store.writing() as conn:
        conn.execute(delete(table).where(table.c.provider == provider, table.c.account == account))
