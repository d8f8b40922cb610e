"""The flow of one webhook: limit, verify, parse, sanitise, guard, store."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from adapters.base import Adapter, header
from gateway.config.settings import EndpointConfig, Settings
from gateway.core import guard
from gateway.core.errors import CardDataRefused, NotFound, UnsupportedMediaType, VerificationError
from gateway.core.records import EventMeta, Record
from gateway.observability import metrics
from gateway.storage.store import Store
from gateway.storage.trail import Trail

log = logging.getLogger("gateway.ingest.webhooks")


@dataclass(slots=True)
class Outcome:
    """What one delivery came to."""

    status: str
    event_id: str
    records: int
    dropped: int


@dataclass(slots=True)
class Minimised:
    """One event past the allowlist and the guard, not yet stored."""

    meta: EventMeta
    records: list[Record]
    hits: list[guard.GuardHit]
    dropped: int
    handled: bool


class Pipeline:
    """Turn one raw delivery into stored, minimised records."""

    def __init__(self, settings: Settings, store: Store, adapters: Mapping[str, Adapter]) -> None:
        self.settings = settings
        self.store = store
        self.adapters = dict(adapters)
        self.trail = Trail(
            {
                name: {f for schema in a.schemas().values() for f in schema.fields}
                for name, a in self.adapters.items()
            },
            vocabularies={name: a.vocabulary for name, a in self.adapters.items()},
        )

    def route(self, provider: str, endpoint_name: str) -> tuple[Adapter, EndpointConfig]:
        """Return the adapter and endpoint a delivery goes to, or raise NotFound."""
        adapter = self.adapters.get(provider)
        endpoint = self.settings.endpoint(provider, endpoint_name) if adapter else None
        if adapter is None or endpoint is None or not adapter.enabled(endpoint):
            raise NotFound("no such webhook endpoint")
        return adapter, endpoint

    @staticmethod
    def check_content_type(mimetype: str) -> None:
        """Raise UnsupportedMediaType unless the body is declared as JSON."""
        if mimetype != "application/json":
            raise UnsupportedMediaType("the body must be application/json")

    def process(
        self,
        adapter: Adapter,
        endpoint: EndpointConfig,
        raw_body: bytes,
        headers: Mapping[str, str],
    ) -> Outcome:
        """Verify, minimise and store one delivery."""
        started = time.perf_counter()
        adapter.verify(raw_body, headers, endpoint)
        transmission_digest = self._transmission_digest(adapter, headers)
        event = adapter.parse(raw_body)
        return self.admit(
            adapter,
            endpoint,
            event,
            headers,
            body_digest=hashlib.sha256(raw_body).hexdigest(),
            transmission_digest=transmission_digest,
            started=started,
        )

    def admit(
        self,
        adapter: Adapter,
        endpoint: EndpointConfig,
        event: dict[str, Any],
        headers: Mapping[str, str],
        *,
        body_digest: str,
        transmission_digest: str | None = None,
        snapshot: bool = False,
        started: float | None = None,
    ) -> Outcome:
        """Minimise and store one verified event (a delivery, or one read back by backfill).

        ``snapshot`` marks an event made from an object's current state: its time is when
        it was read, so an erasure always wins over it (EventMeta.time_unknown).
        """
        started = time.perf_counter() if started is None else started
        minimised = self.minimise(adapter, event, headers, snapshot=snapshot)
        meta, records = minimised.meta, minimised.records
        observed = self.trail.observe(adapter.name, meta.type, event, records, minimised.hits)
        status = self.store.apply(
            provider=adapter.name,
            account=endpoint.name,
            meta=meta,
            records=records,
            outcome="stored" if minimised.handled else "ignored",
            dropped_fields=minimised.dropped,
            trail=observed,
            body_digest=body_digest,
            transmission_digest=transmission_digest,
        )
        log.info(
            "delivery %s",
            status,
            extra={
                "provider": adapter.name,
                "account": endpoint.name,
                "event_id": meta.id,
                "records": len(records),
                "dropped_fields": minimised.dropped,
                "ms": round((time.perf_counter() - started) * 1000, 2),
            },
        )
        return Outcome(
            status=status, event_id=meta.id, records=len(records), dropped=minimised.dropped
        )

    def minimise(
        self,
        adapter: Adapter,
        event: dict[str, Any],
        headers: Mapping[str, str],
        *,
        snapshot: bool = False,
    ) -> Minimised:
        """Return an event's meta and its records past the allowlist and the guard."""
        meta = adapter.meta(event, headers)
        if snapshot:
            meta = replace(meta, time_unknown=True)
        # The first line for what every delivery stores besides its records; the column
        # types refuse the same values again at the storage boundary (gateway.storage.tables).
        if guard.scan_event_id(meta.id) is not None or guard.card_data_reason(meta.type):
            metrics.guard_hit(adapter.name, guard.PAN)
            raise CardDataRefused("the event's id or type looks like card data; nothing was stored")
        sanitised = adapter.sanitise(event)
        records, hits = guard.check(sanitised.records)
        hits += guard.check_paths(sanitised.dropped)
        for hit in hits:
            metrics.guard_hit(adapter.name, hit.reason)
            log.warning(
                "guard dropped a field",
                extra={"provider": adapter.name, "path": hit.path, "reason": hit.reason},
            )
        dropped = len(sanitised.dropped) + len(hits)
        return Minimised(meta, records, hits, dropped, sanitised.handled)

    @staticmethod
    def _transmission_digest(adapter: Adapter, headers: Mapping[str, str]) -> str | None:
        """Return the SHA-256 of a verified delivery's transmission id, for providers that sign one.

        Only the digest is kept: the header itself is never stored, whatever it holds.
        """
        if adapter.transmission_header is None:
            return None
        # The adapter's verify() has refused a missing or malformed header already; without
        # one here there would be no replay protection, so refuse rather than store NULL.
        value = header(headers, adapter.transmission_header)
        if value is None:
            raise VerificationError(f"missing {adapter.transmission_header} header")
        return hashlib.sha256(value.encode()).hexdigest()
