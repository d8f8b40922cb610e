"""The store: one write transaction per webhook, deduplicated and ordered in the database."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg import ClientCursor
from sqlalchemy import (
    BigInteger,
    Connection,
    Engine,
    Integer,
    bindparam,
    cast,
    func,
    literal,
    literal_column,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite

from gateway.core.crypto import Cipher
from gateway.core.errors import ReplayRefused, StorageUnavailable
from gateway.core.records import EventMeta, Record
from gateway.observability import metrics
from gateway.storage import outbox
from gateway.storage.engine import OUTAGES, WriterGate, storage_errors
from gateway.storage.groupcommit import GroupCommit
from gateway.storage.prepared import Prepared, PreparedCache, StatementBatch
from gateway.storage.tables import erasures, event_objects, events
from gateway.storage.trail import Observation, write_trail
from gateway.storage.upserts import APPLY_ORDER, OrderedUpserts

log = logging.getLogger(__name__)

# Transactions a PostgreSQL gateway process keeps open at once (gateway.storage.groupcommit).
PG_WRITERS = 2

# Advisory lock key ordering event seq allocation on PostgreSQL ("psev" in ASCII).
EVENT_SEQ_LOCK = 0x70736576
# Advisory lock key ("pser") every write transaction holds shared and an erasure holds
# exclusively (gateway.privacy.erasure): deliveries in flight commit before the erasure
# looks, and later ones see its tombstones, so none re-links what it erased.
ERASURE_LOCK = 0x70736572
_SHARE_ERASURE_LOCK = "SELECT pg_advisory_xact_lock_shared(%s)"
_LOCK_EVENT_SEQ = "SELECT pg_advisory_lock(%s)"
_UNLOCK_EVENT_SEQ = "SELECT pg_advisory_unlock(%s)"
# A batch's seqs, taken under the lock and kept in a transaction-local setting (as text,
# comma-separated, in delivery order) for its event inserts, which run after the unlock.
_CLAIM_EVENT_SEQS = (
    "SELECT set_config('paysieve.event_seqs',"
    " string_agg(nextval(pg_get_serial_sequence('events', 'seq'))::text, ',' ORDER BY n), true),"
    " pg_current_xact_id() FROM generate_series(1, %s) AS n"
)
# The transaction's id, taken with the seqs, recorded with each event.
_CURRENT_TXID = "pg_current_xact_id()::text::bigint"

# Blind-index columns of sealed rows naming a customer or a card, and the tombstone kind
# (gateway.storage.tables.erasures) each is looked up by.
_SUBJECT_COLUMNS = (
    ("customer_bidx", "customer"),
    ("token_bidx", "token"),
    ("payment_method_bidx", "token"),
)


@dataclass(slots=True, eq=False)
class _Delivery:
    """One event's writes, sealed and bound before the write lock; its result after commit."""

    event: dict[str, Any]
    upserts: list[tuple[Prepared, dict[str, Any]]]
    touched: Sequence[tuple[str, str]]
    outcome: str
    trail: Observation | None
    meta: EventMeta
    records: list[Record]
    # The (kind, blind index) of every customer and card the records name: what an
    # erasure tombstone (gateway.storage.tables.erasures) may hold.
    subjects: list[tuple[str, str]]
    # The enabled subscribers this change is owed to (gateway.storage.outbox).
    targets: tuple[outbox.Target, ...] = ()
    status: str = ""
    error: Exception | None = None


class Store:
    """Apply sanitised events to the database and answer readiness."""

    def __init__(self, engine: Engine, cipher: Cipher) -> None:
        self.engine = engine
        self.cipher = cipher
        self.dialect = engine.dialect.name
        self._insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        # Compiled once per statement shape: building and keying these expressions costs
        # more than running them (storage.prepared).
        self._prepared = PreparedCache(engine.dialect)
        self._upserts = OrderedUpserts(self.dialect, cipher, self._prepared)
        self._event_objects = self._prepared.get(
            "event_objects",
            lambda: event_objects.insert().values(
                {c.name: bindparam(c.name, type_=c.type) for c in event_objects.c}
            ),
        )
        self._tombstone = self._prepared.get(
            "tombstone",
            lambda: select(erasures.c.erased_at).where(
                erasures.c.provider == bindparam("provider", type_=erasures.c.provider.type),
                erasures.c.account == bindparam("account", type_=erasures.c.account.type),
                erasures.c.kind == bindparam("kind", type_=erasures.c.kind.type),
                erasures.c.bidx == bindparam("bidx", type_=erasures.c.bidx.type),
            ),
        )
        self._transmission = self._prepared.get(
            "transmission",
            lambda: select(events.c.body_digest).where(
                events.c.provider == bindparam("provider", type_=events.c.provider.type),
                events.c.account == bindparam("account", type_=events.c.account.type),
                events.c.transmission_digest
                == bindparam("transmission_digest", type_=events.c.transmission_digest.type),
            ),
        )
        # The driver hands back what the column stored; turn it into an aware UTC datetime.
        self._erased_at = erasures.c.erased_at.type.dialect_impl(engine.dialect).result_processor(
            engine.dialect, None
        )
        # The subscribers a stored change is owed to, and the outbox insert.
        self.outbox = outbox.Targets(engine)
        self._outbox_insert = outbox.insert_statement(self._prepared)
        # With the driver's own errors: statements on its cursor raise them (storage.prepared).
        driver = engine.dialect.loaded_dbapi
        self._storage_errors = (*storage_errors(), driver.Error)
        self._outages = (*OUTAGES, driver.OperationalError)
        self._gate = WriterGate.for_engine(engine) if self.dialect == "sqlite" else None
        # SQLite has one writer at a time anyway; PostgreSQL commits writers in parallel,
        # so a transaction waiting on a row lock does not hold up every delivery here.
        self._committer: GroupCommit[_Delivery] = GroupCommit(
            self._write_batch,
            self._writer_gate,
            writers=1 if self.dialect == "sqlite" else PG_WRITERS,
        )

    def _writer_gate(self) -> AbstractContextManager[None]:
        """Return what queues this process's SQLite writers; nothing on PostgreSQL."""
        return self._gate if self._gate is not None else nullcontext()

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """Yield a connection inside one write transaction; map outages to 503."""
        try:
            with (
                self._writer_gate(),
                self.engine.connect().execution_options(write=True) as conn,
                conn.begin(),
            ):
                yield conn
        except storage_errors() as exc:
            raise self._failure(exc) from exc

    def apply(
        self,
        *,
        provider: str,
        account: str,
        meta: EventMeta,
        records: Sequence[Record],
        outcome: str,
        dropped_fields: int,
        trail: Observation | None = None,
        body_digest: str | None = None,
        transmission_digest: str | None = None,
    ) -> str:
        """Store one event and its records atomically; return stored, ignored or duplicate.

        ``trail`` is the delivery's minimisation-trail entry, counted in the same
        transaction when the event is new. An event is a duplicate when its id or
        ``body_digest`` (SHA-256 hex of the raw body) was stored before; a
        ``transmission_digest`` (of the signed transmission id) already stored with a
        different body digest raises
        ReplayRefused. Records naming a customer or card erased after the event
        occurred are not linked again (gateway.storage.tables.erasures). Returns once the
        transaction has committed (it may hold other deliveries too: gateway.storage.groupcommit).
        """
        # Sealed and bound here, outside the write lock: only SQL runs under it.
        now = datetime.now(UTC)
        event_row: dict[str, Any] = {
            "provider": provider,
            "account": account,
            "id": meta.id,
            "type": meta.type,
            "occurred_at": meta.occurred_at,
            "received_at": now,
            "outcome": outcome,
            "dropped_fields": dropped_fields,
            "body_digest": body_digest,
            "transmission_digest": transmission_digest,
        }
        ordered = sorted(records, key=lambda r: (APPLY_ORDER[r.type], r.key))
        upserts = [self._upserts.upsert(provider, account, meta, record, now) for record in ordered]
        touched = sorted({(record.type, record.key) for record in ordered})
        subjects = sorted({s for _, row in upserts for s in self._subjects(row)})
        delivery = _Delivery(event_row, upserts, touched, outcome, trail, meta, ordered, subjects)
        try:
            targets = self.outbox.current()
        except storage_errors() as exc:
            # Storage is down: the write would fail alike; the provider retries on 503.
            raise self._failure(exc) from exc
        if targets and touched:
            delivery.targets = tuple(t for t in targets if t.wants(account, meta.type))
        self._committer.submit(delivery)
        if delivery.error is not None:
            raise delivery.error
        if delivery.targets and delivery.status == "stored":
            self.outbox.queued()
        return delivery.status

    def _write_batch(self, batch: list[_Delivery]) -> None:
        """Write a batch in one transaction; if it fails, each delivery on its own."""
        try:
            self._commit(batch)
            metrics.STORAGE_BATCH.observe(len(batch))
            return
        except Exception as exc:
            if len(batch) == 1 or isinstance(exc, self._outages):
                # Storage is down or busy: every delivery in the batch would fail alike.
                raise self._failure(exc)  # noqa: B904 - _failure keeps the cause
            log.warning("a batch failed (%s); writing each delivery alone", type(exc).__name__)
        for delivery in batch:
            try:
                self._commit([delivery])
                metrics.STORAGE_BATCH.observe(1)
            except Exception as exc:
                delivery.status, delivery.error = "", self._failure(exc)

    def _commit(self, batch: list[_Delivery]) -> None:
        """Insert the batch's events, upsert their records, count the trail, commit.

        On PostgreSQL two round trips whatever the batch's size (StatementBatch): one
        begins and inserts the events (their results say which are new), one carries the
        upserts, change-feed rows, trail counts and the commit.
        """
        fresh: list[_Delivery] = []
        pg = self.dialect == "postgresql"
        with self._transaction() as (conn, driver):
            cursor = StatementBatch(ClientCursor(driver)) if pg else driver.cursor()
            try:
                rows = [d.event for d in batch]
                lookups = self._tombstone_lookups(batch)
                if conn is not None:
                    seqs, erased = self._insert_events_in_seq_order(conn, cursor, rows, lookups)
                else:
                    seqs = self._insert_events(cursor, rows)
                    erased = self._run_lookups(cursor, lookups)
                replays = self._replays(cursor, batch, seqs)
                for delivery, inserted in zip(batch, seqs, strict=True):
                    if inserted is None:
                        if delivery in replays:
                            delivery.status, delivery.error = "", replays[delivery]
                        else:
                            delivery.status = "duplicate"
                        continue
                    delivery.status = delivery.outcome
                    fresh.append(delivery)
                    self._unlink_erased(delivery, erased)
                    for prepared, upsert_row in delivery.upserts:
                        prepared.execute(cursor, upsert_row)
                    objects = [self._event_object(inserted, t, k) for t, k in delivery.touched]
                    self._event_objects.executemany(cursor, objects)
                    if delivery.targets:
                        self._outbox_insert.executemany(
                            cursor, self._outbox_rows(delivery, inserted, objects)
                        )
                observations = [d.trail for d in fresh if d.trail is not None]
                write_trail(cursor, observations, self._prepared)
                if pg:
                    cursor.execute("COMMIT")
                    cursor.results()
            finally:
                cursor.close()
        for delivery in fresh:
            if delivery.trail is not None:
                delivery.trail.committed()

    @contextmanager
    def _transaction(self) -> Iterator[tuple[Connection | None, Any]]:
        """Yield the driver's connection inside one write transaction, committed at the end.

        The statements run on the driver's own cursor (storage.prepared). SQLite: a pooled
        driver connection, BEGIN IMMEDIATE and COMMIT sent to it directly, without
        SQLAlchemy's Connection, its begin and commit wrappers or its events (yielded as
        None); a block that raises leaves the transaction to the pool, which rolls it back
        as the connection returns. PostgreSQL: an AUTOCOMMIT connection, also yielded,
        whose batch sends BEGIN and COMMIT itself, each with other statements.
        """
        if self.dialect == "postgresql":
            options = {"write": True, "isolation_level": "AUTOCOMMIT"}
            with self.engine.connect().execution_options(**options) as conn:
                yield conn, conn.connection.dbapi_connection
            return
        pooled = self.engine.raw_connection()
        try:
            driver: Any = pooled.driver_connection
            # A writer takes the write lock up front, as gateway.storage.engine's begin does.
            driver.execute("BEGIN IMMEDIATE")
            yield None, driver
            driver.execute("COMMIT")
        finally:
            pooled.close()

    def _outbox_rows(
        self, delivery: _Delivery, seq: int, objects: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Return the outbox rows of a fresh delivery: one per subscriber and record."""
        provider, account = delivery.event["provider"], delivery.event["account"]
        refs = [
            (
                obj["record_type"],
                obj["object_id"],
                outbox.record_ref(self.cipher, provider, account, t, k),
            )
            for obj, (t, k) in zip(objects, delivery.touched, strict=True)
        ]
        return outbox.delivery_rows(
            delivery.targets, seq=seq, objects=refs, now=delivery.event["received_at"]
        )

    def _insert_events(self, cursor: Any, rows: list[dict[str, Any]]) -> list[int | None]:
        """Insert event rows in order (SQLite); return each one's seq, or None for a redelivery.

        SQLite writers hold the write lock from BEGIN IMMEDIATE: seq order is commit order.
        """
        insert = self._event_insert(tuple(rows[0]))
        seqs: list[int | None] = []
        for row in rows:
            found = insert.execute(cursor, row).fetchone()
            seqs.append(found[0] if found is not None else None)
        return seqs

    def _insert_events_in_seq_order(
        self,
        conn: Connection,
        batch: StatementBatch,
        rows: list[dict[str, Any]],
        lookups: list[tuple[str, str, str, str]],
    ) -> tuple[list[int | None], dict[tuple[str, str, str, str], datetime]]:
        """Begin, and insert the events with seqs in transaction-id order (PostgreSQL).

        The batch's seqs and its transaction's id are taken together under a lock held
        for that one statement (not until commit, so writers still commit in parallel):
        seq order is then xid order, and the change feed can serve every seq below the
        oldest running transaction without skipping one that commits late (gateway.api.records).
        The inserts run after the unlock, so one waiting on a redelivery another writer
        has not committed yet holds up no one else. A seq a redelivery took stays unused,
        like any sequence value a rolled-back insert took. The erasure lock is taken
        shared first, and the tombstones the batch's records may meet are read last.
        One round trip.
        """
        insert = self._event_insert(("slot", *rows[0]))
        batch.execute("BEGIN")
        batch.execute(_SHARE_ERASURE_LOCK, (ERASURE_LOCK,))
        batch.execute(_LOCK_EVENT_SEQ, (EVENT_SEQ_LOCK,))
        batch.execute(_CLAIM_EVENT_SEQS, (len(rows),))
        batch.execute(_UNLOCK_EVENT_SEQ, (EVENT_SEQ_LOCK,))
        insert.executemany(batch, [{"slot": n} | row for n, row in enumerate(rows, 1)])
        for lookup in lookups:
            self._tombstone.execute(batch, self._lookup_row(lookup))
        try:
            results = batch.results()
        except BaseException:
            # Sent: a session lock outlives a failed transaction, so end the session.
            conn.invalidate()
            raise
        inserted = results[5 : 5 + len(rows)]
        found = results[5 + len(rows) :]
        erased = {
            lookup: self._tombstone_time(rows_[0][0])
            for lookup, rows_ in zip(lookups, found, strict=True)
            if rows_
        }
        return [each[0][0] if each else None for each in inserted], erased

    @staticmethod
    def _subjects(row: dict[str, Any]) -> list[tuple[str, str]]:
        """Return the (kind, blind index) of each customer and card a sealed row names."""
        found = []
        for column, kind in _SUBJECT_COLUMNS:
            bidx = row.get(column)
            if bidx is not None:
                found.append((kind, bidx))
        return found

    @staticmethod
    def _tombstone_lookups(batch: list[_Delivery]) -> list[tuple[str, str, str, str]]:
        """Return the (provider, account, kind, bidx) tombstones the batch's records may meet."""
        return sorted(
            {
                (d.event["provider"], d.event["account"], kind, bidx)
                for d in batch
                for kind, bidx in d.subjects
            }
        )

    @staticmethod
    def _lookup_row(lookup: tuple[str, str, str, str]) -> dict[str, str]:
        provider, account, kind, bidx = lookup
        return {"provider": provider, "account": account, "kind": kind, "bidx": bidx}

    def _run_lookups(
        self, cursor: Any, lookups: list[tuple[str, str, str, str]]
    ) -> dict[tuple[str, str, str, str], datetime]:
        """Read the tombstones among lookups, each by its primary key (SQLite)."""
        erased: dict[tuple[str, str, str, str], datetime] = {}
        for lookup in lookups:
            found = self._tombstone.execute(cursor, self._lookup_row(lookup)).fetchone()
            if found is not None:
                erased[lookup] = self._tombstone_time(found[0])
        return erased

    def _tombstone_time(self, stored: Any) -> datetime:
        """Return a tombstone's erased_at as the driver gave it, as an aware UTC datetime."""
        when = self._erased_at(stored) if self._erased_at is not None else stored
        assert isinstance(when, datetime)  # noqa: S101 - erased_at is NOT NULL
        return when

    def _replays(
        self, cursor: Any, batch: list[_Delivery], seqs: list[int | None]
    ) -> dict[_Delivery, Exception]:
        """Return the redeliveries whose transmission id was stored with a different body."""
        refused: dict[_Delivery, Exception] = {}
        for delivery, inserted in zip(batch, seqs, strict=True):
            row = delivery.event
            if inserted is not None or row["transmission_digest"] is None:
                continue
            found = self._transmission.execute(cursor, row).fetchone()
            if found is not None and found[0] != row["body_digest"]:
                refused[delivery] = ReplayRefused(
                    "these signed headers were already delivered with a different body"
                )
        return refused

    def _unlink_erased(
        self, delivery: _Delivery, erased: dict[tuple[str, str, str, str], datetime]
    ) -> None:
        """Drop what a delivery would link to a customer or card erased after it occurred.

        A payment method or subscription of an erased customer (or an erased card) is not
        stored; a transaction keeps its billing core, without customer or card. An event
        that occurred after the erasure is a new relationship and is stored as it is; one
        whose body gives no time (EventMeta.time_unknown) counts as before every erasure.
        """
        if not erased or not delivery.subjects:
            return
        provider, account = delivery.event["provider"], delivery.event["account"]
        meta = delivery.meta
        hits = set()
        for kind, bidx in delivery.subjects:
            when = erased.get((provider, account, kind, bidx))
            if when is not None and (meta.time_unknown or meta.occurred_at <= when):
                hits.add((kind, bidx))
        if not hits:
            return
        kept: list[Record] = []
        for record, (_, row) in zip(delivery.records, delivery.upserts, strict=True):
            named = set(self._subjects(row)) & hits
            if not named:
                kept.append(record)
            elif record.type == "transaction":
                drop = {"customer", "payment_method"}
                if ("customer", row.get("customer_bidx")) not in named:
                    drop = {"payment_method"}
                kept.append(
                    Record(
                        type=record.type,
                        values={k: v for k, v in record.values.items() if k not in drop},
                        fill_only=record.fill_only - drop,
                    )
                )
        now = delivery.event["received_at"]
        delivery.records = kept
        delivery.upserts = [
            self._upserts.upsert(provider, account, delivery.meta, record, now) for record in kept
        ]
        delivery.touched = sorted({(record.type, record.key) for record in kept})
        delivery.subjects = sorted({s for _, row in delivery.upserts for s in self._subjects(row)})
        log.info(
            "an erased subject was not linked again",
            extra={"provider": provider, "account": account, "event_id": delivery.meta.id},
        )

    def _failure(self, exc: Exception) -> Exception:
        """Return what the delivery's request raises: 503 for storage errors."""
        if isinstance(exc, StorageUnavailable) or not isinstance(exc, self._storage_errors):
            return exc
        log.warning("storage unavailable: %s", type(exc).__name__)
        metrics.storage_error(exc)
        failure = StorageUnavailable("storage is unavailable; retry later")
        failure.__cause__ = exc
        return failure

    def _event_values(self, columns: tuple[str, ...]) -> dict[str, Any]:
        """Return an event insert's values: bound from the row, or claimed (PostgreSQL)."""
        values: dict[str, Any] = {
            name: bindparam(name, type_=events.c[name].type) for name in columns if name != "slot"
        }
        if "slot" in columns:
            # The row's place in its batch picks its claimed seq (_insert_events_in_seq_order).
            claimed = func.current_setting(literal_column("'paysieve.event_seqs'"))
            place = bindparam("slot", type_=Integer)
            values["seq"] = cast(func.split_part(claimed, literal_column("','"), place), BigInteger)
            values["txid"] = literal_column(_CURRENT_TXID)
        return values

    def _event_insert(self, columns: tuple[str, ...]) -> Prepared:
        """Return the event insert that does nothing on a redelivery, built once."""
        return self._prepared.get(
            ("event", columns),
            lambda: (
                self._insert(events)
                .values(self._event_values(columns))
                # No conflict target: a stored event id, body digest or transmission id
                # all make this delivery a redelivery (Store._replays tells them apart).
                .on_conflict_do_nothing()
                .returning(events.c.seq)
            ),
        )

    def _event_object(self, seq: int, record_type: str, key: str) -> dict[str, Any]:
        """Return a change-feed row; a payment method's token is sealed like its record's."""
        if record_type != "payment_method":
            return {
                "event_seq": seq,
                "record_type": record_type,
                "object_id": key,
                "object_bidx": None,
            }
        return {
            "event_seq": seq,
            "record_type": record_type,
            "object_id": self.cipher.seal(key, Cipher.object_aad(seq, record_type)),
            "object_bidx": self.cipher.bidx("token", key),
        }

    def ready(self) -> bool:
        """Return whether storage answers a query now."""
        try:
            with self.engine.connect() as conn:
                conn.execute(select(literal(1)))
                conn.execute(text("SELECT count(*) FROM events WHERE 1 = 0"))
            return True
        except storage_errors():
            return False
