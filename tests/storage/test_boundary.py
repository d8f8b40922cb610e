"""The storage boundary: every text and number bound into any table passes the detector.

The record-level guard (gateway.core.guard.check) is the first line. These tests go around
it, writing straight through the store and through SQLAlchemy Core, and show that the
column types of gateway.storage.tables refuse a card number in any column of any table, with
CardDataRefused, before the database sees it, and that nothing of the refused write
is kept, while the rest of a group-commit batch is.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Boolean, Column, Date, Engine, Table, func, insert, select, update

from gateway.core.crypto import Cipher
from gateway.core.errors import CardDataRefused
from gateway.core.records import EventMeta, Record
from gateway.storage.store import Store
from gateway.storage.tables import (
    HexDigest,
    Number,
    Text,
    UTCDateTime,
    events,
    metadata,
    transactions,
)
from tests.support.batches import prepared_batch
from tests.support.database import make_cipher

T0 = datetime(2026, 3, 2, 14, 0, 0, tzinfo=UTC)
# One number per written form the detector reads through.
FORMS = (
    "4111111111111111",
    "4000_0566_5566_5556",
    "5555:5555:5555:4444",
    "3782--822463--10005",
    "ref/4111|1111|1111|1111/x",
)
# The only columns the detector does not see: numbers the database generates.
GENERATED = {("events", "txid")}


def generated(table: Table, column: Column[Any]) -> bool:
    """Return whether the database, not the gateway, makes a column's values."""
    if (table.name, column.name) in GENERATED:
        return True
    if column.primary_key and column.autoincrement is True:
        return True
    # A reference to a generated key (event_objects.event_seq -> events.seq).
    return any(generated(fk.column.table, fk.column) for fk in column.foreign_keys)


def checked_columns() -> list[tuple[Table, Column[Any]]]:
    """Return every text and number column of every table."""
    return [
        (table, column)
        for table in metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, Text | Number)
    ]


def test_every_column_is_a_boundary_type() -> None:
    allowed = (Text, Number, HexDigest, UTCDateTime, Boolean, Date)
    loose = [
        f"{table.name}.{column.name} ({type(column.type).__name__})"
        for table in metadata.sorted_tables
        for column in table.columns
        if not isinstance(column.type, allowed) and not generated(table, column)
    ]
    assert loose == [], "columns that bypass the detector"
    # Every table that stores provider or caller text has checked columns.
    assert {t.name for t, _ in checked_columns()} >= {
        "events",
        "transactions",
        "payment_methods",
        "subscriptions",
        "event_objects",
        "api_keys",
        "audit_log",
        "trail_counts",
        "trail_shapes",
        "privacy_log",
        "erasures",
    }


def value_for(column: Column[Any], form: str) -> Any:
    """Return a card number as the column would take it: text, or the bare number."""
    if isinstance(column.type, Number):
        return int("".join(c for c in form if c.isdigit()))
    return form


def count(engine: Engine, table: Table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


# The inserts name one column: SQLAlchemy warns about the composite keys left out
# while compiling, before any value is bound or sent.
@pytest.mark.filterwarnings("ignore:Column .* is marked as a member of the primary key")
@pytest.mark.parametrize(
    ("table", "column"),
    checked_columns(),
    ids=[f"{t.name}.{c.name}" for t, c in checked_columns()],
)
def test_core_insert_and_update_refuse_a_card_number_in_any_column(
    engine: Engine, table: Table, column: Column[Any]
) -> None:
    before = count(engine, table)
    for form in FORMS:
        planted = value_for(column, form)
        with pytest.raises(CardDataRefused) as refused, engine.begin() as conn:
            conn.execute(insert(table).values({column.name: planted}))
        assert str(planted) not in str(refused.value)
        with pytest.raises(CardDataRefused), engine.begin() as conn:
            conn.execute(update(table).values({column.name: planted}))
    assert count(engine, table) == before


def test_a_record_past_the_guard_is_refused_and_nothing_of_it_stored(engine: Engine) -> None:
    store = Store(engine, make_cipher())
    for field in ("provider_status", "currency", "order", "refund_of", "invoice"):
        with pytest.raises(CardDataRefused):
            store.apply(
                provider="stripe",
                account="default",
                meta=EventMeta(id=f"evt_{field}", type="charge.succeeded", occurred_at=T0),
                # Straight to the store: the record-level guard never saw this.
                records=[Record("transaction", {"id": "ch_1", field: "4111 1111 1111 1111"})],
                outcome="stored",
                dropped_fields=0,
            )
    with pytest.raises(CardDataRefused):
        store.apply(
            provider="stripe",
            account="default",
            meta=EventMeta(id="evt_amount", type="charge.succeeded", occurred_at=T0),
            records=[Record("transaction", {"id": "ch_1", "amount": 4111111111111111})],
            outcome="stored",
            dropped_fields=0,
        )
    assert count(engine, events) == 0 and count(engine, transactions) == 0


def test_a_sealed_value_is_checked_before_it_is_sealed(engine: Engine) -> None:
    cipher = make_cipher()
    with pytest.raises(CardDataRefused):
        cipher.seal("cus_4111111111111111", Cipher.object_aad(1, "transaction"))
    store = Store(engine, cipher)
    with pytest.raises(CardDataRefused):
        store.apply(
            provider="stripe",
            account="default",
            meta=EventMeta(id="evt_sealed", type="charge.succeeded", occurred_at=T0),
            records=[Record("transaction", {"id": "ch_1", "customer": "cus_5555-5555-5555-4444"})],
            outcome="stored",
            dropped_fields=0,
        )
    assert count(engine, events) == 0


def test_an_event_id_past_the_pipeline_is_refused(engine: Engine) -> None:
    store = Store(engine, make_cipher())
    for meta in (
        EventMeta(id="evt_4000_0566_5566_5556", type="charge.succeeded", occurred_at=T0),
        EventMeta(id="evt_ok", type="charge.5105105105105100", occurred_at=T0),
    ):
        with pytest.raises(CardDataRefused):
            store.apply(
                provider="stripe",
                account="default",
                meta=meta,
                records=[],
                outcome="stored",
                dropped_fields=0,
            )
    assert count(engine, events) == 0


def test_a_refused_delivery_does_not_fail_the_rest_of_its_batch(engine: Engine) -> None:
    store = Store(engine, make_cipher())
    batch = prepared_batch(
        store, ("evt_1", "ch_1"), ("evt_2", "ch_5555:5555:5555:4444"), ("evt_3", "ch_3")
    )
    store._write_batch(batch)
    assert [d.status for d in batch] == ["stored", "", "stored"]
    assert isinstance(batch[1].error, CardDataRefused)
    with engine.connect() as conn:
        assert sorted(conn.execute(select(events.c.id)).scalars()) == ["evt_1", "evt_3"]
        assert sorted(conn.execute(select(transactions.c.id)).scalars()) == ["ch_1", "ch_3"]


def test_a_digest_column_takes_only_a_digest(engine: Engine) -> None:
    # A digest column is not searched for card numbers (random hex passes Luhn by
    # chance); it takes nothing but lower-case hex of its exact length instead.
    with pytest.raises(Exception, match="hex digest"), engine.begin() as conn:
        conn.execute(
            update(events).values(body_digest="4111111111111111".ljust(64, "x")).where(False)
        )


def test_paypal_event_ids_are_read_group_by_group_only_as_event_ids(engine: Engine) -> None:
    store = Store(engine, make_cipher())
    # PayPal's own example id joins into a Luhn-valid, brand-shaped run across its dash.
    real = "WH-2WR32451HC0233532-67976317FL4543714"
    split = "WH-ABCDEFG41111111-11111111ABCDEFG"  # 4111 1111 1111 1111 across the dash
    status = store.apply(
        provider="paypal",
        account="default",
        meta=EventMeta(id=real, type="PAYMENT.CAPTURE.COMPLETED", occurred_at=T0),
        records=[Record("transaction", {"id": "2GG279541U471931P", "kind": "payment"})],
        outcome="stored",
        dropped_fields=0,
    )
    assert status == "stored"
    # The same shape in any other column is read whole, and refused.
    with pytest.raises(CardDataRefused):
        store.apply(
            provider="paypal",
            account="default",
            meta=EventMeta(id="WH-OTHER", type="PAYMENT.CAPTURE.COMPLETED", occurred_at=T0),
            records=[Record("transaction", {"id": split, "kind": "payment"})],
            outcome="stored",
            dropped_fields=0,
        )
    with engine.connect() as conn:
        assert list(conn.execute(select(events.c.id)).scalars()) == [real]
        assert list(conn.execute(select(transactions.c.last_event_id)).scalars()) == [real]
