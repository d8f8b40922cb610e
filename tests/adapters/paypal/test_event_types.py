"""PayPal's Payments v1 events (sales, refunds, reversals, authorizations) and subscription plans.

Each is delivered over the webhook route, then read back through the API:
the record is right (amount, currency, status, ids, links), out-of-order
deliveries never move it backwards, and card numbers or personal data
planted in any field of the payload are stored, logged and served nowhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import responses
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine

from tests.support.api import bearer, make_key
from tests.support.database import all_rows, assert_nowhere
from tests.support.paypal import Pki, make_pki, mock_paypal
from tests.support.planting import assert_each_leaf_stays_out, leaf_paths, plant
from tests.support.webhooks import sample, signed_post

SALE_TYPES = (
    "PAYMENT.SALE.COMPLETED",
    "PAYMENT.SALE.PENDING",
    "PAYMENT.SALE.DENIED",
    "PAYMENT.SALE.REFUNDED",
    "PAYMENT.SALE.REVERSED",
)
V1_AUTHORIZATION_TYPES = ("PAYMENT.AUTHORIZATION.CREATED", "PAYMENT.AUTHORIZATION.VOIDED")
# (event type, resource version) of every payload shape this module covers.
NEW_SHAPES = [(t, "1.0") for t in SALE_TYPES + V1_AUTHORIZATION_TYPES]
SUBSCRIPTION_TYPES = (
    "BILLING.SUBSCRIPTION.CREATED",
    "BILLING.SUBSCRIPTION.ACTIVATED",
    "BILLING.SUBSCRIPTION.UPDATED",
    "BILLING.SUBSCRIPTION.SUSPENDED",
    "BILLING.SUBSCRIPTION.CANCELLED",
    "BILLING.SUBSCRIPTION.EXPIRED",
    "BILLING.SUBSCRIPTION.PAYMENT.FAILED",
)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Return a test PKI shared by this module."""
    return make_pki(tmp_path_factory.mktemp("paypal-event-types-pki"))


@pytest.fixture
def client(make_app: Callable[..., Flask], pki: Pki) -> Iterator[FlaskClient]:
    """Return a client of a gateway verifying PayPal offline (cert mode)."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as servers:
        app = make_app(endpoints=[mock_paypal(servers, "cert", pki)])
        yield app.test_client()


@pytest.fixture
def auth(engine: Engine) -> dict[str, str]:
    """Return the headers of a records:read key."""
    return bearer(make_key(engine, "records:read"))


def v1(event_type: str) -> dict[str, Any]:
    """Return a sample of the type with its Payments v1 resource."""
    return sample("paypal", event_type, version="1.0")


def served(client: FlaskClient, auth: dict[str, str], ident: str) -> dict[str, Any]:
    response = client.get(f"/v1/transactions/paypal/{ident}", headers=auth)
    assert response.status_code == 200, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def expected(event: dict[str, Any]) -> dict[str, Any]:
    """Return the transaction fields the event's resource must leave, as served."""
    res = event["resource"]
    base = {"id": res["id"], "currency": "USD", "last_event_id": event["id"]}
    by_type: dict[str, dict[str, Any]] = {
        "PAYMENT.SALE.COMPLETED": {
            "kind": "payment",
            "status": "succeeded",
            "provider_status": "completed",
            "amount": 999,
            "subscription": res.get("billing_agreement_id"),
            "order": None,
            "refund_of": None,
        },
        "PAYMENT.SALE.PENDING": {
            "kind": "payment",
            "status": "pending",
            "provider_status": "pending",
            "amount": 999,
            "subscription": None,
            "order": res.get("parent_payment"),
        },
        "PAYMENT.SALE.DENIED": {
            "kind": "payment",
            "status": "failed",
            "provider_status": "denied",
            "amount": 999,
            "subscription": res.get("billing_agreement_id"),
        },
        "PAYMENT.SALE.REFUNDED": {
            "kind": "refund",
            "status": "succeeded",
            "provider_status": "completed",
            "amount": 999,
            "refund_of": res.get("sale_id"),
            "order": res.get("parent_payment"),
        },
        # PayPal's reversal total is negative; the refund record keeps what went back.
        "PAYMENT.SALE.REVERSED": {
            "kind": "refund",
            "status": "succeeded",
            "provider_status": "completed",
            "amount": 999,
            "refund_of": None,
        },
        "PAYMENT.AUTHORIZATION.CREATED": {
            "kind": "payment",
            "status": "authorized",
            "provider_status": "authorized",
            "amount": 4250,
            "order": res.get("parent_payment"),
        },
        "PAYMENT.AUTHORIZATION.VOIDED": {
            "kind": "payment",
            "status": "canceled",
            "provider_status": "voided",
            "amount": 4250,
            "order": res.get("parent_payment"),
        },
    }
    return base | by_type[event["event_type"]]


def test_the_samples_carry_the_links_the_records_keep() -> None:
    # A test of the expectations themselves: each link they read is in the sample.
    assert v1("PAYMENT.SALE.COMPLETED")["resource"]["billing_agreement_id"].startswith("I-")
    assert v1("PAYMENT.SALE.PENDING")["resource"]["parent_payment"].startswith("PAY-")
    refund = v1("PAYMENT.SALE.REFUNDED")["resource"]
    assert refund["sale_id"] and refund["parent_payment"].startswith("PAY-")
    assert v1("PAYMENT.SALE.REVERSED")["resource"]["amount"]["total"].startswith("-")
    assert v1("PAYMENT.AUTHORIZATION.CREATED")["resource"]["state"] == "authorized"


@pytest.mark.parametrize(("event_type", "version"), NEW_SHAPES)
def test_record_is_stored_and_served(
    client: FlaskClient,
    auth: dict[str, str],
    engine: Engine,
    database_url: str,
    event_type: str,
    version: str,
) -> None:
    event = sample("paypal", event_type, version=version)
    want = expected(event)
    planted = plant(event)

    response = signed_post(client, "paypal", event)

    assert response.get_json() == {"status": "stored", "event_id": event["id"]}
    body = served(client, auth, want["id"])
    assert {name: body[name] for name in want} == want
    assert body["provider"] == "paypal" and body["payment_method"] is None
    (stored,) = all_rows(engine)["events"]
    assert (stored["type"], stored["outcome"], stored["dropped_fields"]) == (
        event_type,
        "stored",
        0,
    )
    assert_nowhere(planted, engine, database_url, response.get_data(as_text=True), str(body))


def test_a_subscription_sale_and_its_refund_are_linked(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    sale = v1("PAYMENT.SALE.COMPLETED")
    refund = v1("PAYMENT.SALE.REFUNDED")
    refund["resource"]["sale_id"] = sale["resource"]["id"]
    for event in (sale, refund):
        assert signed_post(client, "paypal", event).get_json()["status"] == "stored"
    subscription = sale["resource"]["billing_agreement_id"]
    listed = client.get("/v1/transactions?provider=paypal&limit=10", headers=auth).get_json()
    by_id = {row["id"]: row for row in listed["data"]}
    assert by_id[sale["resource"]["id"]]["subscription"] == subscription
    assert by_id[refund["resource"]["id"]]["refund_of"] == sale["resource"]["id"]


@pytest.mark.parametrize("event_type", SUBSCRIPTION_TYPES)
def test_subscription_plan_is_served(
    client: FlaskClient, auth: dict[str, str], event_type: str
) -> None:
    event = sample("paypal", event_type)
    assert signed_post(client, "paypal", event).get_json()["status"] == "stored"
    res = event["resource"]
    body = client.get(f"/v1/subscriptions/paypal/{res['id']}", headers=auth).get_json()
    assert body["plan"] == res["plan_id"]
    assert body["plan"].startswith("P-")


def _at(event: dict[str, Any], moment: str) -> dict[str, Any]:
    event["create_time"] = moment
    return event


@pytest.mark.parametrize(
    ("older", "newer", "status"),
    [
        ("PAYMENT.SALE.PENDING", "PAYMENT.SALE.COMPLETED", "succeeded"),
        ("PAYMENT.SALE.COMPLETED", "PAYMENT.SALE.DENIED", "failed"),
        ("PAYMENT.AUTHORIZATION.CREATED", "PAYMENT.AUTHORIZATION.VOIDED", "canceled"),
    ],
)
def test_out_of_order_deliveries_never_move_a_record_back(
    client: FlaskClient, auth: dict[str, str], older: str, newer: str, status: str
) -> None:
    first = _at(v1(older), "2026-03-02T10:00:00Z")
    second = _at(v1(newer), "2026-03-02T10:05:00Z")
    second["resource"]["id"] = first["resource"]["id"]
    # The newer event arrives first; the older one, delivered late, changes nothing.
    assert signed_post(client, "paypal", second).get_json()["status"] == "stored"
    assert signed_post(client, "paypal", first).get_json()["status"] == "stored"
    body = served(client, auth, first["resource"]["id"])
    assert body["status"] == status and body["last_event_id"] == second["id"]


@pytest.mark.parametrize(
    ("event_type", "currency", "total", "minor"),
    [
        ("PAYMENT.SALE.COMPLETED", "USD", "9.99", 999),
        ("PAYMENT.SALE.COMPLETED", "USD", "10", 1000),
        ("PAYMENT.SALE.COMPLETED", "JPY", "1200", 1200),
        ("PAYMENT.SALE.COMPLETED", "KWD", "12.345", 12345),
        ("PAYMENT.AUTHORIZATION.CREATED", "EUR", "0.01", 1),
        ("PAYMENT.SALE.REFUNDED", "USD", "9.99", 999),
        ("PAYMENT.SALE.REFUNDED", "USD", "-9.99", 999),
        ("PAYMENT.SALE.REVERSED", "JPY", "-1200", 1200),
    ],
)
def test_v1_amount_conversion(
    client: FlaskClient,
    auth: dict[str, str],
    event_type: str,
    currency: str,
    total: str,
    minor: int,
) -> None:
    event = v1(event_type)
    event["resource"]["amount"] = {"total": total, "currency": currency, "details": {}}
    assert signed_post(client, "paypal", event).status_code == 200
    body = served(client, auth, event["resource"]["id"])
    assert (body["amount"], body["currency"]) == (minor, currency)


@pytest.mark.parametrize("event_type", ["PAYMENT.SALE.COMPLETED", "PAYMENT.AUTHORIZATION.CREATED"])
@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ({"total": "9.999", "currency": "USD"}, "resource.amount is not a valid USD amount"),
        ({"total": "1200.5", "currency": "JPY"}, "resource.amount is not a valid JPY amount"),
        ({"total": "-9.99", "currency": "USD"}, "resource.amount is not a valid USD amount"),
        ({"total": "4e3", "currency": "USD"}, "resource.amount is not a valid USD amount"),
        ({"total": "", "currency": "USD"}, "resource.amount is not a valid USD amount"),
        ({"total": 9.99, "currency": "USD"}, "resource.amount is not a valid PayPal amount"),
        ({"total": "9.99", "currency": "XXZ"}, "resource.amount is not a valid PayPal amount"),
        ({"total": "9.99"}, "resource.amount is not a valid PayPal amount"),
        ("9.99 USD", "resource.amount is not a valid PayPal amount"),
    ],
)
def test_malformed_v1_amount_is_refused_and_nothing_stored(
    client: FlaskClient,
    engine: Engine,
    database_url: str,
    event_type: str,
    amount: Any,
    message: str,
) -> None:
    event = v1(event_type)
    event["resource"]["amount"] = amount
    planted = plant(event)
    response = signed_post(client, "paypal", event)
    assert response.status_code == 400
    assert response.get_json()["error"] == {"code": "malformed_body", "message": message}
    assert all(rows == [] for rows in all_rows(engine).values())
    assert_nowhere(planted, engine, database_url, response.get_data(as_text=True))


def test_a_refund_sign_is_not_accepted_twice(client: FlaskClient) -> None:
    event = v1("PAYMENT.SALE.REFUNDED")
    event["resource"]["amount"] = {"total": "--9.99", "currency": "USD"}
    response = signed_post(client, "paypal", event)
    assert response.status_code == 400
    assert response.get_json()["error"]["message"] == "resource.amount is not a valid USD amount"


@pytest.mark.parametrize(("event_type", "version"), NEW_SHAPES)
def test_planted_card_numbers_and_personal_data_in_any_field_stay_out(
    client: FlaskClient,
    auth: dict[str, str],
    engine: Engine,
    database_url: str,
    caplog: pytest.LogCaptureFixture,
    event_type: str,
    version: str,
) -> None:
    caplog.set_level("DEBUG")
    event = sample("paypal", event_type, version=version)
    deliveries = 2 * len(leaf_paths(event))
    stored = assert_each_leaf_stays_out(
        client,
        "paypal",
        event,
        engine=engine,
        database_url=database_url,
        caplog=caplog,
        auth=auth,
    )
    # Most fields are not kept, so most deliveries are stored (never duplicates).
    assert stored > deliveries // 2


@pytest.mark.parametrize(
    ("event_type", "state", "status"),
    [
        ("PAYMENT.SALE.REFUNDED", "refunded", "refunded"),
        ("PAYMENT.SALE.REFUNDED", "partially_refunded", "partially_refunded"),
        ("PAYMENT.SALE.REVERSED", "reversed", "refunded"),
    ],
)
def test_a_sale_resource_in_a_refund_event_updates_the_sale(
    client: FlaskClient, auth: dict[str, str], event_type: str, state: str, status: str
) -> None:
    completed = _at(v1("PAYMENT.SALE.COMPLETED"), "2026-03-02T10:00:00Z")
    # Some deliveries carry the sale itself, in its new state, instead of the refund.
    changed = _at(v1("PAYMENT.SALE.COMPLETED"), "2026-03-02T11:00:00Z")
    changed["event_type"] = event_type
    changed["resource"] |= {
        "id": completed["resource"]["id"],
        "billing_agreement_id": completed["resource"]["billing_agreement_id"],
        "state": state,
    }
    for event in (completed, changed):
        assert signed_post(client, "paypal", event).get_json()["status"] == "stored"
    body = served(client, auth, completed["resource"]["id"])
    assert (body["kind"], body["status"], body["provider_status"]) == ("payment", status, state)
    assert body["subscription"] == completed["resource"]["billing_agreement_id"]


@pytest.mark.parametrize(
    ("state", "status"),
    [("pending", "pending"), ("captured", "succeeded"), ("expired", "canceled"), ("new", None)],
)
def test_v1_authorization_states(
    client: FlaskClient, auth: dict[str, str], state: str, status: str | None
) -> None:
    event = v1("PAYMENT.AUTHORIZATION.CREATED")
    event["resource"]["state"] = state
    assert signed_post(client, "paypal", event).status_code == 200
    body = served(client, auth, event["resource"]["id"])
    # A word PayPal may add later still yields a record: the status the event type implies.
    assert body["status"] == (status or "authorized") and body["provider_status"] == state


SEPARATED = [
    "4111-1111-1111-1111",
    "4111_1111_1111_1111",
    "4111\u00a01111\u00a01111\u00a01111",
    "4111\u200b1111\u200b1111\u200b1111",
    "4111:1111:1111:1111",
]


@pytest.mark.parametrize("pan", SEPARATED)
@pytest.mark.parametrize(
    "where", ["billing_agreement_id", "parent_payment", "id", "event_type", "key name"]
)
def test_a_v1_sale_smuggling_a_card_number_stores_none_of_it(
    client: FlaskClient, engine: Engine, database_url: str, pan: str, where: str
) -> None:
    event = sample("paypal", "PAYMENT.SALE.COMPLETED", version="1.0")
    resource = event["resource"]
    if where == "event_type":
        event["event_type"] = f"PAYMENT.SALE.{pan}"
    elif where == "key name":
        resource[pan] = "x"
    else:
        resource[where] = pan
    response = signed_post(client, "paypal", event)
    assert response.status_code < 500
    assert response.is_json
    assert pan not in response.get_data(as_text=True)
    again = signed_post(client, "paypal", event)
    assert again.status_code < 500
    # Neither as sent nor with its separators taken out.
    assert_nowhere([pan, "4111111111111111"], engine, database_url, response.get_data(as_text=True))
