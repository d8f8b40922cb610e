"""Stripe's refund.failed and delayed Checkout Session payments, end to end.

Each is delivered over the webhook route, then read back through the API:
the record is right (amount, currency, status, ids, links), out-of-order
deliveries never move it backwards, and card numbers or personal data
planted in any field of the payload are stored, logged and served nowhere.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine

from tests.support.api import bearer, make_key
from tests.support.database import all_rows, assert_nowhere
from tests.support.planting import assert_each_leaf_stays_out, leaf_paths, plant
from tests.support.webhooks import sample, signed_post

NEW_TYPES = (
    "refund.failed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
)


@pytest.fixture
def auth(engine: Engine) -> dict[str, str]:
    """Return the headers of a records:read key."""
    return bearer(make_key(engine, "records:read"))


def served(client: FlaskClient, auth: dict[str, str], ident: str) -> dict[str, Any]:
    response = client.get(f"/v1/transactions/stripe/{ident}", headers=auth)
    assert response.status_code == 200, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def expected(event: dict[str, Any]) -> dict[str, Any]:
    """Return the transaction fields the event's object must leave, as served."""
    obj = event["data"]["object"]
    base = {"id": obj["id"], "amount": 4999, "currency": "USD", "last_event_id": event["id"]}
    if event["type"] == "refund.failed":
        return base | {
            "kind": "refund",
            "status": "failed",
            "provider_status": "failed",
            "charge": obj["charge"],
            "refund_of": obj["charge"],
            "payment_intent": obj["payment_intent"],
        }
    paid = event["type"].endswith("succeeded")
    return base | {
        "kind": "payment",
        "status": "succeeded" if paid else "failed",
        "provider_status": "paid" if paid else "unpaid",
        "customer": obj["customer"],
        "subscription": obj["subscription"],
        "invoice": obj["invoice"],
        "payment_intent": None,
    }


@pytest.mark.parametrize("event_type", NEW_TYPES)
def test_record_is_stored_and_served(
    client: FlaskClient, auth: dict[str, str], engine: Engine, database_url: str, event_type: str
) -> None:
    event = sample("stripe", event_type)
    want = expected(event)
    planted = plant(event)

    response = signed_post(client, "stripe", event)

    assert response.get_json() == {"status": "stored", "event_id": event["id"]}
    body = served(client, auth, want["id"])
    assert {name: body[name] for name in want} == want
    (stored,) = all_rows(engine)["events"]
    assert (stored["type"], stored["outcome"]) == (event_type, "stored")
    assert_nowhere(planted, engine, database_url, response.get_data(as_text=True), str(body))


def test_the_delayed_session_samples_name_their_subscription_and_invoice() -> None:
    # A test of the expectations themselves: the links they read are set.
    obj = sample("stripe", "checkout.session.async_payment_succeeded")["data"]["object"]
    assert obj["subscription"].startswith("sub_") and obj["invoice"].startswith("in_")
    assert obj["payment_method_types"] == ["us_bank_account"]


@pytest.mark.parametrize(
    ("first", "then", "status"),
    [
        # A refund that failed after it succeeded: the later word wins...
        ("refund.updated", "refund.failed", "failed"),
        # ...and a delayed payment's outcome is not undone by a late completed.
        ("checkout.session.completed", "checkout.session.async_payment_succeeded", "succeeded"),
        ("checkout.session.completed", "checkout.session.async_payment_failed", "failed"),
    ],
)
def test_out_of_order_deliveries_never_move_a_record_back(
    client: FlaskClient, auth: dict[str, str], first: str, then: str, status: str
) -> None:
    older = sample("stripe", first)
    newer = sample("stripe", then)
    older["created"] = newer["created"] - 600
    older["data"]["object"]["id"] = newer["data"]["object"]["id"]
    if first == "checkout.session.completed":
        # A delayed-payment session completes unpaid.
        older["data"]["object"]["payment_status"] = "unpaid"
    # The newer event arrives first; the older one, delivered late, changes nothing.
    assert signed_post(client, "stripe", newer).get_json()["status"] == "stored"
    assert signed_post(client, "stripe", older).get_json()["status"] == "stored"
    body = served(client, auth, newer["data"]["object"]["id"])
    assert body["status"] == status and body["last_event_id"] == newer["id"]


def test_in_order_a_delayed_payment_settles_the_session(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    completed = sample("stripe", "checkout.session.completed")
    completed["data"]["object"]["payment_status"] = "unpaid"
    settled = sample("stripe", "checkout.session.async_payment_succeeded")
    settled["data"]["object"]["id"] = completed["data"]["object"]["id"]
    settled["created"] = completed["created"] + 3 * 86400
    assert signed_post(client, "stripe", completed).status_code == 200
    assert served(client, auth, completed["data"]["object"]["id"])["status"] == "pending"
    assert signed_post(client, "stripe", settled).status_code == 200
    assert served(client, auth, completed["data"]["object"]["id"])["status"] == "succeeded"


@pytest.mark.parametrize("event_type", NEW_TYPES)
def test_planted_card_numbers_and_personal_data_in_any_field_stay_out(
    client: FlaskClient,
    auth: dict[str, str],
    engine: Engine,
    database_url: str,
    caplog: pytest.LogCaptureFixture,
    event_type: str,
) -> None:
    caplog.set_level("DEBUG")
    event = sample("stripe", event_type)
    deliveries = 2 * len(leaf_paths(event))
    stored = assert_each_leaf_stays_out(
        client,
        "stripe",
        event,
        engine=engine,
        database_url=database_url,
        caplog=caplog,
        auth=auth,
    )
    # Most fields are not kept, so most deliveries are stored (never duplicates).
    assert stored > deliveries // 2
