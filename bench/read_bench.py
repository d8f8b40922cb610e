"""Read API at scale: page latency must not grow with position.

    .venv/bin/python -m bench.read_bench                    # SQLite, temporary file, 1M rows
    .venv/bin/python -m bench.read_bench --url postgresql+psycopg://postgres@127.0.0.1:5432/postgres

Loads a million transactions (real sealed customer references, 1,000 customers),
then times through the app: the first page, a page near the end (a cursor a few
pages before the last row), and the first and a late page filtered by customer.

It also times the first 100-record page through the app side by side with the same
SELECT run bare on the app's engine and its rows dumped with orjson, in alternation in
this process (the machine's drift reaches both alike): ``api_page_over_bare`` is their
ratio of medians. ``one_record_page_ms`` is a one-record page through the app: what a
read costs whatever its size (authentication, the audit entry's commit, Flask).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, func, select, text

from bench.scratch import scratch_database
from gateway.api import keys
from gateway.api.cursors import cursor_scope, encode_cursor
from gateway.api.records import COLLECTIONS, select_rows
from gateway.app import create_app
from gateway.cli import devconfig
from gateway.config.settings import load_settings
from gateway.core.crypto import cipher_from_settings
from gateway.storage.engine import make_engine
from gateway.storage.migrate import upgrade
from gateway.storage.tables import transactions

CUSTOMERS = 1000


def load(url: str, config: Path, count: int) -> None:
    """Insert count sealed transaction rows in large batches."""
    settings = load_settings({"PAYSIEVE_CONFIG": str(config)})
    cipher = cipher_from_settings(settings.data_keys, settings.data_keys_file, settings.index_key)
    now = datetime.now(UTC)
    engine = create_engine(url)
    started = time.perf_counter()
    batch: list[dict[str, Any]] = []
    with engine.begin() as conn:
        for n in range(count):
            values = {
                "provider": "stripe",
                "account": "default",
                "id": f"ch_read{n:010d}",
                "kind": "payment",
                "status": "succeeded",
                "provider_status": "succeeded",
                "amount": 1000 + n % 5000,
                "currency": "USD",
                "customer": f"cus_read{n % CUSTOMERS:05d}",
                "created_at": now,
                "updated_at": now,
                "last_event_id": f"evt_read{n:010d}",
                "last_event_at": now,
            }
            batch.append(cipher.seal_row("transactions", values))
            if len(batch) == 20_000:
                conn.execute(transactions.insert(), batch)
                batch.clear()
        if batch:
            conn.execute(transactions.insert(), batch)
    print(f"loaded {count:,} transactions in {time.perf_counter() - started:.1f}s")
    engine.dispose()


def timed(client: Any, path: str, headers: dict[str, str], repeats: int) -> float:
    """Return the median latency in ms of repeated GETs (after one warm-up)."""
    assert client.get(path, headers=headers).status_code == 200, path
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        response = client.get(path, headers=headers)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    return statistics.median(samples)


def side_by_side(
    client: Any, headers: dict[str, str], engine: Engine, repeats: int
) -> dict[str, float]:
    """Time the first 100-record page through the app and bare, alternating; return medians."""
    collection = next(c for c in COLLECTIONS if c.path == "transactions")
    query = select_rows(collection).order_by(collection.table.c.pk).limit(101)

    def api() -> None:
        response = client.get("/v1/transactions?limit=100", headers=headers)
        assert response.status_code == 200

    def bare() -> None:
        # The same statement the app runs, its rows as dicts and dumped as the app dumps a page.
        with engine.connect() as conn:
            rows = [dict(row._mapping) for row in conn.execute(query)]
        orjson.dumps({"data": rows[:100], "next_cursor": None}, option=orjson.OPT_NON_STR_KEYS)

    sides: dict[str, tuple[Callable[[], None], list[float]]] = {
        "api": (api, []),
        "bare": (bare, []),
    }
    for run, _ in sides.values():
        run()
    for n in range(repeats):
        # Each side goes first every other round, so neither always follows the other.
        order = list(sides.values()) if n % 2 else list(sides.values())[::-1]
        for run, samples in order:
            started = time.perf_counter()
            run()
            samples.append((time.perf_counter() - started) * 1000)
    api_ms = statistics.median(sides["api"][1])
    bare_ms = statistics.median(sides["bare"][1])
    return {
        "api_page_ms": round(api_ms, 3),
        "bare_page_ms": round(bare_ms, 3),
        "api_page_over_bare": round(api_ms / bare_ms, 2),
    }


def main() -> None:
    """Load, then time pages at the start and at the end of the list."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default=None, help="PostgreSQL server URL (default: SQLite)")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    with scratch_database(args.url) as url:
        workdir = Path(tempfile.mkdtemp(prefix="paysieve-read-config-"))
        config = workdir / "paysieve.toml"
        devconfig.write_config(config, database_url=url)
        engine = make_engine(url)
        upgrade(engine)
        load(url, config, args.rows)
        with engine.begin() as conn:
            key, _ = keys.create(conn, name="bench", scopes=["records:read"])
            last_pk = int(conn.execute(select(func.max(transactions.c.pk))).scalar_one())
        if engine.dialect.name == "postgresql":
            with engine.connect() as conn:
                conn.execute(text("COMMIT"))
                conn.execute(text("ANALYZE transactions"))
        engine.dispose()
        os.environ["PAYSIEVE_CONFIG"] = str(config)
        app = create_app({"TESTING": True})
        client = app.test_client()
        headers = {"Authorization": f"Bearer {key}"}
        customer = "cus_read00042"
        near_end = encode_cursor(last_pk - 250, cursor_scope("transactions", {}))
        # Three pages before the customer's last page: the customer has one row in CUSTOMERS.
        late_pk = max(0, last_pk - 3 * 100 * CUSTOMERS)
        late_customer = encode_cursor(late_pk, cursor_scope("transactions", {"customer": customer}))
        figures = {
            "rows": args.rows,
            "database": engine.dialect.name,
            "first_page_ms": timed(client, "/v1/transactions?limit=100", headers, args.repeats),
            "near_end_page_ms": timed(
                client, f"/v1/transactions?limit=100&cursor={near_end}", headers, args.repeats
            ),
            "customer_first_page_ms": timed(
                client, f"/v1/transactions?limit=100&customer={customer}", headers, args.repeats
            ),
            "customer_late_page_ms": timed(
                client,
                f"/v1/transactions?limit=100&customer={customer}&cursor={late_customer}",
                headers,
                args.repeats,
            ),
        }
        figures["near_end_vs_first"] = round(
            figures["near_end_page_ms"] / figures["first_page_ms"], 2
        )
        store = app.extensions["paysieve.store"]
        figures |= side_by_side(client, headers, store.engine, max(args.repeats, 60))
        figures["one_record_page_ms"] = timed(
            client, "/v1/transactions?limit=1", headers, args.repeats
        )
        store.engine.dispose()
    if args.json:
        print("BENCH_READ " + json.dumps(figures))
    else:
        for name, value in figures.items():
            print(f"{name}: {value:.2f}" if isinstance(value, float) else f"{name}: {value}")


if __name__ == "__main__":
    main()
