"""/metrics under gunicorn: every worker's counts summed, whichever worker answers the scrape."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import requests
from sqlalchemy import Engine

from tests.support.processes import (
    GUNICORN,
    REPO,
    Delivery,
    Gunicorn,
    Tally,
    figures,
    free_port,
    lifecycle_events,
    running,
    send_all,
    signed_headers,
)

pytestmark = pytest.mark.slow

GROUPS = 30  # x 4 = 120 events
DUPLICATES = 40
BAD_SIGNATURES = 25


def counter(text: str, name: str, **labels: str) -> float:
    """Return the value of one labelled sample in a Prometheus text answer, 0 if absent."""
    for line in text.splitlines():
        match = re.match(rf"^{name}\{{([^}}]*)\}} (\S+)$", line)
        if match and dict(re.findall(r'(\w+)="([^"]*)"', match[1])) == labels:
            return float(match[2])
    return 0.0


def test_counts_are_summed_across_workers(
    database_url: str,
    engine: Engine,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    deliveries, _ = lifecycle_events(GROUPS, seed=3)
    gateway = Gunicorn(database_url, workers=3)
    with running(gateway, workdir=tmp_path):
        tally = Tally()
        plan = [(gateway.url, d) for d in deliveries + deliveries[:DUPLICATES]]
        assert all(send_all(plan, tally, concurrency=12))
        for number in range(BAD_SIGNATURES):
            body = Delivery(f"evt_bad{number}", b'{"id": "evt_bad"}').body
            headers = signed_headers(body, secret="whsec_not_the_configured_secret")
            answer = requests.post(
                f"{gateway.url}/webhooks/stripe", data=body, headers=headers, timeout=10
            )
            assert answer.status_code == 400
        # Several scrapes land on several workers; each must see the same totals.
        scrapes = [gateway.get("/metrics").text for _ in range(6)]
        files = sorted(p.name for p in (tmp_path / f"metrics-{gateway.port}").glob("counter_*.db"))
    labels = {"provider": "stripe", "endpoint": "default"}
    seen = [
        (
            counter(text, "paysieve_deliveries_total", **labels, outcome="stored"),
            counter(text, "paysieve_deliveries_total", **labels, outcome="duplicate"),
            counter(
                text,
                "paysieve_verification_failures_total",
                **labels,
                code="verification_failed",
                reason="bad_signature",
            ),
        )
        for text in scrapes
    ]
    figures(
        capsys,
        "metrics-multiprocess",
        workers=3,
        worker_files=len(files),
        stored=seen[0][0],
        duplicate=seen[0][1],
        bad_signature=seen[0][2],
    )
    assert len(files) >= 2, "the load should have reached more than one worker"
    assert set(seen) == {(len(deliveries), DUPLICATES, BAD_SIGNATURES)}


def test_start_removes_only_metric_files(database_url: str, engine: Engine, tmp_path: Path) -> None:
    # The metrics directory is emptied of prometheus-client's files at start, and of
    # nothing else: an operator's file there (a database, a backup) survives.
    instance = Gunicorn(database_url, workers=1)
    metrics = tmp_path / f"metrics-{instance.port}"
    metrics.mkdir()
    stale = [metrics / "counter_123.db", metrics / "gauge_livesum_9.db", metrics / "histogram_4.db"]
    kept = [metrics / "paysieve-backup.db", metrics / "notes.db"]
    for path in [*stale, *kept]:
        path.write_bytes(b"x")
    with running(instance, workdir=tmp_path):
        assert not any(path.exists() for path in stale)
        assert all(path.read_bytes() == b"x" for path in kept)


def test_a_sqlite_database_in_the_metrics_directory_stops_the_master(tmp_path: Path) -> None:
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    database = metrics / "paysieve.db"
    database.write_bytes(b"data")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PAYSIEVE_", "PROMETHEUS_", "GUNICORN_"))
    }
    (tmp_path / "empty.toml").write_text("")
    env.update(
        PAYSIEVE_CONFIG=str(tmp_path / "empty.toml"),
        PAYSIEVE_DATABASE_URL=f"sqlite:///{database}",
        PROMETHEUS_MULTIPROC_DIR=str(metrics),
        PORT=str(free_port()),
    )
    done = subprocess.run(  # noqa: S603 - our own server
        [str(GUNICORN), "-c", str(REPO / "gunicorn.conf.py"), "gateway:create_app()"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode != 0
    refusal = [line for line in done.stderr.splitlines() if line.startswith("paysieve:")]
    assert len(refusal) == 1 and "PROMETHEUS_MULTIPROC_DIR" in refusal[0]
    assert "Traceback" not in done.stderr
    assert database.read_bytes() == b"data"
