"""Liveness and readiness probes."""

from __future__ import annotations

from functools import cache

from flask import Blueprint, Response, current_app, jsonify
from sqlalchemy.exc import SQLAlchemyError

from gateway.core.errors import StorageUnavailable
from gateway.storage import migrate
from gateway.storage.store import Store

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """Answer that the process is alive."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> Response:
    """Answer whether storage takes writes and its schema is current, 503 when not."""
    store: Store = current_app.extensions["paysieve.store"]
    checks = readiness(store)
    if checks == {"storage": "ok", "migrations": "current"}:
        return jsonify({"status": "ready"})
    response = jsonify({"status": "unavailable", "checks": checks})
    response.status_code = 503
    response.headers["Retry-After"] = "5"
    return response


# The packaged migrations do not change while the process runs.
head_revision = cache(migrate.head_revision)


def readiness(store: Store) -> dict[str, str]:
    """Return the storage and migration checks readiness depends on."""
    try:
        # A write transaction, not a read: on SQLite it takes the write lock, so a
        # database another process holds locked is reported before deliveries get 503s.
        with store.writing():
            pass
        current = migrate.current_revision(store.engine)
    except (StorageUnavailable, SQLAlchemyError):
        return {"storage": "unreachable"}
    # An older schema means `paysieve db upgrade` has not run for this release yet.
    return {"storage": "ok", "migrations": "current" if current == head_revision() else "pending"}
