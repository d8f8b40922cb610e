"""Backfill from Razorpay's payments, refunds and subscriptions, as synthetic webhook events."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import responses
from flask import Flask
from responses import matchers
from sqlalchemy import Engine, update

from adapters.api import ProviderAuthError
from gateway.privacy.erasure import erase
from gateway.storage.tables import erasures
from tests.support.backfill import (
    BY_EVENT,
    RAZORPAY,
    WRITTEN,
    empty_razorpay,
    razorpay_api_endpoint,
    razorpay_page,
    records,
    run_backfill,
    window,
)
from tests.support.database import all_rows, assert_nowhere, empty_tables, plain_rows
from tests.support.razorpay_planting import plant
from tests.support.webhooks import sample, signed_post


@pytest.fixture
def servers() -> Iterator[responses.RequestsMock]:
    """Mock Razorpay's API."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mocked:
        yield mocked


@pytest.fixture
def razorpay_app(make_app: Callable[..., Flask]) -> Flask:
    """Return a gateway with a Razorpay endpoint that has an API key."""
    return make_app(endpoints=[razorpay_api_endpoint()])


def entity(event: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = event["payload"][name]["entity"]
    return found


def webhook(app: Flask, event: dict[str, Any], event_id: str) -> None:
    response = signed_post(app.test_client(), "razorpay", copy.deepcopy(event), event_id=event_id)
    assert response.status_code == 200, response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("event_type", "name"),
    [
        ("payment.captured", "payment"),
        ("payment.failed", "payment"),
        ("payment.authorized", "payment"),
        ("subscription.activated", "subscription"),
        ("subscription.cancelled", "subscription"),
        ("subscription.halted", "subscription"),
    ],
)
def test_an_object_is_stored_as_its_webhook_stores_it(
    razorpay_app: Flask,
    engine: Engine,
    database_url: str,
    servers: responses.RequestsMock,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    event_type: str,
    name: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    event = sample("razorpay", event_type)
    planted = plant(event)
    webhook(razorpay_app, event, "evt_webhook_1")
    by_webhook = records(engine, drop=WRITTEN | BY_EVENT)
    assert any(by_webhook.values())

    empty_tables(engine)
    resource = f"{name}s"
    servers.get(RAZORPAY + resource, json=razorpay_page([entity(event, name)]))
    empty_razorpay(servers, *({"payments", "refunds", "subscriptions"} - {resource}))
    since, until = window()
    report = run_backfill(razorpay_app, "razorpay", since=since, until=until)

    assert report.counts["stored"] == 1 and report.finished
    assert records(engine, drop=WRITTEN | BY_EVENT) == by_webhook
    (stored,) = all_rows(engine)["events"]
    assert stored["type"] == event_type and stored["id"].startswith(f"bf.{event_type}.")
    assert_nowhere(planted, engine, database_url, caplog.text, *capsys.readouterr())


def test_refunds_are_stored_with_their_payment(
    razorpay_app: Flask, engine: Engine, database_url: str, servers: responses.RequestsMock
) -> None:
    event = sample("razorpay", "refund.processed")
    planted = plant(event)
    refund = entity(event, "refund")
    servers.get(RAZORPAY + "payments", json=razorpay_page([entity(event, "payment")]))
    servers.get(RAZORPAY + "refunds", json=razorpay_page([refund]))
    empty_razorpay(servers, "subscriptions")
    since, until = window()
    report = run_backfill(razorpay_app, "razorpay", since=since, until=until)
    assert report.counts["stored"] == 2
    rows = {row["id"]: row for row in plain_rows(engine)["transactions"]}
    assert rows[refund["id"]]["kind"] == "refund" and rows[refund["id"]]["status"] == "succeeded"
    assert rows[refund["id"]]["refund_of"] == refund["payment_id"]
    assert_nowhere(planted, engine, database_url)


def test_pages_use_count_and_skip_and_the_query_window(
    razorpay_app: Flask, engine: Engine, servers: responses.RequestsMock
) -> None:
    since, until = window()
    template = entity(sample("razorpay", "payment.captured"), "payment")
    payments = []
    for n in range(101):
        payment = copy.deepcopy(template)
        payment["id"] = f"pay_Backfill{n:04d}x"
        payments.append(payment)
    span = {"from": str(int(since.timestamp())), "to": str(int(until.timestamp()))}
    servers.get(
        RAZORPAY + "payments",
        json=razorpay_page(payments[:100]),
        match=[
            matchers.query_param_matcher(span | {"count": "100", "skip": "0", "expand[]": "card"})
        ],
    )
    servers.get(
        RAZORPAY + "payments",
        json=razorpay_page(payments[100:]),
        match=[matchers.query_param_matcher({"skip": "100"}, strict_match=False)],
    )
    empty_razorpay(servers, "refunds", "subscriptions")
    report = run_backfill(razorpay_app, "razorpay", since=since, until=until)
    assert report.counts["stored"] == 101 and report.pages == 4
    assert len(plain_rows(engine)["transactions"]) == 101


def test_rerunning_over_unchanged_objects_is_idempotent_and_a_change_is_stored(
    razorpay_app: Flask, engine: Engine, servers: responses.RequestsMock
) -> None:
    payment = entity(sample("razorpay", "payment.captured"), "payment")
    since, until = window()
    for _ in range(2):
        servers.get(RAZORPAY + "payments", json=razorpay_page([payment]))
        empty_razorpay(servers, "refunds", "subscriptions")
    run_backfill(razorpay_app, "razorpay", since=since, until=until)
    before = plain_rows(engine)
    again = run_backfill(razorpay_app, "razorpay", since=since, until=until)
    assert again.counts["duplicate"] == 1 and again.counts["stored"] == 0
    assert plain_rows(engine) == before

    refunded = payment | {"status": "refunded", "amount_refunded": payment["amount"]}
    servers.get(RAZORPAY + "payments", json=razorpay_page([refunded]))
    empty_razorpay(servers, "refunds", "subscriptions")
    changed = run_backfill(razorpay_app, "razorpay", since=since, until=until)
    assert changed.counts["stored"] == 1
    (row,) = [r for r in plain_rows(engine)["transactions"] if r["id"] == payment["id"]]
    assert row["status"] == "refunded"


def test_a_state_a_lost_webhook_left_behind_is_corrected(
    razorpay_app: Flask, engine: Engine, servers: responses.RequestsMock
) -> None:
    authorized = sample("razorpay", "payment.authorized")
    webhook(razorpay_app, authorized, "evt_authorized")
    captured = entity(authorized, "payment") | {"status": "captured", "captured": True}
    servers.get(RAZORPAY + "payments", json=razorpay_page([captured]))
    empty_razorpay(servers, "refunds", "subscriptions")
    since, until = window()
    run_backfill(razorpay_app, "razorpay", since=since, until=until)
    (row,) = [r for r in plain_rows(engine)["transactions"] if r["id"] == captured["id"]]
    assert row["status"] == "succeeded" and row["provider_status"] == "captured"


def test_an_erasure_wins_over_a_snapshot(
    razorpay_app: Flask, engine: Engine, servers: responses.RequestsMock
) -> None:
    event = sample("razorpay", "payment.captured")
    webhook(razorpay_app, event, "evt_before_erasure")
    payment = entity(event, "payment")
    erase(
        razorpay_app.extensions["paysieve.store"],
        provider="razorpay",
        customer=payment["customer_id"],
        accounts=None,
        settings=razorpay_app.extensions["paysieve.settings"],
    )
    # The erasure was an hour ago: the snapshot, read now, is newer than it.
    with engine.begin() as conn:
        conn.execute(update(erasures).values(erased_at=datetime.now(UTC) - timedelta(hours=1)))
    servers.get(RAZORPAY + "payments", json=razorpay_page([payment | {"status": "refunded"}]))
    empty_razorpay(servers, "refunds", "subscriptions")
    since, until = window()
    report = run_backfill(razorpay_app, "razorpay", since=since, until=until)
    assert report.counts["stored"] == 1
    rows = plain_rows(engine)
    assert rows["payment_methods"] == []
    (row,) = rows["transactions"]
    assert row["status"] == "refunded" and row["customer"] is None and row["payment_method"] is None


def test_objects_no_webhook_carries_are_skipped_and_malformed_ones_refused(
    razorpay_app: Flask, engine: Engine, servers: responses.RequestsMock
) -> None:
    good = entity(sample("razorpay", "payment.captured"), "payment")
    created = copy.deepcopy(good) | {"id": "pay_OnlyCreated01", "status": "created"}
    no_id = copy.deepcopy(good)
    del no_id["id"]
    card_id = copy.deepcopy(good) | {"id": "pay_4242424242424242"}
    bad_amount = copy.deepcopy(good) | {"id": "pay_BadAmount0001", "amount": "5 0 0"}
    page = [good, created, no_id, "4242424242424242", card_id, bad_amount]
    servers.get(RAZORPAY + "payments", json=razorpay_page(page))
    empty_razorpay(servers, "refunds", "subscriptions")
    since, until = window()
    report = run_backfill(razorpay_app, "razorpay", since=since, until=until)
    # A failed shape is dropped, as for a webhook: the payment is stored without its amount.
    assert report.counts["stored"] == 2 and report.counts["skipped"] == 1
    assert report.counts["refused"] == 3
    ids = {row["id"]: row for row in plain_rows(engine)["transactions"]}
    assert set(ids) == {good["id"], "pay_BadAmount0001"}
    assert ids["pay_BadAmount0001"]["amount"] is None


def test_wrong_keys_name_both_settings(
    razorpay_app: Flask, servers: responses.RequestsMock
) -> None:
    servers.get(RAZORPAY + "payments", status=401, json={"error": {"code": "BAD_REQUEST_ERROR"}})
    since, until = window()
    with pytest.raises(ProviderAuthError) as refused:
        run_backfill(razorpay_app, "razorpay", since=since, until=until)
    message = refused.value.message
    assert "key_id of razorpay endpoint 'default' and key_secret" in message
    assert razorpay_api_endpoint()["key_secret"] not in message
    request = servers.calls[0].request
    assert request.headers["Authorization"].startswith("Basic ")
