"""The pipeline: a verified delivery is minimised and stored once; card data stores nothing."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
from flask import Flask
from sqlalchemy import Engine
from werkzeug.datastructures import Headers

from adapters.stripe import StripeAdapter
from gateway.config.settings import EndpointConfig, Settings
from gateway.core.errors import CardDataRefused, NotFound, UnsupportedMediaType, VerificationError
from gateway.ingest.pipeline import Pipeline
from tests.support.database import all_rows, assert_nowhere, plain_rows
from tests.support.webhooks import sample

PAN = "4242424242424242"


@pytest.fixture
def pipeline(app: Flask) -> Pipeline:
    """Return a pipeline with only the Stripe adapter, on the test app's store."""
    settings: Settings = app.extensions["paysieve.settings"]
    return Pipeline(settings, app.extensions["paysieve.store"], {"stripe": StripeAdapter(settings)})


def delivery(pipeline: Pipeline, event: dict[str, Any]) -> tuple[bytes, Headers]:
    """Return a body and headers signed as Stripe signs them, with the endpoint's secret."""
    adapter, endpoint = pipeline.route("stripe", "default")
    raw = orjson.dumps(event)
    signed = adapter.sign(raw, endpoint, timestamp=int(time.time()), event_id=str(event["id"]))
    return raw, Headers(signed)


def process(pipeline: Pipeline, event: dict[str, Any]) -> Any:
    adapter, endpoint = pipeline.route("stripe", "default")
    raw, headers = delivery(pipeline, event)
    return pipeline.process(adapter, endpoint, raw, headers)


def stored(engine: Engine) -> dict[str, int]:
    """Return the number of rows in every table that holds anything."""
    return {name: len(rows) for name, rows in all_rows(engine).items() if rows}


def test_a_delivery_is_stored_with_its_records(pipeline: Pipeline, engine: Engine) -> None:
    event = sample("stripe", "charge.succeeded")
    outcome = process(pipeline, event)
    assert (outcome.status, outcome.event_id) == ("stored", event["id"])
    assert outcome.records >= 1
    rows = plain_rows(engine)
    assert [row["id"] for row in rows["events"]] == [event["id"]]
    assert [row["id"] for row in rows["transactions"]] == [event["data"]["object"]["id"]]


def test_a_redelivery_is_a_duplicate_and_changes_nothing(
    pipeline: Pipeline, engine: Engine
) -> None:
    event = sample("stripe", "charge.succeeded")
    assert process(pipeline, event).status == "stored"
    before = all_rows(engine)
    assert process(pipeline, event).status == "duplicate"
    assert all_rows(engine) == before


def test_an_unknown_event_type_is_recorded_as_ignored(pipeline: Pipeline, engine: Engine) -> None:
    event = sample("stripe", "charge.succeeded") | {"type": "customer.tax_id.created"}
    outcome = process(pipeline, event)
    assert (outcome.status, outcome.records) == ("ignored", 0)
    rows = all_rows(engine)
    assert [row["outcome"] for row in rows["events"]] == ["ignored"]
    assert rows["transactions"] == []


@pytest.mark.parametrize("where", ["id", "type"])
def test_a_card_number_in_the_event_id_or_type_stores_nothing(
    pipeline: Pipeline, engine: Engine, database_url: str, where: str
) -> None:
    event = sample("stripe", "charge.succeeded")
    event[where] = f"evt_{PAN}" if where == "id" else f"charge.{PAN}"
    with pytest.raises(CardDataRefused) as refused:
        process(pipeline, event)
    assert PAN not in str(refused.value)
    assert stored(engine) == {}
    assert_nowhere([PAN], engine, database_url)


def test_a_card_number_in_a_kept_field_is_dropped_and_counted(
    pipeline: Pipeline, engine: Engine, database_url: str
) -> None:
    event = sample("stripe", "charge.succeeded")
    event["data"]["object"]["customer"] = PAN
    clean = process(pipeline, sample("stripe", "charge.succeeded"))
    outcome = process(pipeline, event)
    assert outcome.status == "stored"
    # Dropped from every record that kept the customer (the charge and its card).
    assert outcome.dropped > clean.dropped
    charge = event["data"]["object"]["id"]
    [row] = [row for row in plain_rows(engine)["transactions"] if row["id"] == charge]
    assert row["customer"] is None
    assert_nowhere([PAN], engine, database_url)


def test_a_bad_signature_stores_nothing(pipeline: Pipeline, engine: Engine) -> None:
    adapter, endpoint = pipeline.route("stripe", "default")
    raw, headers = delivery(pipeline, sample("stripe", "charge.succeeded"))
    headers["Stripe-Signature"] = f"t={int(time.time())},v1={'0' * 64}"
    with pytest.raises(VerificationError):
        pipeline.process(adapter, endpoint, raw, headers)
    assert stored(engine) == {}


def test_a_body_changed_after_signing_stores_nothing(pipeline: Pipeline, engine: Engine) -> None:
    adapter, endpoint = pipeline.route("stripe", "default")
    raw, headers = delivery(pipeline, sample("stripe", "charge.succeeded"))
    with pytest.raises(VerificationError):
        pipeline.process(adapter, endpoint, raw.replace(b"succeeded", b"refunded"), headers)
    assert stored(engine) == {}


def test_routes_go_only_to_enabled_endpoints(pipeline: Pipeline) -> None:
    adapter, endpoint = pipeline.route("stripe", "default")
    assert adapter.name == "stripe"
    assert isinstance(endpoint, EndpointConfig)
    assert endpoint.name == "default"
    for provider, name in (("stripe", "elsewhere"), ("razorpay", "default"), ("nope", "default")):
        with pytest.raises(NotFound):
            pipeline.route(provider, name)


def test_only_json_bodies_are_taken() -> None:
    Pipeline.check_content_type("application/json")
    for mimetype in ("text/plain", "application/x-www-form-urlencoded", ""):
        with pytest.raises(UnsupportedMediaType):
            Pipeline.check_content_type(mimetype)
