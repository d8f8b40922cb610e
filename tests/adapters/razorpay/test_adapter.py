"""Unit tests of the Razorpay adapter: verification, event metadata and the allowlist."""

from __future__ import annotations

import copy
import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import Headers

from adapters.razorpay import SUPPORTED_EVENT_TYPES, RazorpayAdapter
from adapters.razorpay.samples import METHODS, SAMPLE_EVENT_TYPES, build_event
from adapters.registry import adapter_classes
from gateway.config.settings import EndpointConfig, Settings
from gateway.core.errors import MalformedBody, VerificationError
from gateway.core.records import Record, Sanitised
from tests.support.razorpay_planting import plant

SECRET = "rzp-webhook-secret-current-0123456789"
OLD_SECRET = "rzp-webhook-secret-previous-9876543210"
EVENT_ID = "KWHKzQDmtsrpDj"


@pytest.fixture
def adapter() -> RazorpayAdapter:
    return RazorpayAdapter(Settings())


def endpoint(*secrets_: str) -> EndpointConfig:
    return EndpointConfig(provider="razorpay", webhook_secrets=secrets_ or (SECRET,))


def signed(body: bytes, secret: str = SECRET, event_id: str = EVENT_ID) -> dict[str, str]:
    """Return the headers Razorpay would send, signed independently of the adapter."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Razorpay-Signature": digest, "X-Razorpay-Event-Id": event_id}


# Every kind of JSON scalar an epoch field might be sent as, edges of the range included.
ANY_SCALAR = st.one_of(
    st.integers(),
    st.integers(min_value=253402280000, max_value=253402300810),
    st.floats(),
    st.booleans(),
    st.none(),
    st.text(max_size=30),
    st.integers().map(str),
)

BODY = b'{"entity":"event","event":"payment.captured","payload":{},"created_at":1700000000}'


def by_key(out: Sanitised) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r.type, r.key): r.values for r in out.records}


def entity(event: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = event["payload"][name]["entity"]
    return found


# -- registry, options, signing ------------------------------------------------


def test_registered_under_its_name() -> None:
    assert adapter_classes()["razorpay"] is RazorpayAdapter


def test_enabled_only_with_a_secret(adapter: RazorpayAdapter) -> None:
    assert adapter.enabled(endpoint())
    assert not adapter.enabled(EndpointConfig(provider="razorpay"))
    assert "PAYSIEVE_RAZORPAY_WEBHOOK_SECRETS" in adapter.how_to_enable()


def test_dev_options_make_a_fresh_secret_each_time(adapter: RazorpayAdapter, tmp_path: Any) -> None:
    first = adapter.dev_options(tmp_path)["webhook_secrets"]
    second = adapter.dev_options(tmp_path)["webhook_secrets"]
    assert len(first) == 1 and len(first[0]) >= 32
    assert first != second


def test_sign_gives_the_hmac_and_the_event_id(adapter: RazorpayAdapter) -> None:
    headers = adapter.sign(BODY, endpoint(), timestamp=0, event_id=EVENT_ID)
    assert headers == signed(BODY)


def test_sign_needs_a_secret(adapter: RazorpayAdapter) -> None:
    with pytest.raises(ValueError, match="no Razorpay webhook secret"):
        adapter.sign(BODY, EndpointConfig(provider="razorpay"), timestamp=0, event_id=EVENT_ID)


# -- verification ----------------------------------------------------------------


def test_verify_accepts_a_good_signature(adapter: RazorpayAdapter) -> None:
    adapter.verify(BODY, signed(BODY), endpoint())


def test_verify_reads_headers_case_insensitively(adapter: RazorpayAdapter) -> None:
    headers = Headers({k.lower(): v for k, v in signed(BODY).items()})
    adapter.verify(BODY, headers, endpoint())


def test_verify_accepts_upper_case_hex(adapter: RazorpayAdapter) -> None:
    headers = signed(BODY)
    headers["X-Razorpay-Signature"] = headers["X-Razorpay-Signature"].upper()
    adapter.verify(BODY, headers, endpoint())


def test_verify_accepts_every_configured_secret(adapter: RazorpayAdapter) -> None:
    rotating = endpoint(SECRET, OLD_SECRET)
    adapter.verify(BODY, signed(BODY, OLD_SECRET), rotating)
    adapter.verify(BODY, signed(BODY, SECRET), rotating)


def test_verify_refuses_a_retired_secret(adapter: RazorpayAdapter) -> None:
    with pytest.raises(VerificationError, match="^signature does not match$"):
        adapter.verify(BODY, signed(BODY, OLD_SECRET), endpoint(SECRET))


def test_verify_refuses_a_changed_body(adapter: RazorpayAdapter) -> None:
    with pytest.raises(VerificationError, match="^signature does not match$"):
        adapter.verify(BODY.replace(b"1700000000", b"1700000001"), signed(BODY), endpoint())


@pytest.mark.parametrize("value", [None, ""])
def test_verify_refuses_a_missing_signature(adapter: RazorpayAdapter, value: str | None) -> None:
    headers = signed(BODY)
    del headers["X-Razorpay-Signature"]
    if value is not None:
        headers["X-Razorpay-Signature"] = value
    with pytest.raises(VerificationError, match="^missing X-Razorpay-Signature header$"):
        adapter.verify(BODY, headers, endpoint())


@pytest.mark.parametrize(
    "value",
    [
        "a" * 63,
        "a" * 65,
        "g" * 64,
        "sha256=" + "a" * 57,
        "\u0663" * 64,  # Arabic-Indic digits: \d would take them, hex must not
        "a" * 63 + "\n",
        "é" * 64,
    ],
)
def test_verify_refuses_a_malformed_signature(adapter: RazorpayAdapter, value: str) -> None:
    headers = signed(BODY)
    headers["X-Razorpay-Signature"] = value
    with pytest.raises(VerificationError, match="^malformed X-Razorpay-Signature header$"):
        adapter.verify(BODY, headers, endpoint())


def test_verify_refuses_a_body_that_is_not_utf8(adapter: RazorpayAdapter) -> None:
    body = b'{"event":"payment.captured","x":"\xff\xfe"}'
    with pytest.raises(VerificationError, match="^body is not UTF-8$"):
        adapter.verify(body, signed(body), endpoint())


def test_verify_refuses_a_missing_event_id(adapter: RazorpayAdapter) -> None:
    headers = signed(BODY)
    del headers["X-Razorpay-Event-Id"]
    with pytest.raises(VerificationError, match="^missing X-Razorpay-Event-Id header$"):
        adapter.verify(BODY, headers, endpoint())


@pytest.mark.parametrize(
    "value", ["evt 1", "x" * 129, "evt/1", "KWHKzQDmtsrpDj\n", "evt_4111111111111111"]
)
def test_verify_refuses_a_malformed_event_id(adapter: RazorpayAdapter, value: str) -> None:
    headers = signed(BODY, event_id=value)
    with pytest.raises(VerificationError, match="^malformed X-Razorpay-Event-Id header$"):
        adapter.verify(BODY, headers, endpoint())


def test_verify_refuses_without_secrets(adapter: RazorpayAdapter) -> None:
    with pytest.raises(VerificationError, match="^no Razorpay webhook secret is configured$"):
        adapter.verify(BODY, signed(BODY), EndpointConfig(provider="razorpay"))


# -- metadata --------------------------------------------------------------------


def test_meta_takes_the_id_from_the_header_and_the_time_from_created_at(
    adapter: RazorpayAdapter,
) -> None:
    meta = adapter.meta(adapter.parse(BODY), signed(BODY))
    assert meta.id == EVENT_ID
    assert meta.type == "payment.captured"
    assert meta.occurred_at == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)


def test_meta_falls_back_to_the_latest_entity_created_at(adapter: RazorpayAdapter) -> None:
    event = build_event("subscription.charged")
    del event["created_at"]
    entity(event, "subscription")["created_at"] = 1_600_000_000
    entity(event, "payment")["created_at"] = 1_600_000_500
    meta = adapter.meta(event, signed(BODY))
    assert meta.occurred_at == datetime.fromtimestamp(1_600_000_500, tz=UTC)


def test_meta_falls_back_to_the_time_of_receipt(adapter: RazorpayAdapter) -> None:
    event = build_event("token.activated")
    assert "created_at" not in event and "created_at" not in entity(event, "token")
    before = datetime.now(UTC)
    meta = adapter.meta(event, signed(BODY))
    assert before <= meta.occurred_at <= datetime.now(UTC)


@pytest.mark.parametrize("value", ["1700000000", True, -1, 10**13, 1.5])
def test_meta_refuses_a_created_at_that_is_not_epoch_seconds(
    adapter: RazorpayAdapter, value: Any
) -> None:
    event = build_event("payment.captured")
    event["created_at"] = value
    with pytest.raises(MalformedBody, match="^event created_at is not epoch seconds$"):
        adapter.meta(event, signed(BODY))


@pytest.mark.parametrize("value", [None, 7, "", "payment captured", "x" * 129])
def test_meta_refuses_a_missing_or_malformed_type(adapter: RazorpayAdapter, value: Any) -> None:
    event = build_event("payment.captured")
    event["event"] = value
    with pytest.raises(MalformedBody, match="^event type is missing or malformed$"):
        adapter.meta(event, signed(BODY))


def test_meta_refuses_a_missing_event_id(adapter: RazorpayAdapter) -> None:
    with pytest.raises(VerificationError, match="^missing X-Razorpay-Event-Id header$"):
        adapter.meta(build_event("payment.captured"), Headers())


# -- sanitise: payments ------------------------------------------------------------

PAYMENT_STATUS = {
    "payment.authorized": ("authorized", "authorized"),
    "payment.captured": ("succeeded", "captured"),
    "payment.failed": ("failed", "failed"),
    "order.paid": ("succeeded", "captured"),
}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("event_type", sorted(PAYMENT_STATUS))
def test_payment_events_keep_ids_status_and_money(
    adapter: RazorpayAdapter, event_type: str, method: str
) -> None:
    event = build_event(event_type, method=method)
    payment = entity(event, "payment")
    out = adapter.sanitise(event)
    assert out.handled and out.dropped == []
    records = by_key(out)
    status, word = PAYMENT_STATUS[event_type]
    expected = {
        "id": payment["id"],
        "kind": "payment",
        "charge": payment["id"],
        "status": status,
        "provider_status": word,
        "amount": 50000,
        "currency": "INR",
        "customer": payment["customer_id"],
        "order": payment["order_id"],
    }
    if method == "card":
        expected["payment_method"] = payment["token_id"]
        assert records[("payment_method", payment["token_id"])] == {
            "token": payment["token_id"],
            "customer": payment["customer_id"],
            "brand": "visa",
            "last4": "1111",
            "status": "active",
        }
    assert records[("transaction", payment["id"])] == expected
    assert len(records) == (2 if method == "card" else 1)


def test_a_one_off_card_is_kept_under_its_card_id(adapter: RazorpayAdapter) -> None:
    event = build_event("payment.captured")
    payment = entity(event, "payment")
    payment["token_id"] = None
    payment["card"].update(expiry_month="02", expiry_year="2031", network="MasterCard")
    records = by_key(adapter.sanitise(event))
    assert records[("transaction", payment["id"])]["payment_method"] == payment["card_id"]
    # No token: nothing says the card can be charged again, so no status.
    assert records[("payment_method", payment["card_id"])] == {
        "token": payment["card_id"],
        "customer": payment["customer_id"],
        "brand": "mastercard",
        "last4": "1111",
        "exp_month": 2,
        "exp_year": 2031,
    }


@pytest.mark.parametrize(
    ("refund_status", "refunded", "payment_word", "expected"),
    [
        (None, 0, "captured", "succeeded"),
        ("partial", 100, "captured", "partially_refunded"),
        (None, 100, "captured", "partially_refunded"),
        ("full", 50000, "refunded", "refunded"),
        ("full", 50000, "captured", "refunded"),
    ],
)
def test_refunds_show_in_the_payment_status(
    adapter: RazorpayAdapter,
    refund_status: str | None,
    refunded: int,
    payment_word: str,
    expected: str,
) -> None:
    event = build_event("payment.captured")
    payment = entity(event, "payment")
    payment.update(refund_status=refund_status, amount_refunded=refunded, status=payment_word)
    assert by_key(adapter.sanitise(event))[("transaction", payment["id"])]["status"] == expected


def test_an_unknown_payment_word_falls_back_to_the_event_type(adapter: RazorpayAdapter) -> None:
    event = build_event("payment.failed")
    entity(event, "payment")["status"] = "some_new_word"
    values = by_key(adapter.sanitise(event))[("transaction", entity(event, "payment")["id"])]
    assert values["status"] == "failed"
    assert values["provider_status"] == "some_new_word"


def test_nulls_are_left_out_so_storage_keeps_what_it_has(adapter: RazorpayAdapter) -> None:
    event = build_event("payment.captured", method="upi")
    payment = entity(event, "payment")
    payment.update(order_id=None, customer_id=None)
    values = by_key(adapter.sanitise(event))[("transaction", payment["id"])]
    assert "order" not in values and "customer" not in values and "invoice" not in values


# -- sanitise: refunds, disputes, invoices ---------------------------------------------

REFUND_STATUS = {
    "refund.created": ("pending", "pending"),
    "refund.processed": ("succeeded", "processed"),
    "refund.failed": ("failed", "failed"),
}


@pytest.mark.parametrize("event_type", sorted(REFUND_STATUS))
def test_refund_events(adapter: RazorpayAdapter, event_type: str) -> None:
    event = build_event(event_type)
    refund, payment = entity(event, "refund"), entity(event, "payment")
    records = by_key(adapter.sanitise(event))
    status, word = REFUND_STATUS[event_type]
    assert records[("transaction", refund["id"])] == {
        "id": refund["id"],
        "kind": "refund",
        "status": status,
        "provider_status": word,
        "amount": 20000,
        "currency": "INR",
        "refund_of": payment["id"],
        "charge": payment["id"],
        "customer": payment["customer_id"],
    }
    assert ("transaction", payment["id"]) in records


DISPUTE_STATUS = {
    "payment.dispute.created": ("disputed", "open"),
    "payment.dispute.action_required": ("disputed", "open"),
    "payment.dispute.under_review": ("disputed", "under_review"),
    "payment.dispute.won": ("succeeded", "won"),
    "payment.dispute.lost": ("failed", "lost"),
    "payment.dispute.closed": ("canceled", "closed"),
}


@pytest.mark.parametrize("event_type", sorted(DISPUTE_STATUS))
def test_dispute_events(adapter: RazorpayAdapter, event_type: str) -> None:
    event = build_event(event_type)
    dispute, payment = entity(event, "dispute"), entity(event, "payment")
    records = by_key(adapter.sanitise(event))
    status, word = DISPUTE_STATUS[event_type]
    assert records[("transaction", dispute["id"])] == {
        "id": dispute["id"],
        "kind": "dispute",
        "status": status,
        "provider_status": word,
        "amount": 50000,
        "currency": "INR",
        "charge": payment["id"],
        "customer": payment["customer_id"],
    }


def test_a_dispute_with_an_unknown_word_is_open(adapter: RazorpayAdapter) -> None:
    event = build_event("payment.dispute.created")
    entity(event, "dispute")["status"] = "pre_arbitration"
    values = by_key(adapter.sanitise(event))[("transaction", entity(event, "dispute")["id"])]
    assert values["status"] == "disputed"


INVOICE_STATUS = {
    "invoice.paid": ("succeeded", "paid"),
    "invoice.partially_paid": ("pending", "partially_paid"),
    "invoice.expired": ("canceled", "expired"),
}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("event_type", sorted(INVOICE_STATUS))
def test_invoice_events(adapter: RazorpayAdapter, event_type: str, method: str) -> None:
    event = build_event(event_type, method=method)
    invoice = entity(event, "invoice")
    records = by_key(adapter.sanitise(event))
    status, word = INVOICE_STATUS[event_type]
    assert records[("transaction", invoice["id"])] == {
        "id": invoice["id"],
        "kind": "invoice",
        "invoice": invoice["id"],
        "status": status,
        "provider_status": word,
        "amount": 50000,
        "currency": "INR",
        "customer": invoice["customer_id"],
        "order": invoice["order_id"],
    }
    if event_type != "invoice.expired":
        payment = entity(event, "payment")
        assert records[("transaction", payment["id"])]["invoice"] == invoice["id"]


# -- sanitise: subscriptions and tokens ----------------------------------------------

SUBSCRIPTION_STATUS = {
    "subscription.authenticated": ("incomplete", "authenticated"),
    "subscription.activated": ("active", "active"),
    "subscription.charged": ("active", "active"),
    "subscription.pending": ("past_due", "pending"),
    "subscription.halted": ("past_due", "halted"),
    "subscription.paused": ("paused", "paused"),
    "subscription.resumed": ("active", "active"),
    "subscription.cancelled": ("canceled", "cancelled"),
    "subscription.completed": ("expired", "completed"),
    "subscription.updated": ("active", "active"),
}


@pytest.mark.parametrize("event_type", sorted(SUBSCRIPTION_STATUS))
def test_subscription_events(adapter: RazorpayAdapter, event_type: str) -> None:
    event = build_event(event_type)
    sub = entity(event, "subscription")
    records = by_key(adapter.sanitise(event))
    status, word = SUBSCRIPTION_STATUS[event_type]
    expected: dict[str, Any] = {
        "id": sub["id"],
        "status": status,
        "provider_status": word,
        "plan": sub["plan_id"],
        "customer": sub["customer_id"],
    }
    if sub["current_end"] is not None:
        expected["current_period_end"] = datetime.fromtimestamp(sub["current_end"], tz=UTC)
    assert records[("subscription", sub["id"])] == expected
    if "payment" in event["payload"]:
        payment = entity(event, "payment")
        values = records[("transaction", payment["id"])]
        assert values["subscription"] == sub["id"]
        assert records[("payment_method", payment["card_id"])]["exp_month"] == 11


def test_entities_not_listed_in_contains_are_still_read(adapter: RazorpayAdapter) -> None:
    event = build_event("subscription.charged")
    event["contains"] = ["subscription"]
    records = by_key(adapter.sanitise(event))
    assert ("transaction", entity(event, "payment")["id"]) in records


TOKEN_STATUS = {
    "token.activated": "active",
    "token.deactivated": "detached",
    "token.expiry_updated": "active",
    "token.suspended": "detached",
    "token.paused": "detached",
    "token.cancelled": "detached",
    "token.rejected": "detached",
    "token.initiated": None,
}


@pytest.mark.parametrize("event_type", sorted(TOKEN_STATUS))
def test_token_events_make_payment_methods(adapter: RazorpayAdapter, event_type: str) -> None:
    event = build_event(event_type)
    token = entity(event, "token")
    expected: dict[str, Any] = {
        "token": token["id"],
        "customer": token["customer_id"],
        "brand": "rupay",
        "last4": "3335",
        # expired_at is 2031-11-30 23:59:59 IST, which is still November.
        "exp_month": 11,
        "exp_year": 2031,
    }
    if TOKEN_STATUS[event_type] is not None:
        expected["status"] = TOKEN_STATUS[event_type]
    out = adapter.sanitise(event)
    assert out.handled
    assert by_key(out) == {("payment_method", token["id"]): expected}


def test_token_expiry_is_read_in_india_time(adapter: RazorpayAdapter) -> None:
    event = build_event("token.expiry_updated")
    # 2025-05-31T23:59:59+05:30, Razorpay's own sample: 18:29:59 UTC the same day.
    entity(event, "token")["expired_at"] = 1748716199
    values = adapter.sanitise(event).records[0].values
    assert (values["exp_month"], values["exp_year"]) == (5, 2025)
    # Midnight IST on 1 June is still 31 May in UTC: IST names the right month.
    entity(event, "token")["expired_at"] = 1748716200
    values = adapter.sanitise(event).records[0].values
    assert (values["exp_month"], values["exp_year"]) == (6, 2025)


def test_a_token_card_expiry_wins_over_expired_at(adapter: RazorpayAdapter) -> None:
    event = build_event("token.activated")
    entity(event, "token")["card"].update(expiry_month="03", expiry_year=2030)
    values = adapter.sanitise(event).records[0].values
    assert (values["exp_month"], values["exp_year"]) == (3, 2030)


def test_a_token_without_a_card_has_no_card_fields(adapter: RazorpayAdapter) -> None:
    event = build_event("token.activated")
    token = entity(event, "token")
    token.update(method="upi", card=None, vpa={"username": "gaurav.kumar", "handle": "okhdfc"})
    assert adapter.sanitise(event).records[0].values == {
        "token": token["id"],
        "customer": token["customer_id"],
        "status": "active",
    }


def test_a_token_activated_during_a_payment_also_stores_the_payment(
    adapter: RazorpayAdapter,
) -> None:
    event = build_event("token.activated")
    event["payload"]["payment"] = {"entity": entity(build_event("payment.captured"), "payment")}
    kinds = sorted(r.type for r in adapter.sanitise(event).records)
    assert kinds == ["payment_method", "payment_method", "transaction"]


# -- sanitise: payment links and ignored events ----------------------------------------


def test_a_paid_payment_link_stores_its_payment(adapter: RazorpayAdapter) -> None:
    event = build_event("payment_link.paid", method="upi")
    payment = entity(event, "payment")
    out = adapter.sanitise(event)
    assert [r.key for r in out.records] == [payment["id"]]
    assert out.records[0].values["status"] == "succeeded"


@pytest.mark.parametrize(
    "event_type",
    [
        "payment_link.cancelled",
        "payment_link.expired",
        "refund.speed_changed",
        "order.notification.delivered",
        "payment.downtime.started",
        "account.instantly_activated",
    ],
)
def test_other_events_are_not_handled(adapter: RazorpayAdapter, event_type: str) -> None:
    event = build_event("payment.captured")
    event["event"] = event_type
    assert adapter.sanitise(event) == Sanitised(records=[], dropped=[], handled=False)


def test_a_supported_event_without_a_payload_is_malformed(adapter: RazorpayAdapter) -> None:
    with pytest.raises(MalformedBody, match="^event has no payload$"):
        adapter.sanitise({"event": "payment.captured", "payload": []})


# -- shapes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "path"),
    [
        ("amount", "50000", "payload.payment.entity.amount"),
        ("amount", True, "payload.payment.entity.amount"),
        ("amount", -1, "payload.payment.entity.amount"),
        ("amount", 500.5, "payload.payment.entity.amount"),
        ("currency", "RUPEES", "payload.payment.entity.currency"),
        ("order_id", "order 1 for Gaurav", "payload.payment.entity.order_id"),
        ("customer_id", "x" * 129, "payload.payment.entity.customer_id"),
        ("status", "captured by Gaurav", "payload.payment.entity.status"),
    ],
)
def test_a_payment_field_failing_its_shape_is_dropped_and_counted(
    adapter: RazorpayAdapter, field: str, value: Any, path: str
) -> None:
    event = build_event("payment.captured")
    payment = entity(event, "payment")
    payment[field] = value
    out = adapter.sanitise(event)
    assert out.dropped == [path]
    values = by_key(out)[("transaction", payment["id"])]
    names = {"order_id": "order", "customer_id": "customer", "status": "provider_status"}
    assert names.get(field, field) not in values


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("last4", "12345"),
        ("last4", 1111),
        # Full-width digits: last4 is ASCII digits only.
        ("last4", "\uff14\uff12\uff14\uff12"),
        ("expiry_month", 13),
        ("expiry_month", "1a"),
        ("expiry_month", True),
        ("expiry_year", 31),
        ("expiry_year", "20311"),
        ("network", 7),
    ],
)
def test_a_card_field_failing_its_shape_costs_only_that_field(
    adapter: RazorpayAdapter, field: str, value: Any
) -> None:
    event = build_event("subscription.charged")
    payment = entity(event, "payment")
    payment["card"][field] = value
    out = adapter.sanitise(event)
    assert out.dropped == [f"payload.payment.entity.card.{field}"]
    method = by_key(out)[("payment_method", payment["card_id"])]
    record_name = {"expiry_month": "exp_month", "expiry_year": "exp_year", "network": "brand"}
    assert record_name.get(field, field) not in method
    assert method["token"] == payment["card_id"] and len(method) == 5


def test_an_entity_whose_id_fails_its_shape_makes_no_record(adapter: RazorpayAdapter) -> None:
    event = build_event("refund.processed")
    entity(event, "refund")["id"] = "rfnd for 4111 1111 1111 1111"
    out = adapter.sanitise(event)
    assert "payload.refund.entity.id" in out.dropped
    assert [r.values["kind"] for r in out.records if r.type == "transaction"] == ["payment"]
    assert "4111" not in repr(out)


def test_an_entity_that_is_not_an_object_is_skipped(adapter: RazorpayAdapter) -> None:
    event = build_event("refund.processed")
    event["payload"]["refund"] = {"entity": "rfnd_x"}
    event["payload"]["payment"] = ["pay_x"]
    assert adapter.sanitise(event) == Sanitised()


@pytest.mark.parametrize(
    ("network", "brand"),
    [
        ("Visa", "visa"),
        ("MasterCard", "mastercard"),
        ("RuPay", "rupay"),
        ("American Express", "amex"),
        ("Diners Club", "diners"),
        ("Maestro", "maestro"),
        ("JCB", "jcb"),
        ("Union Pay", "unionpay"),
        ("Bajaj Finserv", "unknown"),
        ("Unknown", "unknown"),
    ],
)
def test_card_networks_are_normalised(adapter: RazorpayAdapter, network: str, brand: str) -> None:
    event = build_event("payment.captured")
    entity(event, "payment")["card"]["network"] = network
    method = next(r for r in adapter.sanitise(event).records if r.type == "payment_method")
    assert method.values["brand"] == brand


# -- minimisation ---------------------------------------------------------------------


@pytest.mark.parametrize("event_type", SAMPLE_EVENT_TYPES)
def test_planted_data_never_reaches_a_record(adapter: RazorpayAdapter, event_type: str) -> None:
    event = build_event(event_type)
    planted = plant(event)
    out = adapter.sanitise(event)
    text = repr(out)
    for value in planted:
        assert value not in text, f"planted value kept: {value[:4]}..."
    assert out.dropped == []


def test_kept_fields_are_only_allowlisted_ones(adapter: RazorpayAdapter) -> None:
    allowed = {
        "transaction": {
            "id",
            "kind",
            "status",
            "provider_status",
            "amount",
            "currency",
            "customer",
            "payment_intent",
            "charge",
            "order",
            "invoice",
            "subscription",
            "refund_of",
            "payment_method",
        },
        "payment_method": {
            "token",
            "customer",
            "brand",
            "last4",
            "exp_month",
            "exp_year",
            "status",
        },
        "subscription": {
            "id",
            "customer",
            "plan",
            "status",
            "provider_status",
            "current_period_end",
            "cancel_at_period_end",
        },
    }
    seen: list[Record] = []
    for event_type in SAMPLE_EVENT_TYPES:
        seen += adapter.sanitise(build_event(event_type)).records
    assert {r.type for r in seen} == set(allowed)
    for record in seen:
        assert set(record.values) <= allowed[record.type], record.type


# -- samples --------------------------------------------------------------------------


def test_every_supported_type_has_a_sample() -> None:
    assert set(SUPPORTED_EVENT_TYPES) <= set(SAMPLE_EVENT_TYPES)


def test_samples_have_fresh_ids_and_no_event_id(adapter: RazorpayAdapter) -> None:
    first = adapter.sample_event("payment.captured")
    second = adapter.sample_event("payment.captured", event_id="evt_ignored")
    assert entity(first, "payment")["id"] != entity(second, "payment")["id"]
    assert entity(first, "payment")["order_id"] != entity(second, "payment")["order_id"]
    # Razorpay bodies carry no id: simulate and tests put one in the header.
    assert "id" not in first and "evt_ignored" not in repr(second)


def test_samples_carry_the_personal_data_real_events_carry() -> None:
    text = repr(build_event("payment.captured", method="upi"))
    for value in ("gaurav.kumar@example.com", "+919876543210", "gaurav.kumar@okhdfcbank"):
        assert value in text


def test_unknown_sample_requests_are_refused(adapter: RazorpayAdapter) -> None:
    with pytest.raises(ValueError, match="no Razorpay sample"):
        adapter.sample_event("payment.teleported")
    with pytest.raises(ValueError, match="unknown payment method"):
        adapter.sample_event("payment.captured", method="cheque")


def test_sanitise_does_not_change_the_event(adapter: RazorpayAdapter) -> None:
    event = build_event("invoice.paid")
    before = copy.deepcopy(event)
    adapter.sanitise(event)
    assert event == before


def test_the_receipt_time_fallback_is_recent(adapter: RazorpayAdapter) -> None:
    meta = adapter.meta(build_event("token.suspended"), signed(BODY))
    assert datetime.now(UTC) - meta.occurred_at < timedelta(seconds=5)


# -- every parse refuses or drops, never raises anything else --------------------


def test_a_token_expiring_in_the_last_utc_second_of_9999_drops_its_expiry(
    adapter: RazorpayAdapter,
) -> None:
    event = build_event("token.expiry_updated")
    # The last second a datetime holds in UTC is already year 10000 in India.
    entity(event, "token")["expired_at"] = 253402300799
    out = adapter.sanitise(event)
    (record,) = out.records
    assert "exp_month" not in record.values and "exp_year" not in record.values
    assert out.dropped == ["payload.token.entity.expired_at"]


@settings(max_examples=300, deadline=None)
@given(value=ANY_SCALAR)
def test_any_epoch_value_is_kept_in_range_or_dropped(value: Any) -> None:
    adapter = RazorpayAdapter(Settings())
    event = build_event("subscription.charged")
    entity(event, "subscription")["current_end"] = value
    entity(event, "subscription")["created_at"] = value
    out = adapter.sanitise(event)
    (subscription,) = [r for r in out.records if r.type == "subscription"]
    if type(value) is int and 0 <= value <= 253402300799:
        assert subscription.values["current_period_end"] == datetime.fromtimestamp(value, UTC)
    else:
        assert "current_period_end" not in subscription.values
        if value is not None:
            assert "payload.subscription.entity.current_end" in out.dropped


@settings(max_examples=300, deadline=None)
@given(value=ANY_SCALAR)
def test_any_token_expiry_is_read_or_dropped(value: Any) -> None:
    adapter = RazorpayAdapter(Settings())
    event = build_event("token.expiry_updated")
    entity(event, "token")["expired_at"] = value
    (record,) = adapter.sanitise(event).records
    if "exp_year" in record.values:
        assert 1970 <= record.values["exp_year"] <= 9999


@settings(max_examples=300, deadline=None)
@given(value=ANY_SCALAR)
def test_meta_of_any_created_at_is_a_time_or_malformed(value: Any) -> None:
    adapter = RazorpayAdapter(Settings())
    event = build_event("payment.captured")
    event["created_at"] = value
    try:
        meta = adapter.meta(event, signed(BODY))
    except MalformedBody:
        return
    assert meta.occurred_at.tzinfo is not None


@pytest.mark.parametrize(
    "value", ["\u00e9" * 64, "\u0663" * 64, "\uff41" * 64, "a" * 5000, "0" * 64 + "\u00b2"]
)
def test_verify_refuses_non_ascii_or_overlong_signatures(
    adapter: RazorpayAdapter, value: str
) -> None:
    headers = signed(BODY) | {"X-Razorpay-Signature": value}
    with pytest.raises(VerificationError, match="^malformed X-Razorpay-Signature header$"):
        adapter.verify(BODY, headers, endpoint())


@pytest.mark.parametrize("value", ["evt_\u00b2", "evt_\u0663", "\u00e9" * 10, "e" * 5000])
def test_verify_refuses_non_ascii_or_overlong_event_ids(
    adapter: RazorpayAdapter, value: str
) -> None:
    headers = signed(BODY, event_id=value)
    with pytest.raises(VerificationError, match="^malformed X-Razorpay-Event-Id header$"):
        adapter.verify(BODY, headers, endpoint())
