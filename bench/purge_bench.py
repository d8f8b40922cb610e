"""Time `paysieve purge` over a million expired rows on SQLite or PostgreSQL.

    .venv/bin/python -m bench.purge_bench                       # SQLite, temporary file
    .venv/bin/python -m bench.purge_bench --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres

On PostgreSQL a scratch database is created on that server and dropped afterwards.
Rows are bulk-loaded (executemany on SQLite, COPY on PostgreSQL) as expired
transactions with a sealed customer, half of them with a change-feed event, then
purged in keyset batches exactly as the command does it.
"""

from __future__ import annotations

import argparse
import resource
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from bench.scratch import scratch_database
from gateway.config.settings import Settings
from gateway.core.crypto import aad, cipher_from_settings, generate_key
from gateway.privacy.retention import purge
from gateway.storage.engine import make_engine
from gateway.storage.migrate import upgrade
from gateway.storage.store import Store
from gateway.storage.tables import events, transactions

CHUNK = 50_000


def load(store: Store, rows: int, at: datetime) -> float:
    """Bulk-load expired transactions and events; return the seconds it took."""
    cipher = store.cipher
    started = time.perf_counter()
    customer = "cus_bench"
    bidx = cipher.bidx("customer", customer)
    for start in range(0, rows, CHUNK):
        batch = [
            {
                "provider": "stripe",
                "account": "default",
                "created_at": at,
                "updated_at": at,
                "last_event_id": f"evt_{n}",
                "last_event_at": at,
                "id": f"ch_{n}",
                "kind": "payment",
                "status": "succeeded",
                "amount": 1000,
                "currency": "EUR",
                "customer": cipher.seal(
                    customer, aad("transactions", "customer", "stripe", "default", f"ch_{n}")
                ),
                "customer_bidx": bidx,
            }
            for n in range(start, min(rows, start + CHUNK))
        ]
        event_batch = [
            {
                "provider": "stripe",
                "account": "default",
                "id": f"evt_{n}",
                "type": "charge.succeeded",
                "occurred_at": at,
                "received_at": at,
                "outcome": "stored",
                "dropped_fields": 0,
            }
            for n in range(start, min(rows, start + CHUNK), 2)
        ]
        with store.engine.begin() as conn:
            conn.execute(transactions.insert(), batch)
            conn.execute(events.insert(), event_batch)
    return time.perf_counter() - started


def main() -> None:
    """Load, purge, and print the rates."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=5000)
    args = parser.parse_args()
    now = datetime.now(UTC)
    expired = now - timedelta(days=8 * 365)
    with scratch_database(args.database_url) as url:
        engine = make_engine(url)
        upgrade(engine)
        cipher = cipher_from_settings((generate_key(),), "", generate_key())
        store = Store(engine, cipher)
        loaded = load(store, args.rows, expired)
        with engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(transactions)).scalar_one()
            total += conn.execute(select(func.count()).select_from(events)).scalar_one()
        print(f"{engine.dialect.name}: loaded {total} expired rows in {loaded:.1f} s")
        settings = replace(Settings(), database_url=url)
        # Peak RSS so far is the load's; any growth beyond it would be the purge's.
        peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        started = time.perf_counter()
        result = purge(store, settings, now=now, batch_size=args.batch_size)
        took = time.perf_counter() - started
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - peak_before
        print(
            f"{engine.dialect.name}: purged {result.total} rows ({result.counts}) in {took:.1f} s"
            f" = {result.total / took:,.0f} rows/s, batch {args.batch_size},"
            f" peak RSS {peak_mib:.0f} MiB (purge added {growth:.0f} MiB)"
        )
        engine.dispose()


if __name__ == "__main__":
    main()
