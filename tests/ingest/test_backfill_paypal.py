"""Backfill from PayPal's webhook event list, with the api mode's OAuth client credentials."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import responses
from flask import Flask
from responses import matchers
from sqlalchemy import Engine

from adapters.api import ProviderApiError, ProviderAuthError
from adapters.paypal.adapter import SUPPORTED_EVENT_TYPES
from gateway.storage import checkpoints
from tests.support.backfill import (
    PAYPAL_EVENTS,
    mock_paypal_token,
    paypal_page,
    records,
    run_backfill,
    window,
)
from tests.support.database import all_rows, assert_nowhere, empty_tables
from tests.support.paypal import TOKEN_URL, Pki, make_pki, mock_paypal
from tests.support.planting import plant
from tests.support.webhooks import sample, signed_post

EVENT_COLUMNS = ("id", "type", "occurred_at", "outcome", "dropped_fields")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Return a test PKI shared by this module."""
    return make_pki(tmp_path_factory.mktemp("paypal-backfill-pki"))


@pytest.fixture
def servers() -> Iterator[responses.RequestsMock]:
    """Mock PayPal's servers."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        yield mocked


@pytest.fixture
def paypal_app(make_app: Callable[..., Flask], pki: Pki, servers: responses.RequestsMock) -> Flask:
    """Return a gateway verifying PayPal by its API (token and verify endpoints mocked)."""
    return make_app(endpoints=[mock_paypal(servers, "api", pki)])


def test_backfill_stores_byte_for_byte_what_the_webhooks_store(
    paypal_app: Flask,
    engine: Engine,
    database_url: str,
    servers: responses.RequestsMock,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    events: list[dict[str, Any]] = []
    planted: list[str] = []
    for event_type in SUPPORTED_EVENT_TYPES:
        event = sample("paypal", event_type)
        planted += plant(event)
        events.append(event)
    client = paypal_app.test_client()
    for event in events:
        response = signed_post(client, "paypal", copy.deepcopy(event))
        assert response.status_code == 200, response.get_data(as_text=True)
    by_webhook = records(engine)
    webhook_events = sorted(
        tuple(row[c] for c in EVENT_COLUMNS) for row in all_rows(engine)["events"]
    )

    empty_tables(engine)
    servers.get(PAYPAL_EVENTS, json=paypal_page(events))
    since, until = window()
    report = run_backfill(paypal_app, "paypal", since=since, until=until)
    assert report.counts["stored"] == len(events)
    assert records(engine) == by_webhook
    assert (
        sorted(tuple(row[c] for c in EVENT_COLUMNS) for row in all_rows(engine)["events"])
        == webhook_events
    )
    listing = [c.request for c in servers.calls if c.request.url.startswith(PAYPAL_EVENTS)]
    assert listing[0].headers["Authorization"] == "Bearer A21AA-test"
    assert_nowhere(planted, engine, database_url, caplog.text, *capsys.readouterr())


def test_next_links_are_followed_and_resumed_from(
    paypal_app: Flask, engine: Engine, servers: responses.RequestsMock
) -> None:
    since, until = window()
    first = [sample("paypal", "PAYMENT.CAPTURE.COMPLETED") for _ in range(2)]
    second = [sample("paypal", "PAYMENT.CAPTURE.COMPLETED")]
    following = "page_size=100&page=2&start_time=2026-12-01T00%3A00%3A00Z"
    servers.get(
        PAYPAL_EVENTS,
        json=paypal_page(first, next_query=following),
        match=[
            matchers.query_param_matcher(
                {
                    "start_time": since.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "end_time": until.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "page_size": "100",
                }
            )
        ],
    )
    stopped = run_backfill(paypal_app, "paypal", since=since, until=until, stop_after=1)
    assert stopped.interrupted and stopped.counts["stored"] == 2
    saved = checkpoints.load(paypal_app.extensions["paysieve.store"], "paypal", "default")
    assert saved is not None and saved.cursor.token == following

    servers.get(
        PAYPAL_EVENTS,
        json=paypal_page(second),
        match=[matchers.query_param_matcher({"page": "2"}, strict_match=False)],
    )
    resumed = run_backfill(paypal_app, "paypal", since=since, until=until)
    assert resumed.resumed and resumed.counts["stored"] == 1
    assert len(all_rows(engine)["events"]) == 3


def test_a_next_link_to_another_host_is_not_followed(
    paypal_app: Flask, engine: Engine, servers: responses.RequestsMock
) -> None:
    page = paypal_page([sample("paypal", "PAYMENT.CAPTURE.COMPLETED")])
    page["links"].append(
        {"href": "https://collector.example/v1/notifications/webhooks-events?a=b", "rel": "next"}
    )
    servers.get(PAYPAL_EVENTS, json=page)
    since, until = window()
    with pytest.raises(ProviderApiError, match="not followed"):
        run_backfill(paypal_app, "paypal", since=since, until=until)
    assert not any("collector.example" in c.request.url for c in servers.calls)


def test_an_expired_token_is_renewed_once(
    paypal_app: Flask, engine: Engine, servers: responses.RequestsMock
) -> None:
    servers.get(PAYPAL_EVENTS, status=401, json={"error": "invalid_token"})
    servers.get(PAYPAL_EVENTS, json=paypal_page([sample("paypal", "PAYMENT.CAPTURE.COMPLETED")]))
    since, until = window()
    report = run_backfill(paypal_app, "paypal", since=since, until=until)
    assert report.counts["stored"] == 1
    tokens = [c for c in servers.calls if c.request.url == TOKEN_URL]
    assert len(tokens) == 2


def test_refused_client_credentials_name_both_settings(
    make_app: Callable[..., Flask], pki: Pki, servers: responses.RequestsMock
) -> None:
    app = make_app(endpoints=[mock_paypal(servers, "api", pki)])
    servers.replace(responses.POST, TOKEN_URL, status=401, json={"error": "invalid_client"})
    since, until = window()
    with pytest.raises(ProviderAuthError) as refused:
        run_backfill(app, "paypal", since=since, until=until)
    message = refused.value.message
    assert "client_id of paypal endpoint 'default' and client_secret" in message
    assert "EcTestClientSecret" not in message


def test_a_listing_that_refuses_twice_names_the_credentials(
    paypal_app: Flask, servers: responses.RequestsMock
) -> None:
    mock_paypal_token(servers)
    servers.get(PAYPAL_EVENTS, status=403, json={"name": "NOT_AUTHORIZED"})
    since, until = window()
    with pytest.raises(ProviderAuthError, match="HTTP 403"):
        run_backfill(paypal_app, "paypal", since=since, until=until)
