"""What every privacy operation shares: bounded keyset batches, progress and stop callbacks,
the privacy log.

Every operation works in bounded keyset batches (each its own transaction, so an
interrupted run leaves a consistent database and a rerun continues), and every
run is recorded in the audit trail and the privacy log: counts, the legal basis
and a keyed-hash pseudonym of the data subject, never a value.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Connection, Table, delete, func, select
from sqlalchemy.sql.elements import ColumnElement

from gateway.storage.store import Store
from gateway.storage.tables import payment_methods, privacy_log, subscriptions, transactions

BATCH_SIZE: Final = 5000

Progress = Callable[[int], None]
ShouldStop = Callable[[], bool]


def never_stop() -> bool:
    return False


def ignore_progress(_count: int) -> None:
    return None


def table_named(name: str) -> Table:
    return {t.name: t for _, t in EXPORT_TABLES}[name]


def delete_batches(
    store: Store,
    table: Table,
    condition: ColumnElement[bool],
    *,
    batch_size: int,
    progress: Progress,
    should_stop: ShouldStop,
) -> tuple[int, bool]:
    """Delete matching rows in keyset batches; return the count and whether it was stopped."""
    key = table.primary_key.columns.values()[0]
    last: int | None = None
    done = 0
    while True:
        if should_stop():
            return done, True
        window = select(key).where(condition).order_by(key).limit(batch_size)
        if last is not None:
            window = window.where(key > last)
        with store.writing() as conn:
            deleted = (
                conn.execute(delete(table).where(key.in_(window.scalar_subquery())).returning(key))
                .scalars()
                .all()
            )
        if not deleted:
            return done, False
        last = max(deleted)
        done += len(deleted)
        progress(len(deleted))


def count_rows(store: Store, table: Table, condition: ColumnElement[bool]) -> int:
    with store.engine.connect() as conn:
        return int(
            conn.execute(select(func.count()).select_from(table).where(condition)).scalar_one()
        )


def write_privacy_log(conn: Connection, **values: Any) -> None:
    conn.execute(privacy_log.insert().values(at=datetime.now(UTC), **values))


EXPORT_TABLES: Final[tuple[tuple[str, Table], ...]] = (
    ("transactions", transactions),
    ("payment_methods", payment_methods),
    ("subscriptions", subscriptions),
)


def plain(value: Any) -> Any:
    return value.isoformat().replace("+00:00", "Z") if isinstance(value, datetime) else value
