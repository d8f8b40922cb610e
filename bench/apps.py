"""The baseline apps paysieve is measured against, served by the same gunicorn config."""

from __future__ import annotations

import os
import sqlite3
import threading

import stripe
from flask import Flask, Response, request


def ceiling_app() -> Flask:
    """Build the ceiling: read the body, answer 200, nothing else."""
    app = Flask("ceiling")

    @app.post("/webhooks/<provider>")
    def receive(provider: str) -> Response:
        request.get_data()
        return Response(b'{"status":"ok"}', status=200, mimetype="application/json")

    return app


def naive_app() -> Flask:
    """Build what most integrations do: construct_event, then store the whole payload."""
    app = Flask("naive")
    secret = os.environ["BENCH_STRIPE_SECRET"]
    path = os.environ["BENCH_NAIVE_DB"]
    local = threading.local()

    def connection() -> sqlite3.Connection:
        if not hasattr(local, "conn"):
            conn = sqlite3.connect(path, timeout=10, isolation_level=None)
            # The same durability paysieve's SQLite promises, so the comparison is fair.
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS stripe_events"
                " (id TEXT PRIMARY KEY, type TEXT, body TEXT)"
            )
            local.conn = conn
        return local.conn  # type: ignore[no-any-return]

    @app.post("/webhooks/stripe")
    def receive() -> Response:
        payload = request.get_data()
        event = stripe.Webhook.construct_event(
            payload, request.headers.get("Stripe-Signature", ""), secret
        )
        connection().execute(
            "INSERT OR IGNORE INTO stripe_events VALUES (?, ?, ?)",
            (event["id"], event["type"], payload.decode()),
        )
        return Response(b'{"status":"stored"}', status=200, mimetype="application/json")

    return app
