"""The PayPal adapter on its own: amounts, shapes, statuses, meta, settings, dev signing."""

from __future__ import annotations

import copy
import time
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.paypal import PayPalAdapter
from adapters.paypal.adapter import SUPPORTED_EVENT_TYPES, money
from adapters.paypal.devpki import DEV_CERT_URL
from adapters.paypal.schemas import to_minor_units
from adapters.paypal.verify_cert import signed_message
from adapters.registry import adapter_classes
from adapters.shapes import parse_rfc3339
from gateway.config.settings import EndpointConfig, Settings
from gateway.core.errors import ConfigurationError, MalformedBody

# A capture as PayPal documents it (trimmed), written here so tests never read elsewhere.
CAPTURE_EVENT: dict[str, Any] = {
    "id": "WH-2WR32451HC0233532-67976317FL4543714",
    "event_version": "1.0",
    "create_time": "2026-03-02T14:21:05.116Z",
    "resource_type": "capture",
    "event_type": "PAYMENT.CAPTURE.COMPLETED",
    "summary": "Payment completed for $ 42.50 USD",
    "resource": {
        "id": "8MC585209K746392H",
        "status": "COMPLETED",
        "amount": {"currency_code": "USD", "value": "42.50"},
        "final_capture": True,
        "invoice_id": "INV-2026-0042",
        "custom_id": "member-8812 renewal",
        "supplementary_data": {"related_ids": {"order_id": "5O190127TN364715T"}},
        "payee": {"email_address": "billing@merchant.example", "merchant_id": "7KNGBPH2U58GQ"},
        "create_time": "2026-03-02T14:21:02Z",
        "links": [
            {
                "href": "https://api.sandbox.paypal.com/v2/payments/captures/8MC585209K746392H",
                "rel": "self",
                "method": "GET",
            }
        ],
    },
}

ORDER_CARD_EVENT: dict[str, Any] = {
    "id": "WH-7Y7254563A4550640-11V2185806837105M",
    "create_time": "2026-03-02T14:20:58.412Z",
    "event_type": "CHECKOUT.ORDER.APPROVED",
    "resource": {
        "id": "5O190127TN364715T",
        "intent": "CAPTURE",
        "status": "APPROVED",
        "payment_source": {
            "card": {
                "name": "Jane Q Doe",
                "last_digits": "7704",
                "brand": "VISA",
                "type": "CREDIT",
                "expiry": "2029-11",
                "billing_address": {
                    "address_line_1": "2211 N First Street",
                    "postal_code": "95131",
                },
                "attributes": {
                    "vault": {
                        "id": "9pbdj6kms2",
                        "status": "VAULTED",
                        "customer": {"id": "bZ3mHd4rsV"},
                    }
                },
            }
        },
        "purchase_units": [
            {
                "reference_id": "default",
                "amount": {"currency_code": "USD", "value": "42.50"},
                "payee": {"email_address": "billing@merchant.example"},
                "description": "Annual membership",
            }
        ],
        "payer": {
            "name": {"given_name": "Jane", "surname": "Doe"},
            "email_address": "jane.doe@example.com",
            "payer_id": "QYR5Z8XDVJNXQ",
        },
    },
}


@pytest.fixture
def adapter() -> PayPalAdapter:
    """Return a PayPal adapter with default settings."""
    return PayPalAdapter(Settings())


def _records(adapter: PayPalAdapter, event: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(r.type, r.values) for r in adapter.sanitise(event).records]


def test_registered() -> None:
    assert adapter_classes()["paypal"] is PayPalAdapter


# -- amounts ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "exponent", "minor"),
    [
        ("42.50", 2, 4250),
        ("42.5", 2, 4250),
        ("42", 2, 4200),
        ("0.01", 2, 1),
        ("0", 2, 0),
        ("4250", 0, 4250),
        ("12.345", 3, 12345),
        ("12.3", 3, 12300),
        ("92233720368547758.07", 2, 2**63 - 1),
    ],
)
def test_to_minor_units(value: str, exponent: int, minor: int) -> None:
    assert to_minor_units(value, exponent) == minor


@pytest.mark.parametrize(
    ("value", "exponent"),
    [
        ("42.505", 2),
        ("4250.5", 0),
        ("4250.", 0),
        ("1.2345", 3),
        ("-1.00", 2),
        ("+1.00", 2),
        ("1e3", 2),
        ("1,000.00", 2),
        (" 1.00", 2),
        ("1.00 ", 2),
        ("", 2),
        (".5", 2),
        ("12.3.4", 2),
        ("NaN", 2),
        ("Infinity", 2),
        ("١٢", 2),
        (42.5, 2),
        (None, 2),
        ("92233720368547758.08", 2),
    ],
)
def test_to_minor_units_refuses(value: Any, exponent: int) -> None:
    with pytest.raises(ValueError):
        to_minor_units(value, exponent)


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        ({"currency_code": "USD", "value": "42.50"}, (4250, "USD")),
        ({"currency_code": "JPY", "value": "4250"}, (4250, "JPY")),
        ({"currency_code": "KWD", "value": "12.345"}, (12345, "KWD")),
        ({"currency_code": "usd", "value": "1.00"}, (100, "USD")),
    ],
)
def test_money_uses_the_currency_exponent(
    amount: dict[str, str], expected: tuple[int, str]
) -> None:
    assert money(amount, "resource.amount") == expected


@pytest.mark.parametrize(
    "amount",
    [
        {"currency_code": "JPY", "value": "42.50"},
        {"currency_code": "ZZZ", "value": "1"},
        {"value": "1.00"},
        {"currency_code": "USD"},
        [],
        "42.50",
    ],
)
def test_money_malformed(amount: Any) -> None:
    with pytest.raises(MalformedBody, match="resource.amount") as info:
        money(amount, "resource.amount")
    assert "42.50" not in info.value.message


# -- sanitise -----------------------------------------------------------------


def test_capture_keeps_only_allowlisted_fields(adapter: PayPalAdapter) -> None:
    assert _records(adapter, copy.deepcopy(CAPTURE_EVENT)) == [
        (
            "transaction",
            {
                "id": "8MC585209K746392H",
                "kind": "payment",
                "provider_status": "COMPLETED",
                "status": "succeeded",
                "amount": 4250,
                "currency": "USD",
                "order": "5O190127TN364715T",
            },
        ),
    ]


def test_order_with_vaulted_card(adapter: PayPalAdapter) -> None:
    sanitised = adapter.sanitise(copy.deepcopy(ORDER_CARD_EVENT))
    records = [(r.type, r.values) for r in sanitised.records]
    assert records == [
        (
            "payment_method",
            {
                "token": "9pbdj6kms2",
                "status": "active",
                "customer": "bZ3mHd4rsV",
                "brand": "visa",
                "last4": "7704",
                "exp_year": 2029,
                "exp_month": 11,
            },
        ),
        (
            "transaction",
            {
                "id": "5O190127TN364715T",
                "kind": "payment",
                "order": "5O190127TN364715T",
                "payment_method": "9pbdj6kms2",
                "customer": "bZ3mHd4rsV",
                "provider_status": "APPROVED",
                "status": "pending",
                "amount": 4250,
                "currency": "USD",
            },
        ),
    ]
    # Seeing the card on an order must not revive a token deleted since.
    assert sanitised.records[0].fill_only == frozenset({"status"})
    assert "QYR5Z8XDVJNXQ" not in repr(records) and "Jane" not in repr(records)


def test_order_units_in_one_currency_add_up(adapter: PayPalAdapter) -> None:
    event = copy.deepcopy(ORDER_CARD_EVENT)
    units = event["resource"]["purchase_units"]
    units.append({"amount": {"currency_code": "USD", "value": "7.50"}})
    order = _records(adapter, event)[1][1]
    assert (order["amount"], order["currency"]) == (5000, "USD")
    units[1]["amount"]["currency_code"] = "EUR"
    assert "amount" not in _records(adapter, event)[1][1]


def test_refund_finds_its_capture(adapter: PayPalAdapter) -> None:
    event = adapter.sample_event("PAYMENT.CAPTURE.REFUNDED")
    capture = event["resource"]["links"][1]["href"].rsplit("/", 1)[1]
    ((kind, values),) = _records(adapter, event)
    assert kind == "transaction" and values["kind"] == "refund"
    assert values["refund_of"] == capture
    # A link to anywhere but PayPal's captures API is not a capture id.
    event["resource"]["links"][1]["href"] = "https://evil.example/v2/payments/captures/X1"
    assert "refund_of" not in _records(adapter, event)[0][1]


@pytest.mark.parametrize("event_type", SUPPORTED_EVENT_TYPES)
def test_every_supported_type_makes_a_record(adapter: PayPalAdapter, event_type: str) -> None:
    event = adapter.sample_event(event_type)
    sanitised = adapter.sanitise(event)
    assert sanitised.handled and sanitised.records and sanitised.dropped == []
    text = repr([r.values for r in sanitised.records])
    for personal in (
        "Jane",
        "jane.doe",
        "2211 N First",
        "4085551234",
        "member-8812",
        "INV-2026",
        "Annual",
        "billing@",
        "sandbox.paypal.com",
    ):
        assert personal not in text


@pytest.mark.parametrize(
    ("field", "value", "path"),
    [
        ("last_digits", "77O4", "resource.payment_source.card.last_digits"),
        ("last_digits", "4111111111111111", "resource.payment_source.card.last_digits"),
        ("expiry", "2029-13", "resource.payment_source.card.expiry"),
        ("expiry", "11/29", "resource.payment_source.card.expiry"),
    ],
)
def test_card_field_failing_its_shape_is_dropped(
    adapter: PayPalAdapter, field: str, value: str, path: str
) -> None:
    event = adapter.sample_event("VAULT.PAYMENT-TOKEN.CREATED")
    event["resource"]["payment_source"]["card"][field] = value
    sanitised = adapter.sanitise(event)
    assert path in sanitised.dropped
    assert value not in repr([r.values for r in sanitised.records])
    assert sanitised.records[0].values["brand"] == "visa"


def test_unknown_brand_and_bad_ids(adapter: PayPalAdapter) -> None:
    event = adapter.sample_event("VAULT.PAYMENT-TOKEN.CREATED")
    event["resource"]["payment_source"]["card"]["brand"] = "SOLO"
    event["resource"]["customer"]["id"] = "Jane Doe <jane.doe@example.com>"
    ((_, values),) = _records(adapter, event)
    assert values["brand"] == "unknown" and "customer" not in values


def test_id_failing_its_shape_drops_the_record(adapter: PayPalAdapter) -> None:
    event = copy.deepcopy(CAPTURE_EVENT)
    event["resource"]["id"] = "card 4111 1111 1111 1111"
    sanitised = adapter.sanitise(event)
    assert sanitised.records == [] and sanitised.dropped == ["resource.id"]


def test_unknown_status_word_falls_back_to_the_event_type(adapter: PayPalAdapter) -> None:
    event = copy.deepcopy(CAPTURE_EVENT)
    event["resource"]["status"] = "SOMETHING_NEW"
    values = _records(adapter, event)[0][1]
    assert (values["status"], values["provider_status"]) == ("succeeded", "SOMETHING_NEW")


def test_subscription_payment_failed_is_past_due(adapter: PayPalAdapter) -> None:
    event = adapter.sample_event("BILLING.SUBSCRIPTION.PAYMENT.FAILED")
    assert event["resource"]["status"] == "ACTIVE"
    assert _records(adapter, event)[0][1]["status"] == "past_due"


def test_vault_token_deleted(adapter: PayPalAdapter) -> None:
    event = adapter.sample_event("VAULT.PAYMENT-TOKEN.DELETED")
    assert _records(adapter, event) == [
        ("payment_method", {"token": event["resource"]["id"], "status": "deleted"})
    ]


def test_unknown_event_type_is_not_handled(adapter: PayPalAdapter) -> None:
    event = copy.deepcopy(CAPTURE_EVENT)
    event["event_type"] = "CUSTOMER.DISPUTE.CREATED"
    assert adapter.sanitise(event).handled is False


@pytest.mark.parametrize("resource", [None, [], "x"])
def test_missing_resource_is_malformed(adapter: PayPalAdapter, resource: Any) -> None:
    event = copy.deepcopy(CAPTURE_EVENT)
    event["resource"] = resource
    with pytest.raises(MalformedBody, match="resource"):
        adapter.sanitise(event)


# -- meta ---------------------------------------------------------------------


def test_meta(adapter: PayPalAdapter) -> None:
    meta = adapter.meta(copy.deepcopy(CAPTURE_EVENT), {})
    assert meta.id == "WH-2WR32451HC0233532-67976317FL4543714"
    assert meta.type == "PAYMENT.CAPTURE.COMPLETED"
    assert meta.occurred_at.isoformat() == "2026-03-02T14:21:05.116000+00:00"


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("id", None, "event id"),
        ("id", "WH 1", "event id"),
        ("event_type", 5, "event type"),
        ("event_type", "payment capture", "event type"),
        ("create_time", "yesterday", "create_time"),
        ("create_time", 1700000000, "create_time"),
        ("create_time", "2026-02-30T00:00:00Z", "create_time"),
    ],
)
def test_meta_malformed(adapter: PayPalAdapter, key: str, value: Any, message: str) -> None:
    event = copy.deepcopy(CAPTURE_EVENT)
    event[key] = value
    with pytest.raises(MalformedBody, match=message):
        adapter.meta(event, {})


def test_unsupported_sample(adapter: PayPalAdapter) -> None:
    with pytest.raises(ValueError, match="unsupported"):
        adapter.sample_event("CUSTOMER.DISPUTE.CREATED")


def test_samples_have_fresh_ids(adapter: PayPalAdapter) -> None:
    first = adapter.sample_event("PAYMENT.CAPTURE.COMPLETED")
    second = adapter.sample_event("PAYMENT.CAPTURE.COMPLETED")
    assert first["id"] != second["id"] and first["resource"]["id"] != second["resource"]["id"]
    assert adapter.sample_event("PAYMENT.CAPTURE.COMPLETED", event_id="WH-X-1")["id"] == "WH-X-1"


# -- configuration ------------------------------------------------------------


def _endpoint(**options: Any) -> EndpointConfig:
    return EndpointConfig(provider="paypal", options=options)


def test_enabled(adapter: PayPalAdapter, tmp_path: Path) -> None:
    roots = tmp_path / "roots.pem"
    roots.write_bytes(Path(adapter.dev_options(tmp_path)["trust_roots"]).read_bytes())
    assert not adapter.enabled(_endpoint())
    assert not adapter.enabled(_endpoint(client_id="a", client_secret="b"))
    assert not adapter.enabled(_endpoint(webhook_id="W", client_id="a"))
    assert adapter.enabled(_endpoint(webhook_id="W", client_id="a", client_secret="b"))
    assert adapter.enabled(
        _endpoint(webhook_id="W", verify="api", client_id="a", client_secret="b")
    )
    assert not adapter.enabled(_endpoint(webhook_id="W", verify="cert"))
    assert adapter.enabled(
        EndpointConfig(
            provider="paypal",
            name="c",
            options={"webhook_id": "W", "verify": "cert", "trust_roots": str(roots)},
        )
    )


def test_unknown_mode_is_a_loud_error(adapter: PayPalAdapter) -> None:
    with pytest.raises(ConfigurationError, match="verify must be"):
        adapter.enabled(_endpoint(webhook_id="W", verify="none"))


def test_how_to_enable_names_the_settings(adapter: PayPalAdapter) -> None:
    hint = adapter.how_to_enable()
    assert "PAYSIEVE_PAYPAL_WEBHOOK_ID" in hint and "PAYSIEVE_PAYPAL_CLIENT_ID" in hint


def test_environment_configures_cert_mode(tmp_path: Path) -> None:
    from gateway.config.settings import load_settings

    settings = load_settings(
        {
            "PAYSIEVE_CONFIG": "",
            "PAYSIEVE_PAYPAL_WEBHOOK_ID": "W",
            "PAYSIEVE_PAYPAL_VERIFY": "cert",
            "PAYSIEVE_PAYPAL_TRUST_ROOTS": "/etc/roots.pem",
            "PAYSIEVE_PAYPAL_CERT_CACHE_DIR": "/var/cache/paypal",
        }
    )
    endpoint = settings.endpoint("paypal", "default")
    assert endpoint is not None
    assert endpoint.options["trust_roots"] == "/etc/roots.pem"
    assert endpoint.options["cert_cache_dir"] == "/var/cache/paypal"


# -- development signing ------------------------------------------------------


def test_dev_options_verify_offline(adapter: PayPalAdapter, tmp_path: Path) -> None:
    options = adapter.dev_options(tmp_path)
    assert options["verify"] == "cert" and options["fetch_certs"] is False
    assert options["dev_cert_url"] == DEV_CERT_URL
    assert (tmp_path / "paypal-dev" / "signing-key.pem").stat().st_mode & 0o077 == 0
    endpoint = _endpoint(**options)
    assert adapter.enabled(endpoint)
    event = adapter.sample_event("PAYMENT.CAPTURE.COMPLETED")
    raw = orjson.dumps(event)
    headers = adapter.sign(raw, endpoint, timestamp=int(time.time()), event_id=event["id"])
    assert headers["PAYPAL-CERT-URL"] == DEV_CERT_URL
    adapter.verify(raw, headers, endpoint)  # no network: the cert is pre-seeded


def test_sign_needs_a_key(adapter: PayPalAdapter) -> None:
    with pytest.raises(ValueError, match="dev_signing_key"):
        adapter.sign(b"{}", _endpoint(webhook_id="W"), timestamp=0, event_id="x")


def test_signed_message_uses_unsigned_crc32() -> None:
    body = b'{"id":"WH-1"}x'
    while zlib.crc32(body) < 2**31:  # find a body whose signed CRC32 would be negative
        body += b" "
    message = signed_message("tid", "2026-01-01T00:00:00Z", "WID", body)
    assert message == f"tid|2026-01-01T00:00:00Z|WID|{zlib.crc32(body)}".encode()
    assert b"|-" not in message


# -- every parse refuses or drops, never raises anything else -------------------

OUT_OF_RANGE_TIMES = [
    "9999-12-31T23:59:59-01:00",
    "9999-12-31T23:59:59.999999999-23:59",
    "0001-01-01T00:00:00+00:01",
    "\u0662\u0660\u0662\u0666-03-02T14:21:05Z",
    "\uff12\uff10\uff12\uff16-03-02T14:21:05Z",
    "2026-03-02T14:21:05+24:00",
    "2026-03-02T24:00:00Z",
    "2026-03-02T14:21:05Z\n",
    "2026-03-02T14:21:05" + "0" * 5000 + "Z",
]


@pytest.mark.parametrize("value", OUT_OF_RANGE_TIMES)
def test_parse_rfc3339_refuses_times_it_cannot_represent(value: str) -> None:
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_rfc3339(value)


def test_parse_rfc3339_keeps_the_edges_of_the_range() -> None:
    assert parse_rfc3339("9999-12-31T23:59:59Z") == datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert parse_rfc3339("9999-12-31T23:59:59+01:00").hour == 22
    assert parse_rfc3339("0001-01-01T00:00:00-01:00").hour == 1


@settings(max_examples=500, deadline=None)
@given(
    value=st.one_of(
        st.text(max_size=40),
        st.from_regex(
            r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
            r"(Z|[+-][0-9]{2}:[0-9]{2})",
            fullmatch=True,
        ),
        st.integers(),
        st.none(),
    )
)
def test_parse_rfc3339_only_ever_raises_value_error(value: Any) -> None:
    try:
        parsed = parse_rfc3339(value)
    except ValueError:
        return
    assert parsed.utcoffset() is not None


@pytest.mark.parametrize("value", OUT_OF_RANGE_TIMES)
def test_meta_refuses_a_create_time_it_cannot_represent(adapter: PayPalAdapter, value: str) -> None:
    event = copy.deepcopy(CAPTURE_EVENT) | {"create_time": value}
    with pytest.raises(MalformedBody, match="create_time"):
        adapter.meta(event, {})


@pytest.mark.parametrize("value", OUT_OF_RANGE_TIMES)
def test_next_billing_time_it_cannot_represent_is_dropped(
    adapter: PayPalAdapter, value: str
) -> None:
    event = adapter.sample_event("BILLING.SUBSCRIPTION.ACTIVATED")
    event["resource"]["billing_info"]["next_billing_time"] = value
    result = adapter.sanitise(event)
    (record,) = result.records
    assert "current_period_end" not in record.values
    assert result.dropped == ["resource.billing_info.next_billing_time"]
