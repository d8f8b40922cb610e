"""Outbound webhooks: deliveries per second to a local HTTPS receiver, and the delivery lag.

    .venv/bin/python -m bench.outbound_bench                  # SQLite, temporary file
    .venv/bin/python -m bench.outbound_bench --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres

Throughput: --changes changes are committed first, then one sender (gateway.outbound)
drains the outbox into a receiver on loopback (TLS, its own test CA) and is timed.
Lag: changes are committed at --rate per second while the sender runs; the lag of
each is its delivery's 2xx time minus its commit time (delivered_at - created_at).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bench.scratch import scratch_database
from gateway.config.settings import Settings, allowed_networks
from gateway.core.crypto import cipher_from_settings, generate_key
from gateway.core.records import EventMeta, Record
from gateway.outbound import subscribers
from gateway.outbound.addresses import system_resolver
from gateway.outbound.dispatcher import Dispatcher
from gateway.storage.engine import make_engine
from gateway.storage.migrate import upgrade
from gateway.storage.store import Store
from gateway.storage.tables import outbound_deliveries

# The receiver the test suite uses: a real HTTPS server thread on 127.0.0.1.
from tests.support.receiver import https_receiver

T0 = datetime(2026, 3, 2, 14, 0, 0, tzinfo=UTC)


def _apply(store: Store, n: int, records: int) -> None:
    store.apply(
        provider="stripe",
        account="default",
        meta=EventMeta(id=f"evt_{n}", type="charge.updated", occurred_at=T0 + timedelta(seconds=n)),
        records=[Record("transaction", {"id": f"ch_{n % records}", "status": "succeeded"})],
        outcome="stored",
        dropped_fields=0,
    )


def _delivered(store: Store) -> list[tuple[datetime, datetime]]:
    d = outbound_deliveries
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(d.c.created_at, d.c.delivered_at).where(d.c.state == "delivered")
        ).all()
    return [(r.created_at, r.delivered_at) for r in rows]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(url: str | None, changes: int, rate: float, seconds: float) -> dict[str, Any]:
    """Return the throughput and lag figures on one database."""
    with scratch_database(url) as database_url, tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(database_url)
        upgrade(engine)
        store = Store(engine, cipher_from_settings([generate_key()], "", generate_key()))
        with https_receiver(Path(tmp)) as receiver:
            settings = dataclasses.replace(
                Settings(),
                outbound_allow_networks=("127.0.0.0/8",),
                outbound_ca_bundle=receiver.ca_bundle,
            )
            with store.writing() as conn:
                subscribers.add(
                    conn,
                    store.cipher,
                    name="bench",
                    url=receiver.url(),
                    event_types=(),
                    accounts=(),
                    networks=allowed_networks(settings),
                    resolver=system_resolver,
                )
            store.outbox.invalidate()
            records = max(1, changes // 10)
            for n in range(changes):
                _apply(store, n, records)
            sender = Dispatcher(store, settings, batch=64)
            started = time.perf_counter()
            while sender.run_once():
                pass
            drained = time.perf_counter() - started
            sent = len(receiver.received)
            # Lag: changes committed at a steady rate while a sender runs.
            stop = threading.Event()
            thread = sender.start(stop)
            before = len(_delivered(store))
            n = changes
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                _apply(store, n, 1_000_000)
                n += 1
                time.sleep(1 / rate)
            deadline = time.perf_counter() + 30
            while len(_delivered(store)) < n and time.perf_counter() < deadline:
                time.sleep(0.05)
            stop.set()
            thread.join(timeout=30)
        lags = [(b - a).total_seconds() * 1000 for a, b in _delivered(store)[before:]]
        engine.dispose()
    return {
        "database": "sqlite" if url is None or url.startswith("sqlite") else "postgresql",
        "changes": changes,
        "delivered": sent,
        "deliveries_per_second": round(sent / drained, 1),
        "lag_rate_per_second": rate,
        "lag_samples": len(lags),
        "lag_p50_ms": round(statistics.median(lags), 1) if lags else None,
        "lag_p99_ms": round(_percentile(lags, 0.99), 1) if lags else None,
    }


def main() -> None:
    """Parse options, run, print the figures (and one BENCH_OUTBOUND json line)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--changes", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=20.0, help="changes per second for lag")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long the lag run lasts")
    args = parser.parse_args()
    figures = run(args.database_url, args.changes, args.rate, args.seconds)
    print(
        f"outbound {figures['database']}: {figures['deliveries_per_second']} deliveries/s;"
        f" lag p50 {figures['lag_p50_ms']} ms, p99 {figures['lag_p99_ms']} ms"
        f" ({figures['lag_samples']} changes at {args.rate}/s)"
    )
    print("BENCH_OUTBOUND " + json.dumps(figures))


if __name__ == "__main__":
    main()
