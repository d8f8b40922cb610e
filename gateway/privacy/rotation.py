"""Key rotation: re-seal every stored value under the first data key; resumable."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from sqlalchemy import Table, and_, func, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

from gateway.audit import audit_log
from gateway.core.crypto import (
    IDENTITY_COLUMN,
    PREFIX,
    SEALED,
    Cipher,
    UndecryptableValue,
    aad,
    bidx_column,
    kid_of,
)
from gateway.privacy.batching import (
    Progress,
    ShouldStop,
    count_rows,
    ignore_progress,
    never_stop,
    table_named,
    write_privacy_log,
)
from gateway.storage.store import Store
from gateway.storage.tables import event_objects, subscribers

# A subscriber's sealed signing secrets, each bound to (subscribers, column, name) as
# gateway.outbound.subscribers seals them.
SUBSCRIBER_SECRETS: Final = ("secret", "previous_secret")


def _stale(table: Table, columns: Sequence[str], prefix: str) -> ColumnElement[bool]:
    """Return the condition: some sealed column is not sealed under the current key."""
    head = len(prefix)
    return or_(
        *[
            and_(table.c[c].is_not(None), func.substr(table.c[c], 1, head) != prefix)
            for c in columns
        ]
    )


def _current_prefix(cipher: Cipher) -> str:
    return f"{PREFIX}{cipher.current_kid}."


def rotation_counts(store: Store) -> dict[str, int]:
    """Return how many rows of each table hold a value not sealed under the current key."""
    prefix = _current_prefix(store.cipher)
    counts = {
        name: count_rows(store, table_named(name), _stale(table_named(name), list(cols), prefix))
        for name, cols in SEALED.items()
    }
    counts["event_objects"] = count_rows(store, event_objects, _stale_objects(prefix))
    counts["subscribers"] = count_rows(
        store, subscribers, _stale(subscribers, list(SUBSCRIBER_SECRETS), prefix)
    )
    return counts


def _stale_objects(prefix: str) -> ColumnElement[bool]:
    return and_(
        event_objects.c.record_type == "payment_method",
        func.substr(event_objects.c.object_id, 1, len(prefix)) != prefix,
    )


def _reseal(cipher: Cipher, name: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """Return a row's sealed columns and blind indexes, sealed under the current key."""
    identity_column = IDENTITY_COLUMN[name]
    identity = (str(row["provider"]), str(row["account"]), str(row[identity_column]))
    plain: dict[str, Any] = {"provider": row["provider"], "account": row["account"]}
    if identity_column not in (bidx_column(c) for c in SEALED[name]):
        plain[identity_column] = row[identity_column]
    for column in SEALED[name]:
        value = row[column]
        if value is not None and kid_of(value) is not None:
            value = cipher.open(value, aad(name, column, *identity))
        # Otherwise the value was stored in clear, before encryption at rest: seal it now.
        plain[column] = value
    sealed = cipher.seal_row(name, plain)
    return {k: sealed[k] for k in (*SEALED[name], *(bidx_column(c) for c in SEALED[name]))}


def rotate_keys(
    store: Store,
    *,
    batch_size: int = 1000,
    progress: Progress = ignore_progress,
    should_stop: ShouldStop = never_stop,
) -> dict[str, int]:
    """Re-seal every value under the current data key in keyset batches; record the run."""
    prefix = _current_prefix(store.cipher)
    counts: dict[str, int] = {}
    stopped = False
    for name, columns in SEALED.items():
        table = table_named(name)
        cols = [*columns, *(bidx_column(c) for c in columns)]
        wanted = [table.c.pk, table.c.provider, table.c.account, *(table.c[c] for c in cols)]
        if IDENTITY_COLUMN[name] not in cols:
            wanted.append(table.c[IDENTITY_COLUMN[name]])
        last = 0
        counts[name] = 0
        while not stopped:
            if should_stop():
                stopped = True
                break
            with store.writing() as conn:
                rows = (
                    conn.execute(
                        select(*wanted)
                        .where(_stale(table, list(columns), prefix), table.c.pk > last)
                        .order_by(table.c.pk)
                        .limit(batch_size)
                    )
                    .mappings()
                    .all()
                )
                if not rows:
                    break
                for row in rows:
                    new = _reseal(store.cipher, name, dict(row))
                    # Only if no webhook changed the row meanwhile (it seals under the
                    # current key itself); a skipped row is found again by a rerun.
                    unchanged = [table.c[c].is_not_distinct_from(row[c]) for c in columns]
                    conn.execute(
                        update(table).where(table.c.pk == row["pk"], *unchanged).values(**new)
                    )
                last = int(rows[-1]["pk"])
            counts[name] += len(rows)
            progress(len(rows))
    if not stopped:
        counts["event_objects"], stopped = _rotate_objects(
            store, prefix, batch_size=batch_size, progress=progress, should_stop=should_stop
        )
    if not stopped:
        counts["subscribers"] = _rotate_subscribers(store, prefix)
        progress(counts["subscribers"])
    outcome = "interrupted" if stopped else "ok"
    with store.writing() as conn:
        audit_log.append(
            conn,
            actor=audit_log.ACTOR_CLI,
            action="rotate_keys",
            route="cli",
            outcome=outcome,
            count=sum(counts.values()),
        )
        write_privacy_log(
            conn,
            actor=audit_log.ACTOR_CLI,
            action="rotate_keys",
            transactions=counts.get("transactions", 0),
            payment_methods=counts.get("payment_methods", 0),
            subscriptions=counts.get("subscriptions", 0),
            events=counts.get("event_objects", 0),
            audit_entries=0,
            outcome=outcome,
        )
    counts["interrupted"] = int(stopped)
    return counts


def _rotate_objects(
    store: Store, prefix: str, *, batch_size: int, progress: Progress, should_stop: ShouldStop
) -> tuple[int, bool]:
    """Re-seal change-feed token ids; return the count and whether it was stopped."""
    cipher = store.cipher
    eo = event_objects
    last = 0
    done = 0
    while True:
        if should_stop():
            return done, True
        with store.writing() as conn:
            seqs = (
                conn.execute(
                    select(eo.c.event_seq)
                    .where(_stale_objects(prefix), eo.c.event_seq > last)
                    .group_by(eo.c.event_seq)
                    .order_by(eo.c.event_seq)
                    .limit(batch_size)
                )
                .scalars()
                .all()
            )
            if not seqs:
                return done, False
            rows = conn.execute(
                select(eo).where(_stale_objects(prefix), eo.c.event_seq.in_(seqs))
            ).mappings()
            count = 0
            for row in rows.all():
                associated = Cipher.object_aad(int(row["event_seq"]), row["record_type"])
                old = row["object_id"]
                token = old if kid_of(old) is None else cipher.open(old, associated)
                conn.execute(
                    update(eo)
                    .where(
                        eo.c.event_seq == row["event_seq"],
                        eo.c.record_type == row["record_type"],
                        eo.c.object_id == old,
                    )
                    .values(
                        object_id=cipher.seal(token, associated),
                        object_bidx=cipher.bidx("token", token),
                    )
                )
                count += 1
            last = int(seqs[-1])
        done += count
        progress(count)


def _rotate_subscribers(store: Store, prefix: str) -> int:
    """Re-seal subscribers' signing secrets (current and previous); return how many rows."""
    cipher = store.cipher
    columns = list(SUBSCRIBER_SECRETS)
    done = 0
    # Subscribers are a handful of rows: one transaction re-seals them all.
    with store.writing() as conn:
        rows = conn.execute(
            select(subscribers.c.id, subscribers.c.name, *(subscribers.c[c] for c in columns))
            .where(_stale(subscribers, columns, prefix))
            .order_by(subscribers.c.id)
        ).mappings()
        for row in rows.all():
            new: dict[str, Any] = {}
            for column in columns:
                value = row[column]
                if value is None:
                    continue
                associated = aad("subscribers", column, row["name"])
                new[column] = cipher.seal(cipher.open(value, associated), associated)
            # Only if no rotate-secret changed the row meanwhile; a rerun finds it again.
            unchanged = [subscribers.c[c].is_not_distinct_from(row[c]) for c in columns]
            conn.execute(
                update(subscribers).where(subscribers.c.id == row["id"], *unchanged).values(**new)
            )
            done += 1
    return done


def open_object_id(cipher: Cipher, event_seq: int, record_type: str, object_id: str) -> str:
    """Return a change-feed object id as served: a payment method's token opened."""
    if record_type != "payment_method":
        return object_id
    opened = cipher.open(object_id, Cipher.object_aad(event_seq, record_type))
    if opened is None:  # pragma: no cover - object ids are never NULL
        raise UndecryptableValue("empty object id")
    return opened
