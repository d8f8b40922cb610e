"""Backfill against a provider API that misbehaves: pages that never end, odd headers."""

from __future__ import annotations

import copy
import itertools
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import responses
from flask import Flask
from responses import matchers
from sqlalchemy import Engine

from adapters.api import ProviderApiError, _retry_after
from adapters.base import MAX_DEPTH, _nesting_exceeds, nested_deeper
from gateway.ingest.backfill import Backfill, endpoint_for, source_for
from gateway.storage import checkpoints
from tests.support.backfill import (
    PAYPAL_EVENTS,
    RAZORPAY,
    RAZORPAY_KEY_ID,
    RAZORPAY_KEY_SECRET,
    STRIPE_EVENTS,
    STRIPE_KEY,
    empty_razorpay,
    mock_paypal_token,
    paypal_api_endpoint,
    paypal_page,
    razorpay_api_endpoint,
    razorpay_page,
    record_pauses,
    run_backfill,
    stripe_api_endpoint,
    stripe_page,
    window,
)
from tests.support.database import all_rows
from tests.support.webhooks import sample

# A listing that has not ended after this many pages never will (each test's provider
# repeats one page): the run must refuse it well before.
ENOUGH = 20


@pytest.fixture
def servers() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        yield mocked


def run_pages(app: Flask, provider: str) -> int:
    """Run a backfill for at most ENOUGH pages; return how many it read."""
    pipeline = app.extensions["paysieve.pipeline"]
    settings = app.extensions["paysieve.settings"]
    endpoint = endpoint_for(settings, provider, "default")
    adapter = pipeline.adapters[provider]
    since, until = window()
    run = Backfill(
        pipeline,
        adapter,
        endpoint,
        source_for(settings, endpoint, adapter),
        since=since,
        until=until,
    )
    return sum(1 for _ in itertools.islice(run.pages(), ENOUGH))


def test_stripe_repeating_the_same_page_forever_is_refused(
    make_app: Callable[..., Flask], engine: Engine, servers: responses.RequestsMock
) -> None:
    app = make_app(endpoints=[stripe_api_endpoint()])
    event = sample("stripe", "charge.succeeded")
    # has_more stays true and starting_after never moves on.
    servers.get(STRIPE_EVENTS, json=stripe_page([event], has_more=True))
    with pytest.raises(ProviderApiError, match="same page") as refused:
        run_pages(app, "stripe")
    assert event["id"] not in refused.value.message
    # What was read is stored and the checkpoint is kept for a rerun.
    assert checkpoints.load(app.extensions["paysieve.pipeline"].store, "stripe", "default")


def test_paypal_next_link_to_itself_forever_is_refused(
    make_app: Callable[..., Flask], engine: Engine, servers: responses.RequestsMock
) -> None:
    app = make_app(endpoints=[paypal_api_endpoint()])
    mock_paypal_token(servers)
    event = sample("paypal", "PAYMENT.CAPTURE.COMPLETED")
    servers.get(PAYPAL_EVENTS, json=paypal_page([event], next_query="page=2&page_size=100"))
    with pytest.raises(ProviderApiError, match="same page") as refused:
        run_pages(app, "paypal")
    assert "page=2" not in refused.value.message


@pytest.mark.parametrize("value", ["\u00b2", "\u00b9\u00b2", "12\u00b2"])
def test_a_retry_after_of_odd_digits_waits_the_default(value: str) -> None:
    # A header is read as Latin-1: byte 0xB2 arrives as "²", which isdigit() accepts.
    assert _retry_after(value) == 5.0


def test_a_429_with_an_odd_retry_after_is_retried(
    make_app: Callable[..., Flask],
    engine: Engine,
    servers: responses.RequestsMock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = make_app(endpoints=[stripe_api_endpoint()])
    pauses = record_pauses(monkeypatch)
    servers.get(STRIPE_EVENTS, status=429, headers={"Retry-After": "\u00b2"})
    servers.get(STRIPE_EVENTS, json=stripe_page([], has_more=False))
    assert run_pages(app, "stripe") == 1
    assert pauses.seconds == [5.0]


def nested(depth: int) -> dict[str, Any]:
    """Return a dict nesting depth objects."""
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 300])
def test_stripe_an_event_nested_deeper_than_a_webhook_may_is_refused_alone(
    make_app: Callable[..., Flask], engine: Engine, servers: responses.RequestsMock, depth: int
) -> None:
    app = make_app(endpoints=[stripe_api_endpoint()])
    good = sample("stripe", "charge.succeeded")
    deep = sample("stripe", "charge.succeeded")
    deep["data"]["object"]["metadata"] = nested(depth)
    page = stripe_page([good, deep], has_more=False)
    servers.get(STRIPE_EVENTS, body=json.dumps(page), content_type="application/json")
    since, until = window()
    report = run_backfill(app, "stripe", since=since, until=until)
    assert (report.counts["stored"], report.counts["refused"]) == (1, 1)
    assert [row["id"] for row in all_rows(engine)["events"]] == [good["id"]]


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 300])
def test_paypal_an_event_nested_deeper_than_a_webhook_may_is_refused_alone(
    make_app: Callable[..., Flask], engine: Engine, servers: responses.RequestsMock, depth: int
) -> None:
    app = make_app(endpoints=[paypal_api_endpoint()])
    mock_paypal_token(servers)
    good = sample("paypal", "PAYMENT.CAPTURE.COMPLETED")
    deep = sample("paypal", "PAYMENT.CAPTURE.COMPLETED")
    deep["id"] = "WH-DEEP"
    deep["resource"]["custom"] = nested(depth)
    body = json.dumps(paypal_page([good, deep]))
    servers.get(PAYPAL_EVENTS, body=body, content_type="application/json")
    since, until = window()
    report = run_backfill(app, "paypal", since=since, until=until)
    assert (report.counts["stored"], report.counts["refused"]) == (1, 1)
    assert [row["id"] for row in all_rows(engine)["events"]] == [good["id"]]


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 300])
def test_razorpay_an_object_nested_deeper_than_a_webhook_may_is_refused_alone(
    make_app: Callable[..., Flask], engine: Engine, servers: responses.RequestsMock, depth: int
) -> None:
    app = make_app(endpoints=[razorpay_api_endpoint()])
    good = sample("razorpay", "payment.captured")["payload"]["payment"]["entity"]
    deep = copy.deepcopy(good) | {"id": "pay_Deep", "notes": nested(depth)}
    body = json.dumps(razorpay_page([good, deep]))
    servers.get(RAZORPAY + "payments", body=body, content_type="application/json")
    empty_razorpay(servers, "refunds", "subscriptions")
    since, until = window()
    report = run_backfill(app, "razorpay", since=since, until=until)
    assert (report.counts["stored"], report.counts["refused"]) == (1, 1)


@pytest.mark.parametrize("depth", [1, MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1])
def test_nesting_is_counted_as_a_webhook_body_is(depth: int) -> None:
    for value in (nested(depth), {"list": [nested(depth - 1)]}):
        body = json.dumps(value).encode()
        assert nested_deeper(value) == _nesting_exceeds(body, MAX_DEPTH)
    assert nested_deeper(nested(depth)) is (depth > MAX_DEPTH)


@pytest.mark.parametrize(
    "answer",
    [
        {"status": 401, "body": "invalid key"},
        {"status": 500, "body": "oops"},
        {"status": 429, "body": "slow down", "headers": {"Retry-After": "-5"}},
        {"status": 302, "body": "", "headers": {"Location": "https://evil.example/v1/events"}},
        {"status": 200, "body": "[1, 2, 3]"},
        {"status": 200, "body": "{not json"},
        {"body": requests.ConnectionError("https://api.stripe.com/v1/events?key=x")},
    ],
)
@pytest.mark.parametrize("provider", ["stripe", "razorpay"])
def test_no_credential_reaches_a_log_or_an_error(
    make_app: Callable[..., Flask],
    engine: Engine,
    servers: responses.RequestsMock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    provider: str,
    answer: dict[str, Any],
) -> None:
    caplog.set_level(logging.DEBUG)
    record_pauses(monkeypatch)
    if provider == "stripe":
        app = make_app(endpoints=[stripe_api_endpoint()])
        url, secrets = STRIPE_EVENTS, [STRIPE_KEY]
    else:
        app = make_app(endpoints=[razorpay_api_endpoint()])
        url, secrets = RAZORPAY + "payments", [RAZORPAY_KEY_ID, RAZORPAY_KEY_SECRET]
    servers.get(url, **answer)
    with pytest.raises(ProviderApiError) as refused:
        run_pages(app, provider)
    shown = refused.value.message + str(refused.value) + caplog.text
    for secret in [*secrets, "Authorization", "Bearer", "Basic "]:
        assert secret not in shown
    assert "\n" not in refused.value.message


@pytest.mark.parametrize("listed", [[], [{"object": "event"}] * 3])
def test_stripe_has_more_without_a_way_on_is_an_error_not_the_end(
    make_app: Callable[..., Flask],
    engine: Engine,
    servers: responses.RequestsMock,
    listed: list[Any],
) -> None:
    app = make_app(endpoints=[stripe_api_endpoint()])
    first = sample("stripe", "charge.succeeded")
    servers.get(STRIPE_EVENTS, json=stripe_page([first], has_more=True))
    after = matchers.query_param_matcher({"starting_after": first["id"]}, strict_match=False)
    servers.get(STRIPE_EVENTS, json=stripe_page(listed, has_more=True), match=[after])
    with pytest.raises(ProviderApiError, match="without an event to continue after"):
        run_pages(app, "stripe")
    # The window is not taken as done: its checkpoint stays for a rerun.
    saved = checkpoints.load(app.extensions["paysieve.pipeline"].store, "stripe", "default")
    assert saved is not None and saved.cursor.token == first["id"]


def test_stripe_a_page_of_refused_events_still_leads_on(
    make_app: Callable[..., Flask], engine: Engine, servers: responses.RequestsMock
) -> None:
    app = make_app(endpoints=[stripe_api_endpoint()])
    deep = sample("stripe", "charge.succeeded")
    deep["data"]["object"]["metadata"] = nested(MAX_DEPTH)
    last = sample("stripe", "charge.succeeded")
    last["id"] = "evt_LastOfTheWindow"
    after = matchers.query_param_matcher({"starting_after": deep["id"]}, strict_match=False)
    servers.get(STRIPE_EVENTS, json=stripe_page([last], has_more=False), match=[after])
    servers.get(STRIPE_EVENTS, json=stripe_page([deep], has_more=True))
    since, until = window()
    report = run_backfill(app, "stripe", since=since, until=until)
    assert (report.counts["refused"], report.counts["stored"], report.finished) == (1, 1, True)
    assert [row["id"] for row in all_rows(engine)["events"]] == [last["id"]]


@pytest.mark.parametrize(
    "href",
    [
        "http://api-m.sandbox.paypal.com/v1/notifications/webhooks-events?page=2",
        "https://user:pw@api-m.sandbox.paypal.com/v1/notifications/webhooks-events?page=2",
        "https://api-m.sandbox.paypal.com@collector.example/v1/notifications/webhooks-events?p=2",
        "https://api-m.sandbox.paypal.com:8443/v1/notifications/webhooks-events?page=2",
        "https://api-m.sandbox.paypal.com/v1/oauth2/token?page=2",
        "https://api-m.sandbox.paypal.com/v1/notifications/webhooks-events",
        "//collector.example/v1/notifications/webhooks-events?page=2",
        "/v1/notifications/webhooks-events?page=2",
        "https://api-m.sandbox.paypal.com/v1/notifications/webhooks-events?" + "a" * 4096,
    ],
)
def test_paypal_a_next_link_off_the_listing_is_not_followed(
    make_app: Callable[..., Flask], engine: Engine, servers: responses.RequestsMock, href: str
) -> None:
    app = make_app(endpoints=[paypal_api_endpoint()])
    mock_paypal_token(servers)
    page = paypal_page([sample("paypal", "PAYMENT.CAPTURE.COMPLETED")])
    page["links"].append({"href": href, "rel": "next", "method": "GET"})
    servers.get(PAYPAL_EVENTS, json=page)
    with pytest.raises(ProviderApiError, match="not followed") as refused:
        run_pages(app, "paypal")
    assert "pw" not in refused.value.message and "collector" not in refused.value.message
    # Only the first page was asked for; no request went to the link.
    assert [call.request.url.split("?")[0] for call in servers.calls][-1] == PAYPAL_EVENTS


def test_razorpay_a_server_ignoring_skip_is_refused(
    make_app: Callable[..., Flask], engine: Engine, servers: responses.RequestsMock
) -> None:
    app = make_app(endpoints=[razorpay_api_endpoint()])
    payment = sample("razorpay", "payment.captured")["payload"]["payment"]["entity"]
    full = [
        copy.deepcopy(payment) | {"id": f"pay_Page{chr(65 + i // 26)}{chr(65 + i % 26)}"}
        for i in range(100)
    ]
    servers.get(RAZORPAY + "payments", json=razorpay_page(full))
    with pytest.raises(ProviderApiError, match="same page of payments") as refused:
        run_pages(app, "razorpay")
    assert "pay_" not in refused.value.message
    saved = checkpoints.load(app.extensions["paysieve.pipeline"].store, "razorpay", "default")
    assert saved is not None and (saved.cursor.resource, saved.cursor.position) == ("payments", 100)
