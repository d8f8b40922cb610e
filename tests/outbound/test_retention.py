"""Retention of the outbox: `paysieve purge` deletes finished deliveries past their period."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, update

from gateway.config.settings import Settings, load_settings
from gateway.privacy.retention import purge
from gateway.storage.store import Store
from gateway.storage.tables import outbound_deliveries
from tests.outbound.conftest import deliveries
from tests.support.api import apply, txn

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _set(engine: Engine, row_id: int, **values: object) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(outbound_deliveries).where(outbound_deliveries.c.id == row_id).values(values)
        )


def test_purge_deletes_delivered_and_dead_rows_past_retention_only(
    store: Store, engine: Engine, add_subscriber: Callable[..., str]
) -> None:
    add_subscriber("billing", "https://127.0.0.1:9/hook")
    for n in range(6):
        apply(store, txn(f"ch_{n}", status="succeeded"))
    rows = deliveries(engine)
    assert len(rows) == 6
    settings = Settings()
    limit = NOW - timedelta(days=settings.retention_outbound_days)
    second = timedelta(seconds=1)
    old, fresh = limit - second, limit + second
    ids = [r["id"] for r in rows]
    _set(engine, ids[0], state="delivered", delivered_at=old, last_attempt_at=old)
    _set(engine, ids[1], state="delivered", delivered_at=fresh, last_attempt_at=old)
    _set(engine, ids[2], state="dead", last_attempt_at=old)
    _set(engine, ids[3], state="dead", last_attempt_at=fresh)
    # Still owed: never purged by age, however old.
    _set(engine, ids[4], state="failed", last_attempt_at=old, created_at=old - 99 * second)
    _set(engine, ids[5], state="pending", created_at=old - 99 * second)
    dry = purge(store, settings, now=NOW, dry_run=True)
    assert dry.counts["outbound_deliveries"] == 2
    result = purge(store, settings, now=NOW)
    assert result.counts["outbound_deliveries"] == 2
    assert [r["id"] for r in deliveries(engine)] == [ids[1], ids[3], ids[4], ids[5]]
    assert purge(store, settings, now=NOW).counts["outbound_deliveries"] == 0


def test_the_outbound_retention_is_a_setting_with_an_env_name() -> None:
    assert Settings().retention_outbound_days == 7
    settings = load_settings(environ={"PAYSIEVE_RETENTION_OUTBOUND_DAYS": "30"})
    assert settings.retention_outbound_days == 30
