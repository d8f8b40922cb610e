"""Time `paysieve backfill` of Stripe events from a mocked event list, on SQLite or PostgreSQL.

    .venv/bin/python -m bench.backfill_bench --events 2000
    .venv/bin/python -m bench.backfill_bench --events 2000 --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres

Stripe's API is answered locally (responses), 100 events a page, so the time is the
gateway's own: the pipeline, the group commit and the checkpoint after each page.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta

import responses

from adapters.registry import adapter_classes
from adapters.stripe.api import EVENTS_PATH
from bench.scratch import scratch_database
from gateway import create_app
from gateway.config.settings import Settings
from gateway.core.crypto import generate_key
from gateway.ingest.backfill import Backfill, endpoint_for, source_for
from gateway.storage.engine import make_engine
from gateway.storage.migrate import upgrade

TYPES = (
    "charge.succeeded",
    "payment_intent.succeeded",
    "payment_method.attached",
    "customer.subscription.updated",
)


def main() -> None:
    """Backfill the events once and print the rate."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    stripe = adapter_classes()["stripe"](Settings())
    events = [stripe.sample_event(TYPES[n % len(TYPES)]) for n in range(args.events)]
    pages = [events[n : n + 100] for n in range(0, len(events), 100)]
    now = datetime.now(UTC).replace(microsecond=0)
    with scratch_database(args.database_url) as url:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        endpoint = {
            "provider": "stripe",
            "webhook_secrets": ["whsec_bench"],
            "api_key": "rk_test_bench",
        }
        app = create_app(
            {
                "TESTING": True,
                "database_url": url,
                "endpoints": [endpoint],
                "data_keys": (generate_key(),),
                "index_key": generate_key(),
            }
        )
        pipeline = app.extensions["paysieve.pipeline"]
        settings = app.extensions["paysieve.settings"]
        config = endpoint_for(settings, "stripe", "default")
        adapter = pipeline.adapters["stripe"]
        with responses.RequestsMock() as servers:
            for n, page in enumerate(pages):
                answer = {"object": "list", "has_more": n < len(pages) - 1, "data": page}
                servers.get("https://api.stripe.com" + EVENTS_PATH, json=answer)
            run = Backfill(
                pipeline,
                adapter,
                config,
                source_for(settings, config, adapter),
                since=now - timedelta(days=1),
                until=now + timedelta(minutes=5),
            )
            started = time.perf_counter()
            report = run.run()
            elapsed = time.perf_counter() - started
        pipeline.store.engine.dispose()
    backend = url.split(":", 1)[0]
    stored = report.counts["stored"]
    print(f"{backend}: {stored} events stored in {elapsed:.2f} s ({stored / elapsed:.0f}/s)")


if __name__ == "__main__":
    main()
