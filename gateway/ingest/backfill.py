"""Backfill: read what a provider sent (or holds) in a window and store it as webhooks would.

Every event read goes through Pipeline.admit, the pipeline's entry below signature
verification (the provider's API over TLS, with the endpoint's own credentials, stands in
for the signature): the same sanitiser, guard and store, so duplicates (by event id and
body digest) and out-of-order events are handled as for any delivery. After each page
the endpoint's checkpoint (gateway.storage.checkpoints) is saved, so an interrupted run
of the same window resumes after the last page it finished.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import orjson
from sqlalchemy import or_, select

from adapters.api import Item, Page, Source
from adapters.base import Adapter
from adapters.paypal.api import PayPalEvents
from adapters.razorpay.api import RazorpayObjects
from adapters.stripe.api import StripeEvents
from gateway.config.settings import EndpointConfig, Settings
from gateway.core.errors import BadRequest, CardDataRefused, ConfigurationError
from gateway.ingest.pipeline import Pipeline
from gateway.storage import checkpoints
from gateway.storage.checkpoints import Checkpoint
from gateway.storage.tables import events

log = logging.getLogger(__name__)

# Outcomes counted per object: the store's words, and the dry run's.
OUTCOMES = ("stored", "duplicate", "ignored", "would_store", "refused", "skipped")
# Events of a page handled at once: as many as one gateway worker's threads.
WORKERS = 4
# How far an event's own time may lie outside the window asked for (clock skew between the
# provider's filter and its timestamps); beyond it the event is refused, never stored: one
# dated in the future would otherwise win over later webhooks and over erasures.
WINDOW_SLACK = timedelta(minutes=5)


def endpoint_for(settings: Settings, provider: str, name: str) -> EndpointConfig:
    """Return the configured endpoint, or refuse naming what to set."""
    endpoint = settings.endpoint(provider, name)
    if endpoint is not None:
        return endpoint
    names = sorted(e.name for e in settings.endpoints if e.provider == provider)
    if name != "default" and names:
        # A name no endpoint has is not repeated (it could be anything typed there).
        raise ConfigurationError(
            f"--endpoint: {provider} has no such endpoint; choose from {', '.join(names)}"
        )
    named = f" named {name!r}" if name == "default" else ""
    raise ConfigurationError(
        f"no {provider} endpoint{named} is configured; configure its API"
        " credentials (see docs/backfill.md) or pass --endpoint"
    )


def source_for(settings: Settings, endpoint: EndpointConfig, adapter: Adapter) -> Source:
    """Return the endpoint's provider listing, built from its API settings."""
    if endpoint.provider == "stripe":
        return StripeEvents.for_endpoint(settings, endpoint)
    if endpoint.provider == "razorpay":
        return RazorpayObjects.for_endpoint(settings, endpoint, adapter.sanitise)
    if endpoint.provider == "paypal":
        return PayPalEvents.for_endpoint(settings, endpoint)
    raise ConfigurationError(f"{endpoint.provider} has no API to backfill from")


def body_digest(item: Item) -> str:
    """Return the digest an event read back is deduplicated by, as a body's would be."""
    return hashlib.sha256(orjson.dumps(item.event)).hexdigest()


@dataclass(slots=True)
class Report:
    """What one backfill run read and did."""

    provider: str
    account: str
    since: datetime
    until: datetime
    dry_run: bool
    resumed: bool = False
    interrupted: bool = False
    finished: bool = False
    pages: int = 0
    # Objects read before this run, by the run it resumes.
    earlier: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))

    @property
    def objects(self) -> int:
        """Return the objects read by this run."""
        return sum(self.counts.values())


class Backfill:
    """One endpoint's backfill over one window; iterate it to run it page by page."""

    def __init__(
        self,
        pipeline: Pipeline,
        adapter: Adapter,
        endpoint: EndpointConfig,
        source: Source,
        *,
        since: datetime,
        until: datetime | None,
        dry_run: bool = False,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.pipeline = pipeline
        self.store = pipeline.store
        self.adapter = adapter
        self.endpoint = endpoint
        self.source = source
        self.should_stop = should_stop
        saved = checkpoints.load(self.store, adapter.name, endpoint.name)
        # A rerun without --until resumes the window the checkpoint was saved for.
        if until is None:
            until = saved.until if saved is not None and saved.since == since else _now()
        if until <= since:
            raise BadRequest("--until must be later than --since")
        self.report = Report(adapter.name, endpoint.name, since, until, dry_run)
        self.start = None
        if saved is not None and (saved.since, saved.until) == (since, until):
            self.start = saved.cursor
            self.report.resumed = True
            self.report.earlier = saved.objects

    def pages(self) -> Iterator[Page]:
        """Run the backfill, yielding each page once its events are handled."""
        report = self.report
        # A page's events go through the pipeline as concurrent deliveries would (gunicorn
        # runs it on WORKERS threads): the group commit then writes several in one
        # transaction. Their order within a page does not matter; the store orders records.
        with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="backfill") as pool:
            for page in self.source.pages(report.since, report.until, self.start):
                report.counts["refused"] += page.refused
                report.counts["skipped"] += page.skipped
                for outcome in pool.map(self._one, page.items):
                    report.counts[outcome] += 1
                report.pages += 1
                if not report.dry_run:
                    self._save(page)
                yield page
                if page.next is None:
                    report.finished = True
                    return
                if self.should_stop():
                    report.interrupted = True
                    return
        report.finished = True

    def run(self) -> Report:
        """Run the backfill to its end (or until should_stop); return the report."""
        for _ in self.pages():
            pass
        return self.report

    def _outside_window(self, item: Item) -> bool:
        """Return whether a listed event says it happened outside the window (or later than now)."""
        if item.snapshot:
            return False
        occurred = self.adapter.meta(item.event, item.headers).occurred_at
        latest = min(self.report.until, _now()) + WINDOW_SLACK
        return not self.report.since - WINDOW_SLACK <= occurred <= latest

    def _one(self, item: Item) -> str:
        """Handle one event read back; return its outcome."""
        try:
            if self._outside_window(item):
                raise BadRequest(
                    "the event's own time is outside the window", code="outside_window"
                )
            if self.report.dry_run:
                return self._dry(item)
            return self.pipeline.admit(
                self.adapter,
                self.endpoint,
                item.event,
                item.headers,
                body_digest=body_digest(item),
                snapshot=item.snapshot,
            ).status
        except BadRequest as exc:
            # A malformed object or one holding card data where an id belongs: counted, and
            # logged by its kind only (the message could say which field; never its value).
            log.warning(
                "backfill refused an object",
                extra={
                    "provider": self.adapter.name,
                    "account": self.endpoint.name,
                    "reason": exc.code,
                },
            )
            return "refused"

    def _dry(self, item: Item) -> str:
        """Return what storing the event would come to, storing nothing."""
        minimised = self.pipeline.minimise(
            self.adapter, item.event, item.headers, snapshot=item.snapshot
        )
        query = select(events.c.seq).where(
            events.c.provider == self.adapter.name,
            events.c.account == self.endpoint.name,
            or_(events.c.id == minimised.meta.id, events.c.body_digest == body_digest(item)),
        )
        with self.store.engine.connect() as conn:
            seen = conn.execute(query.limit(1)).first() is not None
        if seen:
            return "duplicate"
        return "would_store" if minimised.handled else "ignored"

    def _save(self, page: Page) -> None:
        """Save where the next page starts, or forget the checkpoint when done."""
        report = self.report
        provider, account = self.adapter.name, self.endpoint.name
        if page.next is None:
            checkpoints.clear(self.store, provider, account)
            return
        checkpoint = Checkpoint(
            report.since, report.until, page.next, report.earlier + report.objects
        )
        try:
            checkpoints.save(self.store, provider, account, checkpoint)
        except CardDataRefused:
            # A provider cursor the storage boundary refuses: the last one saved stays, and a
            # rerun repeats the pages after it (storing nothing twice).
            log.warning(
                "backfill checkpoint not saved: the cursor looks like card data",
                extra={"provider": provider, "account": account},
            )


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)
