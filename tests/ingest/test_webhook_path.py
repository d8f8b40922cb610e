"""The plain WSGI webhook path answers exactly as the Flask route it stands in front of.

Every case is posted twice: once through the app (WebhookPath answers it) and once
straight to the Flask app behind it (its /webhooks routes answer). Status, headers and
body must be the same, byte for byte, apart from what differs by nature (the event id
of two distinct stored events).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from flask import Flask
from sqlalchemy import Engine
from werkzeug.test import Client, TestResponse

from gateway.ingest.webhooks import WebhookPath
from gateway.web.http import ROUTE_ENVIRON_KEY
from tests.support.database import all_rows
from tests.support.webhooks import sample, stripe_endpoint

Post = Callable[..., TestResponse]


def clients(app: Flask) -> tuple[Client, Client]:
    """Return a client of the whole app and one of the Flask app behind the plain path."""
    path = app.wsgi_app
    assert isinstance(path, WebhookPath)
    return Client(app), Client(path.fallback)


def signed(
    app: Flask, event: dict[str, Any] | bytes, *, endpoint: str = "default", **extra: str
) -> tuple[bytes, dict[str, str]]:
    """Return a body and the headers the provider would send with it."""
    settings = app.extensions["paysieve.settings"]
    adapter = app.extensions["paysieve.pipeline"].adapters["stripe"]
    raw = event if isinstance(event, bytes) else orjson.dumps(event)
    config = settings.endpoint("stripe", endpoint) or settings.endpoint("stripe", "default")
    headers = adapter.sign(raw, config, timestamp=int(time.time()), event_id="evt_path")
    return raw, {"Content-Type": "application/json", **headers, **extra}


def same(plain: TestResponse, flask: TestResponse, *, event_ids: bool = False) -> None:
    """Assert two answers are the same (the event id aside when asked)."""
    assert plain.status == flask.status
    differ = {"Content-Length"} if event_ids else set()
    assert sorted(h for h in plain.headers.items() if h[0] not in differ) == sorted(
        h for h in flask.headers.items() if h[0] not in differ
    )
    if event_ids:
        first, second = orjson.loads(plain.get_data()), orjson.loads(flask.get_data())
        assert set(first) == set(second) == {"status", "event_id"}
        assert first["status"] == second["status"]
    else:
        assert plain.get_data() == flask.get_data()


def answers_match(
    app: Flask, raw: bytes, headers: dict[str, str], status: int, path: str = "/webhooks/stripe"
) -> TestResponse:
    """Post one request both ways; assert the answers are the same and have status."""
    plain, flask = clients(app)
    answer = plain.post(path, data=raw, headers=headers)
    assert answer.status_code == status
    same(answer, flask.post(path, data=raw, headers=headers))
    return answer


def signed_answers_match(app: Flask, event: dict[str, Any] | bytes, status: int) -> TestResponse:
    """Post one signed delivery both ways; assert the answers are the same and have status."""
    raw, headers = signed(app, event)
    return answers_match(app, raw, headers, status)


def distinct_charges() -> tuple[dict[str, Any], dict[str, Any]]:
    one, two = sample("stripe", "charge.succeeded"), sample("stripe", "charge.succeeded")
    two["id"] = one["id"] + "b"
    return one, two


def test_stored_and_duplicate_answers_match(app: Flask, engine: Engine) -> None:
    plain, flask = clients(app)
    one, two = distinct_charges()
    for _ in range(2):  # stored, then a duplicate
        raw_one, headers_one = signed(app, one)
        raw_two, headers_two = signed(app, two)
        a = plain.post("/webhooks/stripe", data=raw_one, headers=headers_one)
        b = flask.post("/webhooks/stripe", data=raw_two, headers=headers_two)
        same(a, b, event_ids=True)
    assert len(all_rows(engine)["events"]) == 2


@pytest.mark.parametrize(
    ("path", "body", "headers", "status"),
    [
        # unsigned, unknown provider, unknown endpoint, not JSON, wrong signature
        ("/webhooks/stripe", b"{}", {"Content-Type": "application/json"}, 400),
        ("/webhooks/square", b"{}", {"Content-Type": "application/json"}, 404),
        ("/webhooks/stripe/nowhere", b"{}", {"Content-Type": "application/json"}, 404),
        ("/webhooks/stripe", b"{}", {"Content-Type": "text/plain"}, 415),
        (
            "/webhooks/stripe",
            b"{}",
            {"Content-Type": "application/json", "Stripe-Signature": "t=1,v1=" + "0" * 64},
            400,
        ),
    ],
)
def test_refusals_match(
    app: Flask, path: str, body: bytes, headers: dict[str, str], status: int
) -> None:
    answers_match(app, body, headers, status, path)


def test_signed_refusals_match(app: Flask, engine: Engine) -> None:
    card = sample("stripe", "charge.succeeded")
    card["id"] = "evt_4242424242424242"
    for body in (b'{"id": "evt_x"', orjson.dumps(card)):
        assert b"4242424242424242" not in signed_answers_match(app, body, 400).get_data()
    assert all_rows(engine)["events"] == []


def test_body_limit_answers_match(make_app: Callable[..., Flask]) -> None:
    app = make_app(max_body_bytes=1024)
    raw, headers = signed(app, sample("stripe", "charge.succeeded"))
    assert len(raw) > 1024
    answers_match(app, raw, headers, 413)
    # No Content-Length (as a chunked body arrives): werkzeug's cap on the stream trips.
    environ = {"wsgi.input_terminated": True}
    plain, _ = clients(app)
    answer = plain.post("/webhooks/stripe", data=raw, headers=headers, environ_overrides=environ)
    assert answer.status_code == 413


def test_source_refusal_and_outage_answers_match(make_app: Callable[..., Flask]) -> None:
    endpoint = stripe_endpoint() | {"source_networks": ["203.0.113.0/24"]}
    app = make_app(endpoints=[endpoint])
    signed_answers_match(app, sample("stripe", "charge.succeeded"), 403)
    down = make_app(database_url="postgresql+psycopg://postgres@127.0.0.1:9/nowhere")
    answer = signed_answers_match(down, sample("stripe", "charge.succeeded"), 503)
    assert "Retry-After" in answer.headers


def test_unexpected_error_answers_match(
    app: Flask, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("planted 4242424242424242")

    monkeypatch.setattr(app.extensions["paysieve.pipeline"], "process", broken)
    signed_answers_match(app, sample("stripe", "charge.succeeded"), 500)
    assert "4242424242424242" not in caplog.text
    assert "unhandled RuntimeError" in caplog.text


def test_other_requests_reach_flask(app: Flask) -> None:
    plain, _ = clients(app)
    # Another method, a trailing slash, a path werkzeug must decode: Flask answers them.
    wrong_method = plain.get("/webhooks/stripe")
    assert wrong_method.status_code == 405
    assert wrong_method.headers["Allow"] == "POST"
    assert plain.post("/webhooks/stripe/", data=b"{}").status_code == 415
    assert plain.post("/webhooks/str%C3%AFpe", data=b"{}").status_code == 404
    assert plain.get("/healthz").status_code == 200


def test_the_access_log_sees_the_route_template(app: Flask) -> None:
    seen: list[dict[str, Any]] = []

    def server(environ: dict[str, Any], start_response: Any) -> Any:
        # As gunicorn's access log reads it: from the environ, once the app answered.
        seen.append(environ)
        return app(environ, start_response)

    for path, rule in (
        ("/webhooks/stripe", "/webhooks/<provider>"),
        ("/webhooks/stripe/other", "/webhooks/<provider>/<endpoint>"),
    ):
        Client(server).post(path, data=b"{}", headers={"Content-Type": "application/json"})
        assert seen.pop()[ROUTE_ENVIRON_KEY] == rule
