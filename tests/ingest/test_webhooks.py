"""The webhook route's answers to bad input, outages and concurrency."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine
from werkzeug.serving import make_server

from tests.support.database import all_rows
from tests.support.webhooks import STRIPE_SECRET, sample, signed_post


@pytest.fixture
def server(app: Flask) -> Iterator[str]:
    """Serve the app on a free loopback port in a thread; yield its base URL."""
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join()


def error(response: Any) -> dict[str, str]:
    body = response.get_json() if hasattr(response, "get_json") else response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    return body["error"]


def test_body_over_the_limit_is_413(make_app: Any) -> None:
    client = make_app(max_body_bytes=1024).test_client()
    event = sample("stripe", "charge.succeeded")
    response = signed_post(client, "stripe", event)
    assert response.status_code == 413
    assert error(response)["code"] == "payload_too_large"


def test_chunked_body_over_the_limit_is_413_without_reading_it_all(
    make_app: Any, engine: Engine
) -> None:
    app = make_app(max_body_bytes=4096)
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        for _ in range(64):
            sent += 1024
            yield b" " * 1024

    try:
        response = requests.post(
            f"http://127.0.0.1:{httpd.server_port}/webhooks/stripe",
            data=chunks(),
            headers={"Content-Type": "application/json", "Stripe-Signature": "t=1,v1=00"},
            timeout=10,
        )
    finally:
        httpd.shutdown()
        thread.join()
    assert response.status_code == 413
    assert error(response)["code"] == "payload_too_large"
    assert all_rows(engine)["events"] == []


def test_not_json_is_415(client: FlaskClient) -> None:
    response = client.post(
        "/webhooks/stripe", data="a=b", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 415
    assert error(response)["code"] == "unsupported_media_type"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"id": "evt_1", "type": ', "body is not valid JSON"),
        (b"[1, 2, 3]", "body must be a JSON object"),
        (b'{"a": ' + b"[" * 100 + b"]" * 100 + b"}", "JSON nesting is too deep"),
        (b'{"id": "evt_1", "type": "charge.succeeded"}', "event created is missing or not a time"),
        (
            b'{"id": "evt 1!", "type": "charge.succeeded", "created": 1}',
            "event id is missing or malformed",
        ),
    ],
)
def test_malformed_signed_body_is_400(
    client: FlaskClient, engine: Engine, body: bytes, message: str
) -> None:
    response = signed_post(client, "stripe", body)
    assert response.status_code == 400
    assert error(response)["message"] == message
    assert all_rows(engine)["events"] == []


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "missing Stripe-Signature header"),
        ("garbage", "malformed Stripe-Signature header: no timestamp"),
        ("t={now},v1=" + "0" * 64, "signature does not match"),
        ("t={old},v1=" + "0" * 64, "timestamp is too old"),
        ("t={future},v1=" + "0" * 64, "timestamp is in the future"),
    ],
)
def test_unverified_delivery_is_400_and_stores_nothing(
    client: FlaskClient, engine: Engine, header: str | None, message: str
) -> None:
    # Timestamps are taken when the test runs, not when the suite was collected.
    now = int(time.time())
    headers = {}
    if header is not None:
        value = header.format(now=now, old=now - 3600, future=now + 3600)
        headers["Stripe-Signature"] = value
    event = sample("stripe", "charge.succeeded")
    response = client.post(
        "/webhooks/stripe",
        data=orjson.dumps(event),
        headers=headers | {"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert error(response) == {"code": "verification_failed", "message": message}
    assert all_rows(engine)["events"] == []


def test_non_utf8_body_is_400(client: FlaskClient, engine: Engine) -> None:
    raw = b'{"id": "\xff\xfe"}'
    now = int(time.time())
    mac = hmac.new(STRIPE_SECRET.encode(), f"{now}.".encode() + raw, hashlib.sha256).hexdigest()
    response = client.post(
        "/webhooks/stripe",
        data=raw,
        headers={"Content-Type": "application/json", "Stripe-Signature": f"t={now},v1={mac}"},
    )
    assert response.status_code == 400
    assert error(response) == {"code": "verification_failed", "message": "body is not UTF-8"}
    assert all_rows(engine)["events"] == []


def test_rotation_accepts_old_and_new_secret(make_app: Any) -> None:
    from tests.support.webhooks import STRIPE_OLD_SECRET, stripe_endpoint

    old = make_app(endpoints=[stripe_endpoint(secrets_=(STRIPE_OLD_SECRET,))]).test_client()
    rotating = make_app(endpoints=[stripe_endpoint(secrets_=(STRIPE_SECRET, STRIPE_OLD_SECRET))])
    event = sample("stripe", "charge.succeeded")
    raw = orjson.dumps(event)
    settings = old.application.extensions["paysieve.settings"]
    adapter = old.application.extensions["paysieve.pipeline"].adapters["stripe"]
    headers = adapter.sign(
        raw, settings.endpoint("stripe", "default"), timestamp=int(time.time()), event_id="x"
    )
    response = rotating.test_client().post(
        "/webhooks/stripe", data=raw, headers=headers | {"Content-Type": "application/json"}
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "path", ["/webhooks/square", "/webhooks/stripe/nowhere", "/webhooks/razorpay"]
)
def test_unknown_or_disabled_route_is_404(client: FlaskClient, path: str) -> None:
    response = client.post(path, json={"id": "x"})
    assert response.status_code == 404
    assert error(response)["code"] == "not_found"


def test_wrong_method_is_json_405(client: FlaskClient) -> None:
    response = client.get("/webhooks/stripe")
    assert response.status_code == 405
    assert error(response)["code"] == "method_not_allowed"


def test_errors_never_echo_the_request(client: FlaskClient) -> None:
    planted = "4242424242424242"
    response = client.post(
        f"/webhooks/stripe?{planted}",
        data=b'{"id": "' + planted.encode() + b'"',
        headers={
            "Content-Type": "application/json",
            "Stripe-Signature": f"t={planted},v1={planted}",
        },
    )
    assert response.status_code == 400
    assert planted not in response.get_data(as_text=True)


def test_every_answer_carries_security_headers(client: FlaskClient) -> None:
    for response in (client.get("/healthz"), client.post("/webhooks/stripe", json={})):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Content-Security-Policy"] == "frame-ancestors 'none'"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["Cache-Control"] == "no-store"
        assert "max-age" in response.headers["Strict-Transport-Security"]


def test_storage_unreachable_is_503_with_retry_after(make_app: Any) -> None:
    client = make_app(
        database_url="postgresql+psycopg://postgres@127.0.0.1:9/nowhere"
    ).test_client()
    response = signed_post(client, "stripe", sample("stripe", "charge.succeeded"))
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    assert error(response)["code"] == "storage_unavailable"
    assert client.get("/readyz").status_code == 503


def test_sqlite_locked_is_503_then_stored_on_retry(
    client: FlaskClient, engine: Engine, dialect: str
) -> None:
    if dialect != "sqlite":
        pytest.skip(
            "an exclusive file lock is SQLite's outage; PostgreSQL's is the unreachable server"
        )
    event = sample("stripe", "charge.succeeded")
    with engine.connect() as conn:
        conn.exec_driver_sql("COMMIT")  # leave the implicit transaction the listener began
        conn.exec_driver_sql("BEGIN EXCLUSIVE")
        response = signed_post(client, "stripe", event)
        conn.exec_driver_sql("ROLLBACK")
    assert response.status_code == 503
    assert "Retry-After" in response.headers
    assert signed_post(client, "stripe", event).get_json()["status"] == "stored"


def test_readyz_when_storage_is_up(client: FlaskClient) -> None:
    assert client.get("/readyz").get_json() == {"status": "ready"}
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_fifty_concurrent_copies_store_one_event(
    server: str, client: FlaskClient, engine: Engine
) -> None:
    event = sample("stripe", "charge.succeeded")
    raw = orjson.dumps(event)
    app = client.application
    adapter = app.extensions["paysieve.pipeline"].adapters["stripe"]
    endpoint = app.extensions["paysieve.settings"].endpoint("stripe", "default")
    headers = adapter.sign(raw, endpoint, timestamp=int(time.time()), event_id="x")
    headers["Content-Type"] = "application/json"
    barrier = threading.Barrier(50)

    def deliver(_: int) -> tuple[int, str]:
        with requests.Session() as session:
            barrier.wait()
            response = session.post(
                f"{server}/webhooks/stripe", data=raw, headers=headers, timeout=30
            )
            return response.status_code, json.loads(response.text).get("status", "")

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(deliver, range(50)))
    assert sorted(results) == [(200, "duplicate")] * 49 + [(200, "stored")]
    rows = all_rows(engine)
    assert len(rows["events"]) == 1
    assert len(rows["transactions"]) == 1
