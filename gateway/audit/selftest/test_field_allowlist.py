"""Property: whatever a provider sends, only allowlisted fields with their expected values are kept.

For every supported event type of every registered provider, hypothesis plants
personal data in the free-text fields, then extra keys at random depths, card
numbers of every brand (bare, spaced, dashed, dotted, in text, as JSON
numbers, as keys, in arrays) and more personal data; the payload is signed the
way the provider signs it and posted to the real webhook route. Then:

- the records read back through the API equal what the allowlist schemas make
  of the payload without the noise (noise changes nothing that is kept);
- every stored field value fits its allowlisted shape;
- no planted value is in any row, in the database file (WAL included), in any
  log line (JSON, through the real redaction filter) or in any API answer.
"""

from __future__ import annotations

import io
import logging
import secrets
import string
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import make_url

from adapters.base import Adapter
from adapters.registry import adapter_classes
from gateway import create_app
from gateway.api import keys
from gateway.audit.allowlist import Allowlist, load
from gateway.audit.selftest.evidence import EVIDENCE
from gateway.audit.selftest.fixtures import audit_database_url, audit_examples  # noqa: F401
from gateway.audit.selftest.planting import Plants, noisy, personal_data, replace_free_text
from gateway.config.settings import Settings
from gateway.core import crypto, guard
from gateway.core.records import IDENTITY
from gateway.observability.logs import JsonFormatter, RedactingFilter
from gateway.storage.tables import events, metadata

ROUTES = {"transaction": "transactions", "payment_method": "payment-methods"}
ROUTES["subscription"] = "subscriptions"
SERVED_BOOKKEEPING = frozenset({"provider", "account", "created_at", "updated_at", "last_event_id"})


def _cases() -> list[tuple[str, str, dict[str, str]]]:
    cases = []
    for name, cls in sorted(adapter_classes().items()):
        adapter = cls(Settings())
        for event_type in adapter.supported_event_types():
            # One case per shape the provider sends the type in (PayPal: v1 and v2 resources).
            for variant in adapter.sample_variants(event_type):
                cases.append((name, event_type, variant))
    return cases


def _case_id(provider: str, event_type: str, variant: dict[str, str]) -> str:
    options = ",".join(f"{k}={v}" for k, v in sorted(variant.items()))
    return f"{provider}:{event_type}" + (f"[{options}]" if options else "")


CASES = _cases()
# One pair per process: the audit database outlives each test's app.
DATA_KEY = crypto.generate_key()
INDEX_KEY = crypto.generate_key()


@pytest.fixture(scope="session")
def audit_app(audit_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """Return a gateway with every registered provider enabled on the audit database."""
    var_dir = tmp_path_factory.mktemp("paysieve-audit-var")
    endpoints = []
    for name, cls in sorted(adapter_classes().items()):
        options = cls(Settings()).dev_options(var_dir)
        endpoints.append({"provider": name, "name": "default", **options})
    app = create_app(
        {
            "TESTING": True,
            "database_url": audit_database_url,
            "endpoints": endpoints,
            "rate_limit": "1000000 per minute",
            "data_keys": (DATA_KEY,),
            "index_key": INDEX_KEY,
        }
    )
    yield app
    app.extensions["paysieve.store"].engine.dispose()


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """Capture every log line as the production handler writes it: JSON, redacted."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def _api_key(engine: Engine) -> str:
    with engine.begin() as conn:
        key, _record = keys.create(conn, name="auditor self-test", scopes=["records:read"])
    return key


def _post(client: FlaskClient, adapter: Adapter, event: dict[str, Any]) -> Any:
    app = client.application
    settings: Settings = app.extensions["paysieve.settings"]
    endpoint = settings.endpoint(adapter.name, "default")
    assert endpoint is not None
    raw = orjson.dumps(event)
    # Letters only: a digit run in a generated id could look like a card number.
    event_id = str(
        event.get("id") or "evt" + "".join(secrets.choice(string.ascii_letters) for _ in range(14))
    )
    headers = adapter.sign(raw, endpoint, timestamp=int(time.time()), event_id=event_id)
    headers["Content-Type"] = "application/json"
    return client.post(f"/webhooks/{adapter.name}", data=raw, headers=headers)


def expected_records(
    adapter: Adapter, event: dict[str, Any]
) -> dict[tuple[str, str], dict[str, Any]]:
    """Return what the allowlist schemas and the guard keep of an event, merged per record."""
    kept, _hits = guard.check(adapter.sanitise(orjson.loads(orjson.dumps(event))).records)
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for record in kept:
        values = merged.setdefault((record.type, record.key), {})
        for name, value in record.values.items():
            if name in record.fill_only and name in values:
                continue
            values[name] = value
    return merged


def _same(served: Any, expected: Any) -> bool:
    if isinstance(served, dict):
        # A transaction serves its payment method as an object.
        served = served.get("token", served.get("id"))
    if isinstance(expected, datetime):
        return isinstance(served, str) and datetime.fromisoformat(served) == expected
    return bool(served == expected)


def _check_served(
    allowlist: Allowlist, record_type: str, body: dict[str, Any], expected: dict[str, Any]
) -> None:
    allowed = set(allowlist.records[record_type]) | SERVED_BOOKKEEPING
    extra = set(body) - allowed
    assert not extra, f"{record_type}: the API serves fields outside the allowlist: {sorted(extra)}"
    for name, value in expected.items():
        assert _same(body.get(name), value), f"{record_type}.{name}: served value differs"


_SINCE_COLUMNS = ("first_seen", "received_at", "updated_at", "at")


def _check_rows(allowlist: Allowlist, engine: Engine, needles: list[str], since: datetime) -> None:
    """Assert no needle is in a row written since a moment, and every field fits its shape."""
    found = False
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            query = select(table)
            stamp = next((table.c[n] for n in _SINCE_COLUMNS if n in table.c), None)
            if stamp is not None:
                query = query.where(stamp >= since)
            for row in conn.execute(query).mappings():
                text = repr(dict(row))
                found = found or any(needle in text for needle in needles)
                _check_shapes(allowlist, table.name, row)
    assert not found, "a planted value is in a database row"


def _check_shapes(allowlist: Allowlist, table: str, row: Any) -> None:
    for record_type, fields in allowlist.records.items():
        if allowlist.tables[record_type] != table:
            continue
        for name, entry in fields.items():
            value = row.get(name)
            if entry.sealed and isinstance(value, str) and value.startswith("v1."):
                continue
            assert entry.shape.accepts(value), (
                f"{table}.{name} holds a value outside shape {entry.shape.name}"
            )


def database_bytes(url: str) -> bytes:
    """Return a SQLite database's file bytes with its WAL and shared memory."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return b""
    chunks = []
    for suffix in ("", "-wal", "-shm", "-journal"):
        path = Path(parsed.database + suffix)
        if path.exists():
            chunks.append(path.read_bytes())
    return b"".join(chunks)


@st.composite
def deliveries(
    draw: st.DrawFn, adapter: Adapter, event_type: str, variant: dict[str, str]
) -> tuple[Plants, Any, Any]:
    """Draw (plants, payload without noise, payload with noise) for one event type."""
    rng = draw(st.randoms(use_true_random=False))
    plants = Plants()
    base = adapter.sample_event(event_type, **variant)
    replace_free_text(base, lambda: personal_data(rng), plants)
    return plants, base, noisy(rng, base, plants)


@pytest.mark.parametrize(
    ("provider", "event_type", "variant"), CASES, ids=[_case_id(*case) for case in CASES]
)
def test_only_allowlisted_fields_survive(
    provider: str,
    event_type: str,
    variant: dict[str, str],
    audit_app: Flask,
    audit_database_url: str,
    audit_examples: int,
    json_log: io.StringIO,
) -> None:
    allowlist = load()
    client = audit_app.test_client()
    adapter: Adapter = audit_app.extensions["paysieve.pipeline"].adapters[provider]
    engine: Engine = audit_app.extensions["paysieve.store"].engine
    auth = {"Authorization": f"Bearer {_api_key(engine)}"}
    started = datetime.now(UTC) - timedelta(seconds=1)
    needles: list[str] = []
    with engine.connect() as conn:
        after = conn.execute(select(func.coalesce(func.max(events.c.seq), 0))).scalar_one()
    EVIDENCE.providers.add(provider)
    EVIDENCE.event_types += 1

    @settings(
        max_examples=audit_examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(case=deliveries(adapter, event_type, variant))
    def deliver(case: tuple[Plants, Any, Any]) -> None:
        plants, base, event = case
        expected = expected_records(adapter, base)
        logged_before = len(json_log.getvalue())

        response = _post(client, adapter, event)
        answers = [response.get_data(as_text=True)]
        assert response.status_code == 200, answers[0]
        assert response.get_json()["status"] in ("stored", "ignored")
        for (record_type, key), values in expected.items():
            route = f"/v1/{ROUTES[record_type]}/{provider}/{key}"
            served = client.get(route, headers=auth)
            answers.append(served.get_data(as_text=True))
            assert served.status_code == 200, f"{record_type} {IDENTITY[record_type]} not served"
            _check_served(allowlist, record_type, served.get_json(), values)
        feed = client.get(f"/v1/events?after={after}&limit=500", headers=auth)
        answers.append(feed.get_data(as_text=True))

        logged = json_log.getvalue()[logged_before:]
        served_text = "\n".join(answers)
        for needle in plants.needles():
            hit = needle in logged or needle in served_text
            EVIDENCE.hits += int(hit)
            assert needle not in logged, "a planted value is in a log line"
            assert needle not in served_text, "a planted value is in an API answer"
        needles.extend(plants.needles())
        EVIDENCE.cases += 1
        EVIDENCE.deliveries += 1
        EVIDENCE.planted += len(plants.values) + len(plants.pans)
        EVIDENCE.planted_pans += len(plants.pans)

    try:
        deliver()
        # Rows and file bytes are searched once per event type, for everything planted in it.
        _check_rows(allowlist, engine, needles, started)
    finally:
        # The app outlives this test, its pooled connections must not: an open SQLite
        # connection keeps the WAL open, which changes what other tests' outages do.
        engine.dispose()
    EVIDENCE.places_checked.update({"database rows", "log lines", "API answers"})
    blob = database_bytes(audit_database_url)
    if make_url(audit_database_url).get_backend_name() == "sqlite":
        EVIDENCE.places_checked.add("database file and WAL")
    leaked = sum(needle.encode() in blob for needle in needles)
    EVIDENCE.hits += leaked
    assert not leaked, f"{leaked} planted value(s) are in the database file or WAL"
