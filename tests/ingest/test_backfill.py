"""Backfill from Stripe's event list: the webhook pipeline's records, pages, retries, resume."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import responses
from flask import Flask
from responses import matchers
from sqlalchemy import Engine

from adapters.api import ProviderApiError, ProviderAuthError
from adapters.stripe.adapter import SUPPORTED_EVENT_TYPES
from gateway.audit import allowlist, scan
from gateway.storage import checkpoints
from tests.support.backfill import (
    STRIPE_EVENTS,
    counts,
    record_pauses,
    records,
    run_backfill,
    stripe_api_endpoint,
    stripe_page,
    window,
)
from tests.support.database import all_rows, assert_nowhere, empty_tables, plain_rows
from tests.support.planting import plant
from tests.support.webhooks import sample, signed_post

EVENT_COLUMNS = ("provider", "account", "id", "type", "occurred_at", "outcome", "dropped_fields")


@pytest.fixture
def servers() -> Iterator[responses.RequestsMock]:
    """Mock Stripe's API; every request must be answered by a registered response."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mocked:
        yield mocked


@pytest.fixture
def stripe_app(make_app: Callable[..., Flask]) -> Flask:
    """Return a gateway whose Stripe endpoint has an API key."""
    return make_app(endpoints=[stripe_api_endpoint()])


def planted_events() -> tuple[list[dict[str, Any]], list[str]]:
    """Return one planted sample event of every supported type, and what was planted."""
    events, planted = [], []
    for event_type in SUPPORTED_EVENT_TYPES:
        event = sample("stripe", event_type)
        planted += plant(event)
        events.append(event)
    return events, planted


def event_rows(engine: Engine) -> list[tuple[Any, ...]]:
    return sorted(tuple(row[c] for c in EVENT_COLUMNS) for row in all_rows(engine)["events"])


def test_backfill_stores_byte_for_byte_what_the_webhooks_store(
    stripe_app: Flask,
    engine: Engine,
    database_url: str,
    servers: responses.RequestsMock,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    events, planted = planted_events()
    client = stripe_app.test_client()
    for event in events:
        assert signed_post(client, "stripe", copy.deepcopy(event)).status_code == 200
    by_webhook = records(engine)
    webhook_events = event_rows(engine)
    assert by_webhook["transactions"] and by_webhook["payment_methods"]

    empty_tables(engine)
    since, until = window()
    servers.get(STRIPE_EVENTS, json=stripe_page(events, has_more=False))
    report = run_backfill(stripe_app, "stripe", since=since, until=until)

    assert report.counts["stored"] == len(events) and report.finished
    assert records(engine) == by_webhook
    assert event_rows(engine) == webhook_events
    request = servers.calls[0].request
    assert request.headers["Authorization"] == "Bearer " + stripe_api_endpoint()["api_key"]
    assert_nowhere(planted, engine, database_url, caplog.text, *capsys.readouterr())


def test_pages_follow_has_more_with_starting_after(
    stripe_app: Flask, engine: Engine, servers: responses.RequestsMock
) -> None:
    since, until = window()
    first = [sample("stripe", "charge.succeeded") for _ in range(3)]
    second = [sample("stripe", "payment_intent.succeeded") for _ in range(2)]
    window_params = {
        "created[gte]": str(int(since.timestamp())),
        "created[lte]": str(int(until.timestamp())),
        "limit": "100",
    }
    servers.get(
        STRIPE_EVENTS,
        json=stripe_page(first, has_more=True),
        match=[matchers.query_param_matcher(window_params)],
    )
    servers.get(
        STRIPE_EVENTS,
        json=stripe_page(second, has_more=False),
        match=[matchers.query_param_matcher(window_params | {"starting_after": first[-1]["id"]})],
    )
    report = run_backfill(stripe_app, "stripe", since=since, until=until)
    assert report.pages == 2 and report.counts["stored"] == 5
    assert len(all_rows(engine)["events"]) == 5
    # Finished: no checkpoint is left behind.
    assert checkpoints.load(stripe_app.extensions["paysieve.store"], "stripe", "default") is None


def test_rerunning_stores_nothing_new(
    stripe_app: Flask, engine: Engine, servers: responses.RequestsMock
) -> None:
    since, until = window()
    events = [sample("stripe", t) for t in ("charge.succeeded", "payment_method.attached")]
    servers.get(STRIPE_EVENTS, json=stripe_page(events, has_more=False))
    run_backfill(stripe_app, "stripe", since=since, until=until)
    before = plain_rows(engine)
    again = run_backfill(stripe_app, "stripe", since=since, until=until)
    assert again.counts["duplicate"] == 2 and again.counts["stored"] == 0
    assert plain_rows(engine) == before


def test_an_event_the_webhook_stored_is_a_duplicate(
    stripe_app: Flask, engine: Engine, servers: responses.RequestsMock
) -> None:
    event = sample("stripe", "charge.succeeded")
    signed_post(stripe_app.test_client(), "stripe", copy.deepcopy(event))
    since, until = window()
    servers.get(STRIPE_EVENTS, json=stripe_page([event], has_more=False))
    report = run_backfill(stripe_app, "stripe", since=since, until=until)
    assert report.counts == report.counts | {"duplicate": 1, "stored": 0}
    assert len(all_rows(engine)["events"]) == 1


def test_an_older_event_read_back_never_moves_a_record_back(
    stripe_app: Flask, engine: Engine, servers: responses.RequestsMock
) -> None:
    newer = sample("stripe", "charge.refunded")
    older = copy.deepcopy(newer)
    older["id"], older["type"] = older["id"] + "old", "charge.succeeded"
    older["created"] = newer["created"] - 60
    older["data"]["object"]["refunded"] = False
    older["data"]["object"]["amount_refunded"] = 0
    signed_post(stripe_app.test_client(), "stripe", copy.deepcopy(newer))
    stored = records(engine)
    since, until = window()
    servers.get(STRIPE_EVENTS, json=stripe_page([older], has_more=False))
    run_backfill(stripe_app, "stripe", since=since, until=until)
    assert records(engine) == stored
    charge = newer["data"]["object"]["id"]
    statuses = {row["id"]: row["status"] for row in plain_rows(engine)["transactions"]}
    assert statuses[charge] == "refunded"


def test_stop_after_a_page_saves_the_checkpoint_and_a_rerun_resumes(
    stripe_app: Flask, engine: Engine, servers: responses.RequestsMock
) -> None:
    since, until = window()
    first = [sample("stripe", "charge.succeeded") for _ in range(2)]
    second = [sample("stripe", "charge.succeeded") for _ in range(2)]
    servers.get(
        STRIPE_EVENTS,
        json=stripe_page(first, has_more=True),
        match=[matchers.query_param_matcher({"limit": "100"}, strict_match=False)],
    )
    stopped = run_backfill(stripe_app, "stripe", since=since, until=until, stop_after=1)
    assert stopped.interrupted and stopped.counts["stored"] == 2
    store = stripe_app.extensions["paysieve.store"]
    saved = checkpoints.load(store, "stripe", "default")
    assert saved is not None and saved.cursor.token == first[-1]["id"] and saved.objects == 2

    servers.get(
        STRIPE_EVENTS,
        json=stripe_page(second, has_more=False),
        match=[
            matchers.query_param_matcher({"starting_after": first[-1]["id"]}, strict_match=False)
        ],
    )
    resumed = run_backfill(stripe_app, "stripe", since=since, until=until)
    assert resumed.resumed and resumed.earlier == 2 and resumed.counts["stored"] == 2
    assert len(all_rows(engine)["events"]) == 4
    assert checkpoints.load(store, "stripe", "default") is None


def test_another_window_starts_over(
    stripe_app: Flask, engine: Engine, servers: responses.RequestsMock
) -> None:
    since, until = window()
    events = [sample("stripe", "charge.succeeded") for _ in range(2)]
    servers.get(STRIPE_EVENTS, json=stripe_page(events, has_more=True))
    run_backfill(stripe_app, "stripe", since=since, until=until, stop_after=1)
    servers.get(STRIPE_EVENTS, json=stripe_page([], has_more=False))
    other = run_backfill(stripe_app, "stripe", since=since - timedelta(hours=2), until=until)
    assert not other.resumed
    first_call = servers.calls[-1].request.url
    assert first_call is not None and "starting_after" not in first_call


def test_retry_after_on_429_is_honoured_and_capped(
    stripe_app: Flask,
    engine: Engine,
    servers: responses.RequestsMock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pauses = record_pauses(monkeypatch)
    servers.get(STRIPE_EVENTS, status=429, headers={"Retry-After": "7"}, json={})
    servers.get(STRIPE_EVENTS, status=429, headers={"Retry-After": "3600"}, json={})
    servers.get(
        STRIPE_EVENTS, json=stripe_page([sample("stripe", "charge.succeeded")], has_more=False)
    )
    since, until = window()
    report = run_backfill(stripe_app, "stripe", since=since, until=until)
    assert pauses.seconds == [7.0, 60.0]
    assert report.counts["stored"] == 1


def test_endless_429_gives_up_after_bounded_retries(
    stripe_app: Flask, servers: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    pauses = record_pauses(monkeypatch)
    servers.get(STRIPE_EVENTS, status=429, headers={"Retry-After": "1"}, json={})
    since, until = window()
    with pytest.raises(ProviderApiError, match="kept answering 429"):
        run_backfill(stripe_app, "stripe", since=since, until=until)
    assert len(pauses.seconds) == 5


def test_5xx_is_retried_with_backoff_then_succeeds(
    stripe_app: Flask, servers: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    pauses = record_pauses(monkeypatch)
    servers.get(STRIPE_EVENTS, status=503, body="<html>down</html>")
    servers.get(STRIPE_EVENTS, status=500, json={"error": {}})
    servers.get(
        STRIPE_EVENTS, json=stripe_page([sample("stripe", "charge.succeeded")], has_more=False)
    )
    since, until = window()
    report = run_backfill(stripe_app, "stripe", since=since, until=until)
    assert pauses.seconds == [1.0, 2.0]
    assert report.counts["stored"] == 1


def test_5xx_that_persists_keeps_the_checkpoint(
    stripe_app: Flask,
    engine: Engine,
    servers: responses.RequestsMock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    record_pauses(monkeypatch)
    first = [sample("stripe", "charge.succeeded")]
    servers.get(
        STRIPE_EVENTS,
        json=stripe_page(first, has_more=True),
        match=[matchers.query_param_matcher({"limit": "100"}, strict_match=False)],
    )
    servers.get(
        STRIPE_EVENTS,
        status=502,
        match=[
            matchers.query_param_matcher({"starting_after": first[0]["id"]}, strict_match=False)
        ],
    )
    since, until = window()
    with pytest.raises(ProviderApiError, match="HTTP 502 after 4 retries; the checkpoint is kept"):
        run_backfill(stripe_app, "stripe", since=since, until=until)
    saved = checkpoints.load(stripe_app.extensions["paysieve.store"], "stripe", "default")
    assert saved is not None and saved.cursor.token == first[0]["id"]
    assert len(all_rows(engine)["events"]) == 1


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_name_the_setting(
    stripe_app: Flask, servers: responses.RequestsMock, status: int
) -> None:
    servers.get(STRIPE_EVENTS, status=status, json={"error": {"message": "Invalid API Key"}})
    since, until = window()
    with pytest.raises(ProviderAuthError) as refused:
        run_backfill(stripe_app, "stripe", since=since, until=until)
    message = refused.value.message
    # Set in the file (here: the test's overrides), so named as the file's key.
    assert f"HTTP {status}" in message and "api_key of stripe endpoint 'default'" in message
    assert "Events: Read" in message and stripe_api_endpoint()["api_key"] not in message


def test_malformed_objects_are_refused_one_by_one(
    stripe_app: Flask,
    engine: Engine,
    servers: responses.RequestsMock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    good = sample("stripe", "charge.succeeded")
    no_time = sample("stripe", "charge.succeeded")
    no_time["created"] = "yesterday 4242424242424242"
    bad_type = sample("stripe", "charge.succeeded")
    bad_type["type"] = "charge succeeded!"
    no_object = sample("stripe", "charge.succeeded")
    no_object["data"] = ["4242424242424242"]
    card_id = sample("stripe", "charge.succeeded")
    card_id["id"] = "evt_4242424242424242"
    page = [good, "not an event", {"object": "event"}, no_time, bad_type, no_object, card_id]
    servers.get(STRIPE_EVENTS, json=stripe_page(page, has_more=False))
    since, until = window()
    report = run_backfill(stripe_app, "stripe", since=since, until=until)
    assert report.counts["stored"] == 1 and report.counts["refused"] == 6
    assert [row["id"] for row in all_rows(engine)["events"]] == [good["id"]]
    assert "4242424242424242" not in caplog.text


def test_a_page_that_is_not_json_is_one_error(
    stripe_app: Flask, servers: responses.RequestsMock
) -> None:
    servers.get(STRIPE_EVENTS, body="<html>4242424242424242</html>", status=200)
    since, until = window()
    with pytest.raises(ProviderApiError, match="not JSON") as refused:
        run_backfill(stripe_app, "stripe", since=since, until=until)
    assert "4242" not in refused.value.message


def test_dry_run_stores_nothing_and_says_what_it_would(
    stripe_app: Flask, engine: Engine, servers: responses.RequestsMock
) -> None:
    known = sample("stripe", "charge.succeeded")
    signed_post(stripe_app.test_client(), "stripe", copy.deepcopy(known))
    before = plain_rows(engine)
    fresh = [sample("stripe", "charge.succeeded"), sample("stripe", "payment_method.attached")]
    unknown = sample("stripe", "charge.succeeded") | {"type": "balance.available"}
    servers.get(STRIPE_EVENTS, json=stripe_page([known, *fresh, unknown], has_more=True))
    since, until = window()
    report = run_backfill(
        stripe_app, "stripe", since=since, until=until, dry_run=True, stop_after=1
    )
    assert report.counts == report.counts | {"would_store": 2, "duplicate": 1, "ignored": 1}
    assert counts(engine) == {name: len(rows) for name, rows in before.items()}
    assert plain_rows(engine) == before


def test_the_audit_scan_finds_nothing_after_an_interrupted_backfill(
    stripe_app: Flask, engine: Engine, servers: responses.RequestsMock
) -> None:
    events, _planted = planted_events()
    servers.get(STRIPE_EVENTS, json=stripe_page(events, has_more=True))
    since, until = window()
    run_backfill(stripe_app, "stripe", since=since, until=until, stop_after=1)
    assert len(all_rows(engine)["backfill_checkpoints"]) == 1
    result = scan.scan(engine, allowlist.load())
    assert result.findings == []


@pytest.mark.parametrize(
    ("shift", "dry_run"),
    [(86400, False), (86400, True), (-3 * 86400, False)],
    ids=["a day ahead", "a day ahead, dry run", "before the window"],
)
def test_an_event_dated_outside_the_window_is_refused(
    stripe_app: Flask, engine: Engine, servers: responses.RequestsMock, shift: int, dry_run: bool
) -> None:
    # A listed event dated in the future would win over every later webhook and over an
    # erasure; one before the window was never asked for.
    inside = sample("stripe", "charge.succeeded")
    outside = sample("stripe", "charge.refunded")
    outside["created"] = inside["created"] + shift
    since, until = window()
    servers.get(STRIPE_EVENTS, json=stripe_page([inside, outside], has_more=False))
    report = run_backfill(stripe_app, "stripe", since=since, until=until, dry_run=dry_run)
    assert report.counts["refused"] == 1
    assert report.counts["would_store" if dry_run else "stored"] == 1
    stored = {row["id"] for row in all_rows(engine)["events"]}
    assert outside["id"] not in stored
    assert stored == (set() if dry_run else {inside["id"]})
