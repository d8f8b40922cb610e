"""Unit tests for the Stripe adapter: verification, meta, allowlist and samples."""

from __future__ import annotations

import copy
import re
import time
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import Headers

from adapters.registry import adapter_classes
from adapters.stripe import SUPPORTED_EVENT_TYPES, StripeAdapter
from gateway.config.settings import EndpointConfig, Settings
from gateway.core.errors import MalformedBody, VerificationError
from gateway.core.records import Sanitised

FIRST = "whsec_test_first_0123456789abcdef"
SECOND = "whsec_test_second_fedcba9876543210"
TOLERANCE = 300


@pytest.fixture
def adapter() -> StripeAdapter:
    return StripeAdapter(Settings(tolerance_seconds=TOLERANCE))


@pytest.fixture
def endpoint() -> EndpointConfig:
    return EndpointConfig(provider="stripe", webhook_secrets=(FIRST, SECOND))


def signed(
    adapter: StripeAdapter,
    body: bytes,
    *,
    secret: str = FIRST,
    timestamp: int | None = None,
) -> Headers:
    """Return werkzeug headers carrying the adapter's own signature for body."""
    config = EndpointConfig(provider="stripe", webhook_secrets=(secret,))
    stamp = int(time.time()) if timestamp is None else timestamp
    return Headers(adapter.sign(body, config, timestamp=stamp, event_id="evt_test"))


def body_of(event: dict[str, Any]) -> bytes:
    return orjson.dumps(event)


def get(event: dict[str, Any], path: str) -> Any:
    """Return the value at a dotted path (list indices as numbers)."""
    node: Any = event
    for part in path.split("."):
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def put(event: dict[str, Any], path: str, value: Any) -> None:
    """Set the value at a dotted path."""
    *parents, last = path.split(".")
    node = get(event, ".".join(parents)) if parents else event
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


# -- verification -------------------------------------------------------------


def test_verify_accepts_first_secret(adapter: StripeAdapter, endpoint: EndpointConfig) -> None:
    body = body_of(adapter.sample_event("charge.succeeded"))
    adapter.verify(body, signed(adapter, body, secret=FIRST), endpoint)


def test_verify_accepts_second_secret_during_rotation(
    adapter: StripeAdapter, endpoint: EndpointConfig
) -> None:
    body = body_of(adapter.sample_event("charge.succeeded"))
    adapter.verify(body, signed(adapter, body, secret=SECOND), endpoint)


def test_verify_reads_header_case_insensitively(
    adapter: StripeAdapter, endpoint: EndpointConfig
) -> None:
    body = b'{"id": "evt_1"}'
    value = signed(adapter, body)["Stripe-Signature"]
    adapter.verify(body, Headers({"stripe-signature": value}), endpoint)


def test_verify_accepts_slightly_future_timestamp(
    adapter: StripeAdapter, endpoint: EndpointConfig
) -> None:
    body = b'{"id": "evt_1"}'
    adapter.verify(body, signed(adapter, body, timestamp=int(time.time()) + 60), endpoint)


def test_verify_accepts_any_of_several_v1_signatures(
    adapter: StripeAdapter, endpoint: EndpointConfig
) -> None:
    body = b'{"id": "evt_1"}'
    value = signed(adapter, body)["Stripe-Signature"]
    stamp, v1 = value.split(",")
    headers = Headers({"Stripe-Signature": f"{stamp},v1={'0' * 64},{v1},v0={'1' * 64}"})
    adapter.verify(body, headers, endpoint)


def test_verify_rejects_missing_header(adapter: StripeAdapter, endpoint: EndpointConfig) -> None:
    with pytest.raises(VerificationError, match="^missing Stripe-Signature header$"):
        adapter.verify(b"{}", Headers(), endpoint)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        (f"v1={'a' * 64}", "no timestamp"),
        ("garbage", "no timestamp"),
        ("t", "no timestamp"),
        (",,,=", "no timestamp"),
        (f"t=abc,v1={'a' * 64}", "timestamp is not an integer"),
        (f"t=,v1={'a' * 64}", "timestamp is not an integer"),
        (f"t=-5,v1={'a' * 64}", "timestamp is not an integer"),
        (f"t=1_700_000_000,v1={'a' * 64}", "timestamp is not an integer"),
        (f"t=1.5,v1={'a' * 64}", "timestamp is not an integer"),
        (f"t=1,t=2,v1={'a' * 64}", "several timestamps"),
        ("t=1700000000", "no v1 signature"),
        (f"t=1700000000,v0={'a' * 64}", "no v1 signature"),
        ("t=1700000000,v1=", "no v1 signature"),
    ],
)
def test_verify_rejects_malformed_header(
    adapter: StripeAdapter, endpoint: EndpointConfig, value: str, message: str
) -> None:
    with pytest.raises(VerificationError, match=f"^malformed Stripe-Signature header: {message}$"):
        adapter.verify(b"{}", Headers({"Stripe-Signature": value}), endpoint)


def test_verify_rejects_bad_signature(adapter: StripeAdapter, endpoint: EndpointConfig) -> None:
    headers = Headers({"Stripe-Signature": f"t={int(time.time())},v1={'0' * 64}"})
    with pytest.raises(VerificationError, match="^signature does not match$"):
        adapter.verify(b'{"id": "evt_1"}', headers, endpoint)


def test_verify_rejects_tampered_body(adapter: StripeAdapter, endpoint: EndpointConfig) -> None:
    headers = signed(adapter, b'{"amount": 100}')
    with pytest.raises(VerificationError, match="^signature does not match$"):
        adapter.verify(b'{"amount": 900}', headers, endpoint)


def test_verify_rejects_wrong_secret(adapter: StripeAdapter, endpoint: EndpointConfig) -> None:
    body = b'{"id": "evt_1"}'
    headers = signed(adapter, body, secret="whsec_someone_else")
    with pytest.raises(VerificationError, match="^signature does not match$"):
        adapter.verify(body, headers, endpoint)


def test_verify_rejects_stale_timestamp(adapter: StripeAdapter, endpoint: EndpointConfig) -> None:
    body = b'{"id": "evt_1"}'
    headers = signed(adapter, body, timestamp=int(time.time()) - TOLERANCE - 5)
    with pytest.raises(VerificationError, match="^timestamp is too old$"):
        adapter.verify(body, headers, endpoint)


def test_verify_rejects_future_timestamp(adapter: StripeAdapter, endpoint: EndpointConfig) -> None:
    body = b'{"id": "evt_1"}'
    headers = signed(adapter, body, timestamp=int(time.time()) + TOLERANCE + 5)
    with pytest.raises(VerificationError, match="^timestamp is in the future$"):
        adapter.verify(body, headers, endpoint)


def test_verify_rejects_non_utf8_body(adapter: StripeAdapter, endpoint: EndpointConfig) -> None:
    headers = Headers({"Stripe-Signature": f"t={int(time.time())},v1={'0' * 64}"})
    with pytest.raises(VerificationError, match="^body is not UTF-8$"):
        adapter.verify(b'{"name": "\xff\xfe"}', headers, endpoint)


def test_verify_rejects_endpoint_without_secret(adapter: StripeAdapter) -> None:
    headers = Headers({"Stripe-Signature": f"t={int(time.time())},v1={'0' * 64}"})
    with pytest.raises(VerificationError, match="^no Stripe webhook secret is configured$"):
        adapter.verify(b"{}", headers, EndpointConfig(provider="stripe"))


def test_verification_messages_never_quote_inputs(
    adapter: StripeAdapter, endpoint: EndpointConfig
) -> None:
    body = b'{"email": "jenny@example.com"}'
    value = f"t={int(time.time())},v1=deadbeefcafe"
    with pytest.raises(VerificationError) as caught:
        adapter.verify(body, Headers({"Stripe-Signature": value}), endpoint)
    text = str(caught.value) + repr(caught.value.args)
    for secret_or_input in (FIRST, SECOND, "deadbeefcafe", "jenny@example.com"):
        assert secret_or_input not in text
    assert caught.value.code == "verification_failed"
    assert caught.value.status == 400


@settings(max_examples=200, deadline=None)
@given(value=st.text(max_size=200), body=st.binary(max_size=64))
def test_verify_never_raises_another_exception(value: str, body: bytes) -> None:
    adapter = StripeAdapter(Settings(tolerance_seconds=TOLERANCE))
    endpoint = EndpointConfig(provider="stripe", webhook_secrets=(FIRST,))
    with pytest.raises(VerificationError):
        # A plain mapping: werkzeug would refuse some of these values before we see them.
        adapter.verify(body, {"Stripe-Signature": value}, endpoint)


# -- enabling, signing, registry ----------------------------------------------


def test_enabled_needs_a_secret(adapter: StripeAdapter, endpoint: EndpointConfig) -> None:
    assert adapter.enabled(endpoint)
    assert not adapter.enabled(EndpointConfig(provider="stripe"))
    assert "PAYSIEVE_STRIPE_WEBHOOK_SECRETS" in adapter.how_to_enable()


def test_registry_maps_stripe_to_the_adapter() -> None:
    assert adapter_classes()["stripe"] is StripeAdapter
    assert StripeAdapter.name == "stripe"
    assert StripeAdapter.signature_header == "Stripe-Signature"


def test_sign_uses_the_first_secret_and_stripe_format(adapter: StripeAdapter) -> None:
    body = b'{"id": "evt_1"}'
    headers = adapter.sign(
        body,
        EndpointConfig(provider="stripe", webhook_secrets=(FIRST, SECOND)),
        timestamp=1_700_000_000,
        event_id="evt_1",
    )
    assert list(headers) == ["Stripe-Signature"]
    assert re.fullmatch(r"t=1700000000,v1=[0-9a-f]{64}", headers["Stripe-Signature"])
    only_first = adapter.sign(
        body,
        EndpointConfig(provider="stripe", webhook_secrets=(FIRST,)),
        timestamp=1_700_000_000,
        event_id="evt_1",
    )
    assert headers == only_first


def test_sign_without_secret_is_an_error(adapter: StripeAdapter) -> None:
    with pytest.raises(ValueError, match="no Stripe webhook secret"):
        adapter.sign(b"{}", EndpointConfig(provider="stripe"), timestamp=1, event_id="evt_1")


def test_dev_options_make_a_working_secret(adapter: StripeAdapter, tmp_path: Any) -> None:
    options = adapter.dev_options(tmp_path)
    (secret,) = options["webhook_secrets"]
    assert secret.startswith("whsec_") and len(secret) > 30
    assert adapter.dev_options(tmp_path) != options
    endpoint = EndpointConfig(provider="stripe", webhook_secrets=(secret,))
    body = b'{"id": "evt_1"}'
    adapter.verify(body, signed(adapter, body, secret=secret), endpoint)


# -- meta ---------------------------------------------------------------------


def thin_event() -> dict[str, Any]:
    return {
        "id": "evt_test_65R9Ijk8v4eW0hTtrr4SI1p3aFSQMWSNbBUUDhdMYHAK",
        "object": "v2.core.event",
        "type": "v1.billing.meter.error_report_triggered",
        "livemode": False,
        "created": "2024-09-17T06:20:52.246Z",
        "context": None,
        "reason": None,
        "related_object": {
            "id": "mtr_test_61R9IPxg8bUavVwvj41IeNGl0DUz6vNE",
            "type": "billing.meter",
            "url": "/v1/billing/meters/mtr_test_61R9IPxg8bUavVwvj41IeNGl0DUz6vNE",
        },
    }


def test_meta_of_snapshot_event(adapter: StripeAdapter) -> None:
    event = adapter.sample_event("invoice.paid", event_id="evt_1QmNqTt0SGSkqsLW9xyz")
    meta = adapter.meta(event, Headers())
    assert meta.id == "evt_1QmNqTt0SGSkqsLW9xyz"
    assert meta.type == "invoice.paid"
    assert meta.occurred_at == datetime.fromtimestamp(event["created"], tz=UTC)
    assert meta.occurred_at.tzinfo is UTC


def test_meta_of_thin_event(adapter: StripeAdapter) -> None:
    meta = adapter.meta(thin_event(), Headers())
    assert meta.id == "evt_test_65R9Ijk8v4eW0hTtrr4SI1p3aFSQMWSNbBUUDhdMYHAK"
    assert meta.type == "v1.billing.meter.error_report_triggered"
    assert meta.occurred_at == datetime(2024, 9, 17, 6, 20, 52, 246000, tzinfo=UTC)


def test_meta_of_thin_event_with_offset_and_nanoseconds(adapter: StripeAdapter) -> None:
    event = thin_event()
    event["created"] = "2024-09-17T08:20:52.246123456+02:00"
    meta = adapter.meta(event, Headers())
    assert meta.occurred_at == datetime(2024, 9, 17, 6, 20, 52, 246123, tzinfo=UTC)
    assert meta.occurred_at.utcoffset() is not None


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("id", None, "event id"),
        ("id", 12345, "event id"),
        ("id", "evt with spaces", "event id"),
        ("id", "evt_" + "a" * 125, "event id"),
        ("id", "", "event id"),
        ("type", None, "event type"),
        ("type", "charge succeeded", "event type"),
        ("type", "x" * 65, "event type"),
        ("created", None, "created"),
        ("created", True, "created"),
        ("created", -1, "created"),
        ("created", 10**13, "created"),
        ("created", 1.5e9, "created"),
        ("created", "yesterday", "created"),
        ("created", "2024-09-17", "created"),
        ("created", "2024-09-17T06:20:52", "created"),
        ("created", "2024-13-45T06:20:52Z", "created"),
    ],
)
def test_meta_rejects_malformed_fields(
    adapter: StripeAdapter, key: str, value: Any, message: str
) -> None:
    event = adapter.sample_event("charge.succeeded")
    if value is None:
        del event[key]
    else:
        event[key] = value
    with pytest.raises(MalformedBody, match=message):
        adapter.meta(event, Headers())


# -- sanitise: every supported type -------------------------------------------


class P:
    """A value read from the event itself (ids are random per sample)."""

    def __init__(self, path: str, *, timestamp: bool = False) -> None:
        self.path = path
        self.timestamp = timestamp

    def resolve(self, event: dict[str, Any]) -> Any:
        value = get(event, self.path)
        return datetime.fromtimestamp(value, tz=UTC) if self.timestamp else value


OBJ = "data.object."
CARD = {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030}


def pi_expected(status: str, provider: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (
            "transaction",
            {
                "id": P(OBJ + "id"),
                "kind": "payment",
                "status": status,
                "provider_status": provider,
                "amount": 4999,
                "currency": "USD",
                "customer": P(OBJ + "customer"),
                "charge": P(OBJ + "latest_charge"),
                "payment_method": P(OBJ + "payment_method"),
            },
        )
    ]


def charge_expected(status: str, provider: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (
            "transaction",
            {
                "id": P(OBJ + "id"),
                "kind": "payment",
                "charge": P(OBJ + "id"),
                "status": status,
                "provider_status": provider,
                "amount": 4999,
                "currency": "USD",
                "customer": P(OBJ + "customer"),
                "payment_intent": P(OBJ + "payment_intent"),
                "payment_method": P(OBJ + "payment_method"),
            },
        ),
        (
            "payment_method",
            {
                "token": P(OBJ + "payment_method"),
                "customer": P(OBJ + "customer"),
                "status": "active",
            }
            | CARD,
        ),
    ]


def refund_expected(prefix: str, status: str) -> tuple[str, dict[str, Any]]:
    return (
        "transaction",
        {
            "id": P(prefix + "id"),
            "kind": "refund",
            "status": status,
            "provider_status": status,
            "amount": 4999,
            "currency": "USD",
            "charge": P(prefix + "charge"),
            "refund_of": P(prefix + "charge"),
            "payment_intent": P(prefix + "payment_intent"),
        },
    )


def dispute_expected(status: str, provider: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (
            "transaction",
            {
                "id": P(OBJ + "id"),
                "kind": "dispute",
                "status": status,
                "provider_status": provider,
                "amount": 4999,
                "currency": "USD",
                "charge": P(OBJ + "charge"),
                "payment_intent": P(OBJ + "payment_intent"),
            },
        )
    ]


def pm_expected(status: str, customer: Any, card: dict[str, Any]) -> list[tuple[str, Any]]:
    return [
        ("payment_method", {"token": P(OBJ + "id"), "customer": customer, "status": status} | card)
    ]


def sub_expected(status: str, provider: str, cancel: bool) -> list[tuple[str, dict[str, Any]]]:
    return [
        (
            "subscription",
            {
                "id": P(OBJ + "id"),
                "customer": P(OBJ + "customer"),
                "plan": P(OBJ + "items.data.0.price.id"),
                "status": status,
                "provider_status": provider,
                "current_period_end": P(OBJ + "items.data.0.current_period_end", timestamp=True),
                "cancel_at_period_end": cancel,
            },
        )
    ]


def invoice_expected(status: str, provider: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (
            "transaction",
            {
                "id": P(OBJ + "id"),
                "kind": "invoice",
                "status": status,
                "provider_status": provider,
                "amount": 2261,
                "currency": "EUR",
                "customer": P(OBJ + "customer"),
                "subscription": P(OBJ + "parent.subscription_details.subscription"),
            },
        )
    ]


def checkout_delayed_expected(status: str, provider: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (
            "transaction",
            {
                "id": P(OBJ + "id"),
                "kind": "payment",
                "status": status,
                "provider_status": provider,
                "amount": 4999,
                "currency": "USD",
                "customer": P(OBJ + "customer"),
                "payment_intent": None,
                "subscription": P(OBJ + "subscription"),
                "invoice": P(OBJ + "invoice"),
            },
        )
    ]


EXPECTED: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "payment_intent.succeeded": pi_expected("succeeded", "succeeded"),
    # Stripe resets a failed PaymentIntent to requires_payment_method.
    "payment_intent.payment_failed": pi_expected("failed", "requires_payment_method"),
    "payment_intent.processing": pi_expected("pending", "processing"),
    "payment_intent.canceled": pi_expected("canceled", "canceled"),
    "payment_intent.requires_action": pi_expected("requires_action", "requires_action"),
    "payment_intent.amount_capturable_updated": pi_expected("authorized", "requires_capture"),
    "charge.succeeded": charge_expected("succeeded", "succeeded"),
    "charge.failed": charge_expected("failed", "failed"),
    "charge.captured": charge_expected("succeeded", "succeeded"),
    "charge.refunded": charge_expected("refunded", "succeeded")
    + [refund_expected(OBJ + "refunds.data.0.", "succeeded")],
    "charge.updated": charge_expected("succeeded", "succeeded"),
    "charge.dispute.created": dispute_expected("disputed", "needs_response"),
    "charge.dispute.closed": dispute_expected("failed", "lost"),
    "refund.created": [refund_expected(OBJ, "pending")],
    "refund.updated": [refund_expected(OBJ, "succeeded")],
    "refund.failed": [refund_expected(OBJ, "failed")],
    "payment_method.attached": pm_expected("active", P(OBJ + "customer"), CARD),
    "payment_method.detached": pm_expected("detached", None, CARD),
    "payment_method.updated": pm_expected("active", P(OBJ + "customer"), CARD),
    "payment_method.automatically_updated": pm_expected(
        "active", P(OBJ + "customer"), CARD | {"exp_month": 3, "exp_year": 2032}
    ),
    "setup_intent.succeeded": [
        (
            "payment_method",
            {
                "token": P(OBJ + "payment_method"),
                "customer": P(OBJ + "customer"),
                "status": "active",
            },
        )
    ],
    "customer.subscription.created": sub_expected("active", "active", False),
    "customer.subscription.updated": sub_expected("active", "active", True),
    "customer.subscription.deleted": sub_expected("canceled", "canceled", False),
    "customer.subscription.paused": sub_expected("paused", "paused", False),
    "customer.subscription.resumed": sub_expected("active", "active", False),
    "invoice.paid": invoice_expected("succeeded", "paid"),
    "invoice.payment_failed": invoice_expected("failed", "open"),
    "invoice.finalized": invoice_expected("pending", "open"),
    "invoice.voided": invoice_expected("canceled", "void"),
    "checkout.session.completed": [
        (
            "transaction",
            {
                "id": P(OBJ + "id"),
                "kind": "payment",
                "status": "succeeded",
                "provider_status": "paid",
                "amount": 4999,
                "currency": "USD",
                "customer": P(OBJ + "customer"),
                "payment_intent": P(OBJ + "payment_intent"),
                "subscription": None,
                "invoice": None,
            },
        )
    ],
    "checkout.session.async_payment_succeeded": checkout_delayed_expected("succeeded", "paid"),
    # Stripe leaves a session whose delayed payment failed "unpaid": the event type says more.
    "checkout.session.async_payment_failed": checkout_delayed_expected("failed", "unpaid"),
}


def resolved(event: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Return EXPECTED for this event with every P() read from the event."""
    return [
        (kind, {k: v.resolve(event) if isinstance(v, P) else v for k, v in values.items()})
        for kind, values in EXPECTED[event["type"]]
    ]


def as_pairs(result: Sanitised) -> list[tuple[str, dict[str, Any]]]:
    return [(record.type, record.values) for record in result.records]


def test_every_supported_type_has_expectations() -> None:
    assert set(EXPECTED) == set(SUPPORTED_EVENT_TYPES)
    assert len(SUPPORTED_EVENT_TYPES) == 33


@pytest.mark.parametrize("event_type", SUPPORTED_EVENT_TYPES)
def test_sanitise_sample_yields_expected_records(adapter: StripeAdapter, event_type: str) -> None:
    event = adapter.sample_event(event_type)
    result = adapter.sanitise(event)
    assert result.handled
    assert result.dropped == []
    assert as_pairs(result) == resolved(event)


@pytest.mark.parametrize("event_type", SUPPORTED_EVENT_TYPES)
def test_sanitise_survives_the_wire(
    adapter: StripeAdapter, endpoint: EndpointConfig, event_type: str
) -> None:
    event = adapter.sample_event(event_type)
    body = body_of(event)
    adapter.verify(body, signed(adapter, body), endpoint)
    parsed = adapter.parse(body)
    assert adapter.meta(parsed, Headers()).id == event["id"]
    assert as_pairs(adapter.sanitise(parsed)) == resolved(event)


# -- sanitise: planted personal data and card numbers -------------------------

PANS = ("4242424242424242", "4000 0566 5566 5556", "5555-5555-5555-4444")
PII = (
    "Jenny Planted-Rosen",
    "planted.jenny@example.org",
    "+1 415 555 0199",
    "1 Planted Street",
    "Plantedville",
    "SW1A 1AA",
    "planted-fingerprint",
)
PLANTED = PANS + PII

_PII_KEYS = {
    "description": PANS[0],
    "receipt_email": PII[1],
    "name": PII[0],
    "email": PII[1],
    "phone": PII[2],
    "line1": PII[3],
    "line2": PANS[1],
    "city": PII[4],
    "postal_code": PII[5],
    "fingerprint": PII[6],
    "customer_email": PII[1],
    "customer_name": PII[0],
    "customer_phone": PII[2],
    "customer_email_address": PII[1],
    "billing_address": PII[3],
    "shipping_address": PII[3],
    "tracking_number": PANS[2],
    "comment": PANS[2],
    "client_reference_id": PANS[0],
    "statement_descriptor": PANS[1],
    "message": PANS[0],
}


def planted_address() -> dict[str, Any]:
    return {
        "line1": PII[3],
        "line2": PANS[1],
        "city": PII[4],
        "postal_code": PII[5],
        "state": "CA",
        "country": "US",
    }


def planted_person() -> dict[str, Any]:
    return {"name": PII[0], "email": PII[1], "phone": PII[2], "address": planted_address()}


def plant(node: Any) -> None:
    """Overwrite every personal-data field below node with planted values."""
    if isinstance(node, dict):
        for key in list(node):
            if key in _PII_KEYS:
                node[key] = _PII_KEYS[key]
            elif key == "metadata":
                node[key] = {PANS[0]: PANS[1], "customer": PII[0], PANS[2]: PII[1]}
            else:
                plant(node[key])
    elif isinstance(node, list):
        for item in node:
            plant(item)


@pytest.mark.parametrize("event_type", SUPPORTED_EVENT_TYPES)
def test_planted_personal_data_never_reaches_records(
    adapter: StripeAdapter, event_type: str
) -> None:
    event = adapter.sample_event(event_type)
    expected = resolved(event)
    obj = event["data"]["object"]
    # Every object gets the personal-data fields Stripe puts on some of them.
    obj["description"] = PANS[0]
    obj["receipt_email"] = PII[1]
    obj["billing_details"] = planted_person()
    obj["shipping"] = planted_person()
    obj["customer_details"] = planted_person()
    obj["customer_email"] = PII[1]
    obj["customer_address"] = planted_address()
    obj[PANS[2]] = PII[0]
    plant(event["data"])
    before = repr(event)
    assert all(value in before for value in PLANTED if value != "planted-fingerprint")

    result = adapter.sanitise(event)
    text = repr(result)
    for value in PLANTED:
        assert value not in text
        assert value.replace(" ", "").replace("-", "") not in text
    assert as_pairs(result) == expected
    assert result.dropped == []


def test_planted_data_in_expanded_references_is_not_kept(adapter: StripeAdapter) -> None:
    event = adapter.sample_event("payment_intent.succeeded")
    obj = event["data"]["object"]
    customer = obj["customer"]
    obj["customer"] = {"id": customer, "object": "customer", "email": PII[1], "name": PII[0]}
    obj["latest_charge"] = {"id": "ch_1", "object": "charge", "description": PANS[0]}
    result = adapter.sanitise(event)
    assert result.records[0].values["customer"] == customer
    assert result.records[0].values["charge"] == "ch_1"
    assert PII[0] not in repr(result) and PANS[0] not in repr(result)


# -- sanitise: shape failures -------------------------------------------------

CHARGE_CARD = OBJ + "payment_method_details.card."


@pytest.mark.parametrize(
    ("path", "value", "record_type", "field"),
    [
        (CHARGE_CARD + "last4", "42a2", "payment_method", "last4"),
        (CHARGE_CARD + "last4", "42424", "payment_method", "last4"),
        (CHARGE_CARD + "last4", 4242, "payment_method", "last4"),
        (CHARGE_CARD + "exp_month", 13, "payment_method", "exp_month"),
        (CHARGE_CARD + "exp_month", 0, "payment_method", "exp_month"),
        (CHARGE_CARD + "exp_month", "12", "payment_method", "exp_month"),
        (CHARGE_CARD + "exp_year", 30, "payment_method", "exp_year"),
        (CHARGE_CARD + "exp_year", True, "payment_method", "exp_year"),
        (CHARGE_CARD + "brand", 7, "payment_method", "brand"),
        (OBJ + "currency", "usdd", "transaction", "currency"),
        (OBJ + "currency", "xyz", "transaction", "currency"),
        (OBJ + "payment_intent", "pi with spaces", "transaction", "payment_intent"),
        (OBJ + "payment_intent", "pi_" + "a" * 126, "transaction", "payment_intent"),
        (OBJ + "payment_intent", {"object": "payment_intent"}, "transaction", "payment_intent"),
        (OBJ + "amount", "100", "transaction", "amount"),
        (OBJ + "amount", 100.0, "transaction", "amount"),
        (OBJ + "amount", -100, "transaction", "amount"),
        (OBJ + "amount", True, "transaction", "amount"),
        (OBJ + "status", "succeeded; drop table", "transaction", "provider_status"),
    ],
)
def test_shape_failure_drops_only_that_field(
    adapter: StripeAdapter, path: str, value: Any, record_type: str, field: str
) -> None:
    event = adapter.sample_event("charge.succeeded")
    expected = resolved(event)
    put(event, path, value)
    result = adapter.sanitise(event)
    assert result.dropped == [path]
    for (kind, values), (want_kind, want) in zip(as_pairs(result), expected, strict=True):
        assert kind == want_kind
        if kind == record_type:
            assert field not in values
            want = {k: v for k, v in want.items() if k != field}
            if field == "provider_status":
                # An unreadable word falls back to what the event type implies.
                assert values["status"] == "succeeded"
        assert values == want


def test_bad_customer_drops_it_from_every_record(adapter: StripeAdapter) -> None:
    event = adapter.sample_event("charge.succeeded")
    event["data"]["object"]["customer"] = "cus " + "x" * 200
    result = adapter.sanitise(event)
    assert result.dropped == [OBJ + "customer"]
    assert all("customer" not in record.values for record in result.records)
    assert [record.type for record in result.records] == ["transaction", "payment_method"]


def test_bad_id_drops_the_record(adapter: StripeAdapter) -> None:
    event = adapter.sample_event("refund.created")
    event["data"]["object"]["id"] = "re 123"
    result = adapter.sanitise(event)
    assert result.handled
    assert result.records == []
    assert result.dropped == [OBJ + "id"]


def test_several_failures_are_all_listed(adapter: StripeAdapter) -> None:
    event = adapter.sample_event("payment_method.automatically_updated")
    card = event["data"]["object"]["card"]
    card.update(last4="42a2", exp_month=13, exp_year="2032")
    result = adapter.sanitise(event)
    assert result.dropped == [OBJ + "card.exp_month", OBJ + "card.exp_year", OBJ + "card.last4"]
    (record,) = result.records
    assert record.values == {
        "token": get(event, OBJ + "id"),
        "customer": get(event, OBJ + "customer"),
        "brand": "visa",
        "status": "active",
    }


def test_bad_subscription_fields_are_dropped(adapter: StripeAdapter) -> None:
    event = adapter.sample_event("customer.subscription.updated")
    obj = event["data"]["object"]
    obj["cancel_at_period_end"] = "true"
    obj["items"]["data"][0]["current_period_end"] = "2030-01-01"
    obj["items"]["data"][0]["price"]["id"] = "price with space"
    result = adapter.sanitise(event)
    assert sorted(result.dropped) == [
        OBJ + "cancel_at_period_end",
        OBJ + "items.data.0.current_period_end",
        OBJ + "items.data.0.price.id",
    ]
    (record,) = result.records
    assert set(record.values) == {"id", "customer", "status", "provider_status"}


def test_non_object_nested_card_is_dropped(adapter: StripeAdapter) -> None:
    event = adapter.sample_event("payment_method.attached")
    event["data"]["object"]["card"] = "4242424242424242"
    result = adapter.sanitise(event)
    assert "4242424242424242" not in repr(result)
    assert result.dropped == [OBJ + "card"]
    (record,) = result.records
    assert set(record.values) == {"token", "customer", "status"}


def test_null_nested_objects_are_absent_not_dropped(adapter: StripeAdapter) -> None:
    event = adapter.sample_event("charge.succeeded")
    event["data"]["object"]["payment_method_details"] = None
    event["data"]["object"]["refunds"] = None
    result = adapter.sanitise(event)
    assert result.dropped == []
    assert [record.type for record in result.records] == ["transaction"]


def test_missing_data_object_is_malformed(adapter: StripeAdapter) -> None:
    event = adapter.sample_event("charge.succeeded")
    event["data"] = {"object": ["not", "an", "object"]}
    with pytest.raises(MalformedBody, match="data.object"):
        adapter.sanitise(event)


# -- sanitise: unhandled events -----------------------------------------------


@pytest.mark.parametrize("event_type", ["customer.created", "plan.created", "charge.expired"])
def test_unknown_type_is_not_handled(adapter: StripeAdapter, event_type: str) -> None:
    event = adapter.sample_event("charge.succeeded")
    event["type"] = event_type
    result = adapter.sanitise(event)
    assert not result.handled
    assert result.records == [] and result.dropped == []
    assert adapter.meta(event, Headers()).type == event_type


def test_thin_event_is_not_handled(adapter: StripeAdapter) -> None:
    event = thin_event()
    assert adapter.sanitise(event) == Sanitised(handled=False)
    # Even when its type names a supported snapshot type, there is no data to keep.
    event["type"] = "charge.succeeded"
    assert not adapter.sanitise(event).handled


def test_thin_event_round_trip(adapter: StripeAdapter, endpoint: EndpointConfig) -> None:
    body = body_of(thin_event())
    adapter.verify(body, signed(adapter, body), endpoint)
    event = adapter.parse(body)
    assert adapter.meta(event, Headers()).id.startswith("evt_test_")
    assert not adapter.sanitise(event).handled


# -- status mapping -----------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({"captured": False}, "authorized"),
        ({"status": "pending", "captured": False}, "pending"),
        ({"amount_refunded": 1000}, "partially_refunded"),
        ({"amount_refunded": 4999, "refunded": True}, "refunded"),
        ({"disputed": True}, "disputed"),
        ({"disputed": True, "refunded": True, "amount_refunded": 4999}, "disputed"),
        ({"refunded": True, "amount_refunded": 4999, "status": "failed"}, "refunded"),
        ({"status": "brand_new_word"}, "succeeded"),
    ],
)
def test_charge_status(adapter: StripeAdapter, changes: dict[str, Any], status: str) -> None:
    event = adapter.sample_event("charge.succeeded")
    event["data"]["object"].update(changes)
    (transaction, _) = adapter.sanitise(event).records
    assert transaction.values["status"] == status


def test_charge_unknown_word_without_implied_status_is_pending(adapter: StripeAdapter) -> None:
    event = adapter.sample_event("charge.updated")
    event["data"]["object"]["status"] = "brand_new_word"
    (transaction, _) = adapter.sanitise(event).records
    assert transaction.values["status"] == "pending"
    assert transaction.values["provider_status"] == "brand_new_word"


@pytest.mark.parametrize(
    ("word", "status"),
    [
        ("requires_payment_method", "pending"),
        ("requires_confirmation", "pending"),
        ("requires_action", "requires_action"),
        ("processing", "pending"),
        ("requires_capture", "authorized"),
        ("canceled", "canceled"),
        ("succeeded", "succeeded"),
    ],
)
def test_payment_intent_status(adapter: StripeAdapter, word: str, status: str) -> None:
    event = adapter.sample_event("payment_intent.processing")
    event["data"]["object"]["status"] = word
    (transaction,) = adapter.sanitise(event).records
    assert transaction.values["status"] == status


@pytest.mark.parametrize(
    ("word", "status"),
    [
        ("needs_response", "disputed"),
        ("under_review", "disputed"),
        ("warning_needs_response", "disputed"),
        ("warning_under_review", "disputed"),
        ("won", "succeeded"),
        ("lost", "failed"),
        ("warning_closed", "canceled"),
        ("prevented", "canceled"),
        ("brand_new_word", "disputed"),
    ],
)
def test_dispute_status(adapter: StripeAdapter, word: str, status: str) -> None:
    event = adapter.sample_event("charge.dispute.closed")
    event["data"]["object"]["status"] = word
    (transaction,) = adapter.sanitise(event).records
    assert (transaction.values["status"], transaction.values["provider_status"]) == (status, word)


@pytest.mark.parametrize("word", ["pending", "requires_action", "succeeded", "failed", "canceled"])
def test_refund_status(adapter: StripeAdapter, word: str) -> None:
    event = adapter.sample_event("refund.updated")
    event["data"]["object"]["status"] = word
    (transaction,) = adapter.sanitise(event).records
    assert transaction.values["status"] == word


@pytest.mark.parametrize(
    ("event_type", "word", "status"),
    [
        ("invoice.finalized", "draft", "pending"),
        ("invoice.finalized", "open", "pending"),
        ("invoice.finalized", "paid", "succeeded"),
        ("invoice.finalized", "void", "canceled"),
        ("invoice.finalized", "uncollectible", "failed"),
        ("invoice.finalized", "brand_new_word", "pending"),
        ("invoice.payment_failed", "open", "failed"),
        ("invoice.voided", "brand_new_word", "canceled"),
    ],
)
def test_invoice_status(adapter: StripeAdapter, event_type: str, word: str, status: str) -> None:
    event = adapter.sample_event(event_type)
    event["data"]["object"]["status"] = word
    (transaction,) = adapter.sanitise(event).records
    assert transaction.values["status"] == status


@pytest.mark.parametrize(
    ("event_type", "word", "status"),
    [
        ("customer.subscription.updated", "trialing", "trialing"),
        ("customer.subscription.updated", "past_due", "past_due"),
        ("customer.subscription.updated", "unpaid", "past_due"),
        ("customer.subscription.updated", "incomplete", "incomplete"),
        ("customer.subscription.updated", "incomplete_expired", "expired"),
        ("customer.subscription.updated", "paused", "paused"),
        ("customer.subscription.updated", "brand_new_word", "incomplete"),
        ("customer.subscription.deleted", "incomplete_expired", "canceled"),
        ("customer.subscription.paused", "brand_new_word", "paused"),
    ],
)
def test_subscription_status(
    adapter: StripeAdapter, event_type: str, word: str, status: str
) -> None:
    event = adapter.sample_event(event_type)
    event["data"]["object"]["status"] = word
    (subscription,) = adapter.sanitise(event).records
    assert (subscription.values["status"], subscription.values["provider_status"]) == (
        status,
        word,
    )


@pytest.mark.parametrize(
    ("word", "status"),
    [("paid", "succeeded"), ("unpaid", "pending"), ("no_payment_required", "succeeded")],
)
def test_checkout_session_status(adapter: StripeAdapter, word: str, status: str) -> None:
    event = adapter.sample_event("checkout.session.completed")
    event["data"]["object"]["payment_status"] = word
    (transaction,) = adapter.sanitise(event).records
    assert transaction.values["status"] == status


def test_checkout_session_for_a_subscription(adapter: StripeAdapter) -> None:
    event = adapter.sample_event("checkout.session.completed")
    event["data"]["object"].update(
        mode="subscription", payment_intent=None, subscription="sub_1", invoice="in_1"
    )
    (transaction,) = adapter.sanitise(event).records
    assert transaction.values["subscription"] == "sub_1"
    assert transaction.values["invoice"] == "in_1"
    assert transaction.values["payment_intent"] is None


# -- other Stripe shapes ------------------------------------------------------


def test_payment_intent_with_expanded_payment_method(adapter: StripeAdapter) -> None:
    event = adapter.sample_event("payment_intent.succeeded")
    obj = event["data"]["object"]
    token = obj["payment_method"]
    obj["payment_method"] = {
        "id": token,
        "object": "payment_method",
        "billing_details": planted_person(),
        "card": {
            "brand": "mastercard",
            "last4": "4444",
            "exp_month": 1,
            "exp_year": 2031,
            "fingerprint": PII[6],
        },
        "customer": obj["customer"],
        "type": "card",
    }
    result = adapter.sanitise(event)
    transaction, payment_method = result.records
    assert transaction.values["payment_method"] == token
    assert payment_method.type == "payment_method"
    assert payment_method.values == {
        "token": token,
        "customer": obj["customer"],
        "brand": "mastercard",
        "last4": "4444",
        "exp_month": 1,
        "exp_year": 2031,
        "status": "active",
    }
    assert all(value not in repr(result) for value in PLANTED)


def test_setup_intent_with_expanded_payment_method(adapter: StripeAdapter) -> None:
    event = adapter.sample_event("setup_intent.succeeded")
    obj = event["data"]["object"]
    token = obj["payment_method"]
    obj["payment_method"] = {
        "id": token,
        "object": "payment_method",
        "card": {"brand": "amex", "last4": "0005", "exp_month": 7, "exp_year": 2029},
    }
    (record,) = adapter.sanitise(event).records
    assert record.values == {
        "token": token,
        "customer": obj["customer"],
        "status": "active",
        "brand": "amex",
        "last4": "0005",
        "exp_month": 7,
        "exp_year": 2029,
    }


def test_setup_intent_without_payment_method_has_no_record(adapter: StripeAdapter) -> None:
    event = adapter.sample_event("setup_intent.succeeded")
    event["data"]["object"]["payment_method"] = None
    result = adapter.sanitise(event)
    assert result.handled and result.records == []


def test_charge_with_card_present_details(adapter: StripeAdapter) -> None:
    event = adapter.sample_event("charge.succeeded")
    details = event["data"]["object"]["payment_method_details"]
    details["card_present"] = details.pop("card") | {"brand": "interac"}
    details["type"] = "card_present"
    (_, payment_method) = adapter.sanitise(event).records
    assert payment_method.values["brand"] == "unknown"
    assert payment_method.values["last4"] == "4242"


def test_charge_with_non_card_method_has_no_card_record(adapter: StripeAdapter) -> None:
    event = adapter.sample_event("charge.succeeded")
    event["data"]["object"]["payment_method_details"] = {
        "sepa_debit": {"last4": "3000", "fingerprint": PII[6]},
        "type": "sepa_debit",
    }
    result = adapter.sanitise(event)
    assert [record.type for record in result.records] == ["transaction"]


def test_charge_refund_without_charge_field_points_at_the_charge(adapter: StripeAdapter) -> None:
    event = adapter.sample_event("charge.refunded")
    refund = event["data"]["object"]["refunds"]["data"][0]
    del refund["charge"]
    refund_record = adapter.sanitise(event).records[-1]
    assert refund_record.values["refund_of"] == get(event, OBJ + "id")
    assert refund_record.values["charge"] == get(event, OBJ + "id")


def test_subscription_from_older_api_version(adapter: StripeAdapter) -> None:
    event = adapter.sample_event("customer.subscription.created")
    obj = event["data"]["object"]
    end = obj["items"]["data"].pop()["current_period_end"]
    obj["current_period_end"] = end
    obj["plan"] = {"id": "plan_gold", "object": "plan", "nickname": PII[0]}
    (record,) = adapter.sanitise(event).records
    assert record.values["plan"] == "plan_gold"
    assert record.values["current_period_end"] == datetime.fromtimestamp(end, tz=UTC)


def test_subscription_item_with_legacy_plan(adapter: StripeAdapter) -> None:
    event = adapter.sample_event("customer.subscription.created")
    item = event["data"]["object"]["items"]["data"][0]
    del item["price"]
    item["plan"] = {"id": "plan_silver", "object": "plan"}
    (record,) = adapter.sanitise(event).records
    assert record.values["plan"] == "plan_silver"


def test_invoice_from_older_api_version(adapter: StripeAdapter) -> None:
    event = adapter.sample_event("invoice.paid")
    obj = event["data"]["object"]
    del obj["parent"]
    obj.update(subscription="sub_old", payment_intent={"id": "pi_old"}, charge="ch_old")
    (record,) = adapter.sanitise(event).records
    assert record.values["subscription"] == "sub_old"
    assert record.values["payment_intent"] == "pi_old"
    assert record.values["charge"] == "ch_old"


def test_invoice_with_included_payments(adapter: StripeAdapter) -> None:
    event = adapter.sample_event("invoice.paid")
    event["data"]["object"]["payments"] = {
        "object": "list",
        "data": [
            {
                "id": "inpay_1",
                "object": "invoice_payment",
                "is_default": True,
                "payment": {"payment_intent": "pi_new", "type": "payment_intent"},
                "status": "paid",
            }
        ],
    }
    (record,) = adapter.sanitise(event).records
    assert record.values["payment_intent"] == "pi_new"
    assert "charge" not in record.values


# -- brands -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "brand"),
    [
        ("visa", "visa"),
        ("Visa", "visa"),
        ("American Express", "amex"),
        ("amex", "amex"),
        ("mastercard", "mastercard"),
        ("MasterCard", "mastercard"),
        ("unionpay", "unionpay"),
        ("UnionPay", "unionpay"),
        ("Diners Club", "diners"),
        ("diners", "diners"),
        ("discover", "discover"),
        ("JCB", "jcb"),
        ("cartes_bancaires", "unknown"),
        ("eftpos_au", "unknown"),
        ("link", "unknown"),
        ("unknown", "unknown"),
    ],
)
def test_brand_normalisation(adapter: StripeAdapter, word: str, brand: str) -> None:
    event = adapter.sample_event("payment_method.attached")
    event["data"]["object"]["card"]["brand"] = word
    (record,) = adapter.sanitise(event).records
    assert record.values["brand"] == brand


# -- samples ------------------------------------------------------------------


def test_sample_event_rejects_unknown_type(adapter: StripeAdapter) -> None:
    with pytest.raises(ValueError, match="unsupported Stripe event type"):
        adapter.sample_event("customer.created")


@pytest.mark.parametrize("event_type", SUPPORTED_EVENT_TYPES)
def test_sample_event_envelope(adapter: StripeAdapter, event_type: str) -> None:
    before = int(time.time())
    event = adapter.sample_event(event_type)
    assert re.fullmatch(r"evt_[A-Za-z0-9]{24}", event["id"])
    assert event["object"] == "event"
    assert event["type"] == event_type
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}\.[a-z]+", event["api_version"])
    assert before <= event["created"] <= int(time.time())
    assert event["livemode"] is False
    assert isinstance(event["pending_webhooks"], int)
    assert set(event["request"]) == {"id", "idempotency_key"}
    assert event["data"]["object"]["object"] in {
        "payment_intent",
        "charge",
        "dispute",
        "refund",
        "payment_method",
        "setup_intent",
        "subscription",
        "invoice",
        "checkout.session",
    }
    if event_type.endswith(".updated") or event_type.endswith(".automatically_updated"):
        assert event["data"]["previous_attributes"]
    orjson.dumps(event)


def test_sample_event_ids_are_fresh_unless_given(adapter: StripeAdapter) -> None:
    first = adapter.sample_event("charge.succeeded")
    second = adapter.sample_event("charge.succeeded")
    assert first["id"] != second["id"]
    assert first["data"]["object"]["id"] != second["data"]["object"]["id"]
    given_id = adapter.sample_event("charge.succeeded", event_id="evt_fixed_1")
    assert given_id["id"] == "evt_fixed_1"


def test_sample_references_line_up(adapter: StripeAdapter) -> None:
    charge = adapter.sample_event("charge.refunded")["data"]["object"]
    assert charge["refunds"]["data"][0]["charge"] == charge["id"]
    assert charge["refunds"]["data"][0]["payment_intent"] == charge["payment_intent"]
    invoice = adapter.sample_event("invoice.paid")["data"]["object"]
    assert invoice["lines"]["data"][0]["invoice"] == invoice["id"]


@pytest.mark.parametrize(
    ("event_type", "paths"),
    [
        (
            "charge.succeeded",
            [
                "billing_details.name",
                "billing_details.email",
                "billing_details.phone",
                "billing_details.address.line1",
                "receipt_email",
                "description",
                "shipping.name",
                "payment_method_details.card.fingerprint",
                "metadata.order_id",
            ],
        ),
        (
            "payment_intent.payment_failed",
            [
                "receipt_email",
                "shipping.address.line1",
                "last_payment_error.payment_method.billing_details.email",
            ],
        ),
        (
            "payment_method.attached",
            ["billing_details.name", "card.fingerprint", "metadata.customer_note"],
        ),
        (
            "checkout.session.completed",
            [
                "customer_details.name",
                "customer_details.email",
                "customer_details.address.line1",
                "collected_information.shipping_details.name",
            ],
        ),
        (
            "invoice.paid",
            [
                "customer_email",
                "customer_name",
                "customer_address.line1",
                "customer_phone",
                "customer_shipping.name",
            ],
        ),
        ("charge.dispute.created", ["evidence.customer_name", "evidence.customer_email_address"]),
    ],
)
def test_samples_carry_personal_data(
    adapter: StripeAdapter, event_type: str, paths: list[str]
) -> None:
    obj = adapter.sample_event(event_type)["data"]["object"]
    for path in paths:
        value = get(obj, path)
        assert isinstance(value, str) and value


def test_sample_objects_are_independent(adapter: StripeAdapter) -> None:
    event = adapter.sample_event("charge.succeeded")
    snapshot = copy.deepcopy(event)
    event["data"]["object"]["billing_details"]["address"]["city"] = "Elsewhere"
    again = adapter.sample_event("charge.succeeded")
    assert again["data"]["object"]["billing_details"]["address"]["city"] == get(
        snapshot, OBJ + "billing_details.address.city"
    )


# -- every parse refuses or drops, never raises anything else ------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("t={now},v1=" + "\u00e9" * 64, "not ASCII"),
        ("t={now},v1=" + "\u0663" * 64, "not ASCII"),
        ("t=\u00b2,v1=" + "a" * 64, "not ASCII"),
        ("t=\u0661\u0667" + "\u0660" * 8 + ",v1=" + "a" * 64, "not ASCII"),
        ("t=99999999999999999999,v1=" + "a" * 64, "timestamp is not an integer"),
        ("t={now}\n,v1=" + "a" * 64, "timestamp is not an integer"),
        ("t={now},v1=" + "a" * 64 + ",v1=" + "b" * 5000, "too long"),
    ],
)
def test_verify_refuses_non_ascii_and_overlong_headers(
    adapter: StripeAdapter, endpoint: EndpointConfig, value: str, message: str
) -> None:
    header_value = value.replace("{now}", str(int(time.time())))
    with pytest.raises(VerificationError, match=f"^malformed Stripe-Signature header: {message}$"):
        adapter.verify(b"{}", {"Stripe-Signature": header_value}, endpoint)


@settings(max_examples=200, deadline=None)
@given(signature=st.text(max_size=80))
def test_verify_with_a_fresh_timestamp_never_raises_another_exception(signature: str) -> None:
    adapter = StripeAdapter(Settings(tolerance_seconds=TOLERANCE))
    endpoint = EndpointConfig(provider="stripe", webhook_secrets=(FIRST,))
    value = f"t={int(time.time())},v1={signature}"
    with pytest.raises(VerificationError):
        adapter.verify(b"{}", {"Stripe-Signature": value}, endpoint)


@pytest.mark.parametrize(
    "created",
    [
        "9999-12-31T23:59:59-01:00",
        "0001-01-01T00:00:00+00:01",
        "9999-12-31T23:59:59.999999999-23:59",
        "\u0662\u0660\u0662\u0664-09-17T06:20:52Z",
        "2024-09-17T06:20:52+24:00",
        "2024-09-17T24:00:00Z",
        253402300800,
        2**64 - 1,
        -(2**63),
        float(2**53),
    ],
)
def test_meta_refuses_times_it_cannot_represent(adapter: StripeAdapter, created: Any) -> None:
    event = adapter.sample_event("charge.succeeded") | {"created": created}
    with pytest.raises(MalformedBody, match="created"):
        adapter.meta(event, Headers())


def test_meta_keeps_the_last_representable_second(adapter: StripeAdapter) -> None:
    event = adapter.sample_event("charge.succeeded") | {"created": 253402300799}
    assert adapter.meta(event, Headers()).occurred_at == datetime(
        9999, 12, 31, 23, 59, 59, tzinfo=UTC
    )
    event["created"] = "9999-12-31T23:59:59+00:00"
    assert adapter.meta(event, Headers()).occurred_at.year == 9999


_ANY_JSON_SCALAR = st.one_of(
    st.integers(),
    st.integers(min_value=253402300790, max_value=253402300810),
    st.floats(),
    st.booleans(),
    st.none(),
    st.text(max_size=30),
    st.integers().map(str),
)


@settings(max_examples=300, deadline=None)
@given(created=_ANY_JSON_SCALAR)
def test_meta_of_any_created_is_a_time_or_malformed(created: Any) -> None:
    adapter = StripeAdapter(Settings())
    event = adapter.sample_event("charge.succeeded") | {"created": created}
    try:
        meta = adapter.meta(event, Headers())
    except MalformedBody:
        return
    assert meta.occurred_at.tzinfo is not None


@settings(max_examples=300, deadline=None)
@given(value=_ANY_JSON_SCALAR)
def test_any_epoch_field_value_is_kept_in_range_or_dropped(value: Any) -> None:
    adapter = StripeAdapter(Settings())
    event = adapter.sample_event("customer.subscription.updated")
    item = event["data"]["object"]["items"]["data"][0]
    event["data"]["object"]["current_period_end"] = value
    item["current_period_end"] = value
    result = adapter.sanitise(event)
    (record,) = result.records
    if type(value) is int and 0 <= value <= 253402300799:
        assert record.values["current_period_end"] == datetime.fromtimestamp(value, UTC)
        assert OBJ + "current_period_end" not in result.dropped
    elif value is None:
        assert OBJ + "current_period_end" not in result.dropped
    else:
        assert "current_period_end" not in record.values
        assert OBJ + "current_period_end" in result.dropped
        assert OBJ + "items.data.0.current_period_end" in result.dropped
