"""/healthz and /readyz: alive, and ready only with storage writable and migrations current."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine

from gateway.api import health


def test_ready_when_storage_writable_and_migrations_current(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready"}


def test_not_ready_while_a_migration_is_pending(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(health, "head_revision", lambda: "9999_not_yet_applied")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {
        "status": "unavailable",
        "checks": {"storage": "ok", "migrations": "pending"},
    }
    assert response.headers["Retry-After"] == "5"
    # Liveness does not depend on storage: a restart would not help.
    assert client.get("/healthz").status_code == 200


def test_not_ready_when_storage_is_unreachable(make_app: Any) -> None:
    client = make_app(
        database_url="postgresql+psycopg://postgres@127.0.0.1:9/nowhere"
    ).test_client()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"] == {"storage": "unreachable"}
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_not_ready_while_sqlite_is_locked(
    client: FlaskClient, engine: Engine, dialect: str
) -> None:
    if dialect != "sqlite":
        pytest.skip(
            "a held write lock is SQLite's outage; PostgreSQL's is covered by the proxy test"
        )
    with engine.connect() as conn:
        conn.exec_driver_sql("COMMIT")  # leave the implicit transaction the listener began
        conn.exec_driver_sql("BEGIN EXCLUSIVE")
        locked = client.get("/readyz")
        conn.exec_driver_sql("ROLLBACK")
    assert locked.status_code == 503
    assert locked.get_json()["checks"] == {"storage": "unreachable"}
    assert client.get("/readyz").status_code == 200


def test_readiness_logs_nothing_from_alembic(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    # A probe every few seconds must not write "Context impl ..." lines each time.
    health.head_revision.cache_clear()
    caplog.set_level(logging.DEBUG)
    for _ in range(2):
        assert client.get("/readyz").status_code == 200
    assert [r.getMessage() for r in caplog.records if r.name.startswith("alembic")] == []
