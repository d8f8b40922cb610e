"""Backfill against a provider API that misbehaves: pages that never end, odd headers."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import pytest
import responses
from flask import Flask
from sqlalchemy import Engine

from adapters.api import _retry_after
from gateway.ingest.backfill import Backfill, endpoint_for, source_for
from tests.support.backfill import (
    STRIPE_EVENTS,
    record_pauses,
    stripe_api_endpoint,
    stripe_page,
    window,
)

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
