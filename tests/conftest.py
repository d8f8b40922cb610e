"""Shared fixtures: one suite over SQLite or PostgreSQL, chosen by PAYSIEVE_TEST_DATABASE_URL."""

from __future__ import annotations

import os
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.engine import make_url

from adapters.registry import adapter_classes
from gateway import create_app
from gateway.crypto import SEALED, Cipher, cipher_from_settings
from gateway.db import metadata
from gateway.migrate import upgrade
from gateway.privacy import open_object_id
from gateway.settings import Settings
from gateway.store import make_engine

STRIPE_SECRET = "whsec_test_" + "a" * 32
STRIPE_OLD_SECRET = "whsec_test_" + "b" * 32
# Fixed test keys for encryption at rest (32 bytes, base64url): never used outside tests.
TEST_DATA_KEY = "dGVzdC1kYXRhLWtleS0wMDAwMDAwMDAwMDAwMDAwMDA"
TEST_INDEX_KEY = "dGVzdC1pbmRleC1rZXktMDAwMDAwMDAwMDAwMDAwMDA"

# Settings must come from the test, never from a developer's config or environment.
for _name in [
    n for n in os.environ if n.startswith("PAYSIEVE_") and n != "PAYSIEVE_TEST_DATABASE_URL"
]:
    del os.environ[_name]
_EMPTY_CONFIG = Path(tempfile.mkdtemp(prefix="paysieve-test-config-")) / "empty.toml"
_EMPTY_CONFIG.write_text("# tests configure everything through create_app(test_config)\n")
os.environ["PAYSIEVE_CONFIG"] = str(_EMPTY_CONFIG)


def _requested_url() -> str | None:
    return os.environ.get("PAYSIEVE_TEST_DATABASE_URL") or None


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Return a migrated, empty database for this test session.

    With a PostgreSQL URL a fresh database is created on that server (so
    concurrent runs never share tables) and dropped afterwards.
    """
    requested = _requested_url()
    if requested is None or requested.startswith("sqlite"):
        path = tmp_path_factory.mktemp("db") / "paysieve.db"
        url = f"sqlite:///{path}"
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
        return
    server = make_url(requested)
    name = f"paysieve_test_{secrets.token_hex(4)}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - reported below with the reason
        admin.dispose()
        # Asked for PostgreSQL and cannot have it: fail the run, never skip it green.
        pytest.exit(
            f"PAYSIEVE_TEST_DATABASE_URL names a PostgreSQL that is unreachable"
            f" ({server.render_as_string()}: {type(exc).__name__}); start it or unset the variable",
            3,
        )
    url = server.set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def dialect(database_url: str) -> str:
    """Return the backend the suite runs on: sqlite or postgresql."""
    return make_url(database_url).get_backend_name()


def _truncate(engine: Engine) -> None:
    tables = [t.name for t in reversed(metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            quoted = ", ".join(f'"{t}"' for t in tables)
            conn.execute(text(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(text(f'DELETE FROM "{table}"'))  # noqa: S608 - our table names


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """Return an engine on the session database, emptied before the test."""
    engine = make_engine(database_url)
    _truncate(engine)
    yield engine
    engine.dispose()


def stripe_endpoint(
    name: str = "default", secrets_: tuple[str, ...] = (STRIPE_SECRET,)
) -> dict[str, Any]:
    """Return a Stripe endpoint table as the TOML file would give it."""
    return {"provider": "stripe", "name": name, "webhook_secrets": list(secrets_)}


@pytest.fixture
def make_app(engine: Engine, database_url: str) -> Iterator[Callable[..., Flask]]:
    """Return a factory of test apps on the session database."""
    apps: list[Flask] = []

    def factory(**overrides: Any) -> Flask:
        config: dict[str, Any] = {
            "TESTING": True,
            "database_url": database_url,
            "endpoints": [stripe_endpoint()],
            "data_keys": (TEST_DATA_KEY,),
            "index_key": TEST_INDEX_KEY,
        }
        config.update(overrides)
        app = create_app(config)
        apps.append(app)
        return app

    yield factory
    for app in apps:
        app.extensions["paysieve.store"].engine.dispose()


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    """Return a gateway with a Stripe endpoint on the test database."""
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """Return a test client of the default app."""
    return app.test_client()


def signed_post(
    client: FlaskClient,
    provider: str,
    event: dict[str, Any] | bytes,
    *,
    endpoint: str = "default",
    event_id: str | None = None,
    timestamp: int | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    """Post an event signed the way its provider signs it, with the app's own secrets."""
    app = client.application
    settings: Settings = app.extensions["paysieve.settings"]
    adapter = app.extensions["paysieve.pipeline"].adapters[provider]
    config = settings.endpoint(provider, endpoint)
    assert config is not None
    raw = event if isinstance(event, bytes) else orjson.dumps(event)
    if event_id is None:
        event_id = str(event.get("id")) if isinstance(event, dict) else "evt_raw"
    sent = adapter.sign(raw, config, timestamp=timestamp or int(time.time()), event_id=event_id)
    sent["Content-Type"] = "application/json"
    sent.update(headers or {})
    path = f"/webhooks/{provider}" + ("" if endpoint == "default" else f"/{endpoint}")
    return client.post(path, data=raw, headers=sent)


def sample(provider: str, event_type: str, **kwargs: Any) -> dict[str, Any]:
    """Return the adapter's realistic sample event of a type."""
    return adapter_classes()[provider](Settings()).sample_event(event_type, **kwargs)


def all_rows(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Return every row of every table, as dicts."""
    with engine.connect() as conn:
        return {
            table.name: [dict(row._mapping) for row in conn.execute(select(table))]
            for table in metadata.sorted_tables
        }


def make_cipher(*data_keys: str) -> Cipher:
    """Return the cipher test apps use (or one with other data keys)."""
    return cipher_from_settings(data_keys or (TEST_DATA_KEY,), "", TEST_INDEX_KEY)


def plain_rows(engine: Engine, cipher: Cipher | None = None) -> dict[str, list[dict[str, Any]]]:
    """Return every row of every table with sealed columns decrypted and blind indexes dropped."""
    cipher = cipher or make_cipher()
    rows = all_rows(engine)
    for table in SEALED:
        rows[table] = [cipher.open_row(table, row) for row in rows[table]]
    for row in rows["event_objects"]:
        row["object_id"] = open_object_id(
            cipher, row["event_seq"], row["record_type"], row["object_id"]
        )
        row.pop("object_bidx", None)
    return rows


def database_bytes(database_url: str) -> bytes:
    """Return the SQLite file's bytes with its WAL and shared memory (empty on PostgreSQL)."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database:
        return b""
    chunks = []
    for suffix in ("", "-wal", "-shm", "-journal"):
        path = Path(url.database + suffix)
        if path.exists():
            chunks.append(path.read_bytes())
    return b"".join(chunks)


def assert_nowhere(planted: list[str], engine: Engine, database_url: str, *texts: str) -> None:
    """Assert that no planted value is in any row, column, database byte or given text."""
    rows = repr(all_rows(engine))
    blob = database_bytes(database_url)
    for value in planted:
        assert value not in rows, f"planted value found in a database row: {value[:4]}..."
        assert value.encode() not in blob, f"planted value found in database bytes: {value[:4]}..."
        for chunk in texts:
            assert value not in chunk, f"planted value found in output: {value[:4]}..."


def pytest_report_header(config: pytest.Config) -> str:
    """Say which database this run uses."""
    requested = _requested_url()
    if requested is None:
        return (
            "paysieve test database: SQLite (a temporary file; "
            "set PAYSIEVE_TEST_DATABASE_URL for PostgreSQL)"
        )
    return f"paysieve test database: {make_url(requested).render_as_string(hide_password=True)}"
