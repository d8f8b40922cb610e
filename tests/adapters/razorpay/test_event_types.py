"""Razorpay's qr_code.credited and virtual_account.credited, end to end.

Each carries the customer's payment beside the QR code or virtual account it
was paid into: the payment becomes its transaction exactly as payment.captured
makes it, read back through the API; out-of-order deliveries never move it
backwards; card numbers or personal data planted in any field of the payload
are stored, logged and served nowhere.
"""

from __future__ import annotations

import copy
import secrets
import string
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine

from adapters.razorpay import RazorpayAdapter
from gateway.config.settings import Settings
from tests.support.api import bearer, make_key
from tests.support.database import all_rows, assert_nowhere
from tests.support.planting import assert_each_leaf_stays_out, leaf_paths
from tests.support.razorpay_planting import plant
from tests.support.webhooks import sample, signed_post

SECRET = "rzp-current-" + "c" * 32
NEW_TYPES = ("qr_code.credited", "virtual_account.credited")
# A QR code takes UPI or (Bharat QR) cards; a virtual account takes bank transfers.
CASES = [
    ("qr_code.credited", "upi"),
    ("qr_code.credited", "card"),
    ("virtual_account.credited", "netbanking"),
]


@pytest.fixture
def client(make_app: Callable[..., Flask]) -> FlaskClient:
    """Return a client of a gateway with one Razorpay endpoint."""
    endpoint = {"provider": "razorpay", "name": "default", "webhook_secrets": [SECRET]}
    return make_app(endpoints=[endpoint]).test_client()


@pytest.fixture
def auth(engine: Engine) -> dict[str, str]:
    """Return the headers of a records:read key."""
    return bearer(make_key(engine, "records:read"))


def new_id() -> str:
    # Letters only: a digit run in a random id could look like a card number.
    return "evt_" + "".join(secrets.choice(string.ascii_letters) for _ in range(16))


def post(client: FlaskClient, event: dict[str, Any]) -> Any:
    return signed_post(client, "razorpay", event, event_id=new_id())


def payment(event: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = event["payload"]["payment"]["entity"]
    return found


def served(client: FlaskClient, auth: dict[str, str], ident: str) -> dict[str, Any]:
    response = client.get(f"/v1/transactions/razorpay/{ident}", headers=auth)
    assert response.status_code == 200, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


@pytest.mark.parametrize(("event_type", "method"), CASES)
def test_the_payment_is_handled_exactly_as_payment_captured_handles_it(
    event_type: str, method: str
) -> None:
    adapter = RazorpayAdapter(Settings())
    event = sample("razorpay", event_type, method=method)
    captured = {
        "entity": "event",
        "account_id": event["account_id"],
        "event": "payment.captured",
        "contains": ["payment"],
        "payload": {"payment": copy.deepcopy(event["payload"]["payment"])},
        "created_at": event["created_at"],
    }
    credited = adapter.sanitise(event)
    assert credited.handled and credited.dropped == []
    assert credited.records == adapter.sanitise(captured).records


@pytest.mark.parametrize(("event_type", "method"), CASES)
def test_record_is_stored_and_served(
    client: FlaskClient,
    auth: dict[str, str],
    engine: Engine,
    database_url: str,
    event_type: str,
    method: str,
) -> None:
    event = sample("razorpay", event_type, method=method)
    entity = payment(event)
    want = {
        "id": entity["id"],
        "kind": "payment",
        "status": "succeeded",
        "provider_status": "captured",
        "amount": 50000,
        "currency": "INR",
        "customer": entity["customer_id"],
        "charge": entity["id"],
        "order": None,
        "subscription": None,
    }
    planted = plant(event)

    response = post(client, event)

    assert response.get_json()["status"] == "stored"
    body = served(client, auth, entity["id"])
    assert {name: body[name] for name in want} == want
    if method == "card":
        assert body["payment_method"]["token"] == entity["card_id"]
        assert body["payment_method"]["last4"] == "1111"
    else:
        assert body["payment_method"] is None
    rows = all_rows(engine)
    (stored,) = rows["events"]
    assert (stored["type"], stored["outcome"]) == (event_type, "stored")
    # The QR code and the virtual account are not payments: no record of their own.
    assert [row["id"] for row in rows["transactions"]] == [entity["id"]]
    assert_nowhere(planted, engine, database_url, response.get_data(as_text=True), str(body))


@pytest.mark.parametrize("event_type", NEW_TYPES)
def test_a_late_credit_never_moves_a_refunded_payment_back(
    client: FlaskClient, auth: dict[str, str], event_type: str
) -> None:
    credited = sample("razorpay", event_type)
    refunded = sample("razorpay", "refund.processed")
    payment(refunded)["id"] = payment(credited)["id"]
    refunded["payload"]["refund"]["entity"]["payment_id"] = payment(credited)["id"]
    refunded["created_at"] = credited["created_at"] + 3600
    # The refund (newer) arrives first; the credit, delivered late, changes nothing.
    assert post(client, refunded).get_json()["status"] == "stored"
    assert post(client, credited).get_json()["status"] == "stored"
    body = served(client, auth, payment(credited)["id"])
    assert body["status"] == "partially_refunded"


@pytest.mark.parametrize("event_type", NEW_TYPES)
def test_a_credit_after_payment_captured_keeps_one_record(
    client: FlaskClient, auth: dict[str, str], engine: Engine, event_type: str
) -> None:
    credited = sample("razorpay", event_type)
    captured = sample("razorpay", "payment.captured", method="upi")
    payment(captured)["id"] = payment(credited)["id"]
    captured["created_at"] = credited["created_at"] - 5
    assert post(client, captured).get_json()["status"] == "stored"
    assert post(client, credited).get_json()["status"] == "stored"
    assert len(all_rows(engine)["transactions"]) == 1
    assert served(client, auth, payment(credited)["id"])["status"] == "succeeded"


@pytest.mark.parametrize(("event_type", "method"), CASES)
def test_planted_card_numbers_and_personal_data_in_any_field_stay_out(
    client: FlaskClient,
    auth: dict[str, str],
    engine: Engine,
    database_url: str,
    caplog: pytest.LogCaptureFixture,
    event_type: str,
    method: str,
) -> None:
    caplog.set_level("DEBUG")
    event = sample("razorpay", event_type, method=method)
    deliveries = 2 * len(leaf_paths(event))
    stored = assert_each_leaf_stays_out(
        client,
        "razorpay",
        event,
        engine=engine,
        database_url=database_url,
        caplog=caplog,
        auth=auth,
    )
    # Most fields are not kept, so most deliveries are stored (never duplicates).
    assert stored > deliveries // 2
