"""The sender against a real HTTPS receiver: signed, retried, refused where it must be."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine, select, update
from standardwebhooks import Webhook

from gateway.outbound import subscribers as subs
from gateway.outbound.dispatcher import Dispatcher
from gateway.storage.store import Store
from gateway.storage.tables import audit_log, outbound_deliveries, subscribers
from tests.outbound.conftest import deliveries, outbound_settings
from tests.support.api import apply, bearer, make_key, store_of, txn
from tests.support.planting import plant
from tests.support.receiver import Receiver
from tests.support.webhooks import sample, signed_post


def _due_later(engine: Engine) -> None:
    """Make every open delivery due now (as if its wait had passed)."""
    with engine.begin() as conn:
        conn.execute(
            update(outbound_deliveries)
            .where(outbound_deliveries.c.state.in_(("pending", "failed")))
            .values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1))
        )


def _subscriber(engine: Engine, name: str = "billing") -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(select(subscribers).where(subscribers.c.name == name)).one()
    return dict(row._mapping)


def test_delivered_and_verified(
    store: Store,
    engine: Engine,
    receiver: Receiver,
    sender: Dispatcher,
    add_subscriber: Callable[..., str],
) -> None:
    secret = add_subscriber("billing", receiver.url())
    assert secret.startswith("whsec_") and len(secret) == len("whsec_") + 44
    apply(store, txn("ch_1", status="succeeded", amount=500, currency="EUR"))
    assert sender.run_once() == 1
    [got] = receiver.received
    payload = Webhook(secret).verify(got.body, got.headers)
    assert payload["record_type"] == "transaction"
    assert payload["record"]["id"] == "ch_1" and payload["record"]["amount"] == 500
    assert payload["event"]["object_ids"]["transaction"] == ["ch_1"]
    assert got.headers["Host"] == f"127.0.0.1:{receiver.port}"
    [row] = deliveries(engine)
    assert row["state"] == "delivered" and row["attempts"] == 1 and row["last_status"] == 200
    assert row["last_duration_ms"] is not None
    assert sender.run_once() == 0


def test_the_body_is_what_the_api_serves(
    make_app: Callable[..., Flask],
    engine: Engine,
    receiver: Receiver,
    add_subscriber: Callable[..., str],
) -> None:
    app = make_app()
    store = store_of(app)
    secret = subs_add(store, "billing", receiver.url())
    event = sample("stripe", "charge.succeeded")
    assert signed_post(app.test_client(), "stripe", event).status_code == 200
    assert Dispatcher(store, outbound_settings(receiver)).run_once() >= 1
    key = bearer(make_key(engine))
    client = app.test_client()
    feed = client.get("/v1/events", headers=key).get_json()["data"]
    for got in receiver.received:
        payload = Webhook(secret).verify(got.body, got.headers)
        assert payload["event"] == feed[0]
        path = {"transaction": "transactions", "payment_method": "payment-methods"}[
            payload["record_type"]
        ]
        ident = payload["record"]["id" if payload["record_type"] == "transaction" else "token"]
        served = client.get(f"/v1/{path}/stripe/{ident}", headers=key).get_json()
        assert payload["record"] == served


def subs_add(store: Store, name: str, url: str) -> str:
    from gateway.config.settings import allowed_networks
    from gateway.outbound.addresses import system_resolver

    with store.writing() as conn:
        secret = subs.add(
            conn,
            store.cipher,
            name=name,
            url=url,
            event_types=(),
            accounts=(),
            networks=allowed_networks(outbound_settings(None)),
            resolver=system_resolver,
        )
    store.outbox.invalidate()
    return secret


def test_planted_card_numbers_and_personal_data_are_never_sent(
    make_app: Callable[..., Flask], receiver: Receiver
) -> None:
    app = make_app()
    store = store_of(app)
    subs_add(store, "billing", receiver.url())
    planted: list[str] = []
    for event_type in (
        "charge.succeeded",
        "payment_method.attached",
        "customer.subscription.created",
    ):
        event = sample("stripe", event_type)
        planted += plant(event)
        assert signed_post(app.test_client(), "stripe", event).status_code == 200
    sender = Dispatcher(store, outbound_settings(receiver))
    while sender.run_once():
        pass
    assert len(receiver.received) >= 3
    bodies = b"".join(got.body for got in receiver.received).decode()
    headers = repr([got.headers for got in receiver.received])
    for value in planted:
        assert value not in bodies and value not in headers, value[:4]
    assert {json.loads(got.body)["record_type"] for got in receiver.received} >= {
        "transaction",
        "payment_method",
        "subscription",
    }


def test_retried_after_500_with_the_same_id(
    store: Store,
    engine: Engine,
    receiver: Receiver,
    sender: Dispatcher,
    add_subscriber: Callable[..., str],
) -> None:
    secret = add_subscriber("billing", receiver.url())
    receiver.answers += [(500, {})] * 3
    apply(store, txn("ch_1"))
    before = datetime.now(UTC)
    assert sender.run_once() == 1
    [row] = deliveries(engine)
    assert row["state"] == "failed" and row["last_status"] == 500 and row["attempts"] == 1
    # The schedule (0, 5, 300): the second attempt 5 s after the first failure.
    assert before + timedelta(seconds=4) <= row["next_attempt_at"] <= before + timedelta(seconds=7)
    assert sender.run_once() == 0, "not due yet"
    _due_later(engine)
    assert sender.run_once() == 1
    _due_later(engine)
    assert sender.run_once() == 1
    _due_later(engine)
    assert sender.run_once() == 0, "the schedule is used up: dead"
    [row] = deliveries(engine)
    assert row["state"] == "dead" and row["attempts"] == 3
    ids = {got.headers["webhook-id"] for got in receiver.received}
    assert len(receiver.received) == 3 and len(ids) == 1
    for got in receiver.received:
        Webhook(secret).verify(got.body, got.headers)
    assert _subscriber(engine)["failing_since"] is not None


def test_retry_after_is_honoured(
    store: Store,
    engine: Engine,
    receiver: Receiver,
    sender: Dispatcher,
    add_subscriber: Callable[..., str],
) -> None:
    add_subscriber("billing", receiver.url())
    receiver.answers += [(503, {"Retry-After": "120"}), (429, {"Retry-After": "999999"})]
    apply(store, txn("ch_1"))
    before = datetime.now(UTC)
    sender.run_once()
    [row] = deliveries(engine)
    assert row["last_status"] == 503
    assert (
        before + timedelta(seconds=119) <= row["next_attempt_at"] <= before + timedelta(seconds=125)
    )
    _due_later(engine)
    before = datetime.now(UTC)
    sender.run_once()
    [row] = deliveries(engine)
    # Capped at an hour, whatever the endpoint asks.
    assert row["next_attempt_at"] <= before + timedelta(hours=1, seconds=5)
    assert row["next_attempt_at"] >= before + timedelta(minutes=59)


def test_410_disables_the_subscriber(
    store: Store,
    engine: Engine,
    receiver: Receiver,
    sender: Dispatcher,
    add_subscriber: Callable[..., str],
) -> None:
    add_subscriber("billing", receiver.url())
    receiver.answers.append((410, {}))
    apply(store, txn("ch_1"))
    apply(store, txn("ch_2"))
    sender.batch = 1
    assert sender.run_once() == 1
    sub = _subscriber(engine)
    assert sub["enabled"] is False and sub["disabled_reason"] == "gone"
    _due_later(engine)
    assert sender.run_once() == 0
    assert len(receiver.received) == 1
    with engine.connect() as conn:
        entries = conn.execute(select(audit_log)).all()
    assert [(e.actor, e.action, e.outcome) for e in entries] == [
        ("outbound", "subscribers.disable", "gone")
    ]
    # Re-enabled, what stayed queued goes out.
    with store.writing() as conn:
        subs.set_enabled(conn, "billing", enabled=True)
    sender.batch = 16
    assert sender.run_once() == 2
    assert {r["state"] for r in deliveries(engine)} == {"delivered"}


def test_an_endpoint_failing_for_five_days_is_disabled(
    store: Store,
    engine: Engine,
    receiver: Receiver,
    sender: Dispatcher,
    add_subscriber: Callable[..., str],
) -> None:
    add_subscriber("billing", receiver.url())
    with engine.begin() as conn:
        conn.execute(
            update(subscribers).values(failing_since=datetime.now(UTC) - timedelta(days=5, hours=1))
        )
    receiver.answers.append((500, {}))
    apply(store, txn("ch_1"))
    sender.run_once()
    sub = _subscriber(engine)
    assert sub["enabled"] is False and sub["disabled_reason"] == "failing"


def test_a_success_clears_failing_since(
    store: Store,
    engine: Engine,
    receiver: Receiver,
    sender: Dispatcher,
    add_subscriber: Callable[..., str],
) -> None:
    add_subscriber("billing", receiver.url())
    receiver.answers.append((500, {}))
    apply(store, txn("ch_1"))
    sender.run_once()
    assert _subscriber(engine)["failing_since"] is not None
    _due_later(engine)
    sender.run_once()
    assert _subscriber(engine)["failing_since"] is None


def test_during_rotation_both_secrets_sign(
    store: Store,
    receiver: Receiver,
    sender: Dispatcher,
    add_subscriber: Callable[..., str],
) -> None:
    old = add_subscriber("billing", receiver.url())
    with store.writing() as conn:
        new = subs.rotate_secret(conn, store.cipher, "billing")
    assert new != old
    apply(store, txn("ch_1"))
    sender.run_once()
    [got] = receiver.received
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(got.body, got.headers)
    Webhook(new).verify(got.body, got.headers)


def test_the_rotated_out_secret_stops_signing_when_it_expires(
    store: Store,
    engine: Engine,
    receiver: Receiver,
    sender: Dispatcher,
    add_subscriber: Callable[..., str],
) -> None:
    old = add_subscriber("billing", receiver.url())
    with store.writing() as conn:
        new = subs.rotate_secret(conn, store.cipher, "billing")
    with engine.begin() as conn:
        conn.execute(
            update(subscribers).values(
                previous_secret_expires_at=datetime.now(UTC) - timedelta(seconds=1)
            )
        )
    apply(store, txn("ch_1"))
    sender.run_once()
    [got] = receiver.received
    Webhook(new).verify(got.body, got.headers)
    with pytest.raises(Exception, match="No matching signature"):
        Webhook(old).verify(got.body, got.headers)


# ------------------------------------------------------------------ SSRF


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1/hook", "must be https"),
        ("https://10.0.0.1/hook", "private, loopback"),
        ("https://192.168.1.10/hook", "private, loopback"),
        ("https://169.254.169.254/latest/meta-data", "private, loopback"),
        ("https://[::1]/hook", "private, loopback"),
        ("https://[::ffff:10.0.0.1]/hook", "private, loopback"),
        ("https://0.0.0.0/hook", "private, loopback"),
        ("https://user:pw@93.184.216.34/hook", "credentials"),
        ("https:///hook", "no host"),
        ("ftp://93.184.216.34/", "must be https"),
    ],
)
def test_refused_urls(store: Store, url: str, message: str) -> None:
    with store.writing() as conn, pytest.raises(subs.InvalidSubscriber, match=message):
        subs.add(
            conn,
            store.cipher,
            name="billing",
            url=url,
            event_types=(),
            accounts=(),
            networks=(),
            resolver=lambda host, port: ["93.184.216.34"],
        )


def test_a_name_resolving_to_any_private_address_is_refused(store: Store) -> None:
    with store.writing() as conn, pytest.raises(subs.InvalidSubscriber, match="10.0.0.9"):
        subs.add(
            conn,
            store.cipher,
            name="billing",
            url="https://billing.example.com/hook",
            event_types=(),
            accounts=(),
            networks=(),
            resolver=lambda host, port: ["93.184.216.34", "10.0.0.9"],
        )


def test_loopback_is_refused_at_send_time_unless_allowed(
    store: Store,
    engine: Engine,
    receiver: Receiver,
    add_subscriber: Callable[..., str],
) -> None:
    add_subscriber("billing", receiver.url())
    apply(store, txn("ch_1"))
    strict = Dispatcher(store, outbound_settings(receiver, outbound_allow_networks=()))
    assert strict.run_once() == 1
    [row] = deliveries(engine)
    assert row["state"] == "failed" and row["last_error"] == "address"
    assert row["last_status"] is None
    assert receiver.received == []


def test_dns_rebinding_is_not_followed(
    store: Store,
    engine: Engine,
    receiver: Receiver,
    add_subscriber: Callable[..., str],
) -> None:
    """The name is resolved once per attempt, checked, and that address is connected to."""
    url = receiver.url(host="localhost")
    add_subscriber("billing", url, resolver=lambda host, port: ["127.0.0.1"])
    apply(store, txn("ch_1"))
    apply(store, txn("ch_2"))
    answers: list[Sequence[str]] = [["127.0.0.1"], ["10.0.0.9"]]
    calls: list[str] = []

    def rebinding(host: str, port: int) -> Sequence[str]:
        calls.append(host)
        return answers[min(len(calls), len(answers)) - 1]

    sender = Dispatcher(store, outbound_settings(receiver), resolver=rebinding, batch=1)
    assert sender.run_once() == 1
    # The first attempt resolved once, to the allowed address, and was delivered there
    # with the URL's host name kept (TLS verified for localhost).
    assert calls == ["localhost"] and len(receiver.received) == 1
    assert receiver.received[0].headers["Host"] == f"localhost:{receiver.port}"
    # The name now resolves to a private address: refused, nothing sent.
    assert sender.run_once() == 1
    assert len(receiver.received) == 1
    states = sorted((r["state"], r["last_error"]) for r in deliveries(engine))
    assert states == [("delivered", None), ("failed", "address")]


def test_redirects_are_not_followed(
    store: Store,
    engine: Engine,
    receiver: Receiver,
    sender: Dispatcher,
    add_subscriber: Callable[..., str],
) -> None:
    add_subscriber("billing", receiver.url())
    receiver.answers.append((302, {"Location": receiver.url("/elsewhere")}))
    apply(store, txn("ch_1"))
    sender.run_once()
    assert [got.path for got in receiver.received] == ["/hook"]
    [row] = deliveries(engine)
    assert (row["state"], row["last_status"], row["last_error"]) == ("failed", 302, "redirect")


def test_an_untrusted_certificate_is_a_failure(
    store: Store,
    engine: Engine,
    receiver: Receiver,
    add_subscriber: Callable[..., str],
) -> None:
    add_subscriber("billing", receiver.url())
    apply(store, txn("ch_1"))
    # The system's CAs do not know the receiver's test CA.
    Dispatcher(store, outbound_settings(receiver, outbound_ca_bundle="")).run_once()
    [row] = deliveries(engine)
    assert (row["state"], row["last_error"]) == ("failed", "connect")
    assert receiver.received == []


def test_queue_depth_and_attempts_are_counted(
    store: Store,
    receiver: Receiver,
    sender: Dispatcher,
    add_subscriber: Callable[..., str],
) -> None:
    from prometheus_client import REGISTRY

    add_subscriber("billing", receiver.url())
    receiver.answers.append((500, {}))
    apply(store, txn("ch_1"))
    apply(store, txn("ch_2"))
    assert sender.count_queue() == {"pending": 2, "failed": 0, "dead": 0}
    before = REGISTRY.get_sample_value("paysieve_outbound_attempts_total", {"outcome": "failed"})
    lag = REGISTRY.get_sample_value("paysieve_outbound_delivery_lag_seconds_count") or 0
    sender.run_once()
    assert sender.count_queue() == {"pending": 0, "failed": 1, "dead": 0}
    assert REGISTRY.get_sample_value("paysieve_outbound_queue_depth", {"state": "failed"}) == 1
    after = REGISTRY.get_sample_value("paysieve_outbound_attempts_total", {"outcome": "failed"})
    assert after == (before or 0) + 1
    # ch_2 was delivered: its lag observed once.
    assert REGISTRY.get_sample_value("paysieve_outbound_delivery_lag_seconds_count") == lag + 1
