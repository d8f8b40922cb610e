"""Reconcile: compare what a provider holds with the stored records, writing nothing.

The provider's events or objects in a window are minimised exactly as backfill would
(Pipeline.minimise), and each record they make is compared, field by allowlisted field,
with the stored record of the same identity. Only the records' own (allowlisted) fields
are compared and reported; a sealed field (a customer or card reference) is reported as
differing without its values, and a record of an erased customer or card is not
compared at all, so a report never shows what an erasure removed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from adapters.api import Source
from adapters.base import Adapter
from gateway.config.settings import EndpointConfig
from gateway.core.crypto import SEALED, bidx_column
from gateway.core.errors import BadRequest
from gateway.core.records import IDENTITY, Record
from gateway.ingest.pipeline import Pipeline
from gateway.storage.tables import RECORD_TABLES, erasures

log = logging.getLogger(__name__)

# What a report shows instead of a sealed field's values.
SEALED_VALUE = "(sealed)"


@dataclass(frozen=True, slots=True)
class FieldDifference:
    """One allowlisted field whose provider value and stored value differ."""

    name: str
    provider: Any
    stored: Any


@dataclass(frozen=True, slots=True)
class Difference:
    """A provider record missing from storage, or stored with other values."""

    record_type: str
    id: str
    kind: str  # "missing" or "differs"
    fields: tuple[FieldDifference, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """Return the difference as JSON-ready values."""
        return {
            "record_type": self.record_type,
            "id": self.id,
            "kind": self.kind,
            "fields": [
                {"name": f.name, "provider": _plain(f.provider), "stored": _plain(f.stored)}
                for f in self.fields
            ],
        }


@dataclass(slots=True)
class ReconcileReport:
    """What a reconcile read and found."""

    provider: str
    account: str
    since: datetime
    until: datetime
    objects: int = 0
    refused: int = 0
    compared: int = 0
    matching: int = 0
    erased: int = 0
    differences: list[Difference] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Return the report as JSON-ready values."""
        return {
            "provider": self.provider,
            "account": self.account,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "objects": self.objects,
            "refused": self.refused,
            "compared": self.compared,
            "matching": self.matching,
            "erased": self.erased,
            "missing": sum(1 for d in self.differences if d.kind == "missing"),
            "differing": sum(1 for d in self.differences if d.kind == "differs"),
            "differences": [d.as_dict() for d in self.differences],
        }


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


class Reconcile:
    """One endpoint's reconcile over one window; iterate pages() to run it."""

    def __init__(
        self,
        pipeline: Pipeline,
        adapter: Adapter,
        endpoint: EndpointConfig,
        source: Source,
        *,
        since: datetime,
        until: datetime,
    ) -> None:
        if until <= since:
            raise BadRequest("--until must be later than --since")
        self.pipeline = pipeline
        self.adapter = adapter
        self.endpoint = endpoint
        self.source = source
        self.report = ReconcileReport(adapter.name, endpoint.name, since, until)
        # (record type, identity) -> (when the provider's newest word on it was, the record)
        self._latest: dict[tuple[str, str], tuple[datetime, Record]] = {}

    def pages(self) -> Iterator[int]:
        """Read the window page by page (yielding objects read so far), then compare."""
        report = self.report
        for page in self.source.pages(report.since, report.until, None):
            report.refused += page.refused
            report.objects += len(page.items) + page.refused + page.skipped
            for item in page.items:
                try:
                    minimised = self.pipeline.minimise(
                        self.adapter, item.event, item.headers, snapshot=item.snapshot
                    )
                except BadRequest:
                    report.refused += 1
                    continue
                when = minimised.meta.occurred_at
                for record in minimised.records:
                    key = (record.type, record.key)
                    held = self._latest.get(key)
                    # Events are listed newest first; the newest word on a record is its state.
                    if held is None or when > held[0]:
                        self._latest[key] = (when, record)
            yield report.objects
        self._compare()

    def run(self) -> ReconcileReport:
        """Read and compare everything; return the report."""
        for _ in self.pages():
            pass
        return self.report

    def _compare(self) -> None:
        store = self.pipeline.store
        with store.engine.connect() as conn:
            for (record_type, key), (_, record) in sorted(self._latest.items()):
                self._compare_one(conn, record_type, key, record)

    def _compare_one(self, conn: Connection, record_type: str, key: str, record: Record) -> None:
        report = self.report
        cipher = self.pipeline.store.cipher
        table = RECORD_TABLES[record_type]
        sealed = SEALED[table.name]
        identity = IDENTITY[record_type]
        if self._erased(conn, record, sealed):
            report.erased += 1
            return
        report.compared += 1
        column = table.c[bidx_column(identity)] if identity in sealed else table.c[identity]
        value = cipher.bidx(sealed[identity], key) if identity in sealed else key
        query = select(table).where(
            table.c.provider == self.adapter.name,
            table.c.account == self.endpoint.name,
            column == value,
        )
        row = conn.execute(query).mappings().first()
        if row is None:
            report.differences.append(Difference(record_type, key, "missing"))
            return
        stored = cipher.open_row(table.name, dict(row))
        fields = []
        for name, provided in record.values.items():
            # A fill-only field never overwrites a stored one: a difference there is expected.
            if name == identity or name in record.fill_only:
                continue
            held = stored.get(name)
            if _same(provided, held):
                continue
            if name in sealed:
                fields.append(FieldDifference(name, SEALED_VALUE, SEALED_VALUE))
            else:
                fields.append(FieldDifference(name, provided, held))
        if fields:
            report.differences.append(Difference(record_type, key, "differs", tuple(fields)))
        else:
            report.matching += 1

    def _erased(self, conn: Connection, record: Record, sealed: Mapping[str, str]) -> bool:
        """Return whether the record names an erased customer or card (never reported)."""
        cipher = self.pipeline.store.cipher
        for name, kind in sealed.items():
            value = record.values.get(name)
            if not isinstance(value, str):
                continue
            found = conn.execute(
                select(erasures.c.erased_at).where(
                    erasures.c.provider == self.adapter.name,
                    erasures.c.account == self.endpoint.name,
                    erasures.c.kind == kind,
                    erasures.c.bidx == cipher.bidx(kind, value),
                )
            ).first()
            if found is not None:
                return True
        return False


def _same(provided: Any, stored: Any) -> bool:
    if isinstance(provided, datetime) and isinstance(stored, datetime):
        return provided == stored
    return bool(provided == stored)
