"""/metrics: counts by provider, endpoint, outcome and reason, never a request value."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from gateway.core.errors import MalformedBody, VerificationError
from gateway.observability import metrics
from tests.support.metrics import scrape, value
from tests.support.webhooks import sample, signed_post


def test_deliveries_are_counted_by_outcome(client: FlaskClient) -> None:
    before = scrape(client)
    event = sample("stripe", "charge.succeeded")
    assert signed_post(client, "stripe", event).status_code == 200
    assert signed_post(client, "stripe", event).status_code == 200
    after = scrape(client)
    for outcome in ("stored", "duplicate"):
        labels = {"provider": "stripe", "endpoint": "default", "outcome": outcome}
        assert (
            value(after, "paysieve_deliveries_total", **labels)
            - value(before, "paysieve_deliveries_total", **labels)
            == 1
        )


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"Stripe-Signature": "t=1,v1=00"}, "stale_timestamp"),
        ({"Stripe-Signature": "v1=00"}, "malformed_header"),
        ({}, "missing_header"),
    ],
)
def test_verification_failures_are_counted_by_reason(
    client: FlaskClient, headers: dict[str, str], reason: str
) -> None:
    before = scrape(client)
    response = client.post(
        "/webhooks/stripe", data=b"{}", headers={"Content-Type": "application/json", **headers}
    )
    assert response.status_code == 400
    after = scrape(client)
    labels = {
        "provider": "stripe",
        "endpoint": "default",
        "code": "verification_failed",
        "reason": reason,
    }
    name = "paysieve_verification_failures_total"
    assert value(after, name, **labels) - value(before, name, **labels) == 1


def test_bad_signature_and_labels_carry_no_request_value(client: FlaskClient) -> None:
    planted = "t=9999999999,v1=deadbeefcafe"
    client.post(
        "/webhooks/stripe/not-configured-x7q",
        data=b'{"id": "evt_planted_x7q"}',
        headers={"Content-Type": "application/json", "Stripe-Signature": planted},
    )
    client.post(
        "/webhooks/stripe",
        data=b'{"id": "evt_planted_x7q"}',
        headers={"Content-Type": "application/json", "Stripe-Signature": "t=1,v1=" + "0" * 64},
    )
    text = client.get("/metrics?token=secret_x7q").get_data(as_text=True)
    for value_ in ("x7q", "deadbeef", "secret_"):
        assert value_ not in text
    # An unknown route is timed under one pattern-less label, not its path.
    assert 'route="unmatched"' in text or 'route="/webhooks/<provider>/<endpoint>"' in text


def test_fields_dropped_and_latency_are_counted(client: FlaskClient) -> None:
    before = scrape(client)
    response = signed_post(client, "stripe", sample("stripe", "payment_intent.succeeded"))
    assert response.status_code == 200
    after = scrape(client)
    route = {"route": "/webhooks/<provider>", "method": "POST", "status": "200"}
    name = "paysieve_request_duration_seconds_count"
    assert value(after, name, **route) - value(before, name, **route) == 1
    dropped = {"provider": "stripe", "endpoint": "default"}
    assert value(after, "paysieve_fields_dropped_total", **dropped) >= value(
        before, "paysieve_fields_dropped_total", **dropped
    )


def test_write_transactions_are_counted_by_deliveries_they_hold(client: FlaskClient) -> None:
    before = scrape(client)
    event = sample("stripe", "charge.succeeded")
    # One after the other: each delivery is its own transaction (a redelivery too).
    assert signed_post(client, "stripe", event).status_code == 200
    assert signed_post(client, "stripe", event).status_code == 200
    after = scrape(client)
    name = "paysieve_storage_batch_deliveries"
    assert value(after, f"{name}_count") - value(before, f"{name}_count") == 2
    assert value(after, f"{name}_sum") - value(before, f"{name}_sum") == 2
    assert value(after, f"{name}_bucket", le="1.0") - value(before, f"{name}_bucket", le="1.0") == 2


def test_storage_errors_are_counted(make_app: Any) -> None:
    client = make_app(
        database_url="postgresql+psycopg://postgres@127.0.0.1:9/nowhere"
    ).test_client()
    before = scrape(client)
    response = signed_post(client, "stripe", sample("stripe", "charge.succeeded"))
    assert response.status_code == 503
    after = scrape(client)
    labels = {"provider": "stripe", "endpoint": "default", "outcome": "storage_unavailable"}
    assert (
        value(after, "paysieve_deliveries_total", **labels)
        - value(before, "paysieve_deliveries_total", **labels)
        == 1
    )
    errors = sum(v for (n, _), v in after.items() if n == "paysieve_storage_errors_total")
    errors_before = sum(v for (n, _), v in before.items() if n == "paysieve_storage_errors_total")
    assert errors - errors_before >= 1


@pytest.mark.parametrize(
    ("exc", "slug"),
    [
        (VerificationError("signature does not match"), "bad_signature"),
        (VerificationError("timestamp is in the future"), "future_timestamp"),
        (VerificationError("body is not UTF-8"), "not_utf8"),
        (VerificationError("no Stripe webhook secret is configured"), "not_configured"),
        (VerificationError("PayPal certificate has expired"), "certificate"),
        (VerificationError("something new 4242424242424242"), "other"),
        (MalformedBody("JSON nesting is too deep"), "too_deep"),
        (MalformedBody("body is not valid JSON"), "invalid_json"),
        (MalformedBody("event id is missing or malformed"), "invalid_envelope"),
    ],
)
def test_reason_slugs_are_a_closed_vocabulary(exc: VerificationError, slug: str) -> None:
    assert metrics.reason_slug(exc) == slug
