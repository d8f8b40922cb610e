"""Storage: one transaction per event, deduplicated and ordered in the database."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from gateway.core.records import EventMeta, Record
from gateway.storage.store import Store
from gateway.storage.tables import events, payment_methods, transactions
from tests.support.database import make_cipher, plain_rows

T0 = datetime(2026, 3, 2, 14, 0, 0, tzinfo=UTC)


def charge(status: str, **values: object) -> Record:
    return Record("transaction", {"id": "ch_1", "kind": "payment", "status": status, **values})


def apply(
    store: Store, event_id: str, at: datetime, *records: Record, outcome: str = "stored"
) -> str:
    return store.apply(
        provider="stripe",
        account="default",
        meta=EventMeta(id=event_id, type="charge.updated", occurred_at=at),
        records=list(records),
        outcome=outcome,
        dropped_fields=0,
    )


def row(engine: Engine, table=transactions, **where: object) -> dict[str, object]:
    # Sealed columns are compared decrypted: the raw row holds only ciphertext.
    found = [r for r in plain_rows(engine)[table.name] if all(r[k] == v for k, v in where.items())]
    assert len(found) == 1, found
    return found[0]


def count(engine: Engine, table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_event_is_stored_with_its_records(engine: Engine) -> None:
    store = Store(engine, make_cipher())
    pm = Record("payment_method", {"token": "pm_1", "brand": "visa", "last4": "4242"})
    assert (
        apply(store, "evt_1", T0, charge("succeeded", amount=500, payment_method="pm_1"), pm)
        == "stored"
    )
    stored = row(engine, id="ch_1")
    assert stored["status"] == "succeeded"
    assert stored["amount"] == 500
    assert stored["last_event_id"] == "evt_1"
    assert stored["last_event_at"] == T0
    assert row(engine, payment_methods, token="pm_1")["last4"] == "4242"
    touched = {(r["record_type"], r["object_id"]) for r in plain_rows(engine)["event_objects"]}
    assert touched == {("transaction", "ch_1"), ("payment_method", "pm_1")}


def test_redelivery_is_a_duplicate_and_changes_nothing(engine: Engine) -> None:
    store = Store(engine, make_cipher())
    apply(store, "evt_1", T0, charge("succeeded", amount=500))
    assert apply(store, "evt_1", T0, charge("failed", amount=1)) == "duplicate"
    stored = row(engine, id="ch_1")
    assert (stored["status"], stored["amount"]) == ("succeeded", 500)
    assert count(engine, events) == 1


def test_older_event_never_moves_a_record_backwards(engine: Engine) -> None:
    store = Store(engine, make_cipher())
    apply(store, "evt_refund", T0 + timedelta(seconds=30), charge("refunded"))
    apply(store, "evt_success", T0, charge("succeeded", amount=500, customer="cus_1"))
    stored = row(engine, id="ch_1")
    assert stored["status"] == "refunded"
    assert stored["last_event_id"] == "evt_refund"
    # ...but the older event fills what the newer one did not carry.
    assert (stored["amount"], stored["customer"]) == (500, "cus_1")


def test_newer_event_overwrites_and_clears(engine: Engine) -> None:
    store = Store(engine, make_cipher())
    apply(
        store,
        "evt_a",
        T0,
        Record("payment_method", {"token": "pm_1", "customer": "cus_1", "status": "active"}),
    )
    apply(
        store,
        "evt_b",
        T0 + timedelta(seconds=1),
        Record("payment_method", {"token": "pm_1", "customer": None, "status": "detached"}),
    )
    stored = row(engine, payment_methods, token="pm_1")
    assert (stored["customer"], stored["status"]) == (None, "detached")


def test_same_second_tie_keeps_the_status_further_along(engine: Engine) -> None:
    store = Store(engine, make_cipher())
    apply(store, "evt_refund", T0, charge("refunded"))
    apply(store, "evt_success", T0, charge("succeeded"))
    assert row(engine, id="ch_1")["status"] == "refunded"
    apply(store, "evt_dispute", T0, charge("disputed"))
    assert row(engine, id="ch_1")["status"] == "disputed"


def test_ignored_event_is_recorded_without_records(engine: Engine) -> None:
    store = Store(engine, make_cipher())
    assert apply(store, "evt_x", T0, outcome="ignored") == "ignored"
    assert row(engine, events, id="evt_x")["outcome"] == "ignored"
    assert count(engine, transactions) == 0
    assert apply(store, "evt_x", T0, outcome="ignored") == "duplicate"


def test_same_event_id_on_two_accounts_is_two_events(engine: Engine) -> None:
    store = Store(engine, make_cipher())
    meta = EventMeta(id="evt_1", type="charge.succeeded", occurred_at=T0)
    for account in ("default", "eu"):
        result = store.apply(
            provider="stripe",
            account=account,
            meta=meta,
            records=[charge("succeeded")],
            outcome="stored",
            dropped_fields=0,
        )
        assert result == "stored"
    assert count(engine, transactions) == 2


def test_concurrent_copies_store_one_event(engine: Engine) -> None:
    store = Store(engine, make_cipher())
    barrier = threading.Barrier(20)
    results: list[str] = []
    lock = threading.Lock()

    def deliver() -> None:
        barrier.wait()
        outcome = apply(store, "evt_race", T0, charge("succeeded", amount=700))
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=deliver) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["duplicate"] * 19 + ["stored"]
    assert count(engine, events) == 1
    assert count(engine, transactions) == 1


def test_created_at_survives_updates(engine: Engine) -> None:
    store = Store(engine, make_cipher())
    apply(store, "evt_1", T0, charge("pending"))
    first = row(engine, id="ch_1")
    apply(store, "evt_2", T0 + timedelta(seconds=5), charge("succeeded"))
    second = row(engine, id="ch_1")
    assert second["created_at"] == first["created_at"]
    assert second["updated_at"] >= first["updated_at"]


def test_fill_only_field_never_overwrites(engine: Engine) -> None:
    store = Store(engine, make_cipher())
    detached = Record("payment_method", {"token": "pm_1", "status": "detached"})
    apply(store, "evt_detach", T0, detached)
    seen_on_charge = Record(
        "payment_method",
        {"token": "pm_1", "status": "active", "last4": "4242"},
        frozenset({"status"}),
    )
    apply(store, "evt_later_charge", T0 + timedelta(seconds=60), seen_on_charge)
    stored = row(engine, payment_methods, token="pm_1")
    assert (stored["status"], stored["last4"]) == ("detached", "4242")


def test_sqlite_database_file_is_created_private(tmp_path: Path) -> None:
    import stat

    from gateway.storage.engine import make_engine as engine_for

    engine = engine_for(f"sqlite:///{tmp_path / 'private.db'}")
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
    engine.dispose()
    assert stat.S_IMODE((tmp_path / "private.db").stat().st_mode) == 0o600


def test_sqlite_in_a_missing_directory_is_not_created(tmp_path: Path) -> None:
    from gateway.core.errors import ConfigurationError
    from gateway.storage.engine import make_engine as engine_for

    with pytest.raises(ConfigurationError, match="does not exist"):
        engine_for(f"sqlite:///{tmp_path / 'nowhere' / 'x.db'}")
    assert not (tmp_path / "nowhere").exists()
