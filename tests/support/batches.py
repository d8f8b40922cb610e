"""Deliveries the store prepares for a batch, taken before they are written."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.core.records import EventMeta, Record
from gateway.storage.store import Store

T0 = datetime(2026, 3, 2, 14, 0, 0, tzinfo=UTC)


def prepared_batch(store: Store, *ids: tuple[str, str]) -> list:
    """Return the deliveries apply() prepares for (event id, charge id) pairs, unwritten."""
    queued: list = []
    store._committer.submit = queued.append
    for event_id, charge_id in ids:
        store.apply(
            provider="stripe",
            account="default",
            meta=EventMeta(id=event_id, type="charge.succeeded", occurred_at=T0),
            records=[
                Record("transaction", {"id": charge_id, "kind": "payment", "status": "succeeded"})
            ],
            outcome="stored",
            dropped_fields=0,
        )
    del store._committer.submit
    return queued
