"""Stripe deliveries through the HTTP route: what is kept, and that nothing else is."""

from __future__ import annotations

import copy
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from adapters.stripe.adapter import SUPPORTED_EVENT_TYPES
from tests.support.database import all_rows, assert_nowhere, plain_rows
from tests.support.planting import plant
from tests.support.webhooks import sample, signed_post

# The normalised status each event type must leave on its main record.
STATUS = {
    "payment_intent.succeeded": "succeeded",
    "payment_intent.payment_failed": "failed",
    "payment_intent.processing": "pending",
    "payment_intent.canceled": "canceled",
    "payment_intent.requires_action": "requires_action",
    "payment_intent.amount_capturable_updated": "authorized",
    "charge.succeeded": "succeeded",
    "charge.failed": "failed",
    "charge.captured": "succeeded",
    "charge.refunded": "refunded",
    "charge.dispute.created": "disputed",
    "refund.created": None,
    "payment_method.attached": "active",
    "payment_method.detached": "detached",
    "setup_intent.succeeded": "active",
    "customer.subscription.deleted": "canceled",
    "customer.subscription.paused": "paused",
    "customer.subscription.resumed": "active",
    "invoice.paid": "succeeded",
    "invoice.payment_failed": "failed",
    "invoice.voided": "canceled",
    "checkout.session.completed": "succeeded",
}


def _id(value: Any) -> Any:
    return value.get("id") if isinstance(value, dict) else value


def expected(event: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """Return the main record's table, key and the values it must hold."""
    obj = event["data"]["object"]
    kind = event["type"]
    if kind.startswith("payment_method."):
        card = obj["card"]
        values = {k: card[k] for k in ("last4", "exp_month", "exp_year")} | {"brand": "visa"}
        return "payment_methods", obj["id"], values
    if kind.startswith("setup_intent."):
        return "payment_methods", _id(obj["payment_method"]), {"customer": _id(obj["customer"])}
    if kind.startswith("customer.subscription."):
        values = {
            "customer": _id(obj["customer"]),
            "cancel_at_period_end": obj["cancel_at_period_end"],
        }
        return "subscriptions", obj["id"], values
    values = {"currency": obj["currency"].upper()}
    if kind.startswith("charge.dispute."):
        values |= {"kind": "dispute", "charge": _id(obj["charge"]), "amount": obj["amount"]}
    elif kind.startswith("refund."):
        values |= {"kind": "refund", "refund_of": _id(obj["charge"]), "amount": obj["amount"]}
    elif kind.startswith("invoice."):
        values |= {"kind": "invoice", "amount": obj["amount_due"], "customer": _id(obj["customer"])}
    elif kind.startswith("checkout.session."):
        values |= {"amount": obj["amount_total"], "payment_intent": _id(obj["payment_intent"])}
    else:
        values |= {"kind": "payment", "amount": obj["amount"], "customer": _id(obj["customer"])}
    return "transactions", obj["id"], values


def stored(engine: Engine, table: str, key: str) -> dict[str, Any]:
    column = "token" if table == "payment_methods" else "id"
    rows = [r for r in plain_rows(engine)[table] if r[column] == key]
    assert len(rows) == 1, f"expected one {table} row for the event"
    return rows[0]


@pytest.mark.parametrize("event_type", SUPPORTED_EVENT_TYPES)
def test_event_keeps_allowlist_and_nothing_else(
    client: FlaskClient,
    engine: Engine,
    database_url: str,
    event_type: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG")
    event = sample("stripe", event_type)
    table, key, values = expected(copy.deepcopy(event))
    planted = plant(event)

    response = signed_post(client, "stripe", event)

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "stored"
    row = stored(engine, table, key)
    for name, value in values.items():
        assert row[name] == value, name
    if STATUS.get(event_type):
        assert row["status"] == STATUS[event_type]
    assert row["provider"] == "stripe" and row["account"] == "default"
    assert row["last_event_id"] == event["id"]
    logged = "\n".join(r.getMessage() + repr(r.__dict__) for r in caplog.records)
    assert_nowhere(planted, engine, database_url, response.get_data(as_text=True), logged)


def test_charge_keeps_card_details_as_a_payment_method(client: FlaskClient, engine: Engine) -> None:
    event = sample("stripe", "charge.succeeded")
    charge = event["data"]["object"]
    card = charge["payment_method_details"]["card"]
    card |= {"brand": "mastercard", "last4": "4444", "exp_month": 3, "exp_year": 2031}
    assert signed_post(client, "stripe", event).status_code == 200
    method = stored(engine, "payment_methods", charge["payment_method"])
    assert (method["brand"], method["last4"], method["exp_month"], method["exp_year"]) == (
        "mastercard",
        "4444",
        3,
        2031,
    )
    assert (
        stored(engine, "transactions", charge["id"])["payment_method"] == charge["payment_method"]
    )


def test_redelivery_is_duplicate(client: FlaskClient, engine: Engine) -> None:
    event = sample("stripe", "charge.succeeded")
    assert signed_post(client, "stripe", event).get_json()["status"] == "stored"
    assert signed_post(client, "stripe", event).get_json()["status"] == "duplicate"
    assert len(all_rows(engine)["events"]) == 1


def test_refund_before_success_leaves_charge_refunded(client: FlaskClient, engine: Engine) -> None:
    succeeded = sample("stripe", "charge.succeeded")
    refunded = sample("stripe", "charge.refunded")
    charge_id = succeeded["data"]["object"]["id"]
    refunded["data"]["object"]["id"] = charge_id
    refunded["data"]["object"]["payment_method"] = succeeded["data"]["object"]["payment_method"]
    for refund in refunded["data"]["object"]["refunds"]["data"]:
        refund["charge"] = charge_id
    refunded["created"] = succeeded["created"] + 5
    assert signed_post(client, "stripe", refunded).get_json()["status"] == "stored"
    assert signed_post(client, "stripe", succeeded).get_json()["status"] == "stored"
    assert stored(engine, "transactions", charge_id)["status"] == "refunded"


def test_unknown_and_thin_events_are_acknowledged_as_ignored(
    client: FlaskClient, engine: Engine
) -> None:
    unknown = sample("stripe", "charge.succeeded") | {"type": "plan.created"}
    thin = {
        "id": "evt_test_65R9Ijk8",
        "object": "v2.core.event",
        "type": "v1.billing.meter.error_report_triggered",
        "created": "2026-03-02T14:21:05.116Z",
        "related_object": {
            "id": "mtr_123",
            "type": "billing.meter",
            "url": "/v1/billing/meters/mtr_123",
        },
    }
    for event in (unknown, thin):
        response = signed_post(client, "stripe", event)
        assert response.status_code == 200
        assert response.get_json()["status"] == "ignored"
    rows = all_rows(engine)
    assert sorted(r["outcome"] for r in rows["events"]) == ["ignored", "ignored"]
    assert rows["transactions"] == [] and rows["payment_methods"] == []


def test_second_endpoint_has_its_own_secret_and_account(make_app: Any, engine: Engine) -> None:
    from tests.support.webhooks import stripe_endpoint

    app = make_app(endpoints=[stripe_endpoint(), stripe_endpoint("eu", ("whsec_eu_only",))])
    client = app.test_client()
    event = sample("stripe", "charge.succeeded")
    assert signed_post(client, "stripe", event, endpoint="eu").status_code == 200
    row = stored(engine, "transactions", event["data"]["object"]["id"])
    assert row["account"] == "eu"
    # A default-endpoint signature does not verify on the eu endpoint.
    other = sample("stripe", "charge.succeeded")
    headers = {"Stripe-Signature": signed_headers(app, other)}
    response = client.post("/webhooks/stripe/eu", json=other, headers=headers)
    assert response.status_code == 400


def signed_headers(app: Any, event: dict[str, Any]) -> str:
    import orjson

    settings = app.extensions["paysieve.settings"]
    adapter = app.extensions["paysieve.pipeline"].adapters["stripe"]
    endpoint = settings.endpoint("stripe", "default")
    raw = orjson.dumps(event)
    return adapter.sign(raw, endpoint, timestamp=int(time.time()), event_id="x")["Stripe-Signature"]


def test_later_charge_does_not_reactivate_a_detached_card(
    client: FlaskClient, engine: Engine
) -> None:
    detached = sample("stripe", "payment_method.detached")
    charge = sample("stripe", "charge.refunded")
    token = detached["data"]["object"]["id"]
    charge["data"]["object"]["payment_method"] = token
    charge["created"] = detached["created"] + 60
    assert signed_post(client, "stripe", detached).status_code == 200
    assert signed_post(client, "stripe", charge).status_code == 200
    assert stored(engine, "payment_methods", token)["status"] == "detached"


# -- every parse refuses with a JSON 400 (or drops the field), never a 5xx ------


def nothing_stored(engine: Engine) -> bool:
    """Return whether every table is empty."""
    return all(rows == [] for rows in all_rows(engine).values())


def assert_refused(response: Any, code: str) -> None:
    """Assert a JSON 400 with the error shape and the given code."""
    assert response.status_code == 400, response.get_data(as_text=True)
    body = response.get_json()
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str)


@pytest.mark.parametrize(
    "value",
    [
        "t={now},v1=" + "\u00e9" * 64,
        "t={now},v1=\u00e9",
        "t={now},v1=" + "a" * 63 + "\u00ff",
        "t=\u00b2,v1=" + "a" * 64,
        "t=99999999999999999999,v1=" + "a" * 64,
        "t={now}," + "v1=" + "a" * 64 + ",v1=" + "b" * 5000,
    ],
    ids=["latin1-signature", "short-latin1", "latin1-tail", "superscript-t", "huge-t", "overlong"],
)
def test_malformed_signature_header_is_a_json_400_and_nothing_stored(
    client: FlaskClient, engine: Engine, value: str
) -> None:
    event = sample("stripe", "charge.succeeded")
    headers = {"Stripe-Signature": value.replace("{now}", str(int(time.time())))}
    response = signed_post(client, "stripe", event, headers=headers)
    assert_refused(response, "verification_failed")
    assert "\u00e9" not in response.get_data(as_text=True)
    assert nothing_stored(engine)


@pytest.mark.parametrize(
    "created", ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+00:01", 253402300800, 2**64 - 1]
)
def test_event_time_out_of_range_is_a_json_400_and_nothing_stored(
    client: FlaskClient, engine: Engine, created: Any
) -> None:
    event = sample("stripe", "charge.succeeded") | {"created": created}
    response = signed_post(client, "stripe", json.dumps(event).encode())
    assert_refused(response, "malformed_body")
    assert nothing_stored(engine)


_EPOCH_VALUES = st.one_of(
    st.integers(),
    st.integers(min_value=253402300790, max_value=253402300810),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.integers().map(str),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=_EPOCH_VALUES)
def test_any_epoch_value_is_kept_or_dropped_never_a_5xx(
    client: FlaskClient, engine: Engine, value: Any
) -> None:
    event = sample("stripe", "customer.subscription.updated")
    event["data"]["object"]["current_period_end"] = value
    event["data"]["object"]["items"]["data"][0]["current_period_end"] = value
    response = signed_post(client, "stripe", json.dumps(event).encode())
    assert response.status_code == 200, response.get_data(as_text=True)
    row = stored(engine, "subscriptions", event["data"]["object"]["id"])
    in_range = type(value) is int and 0 <= value <= 253402300799
    if in_range:
        assert row["current_period_end"] == datetime.fromtimestamp(value, UTC)
    else:
        assert row["current_period_end"] is None
