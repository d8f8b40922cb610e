"""The sender: claims due outbox rows, rebuilds each body, signs it, POSTs it, records it.

Bodies are never stored: each attempt reads the change-feed entry and the record as they
are now and serves them through the API's own serializer (gateway.api.records), so a
delivered body holds exactly what ``/v1/events`` and the record routes would serve.

Claiming: rows are leased (``lease_until``) in a short transaction, sent outside it, and
their outcome written only if the lease is still this sender's. On PostgreSQL the claim
takes rows ``FOR UPDATE SKIP LOCKED``, so several senders share the queue and never
claim one row together; on SQLite the claim is a write, and SQLite has one writer.
Per endpoint, one record's deliveries go in change-feed order: a row is claimable only
when no earlier row of the same subscriber and record is still pending or failed.
"""

from __future__ import annotations

import email.utils
import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import requests
from sqlalchemy import Connection, and_, or_, select, update
from standardwebhooks import Webhook

from gateway.api.answers import withhold_card_data
from gateway.api.records import collection_of, select_record, serve_events, serve_row
from gateway.audit import audit_log
from gateway.config.settings import Settings, allowed_networks, retry_schedule
from gateway.core.crypto import Cipher
from gateway.observability import metrics
from gateway.outbound import queue
from gateway.outbound import subscribers as subscriber_rows
from gateway.outbound.addresses import AddressRefused, Answer, Resolver, post, system_resolver
from gateway.storage.store import Store
from gateway.storage.tables import events, outbound_deliveries, subscribers

log = logging.getLogger(__name__)

# Longer than an attempt can take (15 s), so a lease only lapses when its sender died.
LEASE: Final = timedelta(seconds=60)
# A Retry-After longer than this is not waited for in full.
RETRY_AFTER_CAP: Final = timedelta(hours=1)
# An endpoint failing this long, without one success, is disabled.
FAILING_LIMIT: Final = timedelta(days=5)
# A body larger than this is not sent (the change feed entry and one record are far smaller).
MAX_BODY_BYTES: Final = 256 * 1024
OPEN: Final = ("pending", "failed")
# How often the loop counts the queue for its gauge.
DEPTH_SECONDS: Final = 5.0


@dataclass(frozen=True)
class Claim:
    """One leased delivery."""

    id: int
    subscriber_id: int
    event_seq: int
    record_type: str
    object_id: str
    attempts: int
    lease_until: datetime
    # When the change committed (the delivery row was written with it).
    created_at: datetime


def message_id(delivery_id: int) -> str:
    """Return the webhook-id of a delivery: the same at every attempt and replay."""
    return f"msg_{delivery_id}"


def _retry_after(value: str | None, now: datetime) -> timedelta | None:
    """Return a Retry-After (seconds or an HTTP date) as a wait, capped; None if absent."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        wait = timedelta(seconds=int(value))
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        wait = when - now
    return max(timedelta(0), min(wait, RETRY_AFTER_CAP))


class Dispatcher:
    """Deliver the outbox: embedded in a gateway process or run by `paysieve deliver`."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        resolver: Resolver = system_resolver,
        batch: int = 16,
    ) -> None:
        self.store = store
        self.cipher: Cipher = store.cipher
        self.schedule = retry_schedule(settings)
        self.networks = allowed_networks(settings)
        self.ca_bundle = settings.outbound_ca_bundle
        self.resolver = resolver
        self.batch = batch
        self._pg = store.dialect == "postgresql"

    # ------------------------------------------------------------ the loop

    def run(self, stop: threading.Event, *, idle_seconds: float = 1.0) -> None:
        """Deliver until stop is set; an attempt under way is finished first."""
        counted_at = float("-inf")
        while not stop.is_set():
            try:
                done = self.run_once(stop)
                if time.monotonic() - counted_at >= DEPTH_SECONDS:
                    self.count_queue()
                    counted_at = time.monotonic()
            except Exception:  # the loop outlives a storage outage; the next pass retries
                log.exception("the outbound sender failed a pass; retrying")
                done = 0
            if done == 0 and not stop.is_set():
                # Woken at once by a commit of this process (the embedded sender); a
                # separate process polls.
                self.store.outbox.wait_queued(idle_seconds)

    def count_queue(self) -> dict[str, int]:
        """Count the deliveries waiting, by state, into the queue-depth gauge."""
        with self.store.engine.connect() as conn:
            counts = queue.depth(conn)
        for state, n in counts.items():
            metrics.OUTBOUND_QUEUE.labels(state).set(n)
        return counts

    def start(self, stop: threading.Event) -> threading.Thread:
        """Start the loop on a daemon thread (the embedded sender)."""
        thread = threading.Thread(target=self.run, args=(stop,), name="outbound", daemon=True)
        thread.start()
        return thread

    def run_once(self, stop: threading.Event | None = None) -> int:
        """Claim what is due and attempt each; return how many were attempted."""
        claims = self.claim()
        attempted = 0
        for claim in claims:
            if stop is not None and stop.is_set():
                self._release(claims[attempted:])
                break
            self.attempt(claim)
            attempted += 1
        return attempted

    # ------------------------------------------------------------ claiming

    def claim(self, now: datetime | None = None) -> list[Claim]:
        """Lease the due deliveries that no earlier delivery of their record holds back."""
        now = now or datetime.now(UTC)
        d = outbound_deliveries
        earlier = d.alias("earlier")
        held_back = (
            select(earlier.c.id)
            .where(
                earlier.c.subscriber_id == d.c.subscriber_id,
                earlier.c.record_ref == d.c.record_ref,
                earlier.c.event_seq < d.c.event_seq,
                earlier.c.state.in_(OPEN),
            )
            .exists()
        )
        query = (
            select(
                d.c.id,
                d.c.subscriber_id,
                d.c.event_seq,
                d.c.record_type,
                d.c.object_id,
                d.c.attempts,
                d.c.created_at,
            )
            .join(subscribers, subscribers.c.id == d.c.subscriber_id)
            .where(
                subscribers.c.enabled.is_(True),
                d.c.state.in_(OPEN),
                d.c.next_attempt_at <= now,
                or_(d.c.lease_until.is_(None), d.c.lease_until < now),
                ~held_back,
            )
            .order_by(d.c.next_attempt_at, d.c.id)
            .limit(self.batch)
        )
        if self._pg:
            query = query.with_for_update(of=d, skip_locked=True)
        lease = now + LEASE
        with self.store.writing() as conn:
            rows = conn.execute(query).all()
            if rows:
                conn.execute(
                    update(d).where(d.c.id.in_([r.id for r in rows])).values(lease_until=lease)
                )
        return [
            Claim(
                int(r.id),
                int(r.subscriber_id),
                int(r.event_seq),
                r.record_type,
                r.object_id,
                int(r.attempts),
                lease,
                r.created_at,
            )
            for r in rows
        ]

    def _release(self, claims: list[Claim]) -> None:
        """Give back leases not used (a stop before their attempt)."""
        d = outbound_deliveries
        with self.store.writing() as conn:
            for claim in claims:
                conn.execute(
                    update(d)
                    .where(d.c.id == claim.id, d.c.lease_until == claim.lease_until)
                    .values(lease_until=None)
                )

    # ------------------------------------------------------------ one attempt

    def body(self, conn: Connection, claim: Claim) -> bytes | None:
        """Return the delivery's body as the API would serve it now; None if it is gone."""
        event = conn.execute(select(events).where(events.c.seq == claim.event_seq)).first()
        if event is None:
            return None
        entry = serve_events(conn, self.cipher, [dict(event._mapping)])[0]
        ident: str | None = claim.object_id
        if claim.record_type == "payment_method":
            ident = self.cipher.open(ident, Cipher.object_aad(claim.event_seq, claim.record_type))
        if ident is None:
            return None
        collection = collection_of(claim.record_type)
        query = select_record(self.cipher, collection, event.provider, event.account, ident)
        row = conn.execute(query.limit(1)).first()
        if row is None:
            return None
        record = serve_row(self.cipher, collection, dict(row._mapping))
        payload = {"event": entry, "record_type": claim.record_type, "record": record}
        # What the read API would withhold, an outbound webhook never sends either.
        withhold_card_data(payload, "outbound")
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()

    def attempt(self, claim: Claim) -> str:
        """Send one leased delivery and record the outcome; return it."""
        now = datetime.now(UTC)
        with self.store.engine.connect() as conn:
            sub = conn.execute(
                select(subscribers).where(subscribers.c.id == claim.subscriber_id)
            ).first()
            body = self.body(conn, claim) if sub is not None else None
        if sub is None or body is None:
            # The record was erased or purged since: there is nothing left to send.
            return self._record(claim, now, "dead", error="gone")
        if len(body) > MAX_BODY_BYTES:
            return self._record(claim, now, "dead", error="too_large")
        msg_id = message_id(claim.id)
        signatures = " ".join(
            Webhook(secret).sign(msg_id, now, body)
            for secret in subscriber_rows.signing_secrets(self.cipher, sub, now)
        )
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "paysieve-outbound",
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signatures,
        }
        try:
            answer = post(
                sub.url,
                body,
                headers,
                networks=self.networks,
                resolver=self.resolver,
                ca_bundle=self.ca_bundle,
            )
        except AddressRefused:
            log.warning("an outbound endpoint's address is not allowed", extra={"sub": sub.name})
            return self._failed(claim, sub, now, error="address")
        except requests.Timeout:
            return self._failed(claim, sub, now, error="timeout")
        except requests.RequestException as exc:
            log.info("an outbound attempt failed: %s", type(exc).__name__)
            return self._failed(claim, sub, now, error="connect")
        metrics.OUTBOUND_SECONDS.observe(answer.duration_ms / 1000)
        if 200 <= answer.status < 300:
            return self._record(claim, now, "delivered", answer=answer, subscriber=sub)
        if answer.status == 410:
            self._disable(sub, "gone")
        wait = None
        if answer.status in (429, 503):
            wait = _retry_after(answer.retry_after, now)
        error = "redirect" if 300 <= answer.status < 400 else "http"
        return self._failed(claim, sub, now, error=error, answer=answer, wait=wait)

    def _failed(
        self,
        claim: Claim,
        sub: Any,
        now: datetime,
        *,
        error: str,
        answer: Answer | None = None,
        wait: timedelta | None = None,
    ) -> str:
        attempts = claim.attempts + 1
        if attempts >= len(self.schedule):
            state, next_at = "dead", now
        else:
            state = "failed"
            next_at = now + (
                wait if wait is not None else timedelta(seconds=self.schedule[attempts])
            )
        outcome = self._record(
            claim, now, state, error=error, answer=answer, next_at=next_at, subscriber=sub
        )
        if sub.failing_since is not None and now - sub.failing_since >= FAILING_LIMIT:
            self._disable(sub, "failing")
        return outcome

    def _record(
        self,
        claim: Claim,
        now: datetime,
        state: str,
        *,
        error: str | None = None,
        answer: Answer | None = None,
        next_at: datetime | None = None,
        subscriber: Any = None,
    ) -> str:
        """Write an attempt's outcome, if the lease is still this sender's."""
        d = outbound_deliveries
        values: dict[str, Any] = {
            "state": state,
            "attempts": claim.attempts + 1,
            "lease_until": None,
            "last_attempt_at": now,
            "last_status": answer.status if answer is not None else None,
            "last_duration_ms": answer.duration_ms if answer is not None else None,
            "last_error": error,
        }
        if next_at is not None:
            values["next_attempt_at"] = next_at
        if state == "delivered":
            values["delivered_at"] = datetime.now(UTC)
            metrics.OUTBOUND_LAG.observe(
                (values["delivered_at"] - claim.created_at).total_seconds()
            )
        with self.store.writing() as conn:
            conn.execute(
                update(d)
                .where(and_(d.c.id == claim.id, d.c.lease_until == claim.lease_until))
                .values(values)
            )
            if subscriber is not None:
                failing = None if state == "delivered" else (subscriber.failing_since or now)
                if failing != subscriber.failing_since:
                    conn.execute(
                        update(subscribers)
                        .where(subscribers.c.id == subscriber.id)
                        .values(failing_since=failing)
                    )
        metrics.OUTBOUND_ATTEMPTS.labels(state if error != "address" else "refused").inc()
        return state

    def _disable(self, sub: Any, reason: str) -> None:
        """Disable a subscriber the sender gave up on: logged, counted, audited."""
        with self.store.writing() as conn:
            changed = conn.execute(
                update(subscribers)
                .where(subscribers.c.id == sub.id, subscribers.c.enabled.is_(True))
                .values(enabled=False, disabled_reason=reason)
            ).rowcount
            if changed:
                audit_log.append(
                    conn,
                    actor=audit_log.ACTOR_OUTBOUND,
                    action="subscribers.disable",
                    route="cli",
                    outcome=reason,
                    count=1,
                )
        if changed:
            self.store.outbox.invalidate()
            metrics.OUTBOUND_DISABLED.labels(reason).inc()
            log.warning(
                "an outbound subscriber was disabled",
                extra={"subscriber": sub.name, "reason": reason},
            )
