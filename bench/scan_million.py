"""Bulk-load a million transaction rows and time `paysieve audit`'s database scan.

    .venv/bin/python -m bench.scan_million                      # SQLite, temporary file
    .venv/bin/python -m bench.scan_million --url postgresql+psycopg://postgres@127.0.0.1:5432/postgres

On PostgreSQL a scratch database is created and dropped. Rows look like real
ones: provider ids, sealed (encrypted) references with their blind indexes,
statuses, amounts and timestamps; the load uses executemany (SQLite) or COPY
(PostgreSQL) so it takes seconds, not minutes.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from itertools import chain
from typing import Any

from sqlalchemy import create_engine

from bench.scratch import scratch_database
from gateway.audit import allowlist, scan
from gateway.core.crypto import bidx_column
from gateway.storage.engine import make_engine
from gateway.storage.migrate import upgrade
from gateway.storage.tables import transactions

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _id(length: int = 24) -> str:
    # Provider ids are random base62, like Stripe's.
    return "".join(secrets.choice(_BASE62) for _ in range(length))


def _sealed() -> str:
    return "v1.1a2b3c4d." + base64.urlsafe_b64encode(os.urandom(60)).decode().rstrip("=")


def rows(count: int) -> Iterator[dict[str, object]]:
    """Yield transaction rows shaped like stored ones, by column name."""
    now = datetime.now(UTC).replace(tzinfo=None)
    stamp = now.isoformat(sep=" ")
    sealed = [_sealed() for _ in range(1000)]
    ids = [_id() for _ in range(5000)]
    for n in range(count):
        suffix = ids[n % 5000]
        yield {
            "provider": "stripe",
            "account": "default",
            "created_at": stamp,
            "updated_at": stamp,
            "last_event_id": f"evt_{suffix}",
            "last_event_at": stamp,
            "id": f"ch_{suffix}{n:07d}",
            "kind": "payment",
            "status": "succeeded",
            "provider_status": "succeeded",
            "amount": 4999 + n % 1000,
            "currency": "USD",
            "customer": sealed[n % 1000],
            bidx_column("customer"): secrets.token_hex(16),
            "payment_intent": f"pi_{suffix}",
            "charge": f"ch_{suffix}{n:07d}",
            "invoice": f"in_{suffix}",
            "payment_method": sealed[(n * 7) % 1000],
            bidx_column("payment_method"): secrets.token_hex(16),
        }


def columns_of(row: Mapping[str, object]) -> list[str]:
    """Return the transactions table's columns a row fills, in the table's order."""
    unknown = sorted(set(row) - set(transactions.c.keys()))
    if unknown:
        raise ValueError(f"not columns of transactions: {unknown}")
    return [column.name for column in transactions.c if column.name in row]


def load(url: str, count: int) -> None:
    """Insert count transaction rows as fast as the driver allows."""
    # Not make_engine: its PostgreSQL statement timeout (10 s) would cancel the COPY.
    engine = create_engine(url)
    generated = rows(count)
    first = next(generated)
    names = columns_of(first)
    values = (tuple(row[name] for name in names) for row in chain([first], generated))
    columns = ", ".join(f'"{name}"' for name in names)
    started = time.perf_counter()
    with engine.begin() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        cursor: Any = raw.cursor()
        if engine.dialect.name == "postgresql":
            with cursor.copy(f"COPY transactions ({columns}) FROM STDIN") as copy:
                for row in values:
                    copy.write_row(row)
        else:
            marks = ", ".join("?" for _ in names)
            insert = f"INSERT INTO transactions ({columns}) VALUES ({marks})"  # noqa: S608
            batch: list[tuple[object, ...]] = []
            for row in values:
                batch.append(row)
                if len(batch) == 50_000:
                    cursor.executemany(insert, batch)
                    batch.clear()
            if batch:
                cursor.executemany(insert, batch)
    print(f"loaded {count:,} rows in {time.perf_counter() - started:.1f}s")
    engine.dispose()


def measure(url: str, batch_size: int) -> None:
    """Run the scan and print its rate."""
    engine = make_engine(url)
    result = scan.scan(engine, allowlist.load(), batch_size=batch_size)
    engine.dispose()
    print(
        f"scanned {result.rows:,} rows ({result.values:,} values) in {result.seconds:.1f}s: "
        f"{result.rate:,.0f} rows/s; findings: {len(result.findings)}"
    )


def main() -> None:
    """Load a million rows into a scratch database and time the scan."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="PostgreSQL server URL (default: a temporary SQLite file)")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=scan.DEFAULT_BATCH)
    args = parser.parse_args()
    with scratch_database(args.url) as url:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        load(url, args.rows)
        measure(url, args.batch_size)


if __name__ == "__main__":
    main()
