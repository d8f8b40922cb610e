"""A worker killed with SIGKILL mid-load: no partial record, and the retries complete."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from gateway.storage.tables import event_objects, events, transactions
from tests.support.processes import (
    Gunicorn,
    Tally,
    figures,
    lifecycle_events,
    running,
    send_all,
    stored_state,
)

pytestmark = pytest.mark.slow

GROUPS = 150  # x 4 = 600 events
KILLS = 3


def partial_records(engine: Engine) -> tuple[int, int]:
    """Return stored events without their object links, and records naming a missing event."""
    with engine.connect() as conn:
        linked = select(event_objects.c.event_seq).distinct().subquery()
        unlinked = conn.execute(
            select(func.count())
            .select_from(events.outerjoin(linked, linked.c.event_seq == events.c.seq))
            .where(events.c.outcome == "stored", linked.c.event_seq.is_(None))
        ).scalar_one()
        orphans = conn.execute(
            select(func.count())
            .select_from(transactions)
            .where(~transactions.c.last_event_id.in_(select(events.c.id)))
        ).scalar_one()
    return int(unlinked), int(orphans)


def test_sigkilled_worker_leaves_no_partial_record(
    database_url: str,
    engine: Engine,
    dialect: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    deliveries, final = lifecycle_events(GROUPS)
    gateway = Gunicorn(database_url, workers=2)
    killed: list[int] = []
    with running(gateway, workdir=tmp_path):
        tally = Tally()

        def killer() -> None:
            # Kill while deliveries are in flight: wait for the load to be under way first.
            while sum(tally.codes.values()) < len(deliveries) // 5:
                time.sleep(0.005)
            for _ in range(KILLS):
                victim = gateway.worker_pids()[0]
                os.kill(victim, signal.SIGKILL)
                killed.append(victim)
                time.sleep(0.4)

        thread = threading.Thread(target=killer, daemon=True)
        thread.start()
        started = time.perf_counter()
        landed = send_all([(gateway.url, d) for d in deliveries], tally, concurrency=16)
        seconds = time.perf_counter() - started
        thread.join(timeout=30)
        # The master replaced every killed worker.
        gateway.wait_until(lambda: len(gateway.worker_pids()) == 2, what="2 workers")
        assert not set(killed) & set(gateway.worker_pids())
    stored, found, not_final = stored_state(engine, final)
    unlinked, orphans = partial_records(engine)
    figures(
        capsys,
        f"sigkill/{dialect}",
        events_sent=len(deliveries),
        workers_killed=len(killed),
        stored=stored,
        connection_errors=tally.connection_errors,
        five_xx=tally.five_xx,
        codes=dict(sorted(tally.codes.items())),
        retried=tally.retried,
        partial=unlinked + orphans,
        not_final=len(not_final),
        seconds=round(seconds, 1),
    )
    assert len(killed) == KILLS
    assert all(landed)
    assert stored == len(deliveries)
    assert unlinked == 0 and orphans == 0
    assert found == GROUPS and not_final == []
