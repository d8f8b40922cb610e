"""The transactional outbox: delivery rows exist exactly when the change committed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, Table, select, update

from gateway.core.errors import CardDataRefused
from gateway.outbound.dispatcher import Dispatcher
from gateway.storage.store import Store
from gateway.storage.tables import events, outbound_deliveries, subscribers
from tests.outbound.conftest import deliveries, outbound_settings
from tests.support.api import apply, pm, txn

URL = "https://127.0.0.1:9/hook"


def test_no_subscriber_writes_no_delivery(store: Store, engine: Engine) -> None:
    apply(store, txn("ch_1", status="succeeded"), event_type="charge.succeeded")
    assert deliveries(engine) == []


def test_one_row_per_subscriber_and_record(
    store: Store, engine: Engine, add_subscriber: Callable[..., str]
) -> None:
    add_subscriber("billing", URL)
    add_subscriber("ledger", URL)
    apply(store, txn("ch_1", payment_method="pm_1"), pm("pm_1"), event_type="charge.succeeded")
    rows = deliveries(engine)
    assert len(rows) == 4
    assert {r["record_type"] for r in rows} == {"transaction", "payment_method"}
    assert {r["state"] for r in rows} == {"pending"}
    # The token is sealed in the outbox as in the change feed: never in clear.
    assert "pm_1" not in repr(rows)


def test_patterns_and_accounts_choose_the_subscribers(
    store: Store, engine: Engine, add_subscriber: Callable[..., str]
) -> None:
    add_subscriber("charges", URL, events=["charge.*"])
    add_subscriber("eu", URL, accounts=["eu"])
    add_subscriber("refunds", URL, events=["refund.updated", "*.refunded"])
    apply(store, txn("ch_1"), event_type="charge.succeeded", event_id="evt_1")
    apply(store, txn("ch_2"), event_type="charge.refunded", account="eu", event_id="evt_2")
    apply(store, txn("ch_3"), event_type="invoice.paid", event_id="evt_3")
    names = {r["id"]: r["name"] for r in _rows(engine, subscribers)}
    ids = {r["seq"]: r["id"] for r in _rows(engine, events)}
    got = sorted((names[r["subscriber_id"]], ids[r["event_seq"]]) for r in deliveries(engine))
    assert got == [
        ("charges", "evt_1"),
        ("charges", "evt_2"),
        ("eu", "evt_2"),
        ("refunds", "evt_2"),
    ]


def test_disabled_subscriber_gets_nothing_new(
    store: Store, engine: Engine, add_subscriber: Callable[..., str]
) -> None:
    add_subscriber("billing", URL)
    with engine.begin() as conn:
        conn.execute(update(subscribers).values(enabled=False, disabled_reason="operator"))
    store.outbox.invalidate()
    apply(store, txn("ch_1"))
    assert deliveries(engine) == []


def test_a_duplicate_or_refused_change_writes_no_delivery(
    store: Store, engine: Engine, add_subscriber: Callable[..., str]
) -> None:
    add_subscriber("billing", URL)
    apply(store, txn("ch_1"), event_id="evt_1")
    apply(store, txn("ch_1"), event_id="evt_1")
    assert len(deliveries(engine)) == 1
    # Card data in a record refuses the whole transaction at the storage boundary:
    # the event, the record and its delivery rows are rolled back together.
    with pytest.raises(CardDataRefused):
        apply(store, txn("ch_2", provider_status="4111111111111111"), event_id="evt_2")
    assert len(deliveries(engine)) == 1


def test_one_record_waits_for_its_earlier_delivery(
    store: Store, engine: Engine, add_subscriber: Callable[..., str]
) -> None:
    add_subscriber("billing", URL)
    apply(store, txn("ch_1", status="pending"), event_id="evt_1")
    apply(store, txn("ch_1", status="succeeded"), event_id="evt_2")
    apply(store, txn("ch_2", status="pending"), event_id="evt_3")
    seq = {r["id"]: r["seq"] for r in _rows(engine, events)}
    sender = Dispatcher(store, outbound_settings(None))
    first = sender.claim()
    assert sorted(c.event_seq for c in first) == [seq["evt_1"], seq["evt_3"]]
    # Released, failed and due again: ch_1's second change still waits behind it.
    later = datetime.now(UTC) + timedelta(hours=1)
    with engine.begin() as conn:
        conn.execute(
            update(outbound_deliveries).values(state="failed", lease_until=None, attempts=1)
        )
    assert sorted(c.event_seq for c in sender.claim(later)) == [seq["evt_1"], seq["evt_3"]]
    with engine.begin() as conn:
        conn.execute(
            update(outbound_deliveries)
            .where(outbound_deliveries.c.event_seq == seq["evt_1"])
            .values(state="dead", lease_until=None)
        )
    # Exhausted: the next change of ch_1 goes; ch_2's is leased already.
    assert [c.event_seq for c in sender.claim(later + timedelta(seconds=10))] == [seq["evt_2"]]


def _rows(engine: Engine, table: Table) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(table))]
