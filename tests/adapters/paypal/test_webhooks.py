"""PayPal deliveries through the HTTP route, in both verification modes.

PayPal's servers are mocked with responses; the mocked verify endpoint
checks the signature the way PayPal does (CRC32 + SHA256withRSA with the
test certificate), so api mode fails when the gateway sends other bytes.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
import responses
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine

from adapters.paypal.adapter import SUPPORTED_EVENT_TYPES
from tests.support.database import all_rows, assert_nowhere, plain_rows
from tests.support.paypal import CERT_URL, VERIFY_URL, Pki, cert_endpoint, make_pki, mock_paypal
from tests.support.planting import plant
from tests.support.webhooks import sample, signed_post

# The normalised status each event type leaves on its main record.
STATUS = {
    "PAYMENT.SALE.COMPLETED": "succeeded",
    "PAYMENT.SALE.PENDING": "pending",
    "PAYMENT.SALE.DENIED": "failed",
    # The refund (or reversal) transaction PayPal sends completed.
    "PAYMENT.SALE.REFUNDED": "succeeded",
    "PAYMENT.SALE.REVERSED": "succeeded",
    "PAYMENT.CAPTURE.COMPLETED": "succeeded",
    "PAYMENT.CAPTURE.PENDING": "pending",
    "PAYMENT.CAPTURE.DENIED": "failed",
    "PAYMENT.CAPTURE.REFUNDED": "succeeded",
    "PAYMENT.CAPTURE.REVERSED": "refunded",
    "PAYMENT.AUTHORIZATION.CREATED": "authorized",
    "PAYMENT.AUTHORIZATION.VOIDED": "canceled",
    "CHECKOUT.ORDER.APPROVED": "pending",
    "CHECKOUT.ORDER.COMPLETED": "succeeded",
    "BILLING.SUBSCRIPTION.CREATED": "incomplete",
    "BILLING.SUBSCRIPTION.ACTIVATED": "active",
    "BILLING.SUBSCRIPTION.UPDATED": "active",
    "BILLING.SUBSCRIPTION.SUSPENDED": "paused",
    "BILLING.SUBSCRIPTION.CANCELLED": "canceled",
    "BILLING.SUBSCRIPTION.EXPIRED": "expired",
    "BILLING.SUBSCRIPTION.PAYMENT.FAILED": "past_due",
    "VAULT.PAYMENT-TOKEN.CREATED": "active",
    "VAULT.PAYMENT-TOKEN.DELETED": "deleted",
}

# Personal data PayPal sends in keys the shared planter does not rewrite.
PERSONAL_KEYS = frozenset(
    {"payer_id", "account_id", "merchant_id", "href", "birth_date", "status_change_note"}
)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Return a test PKI shared by this module."""
    return make_pki(tmp_path_factory.mktemp("paypal-webhooks-pki"))


@dataclass
class PayPal:
    """A gateway with one PayPal endpoint, and PayPal's mocked servers."""

    mode: str
    client: FlaskClient
    servers: responses.RequestsMock


@pytest.fixture
def paypal(
    request: pytest.FixtureRequest, make_app: Callable[..., Flask], pki: Pki
) -> Iterator[PayPal]:
    """Return a gateway verifying PayPal in the requested mode against mocked servers."""
    mode: str = request.param
    with responses.RequestsMock(assert_all_requests_are_fired=False) as servers:
        app = make_app(endpoints=[mock_paypal(servers, mode, pki)])
        yield PayPal(mode, app.test_client(), servers)


both_modes = pytest.mark.parametrize("paypal", ["api", "cert"], indirect=True)


def personal_values(node: Any) -> list[str]:
    """Return the personal values an event carries in keys the planter leaves alone."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, child in node.items():
            if key in PERSONAL_KEYS and isinstance(child, str) and len(child) >= 5:
                found.append(child)
            else:
                found.extend(personal_values(child))
    elif isinstance(node, list):
        for child in node:
            found.extend(personal_values(child))
    return found


def expected(event: dict[str, Any]) -> list[tuple[str, str, str, dict[str, Any]]]:
    """Return (table, key column, key, values) for each record the event must leave."""
    kind = event["event_type"]
    res = event["resource"]
    status = STATUS[kind]
    if kind.startswith("VAULT."):
        values: dict[str, Any] = {"status": status}
        if "payment_source" in res:
            values |= {
                "customer": res["customer"]["id"],
                "brand": "visa",
                "last4": "7704",
                "exp_year": 2029,
                "exp_month": 11,
            }
        return [("payment_methods", "token", res["id"], values)]
    if kind.startswith("BILLING."):
        values = {"plan": res["plan_id"], "status": status, "provider_status": res["status"]}
        return [("subscriptions", "id", res["id"], values)]
    if kind.startswith("CHECKOUT."):
        values = {
            "kind": "payment",
            "status": status,
            "provider_status": res["status"],
            "amount": 4250,
            "currency": "USD",
            "order": res["id"],
        }
        rows = []
        card = res["payment_source"].get("card")
        if card is not None:
            vault = card["attributes"]["vault"]
            values |= {"payment_method": vault["id"], "customer": vault["customer"]["id"]}
            rows.append(
                (
                    "payment_methods",
                    "token",
                    vault["id"],
                    {
                        "brand": "visa",
                        "last4": "7704",
                        "exp_month": 11,
                        "exp_year": 2029,
                        "customer": vault["customer"]["id"],
                        "status": "active",
                    },
                )
            )
        rows.append(("transactions", "id", res["id"], values))
        for capture in res["purchase_units"][0].get("payments", {}).get("captures", []):
            rows.append(
                (
                    "transactions",
                    "id",
                    capture["id"],
                    {
                        "kind": "payment",
                        "status": "succeeded",
                        "amount": 4250,
                        "currency": "USD",
                        "order": res["id"],
                    },
                )
            )
        return rows
    if kind.startswith("PAYMENT.SALE."):
        values = {
            "kind": "refund"
            if kind in ("PAYMENT.SALE.REFUNDED", "PAYMENT.SALE.REVERSED")
            else "payment",
            "status": status,
            "provider_status": res["state"],
            "amount": 999,
            "currency": "USD",
            "subscription": res.get("billing_agreement_id"),
            "order": res.get("parent_payment"),
            "refund_of": res.get("sale_id"),
        }
        return [("transactions", "id", res["id"], values)]
    if kind == "PAYMENT.CAPTURE.REFUNDED":
        capture = res["links"][1]["href"].rsplit("/", 1)[1]
        values = {
            "kind": "refund",
            "status": status,
            "amount": 4250,
            "currency": "USD",
            "refund_of": capture,
        }
        return [("transactions", "id", res["id"], values)]
    values = {
        "kind": "payment",
        "status": status,
        "provider_status": res["status"],
        "amount": 4250,
        "currency": "USD",
        "order": res["supplementary_data"]["related_ids"]["order_id"],
    }
    return [("transactions", "id", res["id"], values)]


def _row(engine: Engine, table: str, column: str, key: str) -> dict[str, Any]:
    rows = [r for r in plain_rows(engine)[table] if r[column] == key]
    assert len(rows) == 1, f"expected one {table} row for the key"
    return rows[0]


@both_modes
@pytest.mark.parametrize("event_type", SUPPORTED_EVENT_TYPES)
def test_every_event_type_keeps_only_the_allowlist(
    paypal: PayPal, engine: Engine, database_url: str, event_type: str
) -> None:
    event = sample("paypal", event_type)
    personal = personal_values(event)
    want = expected(copy.deepcopy(event))
    planted = plant(event)
    assert personal and planted

    response = signed_post(paypal.client, "paypal", event)

    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"status": "stored", "event_id": event["id"]}
    for table, column, key, values in want:
        row = _row(engine, table, column, key)
        assert {k: row[k] for k in values} == values
        assert row["provider"] == "paypal" and row["last_event_id"] == event["id"]
    stored = all_rows(engine)["events"]
    assert [(e["id"], e["type"], e["outcome"]) for e in stored] == [
        (event["id"], event_type, "stored")
    ]
    assert_nowhere(planted + personal, engine, database_url, response.get_data(as_text=True))


@both_modes
def test_subscription_period_end_is_kept(paypal: PayPal, engine: Engine) -> None:
    event = sample("paypal", "BILLING.SUBSCRIPTION.ACTIVATED")
    assert signed_post(paypal.client, "paypal", event).status_code == 200
    row = _row(engine, "subscriptions", "id", event["resource"]["id"])
    assert (
        row["current_period_end"].strftime("%Y-%m-%dT%H:%M:%SZ")
        == (event["resource"]["billing_info"]["next_billing_time"])
    )


@both_modes
@pytest.mark.parametrize(
    ("currency", "value", "minor"),
    [
        ("USD", "42.50", 4250),
        ("USD", "0.01", 1),
        ("USD", "1000", 100000),
        ("JPY", "4250", 4250),
        ("KWD", "12.345", 12345),
        ("KWD", "12.3", 12300),
    ],
)
def test_amount_conversion(
    paypal: PayPal, engine: Engine, currency: str, value: str, minor: int
) -> None:
    event = sample("paypal", "PAYMENT.CAPTURE.COMPLETED")
    event["resource"]["amount"] = {"currency_code": currency, "value": value}
    assert signed_post(paypal.client, "paypal", event).status_code == 200
    row = _row(engine, "transactions", "id", event["resource"]["id"])
    assert (row["amount"], row["currency"]) == (minor, currency)


@both_modes
@pytest.mark.parametrize(
    "amount",
    [
        {"currency_code": "USD", "value": "42.505"},
        {"currency_code": "JPY", "value": "4250.5"},
        {"currency_code": "KWD", "value": "1.2345"},
        {"currency_code": "USD", "value": "-42.50"},
        {"currency_code": "USD", "value": "4e3"},
        {"currency_code": "USD", "value": "12.3.4"},
        {"currency_code": "USD", "value": ""},
        {"currency_code": "USD", "value": 42.5},
        {"currency_code": "XXZ", "value": "42.50"},
        {"value": "42.50"},
        "42.50 USD",
    ],
)
def test_malformed_amount_is_refused_and_nothing_stored(
    paypal: PayPal, engine: Engine, database_url: str, amount: Any
) -> None:
    event = sample("paypal", "PAYMENT.CAPTURE.COMPLETED")
    event["resource"]["amount"] = amount
    planted = plant(event)
    response = signed_post(paypal.client, "paypal", event)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "malformed_body"
    assert all(rows == [] for rows in all_rows(engine).values())
    # The error names the field, never the value that was sent.
    text = response.get_data(as_text=True)
    assert "42.5" not in text and "4e3" not in text
    assert_nowhere(planted, engine, database_url, text)


@both_modes
def test_duplicate_delivery(paypal: PayPal, engine: Engine) -> None:
    event = sample("paypal", "PAYMENT.CAPTURE.COMPLETED")
    assert signed_post(paypal.client, "paypal", event).get_json()["status"] == "stored"
    assert signed_post(paypal.client, "paypal", event).get_json()["status"] == "duplicate"
    assert len(all_rows(engine)["events"]) == 1


@both_modes
def test_unknown_event_type_is_ignored(paypal: PayPal, engine: Engine) -> None:
    event = sample("paypal", "PAYMENT.CAPTURE.COMPLETED")
    event["event_type"] = "CUSTOMER.DISPUTE.CREATED"
    planted = plant(event)
    response = signed_post(paypal.client, "paypal", event)
    assert response.get_json() == {"status": "ignored", "event_id": event["id"]}
    rows = all_rows(engine)
    assert rows["transactions"] == [] and rows["events"][0]["outcome"] == "ignored"
    assert all(p not in repr(rows) for p in planted)


@both_modes
def test_tampered_body_is_refused(paypal: PayPal, engine: Engine) -> None:
    event = sample("paypal", "PAYMENT.CAPTURE.COMPLETED")
    raw = orjson.dumps(event)
    headers = _headers(paypal, raw)
    tampered = raw.replace(b'"42.50"', b'"0.01"')
    response = paypal.client.post("/webhooks/paypal", data=tampered, headers=headers)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "verification_failed"
    assert all(rows == [] for rows in all_rows(engine).values())


@both_modes
def test_replayed_old_transmission_is_refused(paypal: PayPal, engine: Engine) -> None:
    event = sample("paypal", "PAYMENT.CAPTURE.COMPLETED")
    response = signed_post(paypal.client, "paypal", event, timestamp=int(time.time()) - 3600)
    assert response.status_code == 400
    assert "too old" in response.get_json()["error"]["message"]
    assert all(rows == [] for rows in all_rows(engine).values())


@both_modes
def test_non_paypal_cert_url_is_refused_unfetched(paypal: PayPal, engine: Engine) -> None:
    evil = paypal.servers.get("https://evil.example/cert.pem", body=b"")
    event = sample("paypal", "PAYMENT.CAPTURE.COMPLETED")
    response = signed_post(
        paypal.client, "paypal", event, headers={"PAYPAL-CERT-URL": "https://evil.example/cert.pem"}
    )
    assert response.status_code == 400
    assert evil.call_count == 0 and len(paypal.servers.calls) == 0
    assert all(rows == [] for rows in all_rows(engine).values())


@pytest.mark.parametrize("paypal", ["api"], indirect=True)
def test_paypal_down_is_503_and_nothing_stored(paypal: PayPal, engine: Engine) -> None:
    paypal.servers.replace(responses.POST, VERIFY_URL, status=503)
    event = sample("paypal", "PAYMENT.CAPTURE.COMPLETED")
    response = signed_post(paypal.client, "paypal", event)
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert response.get_json()["error"]["code"] == "upstream_unavailable"
    assert all(rows == [] for rows in all_rows(engine).values())


def test_endpoint_without_webhook_id_is_disabled(make_app: Callable[..., Flask], pki: Pki) -> None:
    table = cert_endpoint(pki)
    del table["webhook_id"]
    client = make_app(endpoints=[table]).test_client()
    event = sample("paypal", "PAYMENT.CAPTURE.COMPLETED")
    response = client.post(
        "/webhooks/paypal", data=orjson.dumps(event), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 404


def test_named_endpoint_uses_its_own_webhook_id(
    make_app: Callable[..., Flask], pki: Pki, engine: Engine, tmp_path: Any
) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as servers:
        servers.get(CERT_URL, body=pki.chain_pem())
        eu = cert_endpoint(pki, name="eu", webhook_id="9XY12345AB6789012")
        client = make_app(endpoints=[cert_endpoint(pki), eu]).test_client()
        event = sample("paypal", "PAYMENT.CAPTURE.COMPLETED")
        assert signed_post(client, "paypal", event, endpoint="eu").status_code == 200
        # Signed for "eu" but posted to "default": the webhook id differs, so it fails.
        raw = orjson.dumps(sample("paypal", "PAYMENT.CAPTURE.COMPLETED"))
        adapter = client.application.extensions["paysieve.pipeline"].adapters["paypal"]
        settings = client.application.extensions["paysieve.settings"]
        headers = adapter.sign(
            raw, settings.endpoint("paypal", "eu"), timestamp=int(time.time()), event_id="x"
        )
        headers["Content-Type"] = "application/json"
        assert client.post("/webhooks/paypal", data=raw, headers=headers).status_code == 400
    assert [r["account"] for r in all_rows(engine)["transactions"]] == ["eu"]


def _headers(paypal: PayPal, raw: bytes) -> dict[str, str]:
    app = paypal.client.application
    adapter = app.extensions["paysieve.pipeline"].adapters["paypal"]
    config = app.extensions["paysieve.settings"].endpoint("paypal", "default")
    headers: dict[str, str] = adapter.sign(raw, config, timestamp=int(time.time()), event_id="x")
    headers["Content-Type"] = "application/json"
    return headers
