"""Replays: signed headers never admit a second body, and a signed body is stored once.

PayPal signs a CRC32 of the body, not the body, so anyone holding one delivery's
headers can make another body with the same checksum (tests.support.crc_forgery) and replay
the headers within the tolerance window. Razorpay signs the body but not the
X-Razorpay-Event-Id header, so a signed body re-posted under a fresh id is the same
event. Each case below was accepted and stored before the gateway kept a digest of
the raw body and of the transmission id with every event.
"""

from __future__ import annotations

import copy
import time
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
import responses
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine

from tests.support.crc_forgery import forge
from tests.support.database import all_rows
from tests.support.paypal import Pki, make_pki, mock_paypal
from tests.support.webhooks import sample, signed_post

RAZORPAY_SECRET = "rzp_replay_secret"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Return a test PKI shared by this module."""
    return make_pki(tmp_path_factory.mktemp("replay-pki"))


@pytest.fixture(params=["cert", "api"])
def paypal(
    request: pytest.FixtureRequest, make_app: Callable[..., Flask], pki: Pki
) -> Iterator[FlaskClient]:
    """Return a client of a gateway verifying PayPal in one mode, PayPal's servers mocked."""
    # api mode's mocked verify endpoint checks CRC32 + RSA as PayPal does: it is as open
    # to a forged body as cert mode.
    with responses.RequestsMock(assert_all_requests_are_fired=False) as servers:
        yield make_app(endpoints=[mock_paypal(servers, request.param, pki)]).test_client()


def paypal_delivery(client: FlaskClient) -> tuple[bytes, dict[str, str]]:
    """Return one PayPal capture event and the headers PayPal signed it with."""
    event = sample("paypal", "PAYMENT.CAPTURE.COMPLETED")
    raw = orjson.dumps(event)
    app = client.application
    config = app.extensions["paysieve.settings"].endpoint("paypal", "default")
    adapter = app.extensions["paysieve.pipeline"].adapters["paypal"]
    headers = adapter.sign(raw, config, timestamp=int(time.time()), event_id=event["id"])
    return raw, {**headers, "Content-Type": "application/json"}


def forged_from(raw: bytes) -> bytes:
    """Return another capture (new event id, new amount) with the original's CRC32."""
    event: dict[str, Any] = copy.deepcopy(orjson.loads(raw))
    event["id"] = "WH-FORGED0000000000-REPLAYED00000000"
    event["resource"]["id"] = "FORGEDCAPTURE0001"
    event["resource"]["amount"]["value"] = "9999.00"
    forged = forge(orjson.dumps(event), zlib.crc32(raw))
    assert forged != raw and zlib.crc32(forged) == zlib.crc32(raw)
    return forged


def test_replayed_paypal_headers_with_a_forged_body_are_refused(
    paypal: FlaskClient, engine: Engine
) -> None:
    raw, headers = paypal_delivery(paypal)
    first = paypal.post("/webhooks/paypal", data=raw, headers=headers)
    assert first.status_code == 200 and first.get_json()["status"] == "stored"
    before = all_rows(engine)

    replayed = paypal.post("/webhooks/paypal", data=forged_from(raw), headers=headers)

    assert replayed.status_code == 400, replayed.get_json()
    assert replayed.get_json()["error"]["code"] == "replay_refused"
    after = all_rows(engine)
    assert after["events"] == before["events"]
    assert after["transactions"] == before["transactions"]
    assert "FORGEDCAPTURE0001" not in repr(after)


def test_the_same_paypal_delivery_again_is_a_duplicate(paypal: FlaskClient, engine: Engine) -> None:
    raw, headers = paypal_delivery(paypal)
    assert paypal.post("/webhooks/paypal", data=raw, headers=headers).status_code == 200
    again = paypal.post("/webhooks/paypal", data=raw, headers=headers)
    assert again.status_code == 200 and again.get_json()["status"] == "duplicate"
    assert len(all_rows(engine)["events"]) == 1


def test_a_forged_body_first_then_the_real_one_stores_only_one(
    paypal: FlaskClient, engine: Engine
) -> None:
    # Whichever body arrives first under one transmission id is the only one kept.
    raw, headers = paypal_delivery(paypal)
    forged = forged_from(raw)
    assert paypal.post("/webhooks/paypal", data=forged, headers=headers).status_code == 200
    real = paypal.post("/webhooks/paypal", data=raw, headers=headers)
    assert real.status_code == 400 and real.get_json()["error"]["code"] == "replay_refused"
    assert len(all_rows(engine)["events"]) == 1


def test_the_transmission_id_is_kept_only_as_a_digest(paypal: FlaskClient, engine: Engine) -> None:
    raw, headers = paypal_delivery(paypal)
    assert paypal.post("/webhooks/paypal", data=raw, headers=headers).status_code == 200
    stored = all_rows(engine)
    assert headers["PAYPAL-TRANSMISSION-ID"] not in repr(stored)
    (event,) = stored["events"]
    assert len(event["transmission_digest"]) == 64 and len(event["body_digest"]) == 64


@pytest.fixture
def razorpay(make_app: Callable[..., Flask]) -> FlaskClient:
    """Return a client of a gateway with one Razorpay endpoint."""
    endpoint = {"provider": "razorpay", "name": "default", "webhook_secrets": [RAZORPAY_SECRET]}
    return make_app(endpoints=[endpoint]).test_client()


def test_a_razorpay_body_under_a_fresh_event_id_is_a_duplicate(
    razorpay: FlaskClient, engine: Engine
) -> None:
    event = sample("razorpay", "payment.captured")
    first = signed_post(razorpay, "razorpay", event, event_id="evt_originalDelivery")
    assert first.get_json()["status"] == "stored"
    before = all_rows(engine)

    again = signed_post(razorpay, "razorpay", event, event_id="evt_freshUnsignedId")

    assert again.status_code == 200 and again.get_json()["status"] == "duplicate"
    after = all_rows(engine)
    assert after["events"] == before["events"]
    assert [e["id"] for e in after["events"]] == ["evt_originalDelivery"]


def test_a_razorpay_body_that_differs_is_a_new_event(razorpay: FlaskClient, engine: Engine) -> None:
    # The digest is of the exact bytes: a genuinely different delivery is stored.
    event = sample("razorpay", "payment.captured")
    assert signed_post(razorpay, "razorpay", event, event_id="evt_first").status_code == 200
    event["created_at"] += 1
    second = signed_post(razorpay, "razorpay", event, event_id="evt_second")
    assert second.get_json()["status"] == "stored"
    assert len(all_rows(engine)["events"]) == 2
