"""Shared fixtures: one suite over SQLite or PostgreSQL, chosen by PAYSIEVE_TEST_DATABASE_URL."""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from gateway import create_app
from gateway.storage.engine import make_engine
from gateway.storage.migrate import upgrade
from tests.support.database import (
    TEST_DATA_KEY,
    TEST_INDEX_KEY,
    empty_tables,
    requested_database_url,
)
from tests.support.webhooks import stripe_endpoint

# Settings must come from the test, never from a developer's config or environment.
for _name in [
    n for n in os.environ if n.startswith("PAYSIEVE_") and n != "PAYSIEVE_TEST_DATABASE_URL"
]:
    del os.environ[_name]
_EMPTY_CONFIG = Path(tempfile.mkdtemp(prefix="paysieve-test-config-")) / "empty.toml"
_EMPTY_CONFIG.write_text("# tests configure everything through create_app(test_config)\n")
os.environ["PAYSIEVE_CONFIG"] = str(_EMPTY_CONFIG)
# Relative paths are read against the home: never the checkout the suite runs from.
os.environ["PAYSIEVE_HOME"] = str(_EMPTY_CONFIG.parent)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Return a migrated, empty database for this test session.

    With a PostgreSQL URL a fresh database is created on that server (so
    concurrent runs never share tables) and dropped afterwards.
    """
    requested = requested_database_url()
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


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """Return an engine on the session database, emptied before the test."""
    engine = make_engine(database_url)
    empty_tables(engine)
    yield engine
    engine.dispose()


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


def pytest_report_header(config: pytest.Config) -> str:
    """Say which database this run uses."""
    requested = requested_database_url()
    if requested is None:
        return (
            "paysieve test database: SQLite (a temporary file; "
            "set PAYSIEVE_TEST_DATABASE_URL for PostgreSQL)"
        )
    return f"paysieve test database: {make_url(requested).render_as_string(hide_password=True)}"
