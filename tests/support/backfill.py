"""Providers' listing APIs as tests mock them, and the records a backfill leaves behind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import responses
from flask import Flask
from sqlalchemy import Engine

import adapters.api
from gateway.ingest.backfill import Backfill, Report, endpoint_for, source_for
from gateway.ingest.reconcile import Reconcile, ReconcileReport
from gateway.storage.tables import RECORD_TABLES
from tests.support.database import plain_rows
from tests.support.paypal import API_BASE as PAYPAL_API_BASE
from tests.support.paypal import CLIENT_ID, CLIENT_SECRET, TOKEN_URL, WEBHOOK_ID
from tests.support.webhooks import stripe_endpoint

STRIPE_KEY = "rk_test_" + "Kq7" * 8
STRIPE_EVENTS = "https://api.stripe.com/v1/events"
RAZORPAY_KEY_ID = "rzp_test_Kq7Kq7Kq7Kq7Kq"
RAZORPAY_KEY_SECRET = "Kq7secret" * 3
RAZORPAY_WEBHOOK_SECRET = "rzp-webhook-secret-for-tests"
RAZORPAY = "https://api.razorpay.com/v1/"
PAYPAL_EVENTS = PAYPAL_API_BASE + "/v1/notifications/webhooks-events"

# Each record's columns that say when and by which event it was written, not what it holds.
WRITTEN = frozenset({"pk", "created_at", "updated_at"})
BY_EVENT = frozenset({"last_event_id", "last_event_at"})


def window() -> tuple[datetime, datetime]:
    """Return a window around now that every sample event falls in."""
    now = datetime.now(UTC).replace(microsecond=0)
    return now - timedelta(days=1), now + timedelta(minutes=5)


def stripe_api_endpoint(**extra: Any) -> dict[str, Any]:
    """Return a Stripe endpoint with a webhook secret and a restricted API key."""
    return stripe_endpoint() | {"api_key": STRIPE_KEY} | extra


def razorpay_api_endpoint(**extra: Any) -> dict[str, Any]:
    """Return a Razorpay endpoint with a webhook secret and an API key."""
    return {
        "provider": "razorpay",
        "name": "default",
        "webhook_secrets": [RAZORPAY_WEBHOOK_SECRET],
        "key_id": RAZORPAY_KEY_ID,
        "key_secret": RAZORPAY_KEY_SECRET,
    } | extra


def paypal_api_endpoint(**extra: Any) -> dict[str, Any]:
    """Return a PayPal api-mode endpoint (the client credentials backfill reads with)."""
    return {
        "provider": "paypal",
        "name": "default",
        "verify": "api",
        "webhook_id": WEBHOOK_ID,
        "api_base": PAYPAL_API_BASE,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    } | extra


def stripe_page(events: list[Any], *, has_more: bool) -> dict[str, Any]:
    """Return one page of GET /v1/events."""
    return {"object": "list", "url": "/v1/events", "has_more": has_more, "data": events}


def razorpay_page(items: list[Any]) -> dict[str, Any]:
    """Return one page of a Razorpay collection."""
    return {"entity": "collection", "count": len(items), "items": items}


def mock_paypal_token(servers: responses.RequestsMock) -> None:
    """Answer PayPal's token endpoint."""
    servers.post(TOKEN_URL, json={"access_token": "A21AA-test", "expires_in": 32400})


def paypal_page(events: list[Any], next_query: str | None = None) -> dict[str, Any]:
    """Return one page of the webhook event list, with a next link when more follow."""
    links = [{"href": PAYPAL_EVENTS, "rel": "self", "method": "GET"}]
    if next_query is not None:
        links.append({"href": f"{PAYPAL_EVENTS}?{next_query}", "rel": "next", "method": "GET"})
    return {"events": events, "count": len(events), "links": links}


def empty_razorpay(servers: responses.RequestsMock, *resources: str) -> None:
    """Answer these Razorpay collections with no objects."""
    for resource in resources:
        servers.get(RAZORPAY + resource, json=razorpay_page([]))


def run_backfill(
    app: Flask,
    provider: str,
    *,
    since: datetime,
    until: datetime,
    dry_run: bool = False,
    stop_after: int | None = None,
) -> Report:
    """Run a backfill on the app's pipeline, stopping after stop_after pages if given."""
    pipeline = app.extensions["paysieve.pipeline"]
    settings = app.extensions["paysieve.settings"]
    endpoint = endpoint_for(settings, provider, "default")
    adapter = pipeline.adapters[provider]
    pages: list[int] = []
    run = Backfill(
        pipeline,
        adapter,
        endpoint,
        source_for(settings, endpoint, adapter),
        since=since,
        until=until,
        dry_run=dry_run,
        should_stop=lambda: stop_after is not None and len(pages) >= stop_after,
    )
    for page in run.pages():
        pages.append(len(page.items))
    return run.report


def run_reconcile(
    app: Flask, provider: str, *, since: datetime, until: datetime
) -> ReconcileReport:
    """Run a reconcile on the app's pipeline."""
    pipeline = app.extensions["paysieve.pipeline"]
    settings = app.extensions["paysieve.settings"]
    endpoint = endpoint_for(settings, provider, "default")
    adapter = pipeline.adapters[provider]
    run = Reconcile(
        pipeline,
        adapter,
        endpoint,
        source_for(settings, endpoint, adapter),
        since=since,
        until=until,
    )
    return run.run()


def records(engine: Engine, *, drop: frozenset[str] = WRITTEN) -> dict[str, list[bytes]]:
    """Return every record, opened, without the columns named, as canonical JSON, sorted."""
    rows = plain_rows(engine)
    found: dict[str, list[bytes]] = {}
    for table in RECORD_TABLES.values():
        found[table.name] = sorted(
            orjson.dumps(
                {str(k): v for k, v in row.items() if k not in drop},
                option=orjson.OPT_SORT_KEYS,
                default=str,
            )
            for row in rows[table.name]
        )
    return found


def counts(engine: Engine) -> dict[str, int]:
    """Return the number of rows in every table."""
    return {name: len(rows) for name, rows in plain_rows(engine).items()}


class Pauses:
    """The waits the API client asked for, instead of waiting them."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


def record_pauses(monkeypatch: Any) -> Pauses:
    """Make the API client's retries record their waits rather than sleep them."""
    pauses = Pauses()
    monkeypatch.setattr(adapters.api, "pause", pauses)
    return pauses
