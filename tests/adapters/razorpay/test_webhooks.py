"""Razorpay deliveries through the HTTP route: what is kept, and that nothing else is."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import string
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from tests.support.database import all_rows, assert_nowhere, plain_rows
from tests.support.razorpay_planting import plant
from tests.support.webhooks import sample, signed_post

SECRET = "rzp-current-" + "c" * 32
OLD_SECRET = "rzp-previous-" + "p" * 32

# (entity, normalised status) each event type must leave, per entity it carries.
TRANSACTIONS: dict[str, dict[str, str]] = {
    "payment.authorized": {"payment": "authorized"},
    "payment.captured": {"payment": "succeeded"},
    "payment.failed": {"payment": "failed"},
    "order.paid": {"payment": "succeeded"},
    "payment_link.paid": {"payment": "succeeded"},
    "qr_code.credited": {"payment": "succeeded"},
    "virtual_account.credited": {"payment": "succeeded"},
    "refund.created": {"refund": "pending", "payment": "succeeded"},
    "refund.processed": {"refund": "succeeded", "payment": "partially_refunded"},
    "refund.failed": {"refund": "failed", "payment": "succeeded"},
    "payment.dispute.created": {"dispute": "disputed", "payment": "succeeded"},
    "payment.dispute.action_required": {"dispute": "disputed", "payment": "succeeded"},
    "payment.dispute.under_review": {"dispute": "disputed", "payment": "succeeded"},
    "payment.dispute.won": {"dispute": "succeeded", "payment": "succeeded"},
    "payment.dispute.lost": {"dispute": "failed", "payment": "succeeded"},
    "payment.dispute.closed": {"dispute": "canceled", "payment": "succeeded"},
    "invoice.paid": {"invoice": "succeeded", "payment": "succeeded"},
    "invoice.partially_paid": {"invoice": "pending", "payment": "succeeded"},
    "invoice.expired": {"invoice": "canceled"},
    "subscription.charged": {"payment": "succeeded"},
    "subscription.completed": {"payment": "succeeded"},
}
SUBSCRIPTIONS = {
    "subscription.authenticated": "incomplete",
    "subscription.activated": "active",
    "subscription.charged": "active",
    "subscription.pending": "past_due",
    "subscription.halted": "past_due",
    "subscription.paused": "paused",
    "subscription.resumed": "active",
    "subscription.cancelled": "canceled",
    "subscription.completed": "expired",
    "subscription.updated": "active",
}
TOKENS = {
    "token.activated": "active",
    "token.deactivated": "detached",
    "token.expiry_updated": "active",
    "token.initiated": None,
    "token.suspended": "detached",
}
IGNORED = ("payment_link.cancelled", "payment_link.expired", "refund.speed_changed")
WITH_METHODS = (
    "payment.authorized",
    "payment.captured",
    "payment.failed",
    "order.paid",
    "invoice.paid",
    "invoice.partially_paid",
)

CASES = [
    *[(t, m) for t in WITH_METHODS for m in ("card", "netbanking", "upi", "wallet")],
    *[(t, "card") for t in TRANSACTIONS if t not in WITH_METHODS],
    *[(t, "card") for t in SUBSCRIPTIONS if t not in TRANSACTIONS],
    *[(t, "card") for t in TOKENS],
    ("payment_link.paid", "upi"),
]


def endpoints(*secrets_: str) -> list[dict[str, Any]]:
    return [{"provider": "razorpay", "name": "default", "webhook_secrets": list(secrets_)}]


@pytest.fixture
def rzp(make_app: Callable[..., Flask]) -> FlaskClient:
    """Return a client of a gateway with one Razorpay endpoint."""
    return make_app(endpoints=endpoints(SECRET)).test_client()


def new_id() -> str:
    # Letters only: random hex can be all digits, and a Luhn-valid id is refused as card data.
    return "evt_" + "".join(secrets.choice(string.ascii_letters) for _ in range(16))


def post(client: FlaskClient, event: dict[str, Any] | bytes, **kwargs: Any) -> Any:
    kwargs.setdefault("event_id", new_id())
    return signed_post(client, "razorpay", event, **kwargs)


def raw_post(client: FlaskClient, body: bytes, headers: dict[str, str]) -> Any:
    headers = {"Content-Type": "application/json", **headers}
    return client.post("/webhooks/razorpay", data=body, headers=headers)


def hmac_hex(body: bytes, secret: str) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def rows_by_id(engine: Engine) -> dict[str, dict[str, Any]]:
    rows = plain_rows(engine)
    found = {r["id"]: r for r in rows["transactions"]}
    found |= {r["token"]: r for r in rows["payment_methods"]}
    found |= {r["id"]: r for r in rows["subscriptions"]}
    return found


def entity(event: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = event["payload"][name]["entity"]
    return found


@pytest.mark.parametrize(("event_type", "method"), CASES)
def test_each_event_keeps_its_fields_and_nothing_planted(
    rzp: FlaskClient, engine: Engine, database_url: str, event_type: str, method: str
) -> None:
    event = sample("razorpay", event_type, method=method)
    clean = orjson.loads(orjson.dumps(event))
    planted = plant(event)
    response = post(rzp, event)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["status"] == "stored"
    rows = rows_by_id(engine)

    for name, status in TRANSACTIONS.get(event_type, {}).items():
        obj = entity(clean, name)
        row = rows[obj["id"]]
        assert row["status"] == status
        assert row["provider_status"] == obj["status"]
        assert row["amount"] == obj["amount"] and row["currency"] == "INR"
        assert row["kind"] == {"refund": "refund", "dispute": "dispute"}.get(name, name)
        if name in ("refund", "dispute"):
            assert row["charge"] == obj["payment_id"]
        if name == "payment":
            assert row["charge"] == obj["id"]
            assert row["order"] == obj["order_id"]
            # The payment's own method: a virtual account is paid by bank transfer.
            if obj["method"] == "card":
                method_row = rows[row["payment_method"]]
                assert (method_row["brand"], method_row["last4"]) == ("visa", "1111")
            else:
                assert row["payment_method"] is None
        if name == "invoice":
            assert row["customer"] == obj["customer_id"]

    if event_type in SUBSCRIPTIONS:
        obj = entity(clean, "subscription")
        row = rows[obj["id"]]
        assert (row["status"], row["plan"], row["customer"]) == (
            SUBSCRIPTIONS[event_type],
            obj["plan_id"],
            obj["customer_id"],
        )
    if event_type in TOKENS:
        obj = entity(clean, "token")
        row = rows[obj["id"]]
        assert row["status"] == TOKENS[event_type]
        assert (row["brand"], row["last4"], row["exp_month"], row["exp_year"]) == (
            "rupay",
            "3335",
            11,
            2031,
        )
        assert row["customer"] == obj["customer_id"]

    assert_nowhere(planted, engine, database_url, response.get_data(as_text=True))


@pytest.mark.parametrize("event_type", IGNORED)
def test_other_events_are_acknowledged_and_recorded_ignored(
    rzp: FlaskClient, engine: Engine, database_url: str, event_type: str
) -> None:
    event = sample("razorpay", event_type)
    planted = plant(event)
    response = post(rzp, event)
    assert response.status_code == 200
    assert response.get_json()["status"] == "ignored"
    rows = all_rows(engine)
    assert [e["outcome"] for e in rows["events"]] == ["ignored"]
    assert rows["transactions"] == [] and rows["payment_methods"] == []
    assert_nowhere(planted, engine, database_url, response.get_data(as_text=True))


def test_the_event_id_comes_from_the_header(rzp: FlaskClient, engine: Engine) -> None:
    response = post(rzp, sample("razorpay", "payment.captured"), event_id="KWHKzQDmtsrpDj")
    assert response.get_json() == {"status": "stored", "event_id": "KWHKzQDmtsrpDj"}
    assert [e["id"] for e in all_rows(engine)["events"]] == ["KWHKzQDmtsrpDj"]


def test_secret_rotation_accepts_old_and_new(
    make_app: Callable[..., Flask], engine: Engine
) -> None:
    client = make_app(endpoints=endpoints(SECRET, OLD_SECRET)).test_client()
    for secret in (OLD_SECRET, SECRET):
        body = orjson.dumps(sample("razorpay", "payment.captured"))
        headers = {"X-Razorpay-Signature": hmac_hex(body, secret), "X-Razorpay-Event-Id": new_id()}
        assert raw_post(client, body, headers).status_code == 200
    body = orjson.dumps(sample("razorpay", "payment.captured"))
    headers = {"X-Razorpay-Signature": hmac_hex(body, "retired"), "X-Razorpay-Event-Id": new_id()}
    response = raw_post(client, body, headers)
    assert response.status_code == 400
    assert response.get_json()["error"]["message"] == "signature does not match"
    assert len(all_rows(engine)["events"]) == 2


def test_a_missing_event_id_is_refused(rzp: FlaskClient, engine: Engine) -> None:
    body = orjson.dumps(sample("razorpay", "payment.captured"))
    response = raw_post(rzp, body, {"X-Razorpay-Signature": hmac_hex(body, SECRET)})
    assert response.status_code == 400
    assert response.get_json() == {
        "error": {
            "code": "verification_failed",
            "message": "missing X-Razorpay-Event-Id header",
        }
    }
    assert all_rows(engine)["events"] == []


@pytest.mark.parametrize(
    ("signature", "message"),
    [
        (None, "missing X-Razorpay-Signature header"),
        ("", "missing X-Razorpay-Signature header"),
        ("not-hex-" + "0" * 56, "malformed X-Razorpay-Signature header"),
        ("0" * 64, "signature does not match"),
    ],
)
def test_bad_signatures_are_refused(
    rzp: FlaskClient, engine: Engine, signature: str | None, message: str
) -> None:
    body = orjson.dumps(sample("razorpay", "payment.captured"))
    headers = {"X-Razorpay-Event-Id": new_id()}
    if signature is not None:
        headers["X-Razorpay-Signature"] = signature
    response = raw_post(rzp, body, headers)
    assert response.status_code == 400
    assert response.get_json()["error"] == {"code": "verification_failed", "message": message}
    assert all_rows(engine)["events"] == []


def test_a_body_that_is_not_utf8_is_refused(rzp: FlaskClient, engine: Engine) -> None:
    body = orjson.dumps(sample("razorpay", "payment.captured"))[:-1] + b',"x":"\xff\xfe"}'
    response = post(rzp, body)
    assert response.status_code == 400
    assert response.get_json()["error"]["message"] == "body is not UTF-8"
    assert all_rows(engine)["events"] == []


def test_a_duplicate_delivery_is_stored_once(rzp: FlaskClient, engine: Engine) -> None:
    event = sample("razorpay", "payment.captured")
    first = post(rzp, event, event_id="evt_dup")
    again = post(rzp, event, event_id="evt_dup")
    assert first.get_json()["status"] == "stored"
    assert again.status_code == 200 and again.get_json()["status"] == "duplicate"
    assert len(all_rows(engine)["events"]) == 1


def _payment_pair(first: str, second: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return two events about the same payment, the second one second later in time."""
    early = sample("razorpay", first)
    late = sample("razorpay", second)
    entity(late, "payment").update(
        {k: entity(early, "payment")[k] for k in ("id", "order_id", "customer_id", "token_id")}
    )
    late["created_at"] = early["created_at"] + 5
    return early, late


@pytest.mark.parametrize("order", ["in order", "reversed"])
def test_failed_then_captured_ends_succeeded(rzp: FlaskClient, engine: Engine, order: str) -> None:
    failed, captured = _payment_pair("payment.failed", "payment.captured")
    for event in (failed, captured) if order == "in order" else (captured, failed):
        assert post(rzp, event).status_code == 200
    row = rows_by_id(engine)[entity(captured, "payment")["id"]]
    assert (row["status"], row["provider_status"]) == ("succeeded", "captured")


def test_failed_then_captured_in_the_same_second_ends_succeeded(
    rzp: FlaskClient, engine: Engine
) -> None:
    failed, captured = _payment_pair("payment.failed", "payment.captured")
    captured["created_at"] = failed["created_at"]
    post(rzp, failed)
    post(rzp, captured)
    assert rows_by_id(engine)[entity(captured, "payment")["id"]]["status"] == "succeeded"


def test_a_refund_before_its_capture_does_not_go_backwards(
    rzp: FlaskClient, engine: Engine
) -> None:
    captured, refunded = _payment_pair("payment.captured", "refund.processed")
    entity(refunded, "refund")["payment_id"] = entity(captured, "payment")["id"]
    assert post(rzp, refunded).get_json()["status"] == "stored"
    assert post(rzp, captured).get_json()["status"] == "stored"
    rows = rows_by_id(engine)
    payment = rows[entity(captured, "payment")["id"]]
    assert payment["status"] == "partially_refunded"
    refund = rows[entity(refunded, "refund")["id"]]
    assert (refund["status"], refund["refund_of"]) == ("succeeded", payment["id"])


def test_a_token_deactivated_after_activation_stays_detached(
    rzp: FlaskClient, engine: Engine
) -> None:
    activated = sample("razorpay", "token.activated")
    deactivated = sample("razorpay", "token.deactivated")
    entity(deactivated, "token")["id"] = entity(activated, "token")["id"]
    # Token events carry no created_at: receipt order decides.
    post(rzp, activated)
    post(rzp, deactivated)
    assert rows_by_id(engine)[entity(activated, "token")["id"]]["status"] == "detached"


def test_a_card_number_as_event_id_is_refused(rzp: FlaskClient, engine: Engine) -> None:
    response = post(rzp, sample("razorpay", "payment.captured"), event_id="4242424242424242")
    assert response.status_code == 400
    assert "4242" not in response.get_data(as_text=True)
    assert all_rows(engine)["events"] == []


def test_razorpay_is_off_without_a_secret(make_app: Callable[..., Flask]) -> None:
    client = make_app(endpoints=[]).test_client()
    body = orjson.dumps(sample("razorpay", "payment.captured"))
    headers = {"X-Razorpay-Signature": hmac_hex(body, SECRET), "X-Razorpay-Event-Id": new_id()}
    assert raw_post(client, body, headers).status_code == 404


# -- every parse refuses with a JSON 400 (or drops the field), never a 5xx ------


def nothing_stored(engine: Engine) -> bool:
    """Return whether every table is empty."""
    return all(rows == [] for rows in all_rows(engine).values())


def test_token_expiring_at_the_end_of_9999_is_stored_without_its_expiry(
    rzp: FlaskClient, engine: Engine
) -> None:
    event = sample("razorpay", "token.expiry_updated")
    token = entity(event, "token")
    token["expired_at"] = 253402300799
    response = post(rzp, event)
    assert response.status_code == 200, response.get_data(as_text=True)
    row = rows_by_id(engine)[token["id"]]
    assert row["exp_month"] is None and row["exp_year"] is None
    (stored_event,) = all_rows(engine)["events"]
    assert stored_event["dropped_fields"] == 1


@pytest.mark.parametrize("created_at", [253402300800, 2**64 - 1, -1, 1.5, "1700000000", True])
def test_event_created_at_out_of_range_is_a_json_400_and_nothing_stored(
    rzp: FlaskClient, engine: Engine, created_at: Any
) -> None:
    event = sample("razorpay", "payment.captured")
    event["created_at"] = created_at
    response = post(rzp, json.dumps(event).encode())
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["error"]["code"] == "malformed_body"
    assert nothing_stored(engine)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X-Razorpay-Signature", "\u00e9" * 64),
        ("X-Razorpay-Signature", "0" * 63 + "\u00b2"),
        ("X-Razorpay-Signature", "a" * 5000),
        ("X-Razorpay-Event-Id", "evt_\u00b2\u00b3"),
        ("X-Razorpay-Event-Id", "e" * 5000),
    ],
    ids=[
        "latin1-signature",
        "superscript-signature",
        "long-signature",
        "superscript-id",
        "long-id",
    ],
)
def test_malformed_header_is_a_json_400_and_nothing_stored(
    rzp: FlaskClient, engine: Engine, name: str, value: str
) -> None:
    response = post(rzp, sample("razorpay", "payment.captured"), headers={name: value})
    assert response.status_code == 400, response.get_data(as_text=True)
    body = response.get_json()
    assert body["error"]["code"] == "verification_failed"
    assert value not in response.get_data(as_text=True)
    assert nothing_stored(engine)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    value=st.one_of(
        st.integers(),
        st.integers(min_value=253402280000, max_value=253402300810),
        st.floats(allow_nan=False, allow_infinity=False),
        st.booleans(),
        st.integers().map(str),
    )
)
def test_any_epoch_value_is_kept_or_dropped_never_a_5xx(
    rzp: FlaskClient, engine: Engine, value: Any
) -> None:
    event = sample("razorpay", "subscription.charged")
    entity(event, "subscription")["current_end"] = value
    token_event = sample("razorpay", "token.expiry_updated")
    entity(token_event, "token")["expired_at"] = value
    for body in (event, token_event):
        response = post(rzp, json.dumps(body).encode())
        assert response.status_code == 200, response.get_data(as_text=True)
