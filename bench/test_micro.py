"""Where one delivery's time goes: verify, parse, sanitise, guard, trail and store, per provider.

Run by ``make bench`` (pytest-benchmark); not part of ``make test``.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from adapters.base import Adapter
from gateway.app import build_adapters
from gateway.cli import devconfig
from gateway.config.settings import EndpointConfig, Settings, load_settings
from gateway.core import guard
from gateway.core.crypto import cipher_from_settings
from gateway.storage.engine import make_engine
from gateway.storage.migrate import upgrade
from gateway.storage.store import Store
from gateway.storage.trail import Trail

EVENTS = {
    "stripe": "charge.succeeded",
    "razorpay": "payment.captured",
    "paypal": "PAYMENT.CAPTURE.COMPLETED",
}


@pytest.fixture(scope="module")
def settings() -> Iterator[Settings]:
    """Return settings with every provider enabled, on a scratch SQLite database."""
    workdir = Path(tempfile.mkdtemp(prefix="paysieve-micro-"))
    config = workdir / "paysieve.toml"
    devconfig.write_config(config, database_url=f"sqlite:///{workdir / 'micro.db'}")
    settings = load_settings({"PAYSIEVE_CONFIG": str(config)})
    engine = make_engine(settings.database_url)
    upgrade(engine)
    engine.dispose()
    yield settings


class Delivery:
    """One provider's signed sample delivery and the objects that process it."""

    def __init__(self, settings: Settings, provider: str) -> None:
        self.adapter: Adapter = build_adapters(settings)[provider]
        endpoint = settings.endpoint(provider, "default")
        assert endpoint is not None
        self.endpoint: EndpointConfig = endpoint
        self.event = self.adapter.sample_event(EVENTS[provider])
        self.raw = orjson.dumps(self.event)
        event_id = str(self.event.get("id") or "evt_micro")
        self.headers = self.adapter.sign(
            self.raw, endpoint, timestamp=int(time.time()), event_id=event_id
        )
        self.headers["X-Razorpay-Event-Id"] = event_id
        self.parsed = self.adapter.parse(self.raw)
        self.sanitised = self.adapter.sanitise(self.parsed)


@pytest.fixture(scope="module", params=sorted(EVENTS))
def delivery(request: pytest.FixtureRequest, settings: Settings) -> Delivery:
    """Return a prepared delivery for each provider."""
    return Delivery(settings, request.param)


def test_verify(benchmark: Any, delivery: Delivery) -> None:
    benchmark(delivery.adapter.verify, delivery.raw, delivery.headers, delivery.endpoint)


def test_parse(benchmark: Any, delivery: Delivery) -> None:
    benchmark(delivery.adapter.parse, delivery.raw)


def test_sanitise(benchmark: Any, delivery: Delivery) -> None:
    benchmark(delivery.adapter.sanitise, delivery.parsed)


def test_guard(benchmark: Any, delivery: Delivery) -> None:
    benchmark(guard.check, delivery.sanitised.records)


def test_trail(benchmark: Any, delivery: Delivery) -> None:
    adapter = delivery.adapter
    trail = Trail({adapter.name: {f for s in adapter.schemas().values() for f in s.fields}})
    records, hits = guard.check(delivery.sanitised.records)
    meta = adapter.meta(delivery.parsed, delivery.headers)
    benchmark(trail.observe, adapter.name, meta.type, delivery.parsed, records, hits)


def test_store(benchmark: Any, delivery: Delivery, settings: Settings) -> None:
    engine = make_engine(settings.database_url)
    cipher = cipher_from_settings(settings.data_keys, settings.data_keys_file, settings.index_key)
    store = Store(engine, cipher)
    meta = delivery.adapter.meta(delivery.parsed, delivery.headers)
    counter = iter(range(10**9))

    def apply() -> str:
        meta.id = f"evt_micro_{next(counter)}"
        return store.apply(
            provider=delivery.adapter.name,
            account="default",
            meta=meta,
            records=delivery.sanitised.records,
            outcome="stored",
            dropped_fields=0,
        )

    benchmark(apply)
    engine.dispose()
