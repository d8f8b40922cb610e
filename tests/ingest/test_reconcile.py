"""Reconcile: missing and differing records reported by allowlisted fields; nothing written."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import responses
from flask import Flask
from sqlalchemy import Engine, update

from gateway.privacy.erasure import erase
from gateway.storage.tables import transactions
from tests.support.backfill import (
    RAZORPAY,
    STRIPE_EVENTS,
    empty_razorpay,
    razorpay_api_endpoint,
    razorpay_page,
    run_reconcile,
    stripe_api_endpoint,
    stripe_page,
    window,
)
from tests.support.database import assert_nowhere, plain_rows
from tests.support.planting import plant
from tests.support.razorpay_planting import plant as plant_razorpay
from tests.support.webhooks import sample, signed_post


@pytest.fixture
def servers() -> Iterator[responses.RequestsMock]:
    """Mock the providers' APIs."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mocked:
        yield mocked


@pytest.fixture
def both(make_app: Callable[..., Flask]) -> Flask:
    """Return a gateway with Stripe and Razorpay endpoints that have API keys."""
    return make_app(endpoints=[stripe_api_endpoint(), razorpay_api_endpoint()])


def charge(event: dict[str, Any]) -> str:
    return str(event["data"]["object"]["id"])


def test_missing_and_differing_records_are_reported_and_nothing_is_written(
    both: Flask,
    engine: Engine,
    database_url: str,
    servers: responses.RequestsMock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    same, changed, lost = (sample("stripe", "charge.succeeded") for _ in range(3))
    planted = plant(same) + plant(changed) + plant(lost)
    client = both.test_client()
    for event in (same, changed):
        signed_post(client, "stripe", copy.deepcopy(event))
    refunded = copy.deepcopy(changed)
    refunded["id"], refunded["type"] = refunded["id"] + "r", "charge.refunded"
    refunded["created"] += 10
    refunded["data"]["object"] |= {"refunded": True, "amount_refunded": 500}
    before = plain_rows(engine)

    servers.get(STRIPE_EVENTS, json=stripe_page([refunded, lost, changed, same], has_more=False))
    since, until = window()
    report = run_reconcile(both, "stripe", since=since, until=until)

    assert plain_rows(engine) == before
    found = {(d.record_type, d.id): d for d in report.differences}
    assert found[("transaction", charge(lost))].kind == "missing"
    differing = found[("transaction", charge(changed))]
    assert differing.kind == "differs"
    assert {f.name: (f.provider, f.stored) for f in differing.fields} == {
        "status": ("refunded", "succeeded")
    }
    assert ("transaction", charge(same)) not in found
    assert report.matching >= 1
    text = orjson.dumps(report.as_dict()).decode()
    assert_nowhere(planted, engine, database_url, text, caplog.text)


def test_razorpay_objects_are_compared_as_their_webhooks_store_them(
    both: Flask, engine: Engine, database_url: str, servers: responses.RequestsMock
) -> None:
    stored = sample("razorpay", "payment.captured")
    planted = plant_razorpay(stored)
    signed_post(both.test_client(), "razorpay", copy.deepcopy(stored), event_id="evt_one")
    payment = stored["payload"]["payment"]["entity"]
    missing = sample("razorpay", "subscription.activated")["payload"]["subscription"]["entity"]
    servers.get(RAZORPAY + "payments", json=razorpay_page([payment]))
    empty_razorpay(servers, "refunds")
    servers.get(RAZORPAY + "subscriptions", json=razorpay_page([missing]))
    before = plain_rows(engine)
    since, until = window()
    report = run_reconcile(both, "razorpay", since=since, until=until)
    assert plain_rows(engine) == before
    assert [(d.record_type, d.id, d.kind) for d in report.differences] == [
        ("subscription", missing["id"], "missing")
    ]
    assert report.matching == 2  # the payment and its card
    assert_nowhere(planted, engine, database_url, orjson.dumps(report.as_dict()).decode())


def test_a_sealed_field_is_reported_without_its_values(
    both: Flask, engine: Engine, servers: responses.RequestsMock
) -> None:
    event = sample("stripe", "charge.succeeded")
    signed_post(both.test_client(), "stripe", copy.deepcopy(event))
    other = copy.deepcopy(event)
    other["data"]["object"]["customer"] = "cus_SomeoneElse01"
    servers.get(STRIPE_EVENTS, json=stripe_page([other], has_more=False))
    since, until = window()
    report = run_reconcile(both, "stripe", since=since, until=until)
    (difference,) = [d for d in report.differences if d.record_type == "transaction"]
    fields = {f.name: (f.provider, f.stored) for f in difference.fields}
    assert fields["customer"] == ("(sealed)", "(sealed)")
    assert "cus_SomeoneElse01" not in orjson.dumps(report.as_dict()).decode()


def test_records_of_an_erased_customer_are_not_compared(
    both: Flask, engine: Engine, servers: responses.RequestsMock
) -> None:
    event = sample("stripe", "charge.succeeded")
    signed_post(both.test_client(), "stripe", copy.deepcopy(event))
    customer = event["data"]["object"]["customer"]
    erase(
        both.extensions["paysieve.store"],
        provider="stripe",
        customer=customer,
        settings=both.extensions["paysieve.settings"],
    )
    servers.get(STRIPE_EVENTS, json=stripe_page([event], has_more=False))
    since, until = window()
    report = run_reconcile(both, "stripe", since=since, until=until)
    assert report.erased >= 1
    assert customer not in orjson.dumps(report.as_dict()).decode()


def test_a_changed_amount_is_reported_with_both_values(
    both: Flask, engine: Engine, servers: responses.RequestsMock
) -> None:
    event = sample("stripe", "charge.succeeded")
    signed_post(both.test_client(), "stripe", copy.deepcopy(event))
    with engine.begin() as conn:
        conn.execute(update(transactions).values(amount=1))
    servers.get(STRIPE_EVENTS, json=stripe_page([event], has_more=False))
    since = datetime.now(UTC) - timedelta(hours=1)
    report = run_reconcile(both, "stripe", since=since, until=window()[1])
    (difference,) = report.differences
    assert [(f.name, f.provider, f.stored) for f in difference.fields] == [
        ("amount", event["data"]["object"]["amount"], 1)
    ]
