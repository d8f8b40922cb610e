"""/v1/subscribers: a billing service manages its endpoints with a subscribers:manage key."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, select
from standardwebhooks import Webhook

from gateway.outbound.dispatcher import Dispatcher
from gateway.storage.tables import audit_log, outbound_deliveries, subscribers
from tests.outbound.conftest import LOOPBACK, outbound_settings
from tests.support.api import apply, bearer, make_key, store_of, txn
from tests.support.database import assert_nowhere
from tests.support.receiver import Receiver

CARD = "4111111111111111"
MANAGE = "subscribers:manage"


@pytest.fixture
def gateway(make_app: Callable[..., Flask]) -> Flask:
    """Return a gateway that allows the loopback receiver's network."""
    return make_app(outbound_allow_networks=LOOPBACK)


@pytest.fixture
def client(gateway: Flask) -> FlaskClient:
    return gateway.test_client()


@pytest.fixture
def manager(engine: Engine) -> dict[str, str]:
    return bearer(make_key(engine, MANAGE))


def _add(client: FlaskClient, headers: dict[str, str], **body: Any) -> Any:
    return client.post("/v1/subscribers", json=body, headers=headers)


def _actions(engine: Engine) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(select(audit_log).order_by(audit_log.c.seq)).all()
    return [(row.action, row.route, row.outcome) for row in rows]


def test_added_through_the_api_delivers_signed_with_the_secret_it_answered(
    gateway: Flask,
    client: FlaskClient,
    manager: dict[str, str],
    engine: Engine,
    receiver: Receiver,
) -> None:
    answer = _add(client, manager, name="billing", url=receiver.url(), event_types=["test.*"])
    assert answer.status_code == 201
    assert answer.headers["Cache-Control"] == "no-store"
    created = answer.get_json()
    secret = created.pop("secret")
    assert secret.startswith("whsec_") and len(secret) == 50
    assert created == {
        "name": "billing",
        "url": receiver.url(),
        "event_types": ["test.*"],
        "accounts": None,
        "state": "enabled",
        "disabled_reason": None,
        "created_at": created["created_at"],
        "failing_since": None,
        "rotating_until": None,
    }
    # Stored sealed: the secret is nowhere in the database.
    with engine.connect() as conn:
        row = conn.execute(select(subscribers)).one()
    assert secret not in repr(row) and secret[6:] not in repr(row)
    # Never served again.
    listed = client.get("/v1/subscribers", headers=manager)
    assert listed.status_code == 200 and listed.headers["Cache-Control"] == "no-store"
    assert listed.get_json() == {"data": [created]}
    assert client.get("/v1/subscribers/billing", headers=manager).get_json() == created

    store = store_of(gateway)
    apply(store, txn("ch_1", status="succeeded", amount=700, currency="EUR"))
    assert Dispatcher(store, outbound_settings(receiver)).run_once() == 1
    [got] = receiver.received
    payload = Webhook(secret).verify(got.body, got.headers)
    assert payload["record"]["id"] == "ch_1" and payload["record"]["amount"] == 700
    assert _actions(engine) == [
        ("subscribers.add", "/v1/subscribers", "ok"),
        ("subscribers.list", "/v1/subscribers", "ok"),
        ("subscribers.read", "/v1/subscribers/<name>", "ok"),
    ]


def test_rotate_disable_enable_replay_remove(
    gateway: Flask,
    client: FlaskClient,
    manager: dict[str, str],
    engine: Engine,
    receiver: Receiver,
) -> None:
    first = _add(client, manager, name="billing", url=receiver.url()).get_json()["secret"]
    rotated = client.post("/v1/subscribers/billing/rotate-secret", headers=manager)
    assert rotated.status_code == 200 and rotated.headers["Cache-Control"] == "no-store"
    body = rotated.get_json()
    second = body["secret"]
    assert second.startswith("whsec_") and second != first
    until = datetime.fromisoformat(body["rotating_until"])
    assert timedelta(hours=23) < until - datetime.now(UTC) <= timedelta(hours=24)

    store = store_of(gateway)
    sender = Dispatcher(store, outbound_settings(receiver))
    apply(store, txn("ch_1"))
    assert sender.run_once() == 1
    # During the rotation both secrets sign, so a receiver holding either verifies.
    Webhook(first).verify(receiver.received[0].body, receiver.received[0].headers)
    Webhook(second).verify(receiver.received[0].body, receiver.received[0].headers)

    apply(store, txn("ch_2"))  # queued, then the subscriber is disabled: it stays queued
    disabled = client.post("/v1/subscribers/billing/disable", headers=manager).get_json()
    assert disabled["state"] == "disabled" and disabled["disabled_reason"] == "operator"
    assert sender.run_once() == 0
    apply(store, txn("ch_3"))  # nothing is queued for a disabled subscriber
    enabled = client.post("/v1/subscribers/billing/enable", headers=manager).get_json()
    assert enabled["state"] == "enabled" and enabled["disabled_reason"] is None
    assert sender.run_once() == 1 and len(receiver.received) == 2

    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    replayed = client.post("/v1/subscribers/billing/replay", json={"since": since}, headers=manager)
    assert replayed.status_code == 200 and replayed.get_json() == {"name": "billing", "queued": 2}
    assert sender.run_once() == 2
    ids = [got.headers["webhook-id"] for got in receiver.received]
    assert ids[2:] == ids[:2]

    removed = client.delete("/v1/subscribers/billing", headers=manager)
    assert removed.get_json() == {"name": "billing", "dropped_deliveries": 2}
    assert client.get("/v1/subscribers/billing", headers=manager).status_code == 404
    with engine.connect() as conn:
        assert conn.execute(select(outbound_deliveries)).all() == []
    assert [action for action, _, outcome in _actions(engine) if outcome == "ok"] == [
        "subscribers.add",
        "subscribers.rotate_secret",
        "subscribers.disable",
        "subscribers.enable",
        "subscribers.replay",
        "subscribers.remove",
    ]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"name": "billing", "url": "http://127.0.0.1/hook"}, 400, "url: the URL must be https://"),
        (
            {"name": "billing", "url": "https://10.0.0.1/hook"},
            400,
            "PAYSIEVE_OUTBOUND_ALLOW_NETWORKS",
        ),
        ({"name": "Billing!", "url": "https://127.0.0.1/x"}, 400, "name: must be 1-64"),
        ({"name": "b", "url": "https://127.0.0.1/x", "event_types": ["a b"]}, 400, "event_types:"),
        ({"name": "b", "url": "https://127.0.0.1/x", "accounts": ["A"]}, 400, "accounts:"),
        ({"name": "b", "url": "https://127.0.0.1/x", "secret": "whsec_x"}, 400, "unknown field"),
        ({"name": "b"}, 400, "invalid field: url"),
        ({"name": "b", "url": ["https://127.0.0.1/x"]}, 400, "invalid field: url"),
        ({"name": "b", "url": "https://127.0.0.1/x", "event_types": "*"}, 400, "event_types"),
    ],
)
def test_a_bad_subscriber_is_refused_with_the_field_and_nothing_stored(
    client: FlaskClient,
    manager: dict[str, str],
    engine: Engine,
    body: dict[str, Any],
    status: int,
    message: str,
) -> None:
    answer = _add(client, manager, **body)
    assert answer.status_code == status
    error = answer.get_json()["error"]
    assert message in error["message"]
    with engine.connect() as conn:
        assert conn.execute(select(subscribers)).all() == []
    [(action, _, outcome)] = _actions(engine)
    assert action == "subscribers.add" and outcome == error["code"]


@pytest.mark.parametrize(
    ("data", "content_type", "status"),
    [
        (b'{"name": "b", "url": "https://127.0.0.1/x"}', "text/plain", 415),
        (b"{not json", "application/json", 400),
        (b'["b"]', "application/json", 400),
        (b"", "application/json", 400),
        (
            b'{"name": "b", "url": "https://127.0.0.1/x"' + b" " * 2_000_000 + b"}",
            "application/json",
            413,
        ),
    ],
)
def test_a_body_that_is_not_a_json_object_is_refused(
    client: FlaskClient,
    manager: dict[str, str],
    engine: Engine,
    data: bytes,
    content_type: str,
    status: int,
) -> None:
    answer = client.post(
        "/v1/subscribers", data=data, headers={**manager, "Content-Type": content_type}
    )
    assert answer.status_code == status and answer.is_json
    with engine.connect() as conn:
        assert conn.execute(select(subscribers)).all() == []


def test_a_name_taken_is_a_conflict(client: FlaskClient, manager: dict[str, str]) -> None:
    assert _add(client, manager, name="billing", url="https://127.0.0.1/a").status_code == 201
    again = _add(client, manager, name="billing", url="https://127.0.0.1/b")
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "conflict"


def test_card_numbers_anywhere_in_a_request_are_refused_and_never_stored_logged_or_served(
    client: FlaskClient,
    manager: dict[str, str],
    engine: Engine,
    database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    spaced = "4111 1111 1111 1111"
    attempts = [
        {"name": CARD, "url": "https://127.0.0.1/x"},
        {"name": "b", "url": f"https://127.0.0.1/{CARD}"},
        {"name": "b", "url": f"https://127.0.0.1/x?pan={spaced}"},
        # A host that does not resolve is named in its refusal: never one holding a card.
        {"name": "b", "url": f"https://{CARD}.invalid/x"},
        {"name": "b", "url": f"https://pay-{spaced.replace(' ', '-')}.invalid/x"},
        {"name": "b", "url": "https://127.0.0.1/x", "event_types": [CARD]},
        {"name": "b", "url": "https://127.0.0.1/x", "accounts": [CARD]},
        {"name": "b", "url": "https://127.0.0.1/x", CARD: "x"},
    ]
    for body in attempts:
        answer = _add(client, manager, **body)
        assert answer.status_code == 400, body
        assert CARD not in answer.get_data(as_text=True)
        assert "1111" not in answer.get_json()["error"]["message"]
    for path in (f"/v1/subscribers/{CARD}", f"/v1/subscribers/{CARD}/rotate-secret"):
        method = client.get if path.endswith(CARD) else client.post
        answer = method(path, headers=manager)
        assert answer.status_code in (400, 404) and CARD not in answer.get_data(as_text=True)
    with engine.connect() as conn:
        assert conn.execute(select(subscribers)).all() == []
    assert_nowhere([CARD, spaced], engine, database_url, caplog.text)


def test_the_scope_is_required_and_refusals_are_audited(
    client: FlaskClient, engine: Engine
) -> None:
    reader = bearer(make_key(engine, "records:read", "customers:erase", "audit:read"))
    for method, path in [
        ("GET", "/v1/subscribers"),
        ("POST", "/v1/subscribers"),
        ("GET", "/v1/subscribers/billing"),
        ("DELETE", "/v1/subscribers/billing"),
        ("POST", "/v1/subscribers/billing/rotate-secret"),
        ("POST", "/v1/subscribers/billing/disable"),
        ("POST", "/v1/subscribers/billing/enable"),
        ("POST", "/v1/subscribers/billing/replay"),
    ]:
        refused = client.open(path, method=method, headers=reader, json={})
        assert refused.status_code == 403, (method, path)
        assert "subscribers:manage" in refused.get_json()["error"]["message"]
        assert client.open(path, method=method, json={}).status_code == 401
    outcomes = {outcome for _, _, outcome in _actions(engine)}
    assert outcomes == {"forbidden", "unauthorized"}


def test_a_key_bound_to_accounts_manages_only_its_accounts(
    client: FlaskClient, manager: dict[str, str], engine: Engine
) -> None:
    bound = bearer(make_key(engine, MANAGE, accounts=["eu"]))
    everything = _add(client, manager, name="all", url="https://127.0.0.1/a")
    assert everything.status_code == 201
    other = _add(client, manager, name="us", url="https://127.0.0.1/u", accounts=["us"])
    assert other.status_code == 201
    # Without accounts, a bound key's subscriber sends its own accounts only.
    mine = _add(client, bound, name="eu", url="https://127.0.0.1/e")
    assert mine.status_code == 201 and mine.get_json()["accounts"] == ["eu"]
    wider = _add(client, bound, name="wide", url="https://127.0.0.1/w", accounts=["eu", "us"])
    assert wider.status_code == 403
    # An empty list names no accounts, as if absent: the key's own, never every account.
    empty = _add(client, bound, name="empty", url="https://127.0.0.1/m", accounts=[])
    assert empty.status_code == 201 and empty.get_json()["accounts"] == ["eu"]
    assert client.delete("/v1/subscribers/empty", headers=bound).status_code == 200
    assert [s["name"] for s in client.get("/v1/subscribers", headers=bound).get_json()["data"]] == [
        "eu"
    ]
    for name in ("all", "us"):
        assert client.get(f"/v1/subscribers/{name}", headers=bound).status_code == 404
        assert client.delete(f"/v1/subscribers/{name}", headers=bound).status_code == 404
        rotated = client.post(f"/v1/subscribers/{name}/rotate-secret", headers=bound)
        assert rotated.status_code == 404
    names = [s["name"] for s in client.get("/v1/subscribers", headers=manager).get_json()["data"]]
    assert names == ["all", "eu", "us"]


def test_replay_refuses_a_bad_window(
    client: FlaskClient, manager: dict[str, str], engine: Engine
) -> None:
    _add(client, manager, name="billing", url="https://127.0.0.1/a")
    for body in (
        {},
        {"since": "yesterday"},
        {"since": "2026-12-04T10:00:00Z", "until": "2026-12-04T09:00:00Z"},
        {"since": "2026-12-04T10:00:00Z", "limit": 5},
        {"since": "99999-01-01T00:00:00Z"},
    ):
        answer = client.post("/v1/subscribers/billing/replay", json=body, headers=manager)
        assert answer.status_code == 400, body
    missing = client.post(
        "/v1/subscribers/nobody/replay", json={"since": "2026-12-04T10:00:00Z"}, headers=manager
    )
    assert missing.status_code == 404


def test_a_change_made_through_the_api_reaches_the_outbox_at_once(
    gateway: Flask, client: FlaskClient, manager: dict[str, str], engine: Engine
) -> None:
    store = store_of(gateway)
    apply(store, txn("ch_0"))  # reads the (empty) subscribers into the outbox's cache
    _add(client, manager, name="billing", url="https://127.0.0.1/a")
    apply(store, txn("ch_1"))
    with engine.connect() as conn:
        assert len(conn.execute(select(outbound_deliveries)).all()) == 1
