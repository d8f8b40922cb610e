"""Retention: purge what has outlived its configured retention period."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy import Table, and_, func
from sqlalchemy.sql.elements import ColumnElement

from gateway.audit import audit_log
from gateway.config.settings import Settings
from gateway.privacy.batching import (
    BATCH_SIZE,
    Progress,
    ShouldStop,
    count_rows,
    delete_batches,
    ignore_progress,
    never_stop,
    write_privacy_log,
)
from gateway.storage import tables
from gateway.storage.store import Store
from gateway.storage.tables import (
    events,
    outbound_deliveries,
    payment_methods,
    privacy_log,
    subscriptions,
    transactions,
)

# Payment methods and subscriptions in these states have ended; retention runs from then.
ENDED_PAYMENT_METHOD: Final = ("detached", "deleted", "expired")
ENDED_SUBSCRIPTION: Final = ("canceled", "expired")
# Outbound deliveries in these states are finished; pending and failed ones are still owed.
ENDED_DELIVERY: Final = ("delivered", "dead")


@dataclass(frozen=True)
class Retention:
    """One record class's retention rule: its table and the condition of being expired."""

    name: str
    table: Table
    condition: ColumnElement[bool]
    days: int


def retention_rules(settings: Settings, now: datetime) -> list[Retention]:
    """Return the retention rules in force at a moment, from the settings."""

    def cutoff(days: int) -> datetime:
        return now - timedelta(days=days)

    # Records age from their last change: a refund or a status change restarts the clock.
    # Erasure tombstones have no rule: a late event can arrive at any age, and they hold
    # blind indexes and times only.
    pm_days = settings.retention_payment_methods_days
    sub_days = settings.retention_subscriptions_days
    audit_days = settings.retention_audit_days
    outbound_days = settings.retention_outbound_days
    delivery_ended = func.coalesce(
        outbound_deliveries.c.delivered_at,
        outbound_deliveries.c.last_attempt_at,
        outbound_deliveries.c.created_at,
    )
    return [
        Retention(
            "events",
            events,
            events.c.received_at < cutoff(settings.retention_events_days),
            settings.retention_events_days,
        ),
        Retention(
            "transactions",
            transactions,
            transactions.c.updated_at < cutoff(settings.retention_transactions_days),
            settings.retention_transactions_days,
        ),
        Retention(
            "payment_methods",
            payment_methods,
            and_(
                payment_methods.c.status.in_(ENDED_PAYMENT_METHOD),
                payment_methods.c.updated_at < cutoff(pm_days),
            ),
            pm_days,
        ),
        Retention(
            "subscriptions",
            subscriptions,
            and_(
                subscriptions.c.status.in_(ENDED_SUBSCRIPTION),
                subscriptions.c.updated_at < cutoff(sub_days),
            ),
            sub_days,
        ),
        Retention(
            "audit_log", tables.audit_log, tables.audit_log.c.at < cutoff(audit_days), audit_days
        ),
        Retention("privacy_log", privacy_log, privacy_log.c.at < cutoff(audit_days), audit_days),
        Retention(
            "outbound_deliveries",
            outbound_deliveries,
            and_(
                outbound_deliveries.c.state.in_(ENDED_DELIVERY),
                delivery_ended < cutoff(outbound_days),
            ),
            outbound_days,
        ),
    ]


@dataclass
class PurgeResult:
    """What one purge run deleted (or, dry, would delete), per record class."""

    counts: dict[str, int] = field(default_factory=dict)
    interrupted: bool = False
    dry_run: bool = False

    @property
    def total(self) -> int:
        """Return the number of rows over every class."""
        return sum(self.counts.values())


def expired_counts(store: Store, settings: Settings, now: datetime) -> dict[str, int]:
    """Return how many rows of each class have outlived their retention."""
    return {r.name: count_rows(store, r.table, r.condition) for r in retention_rules(settings, now)}


def purge(
    store: Store,
    settings: Settings,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    batch_size: int = BATCH_SIZE,
    progress: Progress = ignore_progress,
    should_stop: ShouldStop = never_stop,
    actor: str = audit_log.ACTOR_CLI,
) -> PurgeResult:
    """Delete every row past its retention in keyset batches; record the run."""
    now = now or datetime.now(UTC)
    result = PurgeResult(dry_run=dry_run)
    if dry_run:
        result.counts = expired_counts(store, settings, now)
    else:
        for rule in retention_rules(settings, now):
            done, stopped = delete_batches(
                store,
                rule.table,
                rule.condition,
                batch_size=batch_size,
                progress=progress,
                should_stop=should_stop,
            )
            result.counts[rule.name] = done
            if stopped:
                result.interrupted = True
                break
    outcome = "dry_run" if dry_run else "interrupted" if result.interrupted else "ok"
    with store.writing() as conn:
        audit_log.append(
            conn, actor=actor, action="purge", route="cli", outcome=outcome, count=result.total
        )
        write_privacy_log(
            conn,
            actor=actor,
            action="purge",
            outcome=outcome,
            transactions=result.counts.get("transactions", 0),
            payment_methods=result.counts.get("payment_methods", 0),
            subscriptions=result.counts.get("subscriptions", 0),
            events=result.counts.get("events", 0),
            audit_entries=result.counts.get("audit_log", 0) + result.counts.get("privacy_log", 0),
            legal_basis="GDPR art. 5(1)(e): storage limitation (configured retention periods)",
        )
    return result
