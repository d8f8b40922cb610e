"""Group commit: deliveries queued during a write share the next transaction, and no
delivery is acknowledged before the transaction holding it has committed."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from sqlalchemy import Engine, func, select, text

from gateway.core.records import EventMeta, Record
from gateway.storage.groupcommit import GroupCommit
from gateway.storage.store import Store
from gateway.storage.tables import events, transactions
from tests.support.batches import T0, prepared_batch
from tests.support.database import make_cipher


def wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def submit_all(committer: GroupCommit[int], jobs: list[int]) -> dict[int, BaseException]:
    """Submit each job from its own thread; return the error each one raised, by job."""
    errors: dict[int, BaseException] = {}

    def submit(job: int) -> None:
        try:
            committer.submit(job)
        except BaseException as exc:  # noqa: BLE001 - the test inspects what each thread got
            errors[job] = exc

    threads = [threading.Thread(target=submit, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
        assert not thread.is_alive()
    return errors


def test_deliveries_queued_during_a_write_share_the_next_transaction() -> None:
    gate = threading.Lock()
    batches: list[list[int]] = []
    committer = GroupCommit(batches.append, lambda: gate)
    gate.acquire()  # another process is writing
    worker = threading.Thread(target=submit_all, args=(committer, list(range(10))))
    worker.start()
    wait_for(lambda: len(committer._queue) == 10)
    gate.release()
    worker.join(10)
    assert batches == [list(range(10))]


def test_no_delivery_returns_before_its_batch_is_written() -> None:
    started, finish = threading.Event(), threading.Event()
    written: list[int] = []

    def write(batch: list[int]) -> None:
        started.set()
        assert finish.wait(10)
        written.extend(batch)

    committer = GroupCommit(write, threading.Lock)
    returned: list[int] = []
    thread = threading.Thread(target=lambda: (committer.submit(1), returned.append(1)))
    thread.start()
    assert started.wait(10)
    time.sleep(0.05)
    assert returned == [], "acknowledged before the commit"
    finish.set()
    thread.join(10)
    assert written == [1] and returned == [1]


def test_a_failed_batch_fails_every_delivery_in_it_each_with_its_own_error() -> None:
    gate = threading.Lock()

    def write(batch: list[int]) -> None:
        raise RuntimeError("disk full")

    committer = GroupCommit(write, lambda: gate)
    gate.acquire()
    errors: dict[int, BaseException] = {}
    worker = threading.Thread(target=lambda: errors.update(submit_all(committer, [1, 2, 3])))
    worker.start()
    wait_for(lambda: len(committer._queue) == 3)
    gate.release()
    worker.join(10)
    assert sorted(errors) == [1, 2, 3]
    assert all(isinstance(e, RuntimeError) and str(e) == "disk full" for e in errors.values())
    assert len({id(e) for e in errors.values()}) == 3


def test_a_gate_that_times_out_fails_what_is_queued() -> None:
    class Busy:
        def __enter__(self) -> None:
            raise TimeoutError("storage is busy")

        def __exit__(self, *exc: object) -> None:
            pass

    committer: GroupCommit[int] = GroupCommit(lambda batch: None, Busy)
    errors = submit_all(committer, [1, 2])
    assert sorted(errors) == [1, 2]
    assert all(isinstance(e, TimeoutError) for e in errors.values())
    assert committer._queue == []


def test_two_writers_run_side_by_side() -> None:
    inside = threading.Barrier(2, timeout=10)

    def write(batch: list[int]) -> None:
        # Both writers must be inside at once, or the barrier breaks.
        inside.wait()

    committer = GroupCommit(write, threading.Lock, writers=2)
    assert submit_all(committer, [1, 2]) == {}


def count(engine: Engine, table: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_one_bad_delivery_does_not_fail_the_rest_of_its_batch(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(engine, make_cipher())
    event_object = Store._event_object

    def failing(self: Store, seq: int, record_type: str, key: str) -> object:
        if key == "ch_bad":
            raise ValueError("cannot write this one")
        return event_object(self, seq, record_type, key)

    batch = prepared_batch(
        store,
        ("evt_1", "ch_1"),
        ("evt_bad", "ch_bad"),
        ("evt_2", "ch_2"),
        ("evt_1", "ch_1"),  # the same event twice in one batch
    )
    monkeypatch.setattr(Store, "_event_object", failing)
    store._write_batch(batch)
    assert [d.status for d in batch] == ["stored", "", "stored", "duplicate"]
    assert isinstance(batch[1].error, ValueError)
    assert [d.error for d in (batch[0], batch[2], batch[3])] == [None, None, None]
    with engine.connect() as conn:
        ids = sorted(conn.execute(select(events.c.id)).scalars())
    assert ids == ["evt_1", "evt_2"]
    assert count(engine, transactions) == 2


def test_a_delivery_that_fails_raises_from_apply(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(engine, make_cipher())

    def failing(self: Store, seq: int, record_type: str, key: str) -> object:
        raise ValueError("cannot write this one")

    monkeypatch.setattr(Store, "_event_object", failing)
    with pytest.raises(ValueError, match="cannot write this one"):
        store.apply(
            provider="stripe",
            account="default",
            meta=EventMeta(id="evt_x", type="charge.succeeded", occurred_at=T0),
            records=[
                Record("transaction", {"id": "ch_x", "kind": "payment", "status": "succeeded"})
            ],
            outcome="stored",
            dropped_fields=0,
        )
    assert count(engine, events) == 0


def test_a_failed_batch_leaves_no_transaction_or_lock_open_on_postgresql(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL sends BEGIN, the seq lock and COMMIT in its own statements")
    store = Store(engine, make_cipher())

    def failing(self: Store, seq: int, record_type: str, key: str) -> object:
        raise ValueError("cannot write this one")

    # Fails after the round trip that began the transaction and took and freed the lock.
    monkeypatch.setattr(Store, "_event_object", failing)
    batch = prepared_batch(store, ("evt_1", "ch_1"), ("evt_2", "ch_2"))
    store._write_batch(batch)
    assert all(isinstance(d.error, ValueError) for d in batch)
    with engine.connect() as conn:
        stuck = conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND state LIKE 'idle in transaction%'"
            )
        ).scalar_one()
        locks = conn.execute(
            text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND"
                " database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
        ).scalar_one()
    assert (stuck, locks) == (0, 0)
    assert count(engine, events) == 0
    monkeypatch.undo()
    # The pooled connections are clean: the next batch is stored.
    again = prepared_batch(store, ("evt_1", "ch_1"), ("evt_2", "ch_2"))
    store._write_batch(again)
    assert [d.status for d in again] == ["stored", "stored"]


def test_a_redelivery_waiting_on_an_uncommitted_copy_holds_up_no_other_delivery(
    engine: Engine,
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time anyway")
    store = Store(engine, make_cipher())

    def deliver(event_id: str) -> str:
        return store.apply(
            provider="stripe",
            account="default",
            meta=EventMeta(id=event_id, type="charge.succeeded", occurred_at=T0),
            records=[Record("transaction", {"id": f"ch_{event_id}", "status": "succeeded"})],
            outcome="stored",
            dropped_fields=0,
        )

    # Another transaction (an erasure, a second gateway) holds an uncommitted copy.
    holder = engine.connect()
    holder.begin()
    holder.execute(
        events.insert().values(
            provider="stripe",
            account="default",
            id="evt_race",
            type="charge.succeeded",
            occurred_at=T0,
            received_at=T0,
            outcome="stored",
            dropped_fields=0,
        )
    )
    answers: dict[str, str] = {}
    waiting = threading.Thread(target=lambda: answers.update(race=deliver("evt_race")))
    waiting.start()
    try:
        with engine.connect() as conn:
            wait_for(
                lambda: (
                    conn.execute(
                        text(
                            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                            " AND datname = current_database()"
                        )
                    ).scalar_one()
                    == 1
                )
            )
        # The waiting insert holds no lock other writers need: this one commits meanwhile.
        assert deliver("evt_other") == "stored"
    finally:
        holder.rollback()
        holder.close()
        waiting.join()
    assert answers == {"race": "stored"}
