"""Two gunicorn instances on one PostgreSQL: every event stored once, every record final."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine

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

GROUPS = 500  # x 4 lifecycle steps = 2,000 distinct events
COPIES = 3


def test_two_instances_store_each_of_2000_events_once(
    database_url: str,
    engine: Engine,
    dialect: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if dialect != "postgresql":
        pytest.skip(
            "scale-out is several gateways sharing one PostgreSQL; this run is on SQLite "
            "(CI runs the suite on PostgreSQL too, where this test runs)"
        )
    deliveries, final = lifecycle_events(GROUPS)
    instances = (Gunicorn(database_url, workers=2), Gunicorn(database_url, workers=2))
    with running(*instances, workdir=tmp_path):
        urls = [instance.url for instance in instances]
        # Every event reaches both instances, in an order unrelated to its lifecycle.
        plan = [
            (urls[(index + copy) % 2], delivery)
            for index, delivery in enumerate(deliveries)
            for copy in range(COPIES)
        ]
        random.Random(2000).shuffle(plan)
        tally = Tally()
        started = time.perf_counter()
        landed = send_all(plan, tally, concurrency=16)
        seconds = time.perf_counter() - started
    stored, found, not_final = stored_state(engine, final)
    figures(
        capsys,
        "scale-out",
        instances=2,
        events_sent=len(deliveries),
        deliveries=len(plan),
        stored=stored,
        answered_stored=tally.statuses["stored"],
        duplicates=tally.statuses["duplicate"],
        five_xx=tally.five_xx,
        retried=tally.retried,
        not_final=len(not_final),
        seconds=round(seconds, 1),
        per_second=round(len(plan) / seconds),
    )
    assert all(landed)
    assert tally.five_xx == 0 and tally.connection_errors == 0
    assert stored == len(deliveries) == GROUPS * 4
    assert tally.statuses["stored"] == len(deliveries)
    assert tally.statuses["duplicate"] == len(deliveries) * (COPIES - 1)
    assert found == GROUPS
    assert not_final == []
