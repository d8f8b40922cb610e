"""Liveness and readiness probes."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from gateway.store import Store

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """Answer that the process is alive."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> Response:
    """Answer whether storage is reachable, 503 when it is not."""
    store: Store = current_app.extensions["paysieve.store"]
    if store.ready():
        return jsonify({"status": "ready"})
    response = jsonify({"status": "unavailable", "checks": {"storage": "unreachable"}})
    response.status_code = 503
    response.headers["Retry-After"] = "5"
    return response
