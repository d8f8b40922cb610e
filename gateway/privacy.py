"""Privacy operations: retention purge, erasure, export and data-key rotation.

Every operation works in bounded keyset batches (each its own transaction, so an
interrupted run leaves a consistent database and a rerun continues), and every
run is recorded in the audit trail and the privacy log: counts, the legal basis
and a keyed-hash pseudonym of the data subject, never a value.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import Connection, Table, and_, delete, func, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.elements import ColumnElement

from gateway import audit_trail
from gateway.crypto import (
    IDENTITY_COLUMN,
    KID_LENGTH,
    PREFIX,
    SEALED,
    Cipher,
    UndecryptableValue,
    aad,
    bidx_column,
    kid_of,
    open_record,
)
from gateway.db import (
    audit_log,
    erasures,
    event_objects,
    events,
    field_columns,
    payment_methods,
    privacy_log,
    subscriptions,
    transactions,
)
from gateway.errors import ConfigurationError
from gateway.settings import Settings
from gateway.store import ERASURE_LOCK, Store

log = logging.getLogger(__name__)

BATCH_SIZE: Final = 5000

# Why transactions outlive an erasure request, recorded with each erasure.
ERASURE_LEGAL_BASIS: Final = (
    "GDPR art. 17(3)(b) and (e): transactions keep their billing core (ids, amounts, "
    "currency, status, dates) for statutory accounting retention (commercial and tax "
    "law), unlinked from the customer; payment methods and subscriptions deleted"
)
EXPORT_LEGAL_BASIS: Final = "GDPR art. 15 and 20: data-subject access and portability"

# Payment methods and subscriptions in these states have ended; retention runs from then.
ENDED_PAYMENT_METHOD: Final = ("detached", "deleted", "expired")
ENDED_SUBSCRIPTION: Final = ("canceled", "expired")

# Served for each exported record, as the read API serves it.
_EXPORTED_BOOKKEEPING: Final = ("provider", "account", "created_at", "updated_at", "last_event_id")

EXPORT_TABLES: Final[tuple[tuple[str, Table], ...]] = (
    ("transactions", transactions),
    ("payment_methods", payment_methods),
    ("subscriptions", subscriptions),
)
# An export's erasure history: one row per tombstoned account (gateway.db.erasures).
ERASURE_COLUMNS: Final = ("account", "erased_at")

Progress = Callable[[int], None]
ShouldStop = Callable[[], bool]


def _never() -> bool:
    return False


def _ignore(_count: int) -> None:
    return None


# ------------------------------------------------------------------ startup key check

# Rows sampled at each end of each table and at evenly spaced pk probes between: an
# interrupted rotation leaves old-key rows in the middle of the pk range, not at its ends.
KEY_CHECK_SAMPLE: Final = 100
KEY_CHECK_PROBES: Final = 32
KEY_CHECK_PROBE_ROWS: Final = 4


def stored_key_ids(store: Store) -> tuple[set[str], int]:
    """Return the key ids seen in a sample of sealed values and how many were in clear."""
    seen: set[str] = set()
    clear = 0
    head = len(PREFIX) + KID_LENGTH + 1

    def note(values: Sequence[Any]) -> None:
        nonlocal clear
        for value in values:
            if value is None:
                continue
            kid = kid_of(value)
            if kid is None:
                clear += 1
            else:
                seen.add(kid)

    with store.engine.connect() as conn:
        for name, columns in SEALED.items():
            table = _table(name)
            heads = [func.substr(table.c[c], 1, head) for c in columns]
            for order in (table.c.pk.asc(), table.c.pk.desc()):
                for row in conn.execute(select(*heads).order_by(order).limit(KEY_CHECK_SAMPLE)):
                    note(row)
            low, high = conn.execute(select(func.min(table.c.pk), func.max(table.c.pk))).one()
            if low is None:
                continue
            step = max(1, (int(high) - int(low)) // KEY_CHECK_PROBES)
            for start in range(int(low), int(high) + 1, step):
                probe = (
                    select(*heads)
                    .where(table.c.pk >= start)
                    .order_by(table.c.pk)
                    .limit(KEY_CHECK_PROBE_ROWS)
                )
                for row in conn.execute(probe):
                    note(row)
    return seen, clear


def check_keys(store: Store, *, allow_clear: bool = False) -> None:
    """Refuse to run against sealed data no configured key opens, or data left in clear."""
    try:
        seen, clear = stored_key_ids(store)
    except DBAPIError as exc:
        # Not migrated yet, or not reachable: requests answer 503 until it is.
        log.warning("data key check skipped: storage unavailable (%s)", type(exc).__name__)
        return
    missing = sorted(seen - store.cipher.kids)
    if missing:
        raise ConfigurationError(
            f"stored data is encrypted under key id(s) {', '.join(missing)}, which no "
            f"configured data key has (configured: {', '.join(sorted(store.cipher.kids))}): "
            "add the key back to PAYSIEVE_DATA_KEYS (any position after the first); remove "
            "an old key only after `paysieve rotate-keys` has finished"
        )
    if clear and not allow_clear:
        raise ConfigurationError(
            "stored data holds references in clear from before encryption at rest: run "
            "`paysieve rotate-keys` to encrypt them, then start again"
        )


# ------------------------------------------------------------------ batches


def _table(name: str) -> Table:
    return {t.name: t for _, t in EXPORT_TABLES}[name]


def _delete_batches(
    store: Store,
    table: Table,
    condition: ColumnElement[bool],
    *,
    batch_size: int,
    progress: Progress,
    should_stop: ShouldStop,
) -> tuple[int, bool]:
    """Delete matching rows in keyset batches; return the count and whether it was stopped."""
    key = table.primary_key.columns.values()[0]
    last: int | None = None
    done = 0
    while True:
        if should_stop():
            return done, True
        window = select(key).where(condition).order_by(key).limit(batch_size)
        if last is not None:
            window = window.where(key > last)
        with store.writing() as conn:
            deleted = (
                conn.execute(delete(table).where(key.in_(window.scalar_subquery())).returning(key))
                .scalars()
                .all()
            )
        if not deleted:
            return done, False
        last = max(deleted)
        done += len(deleted)
        progress(len(deleted))


def _count(store: Store, table: Table, condition: ColumnElement[bool]) -> int:
    with store.engine.connect() as conn:
        return int(
            conn.execute(select(func.count()).select_from(table).where(condition)).scalar_one()
        )


# ------------------------------------------------------------------ retention


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
        Retention("audit_log", audit_log, audit_log.c.at < cutoff(audit_days), audit_days),
        Retention("privacy_log", privacy_log, privacy_log.c.at < cutoff(audit_days), audit_days),
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
    return {r.name: _count(store, r.table, r.condition) for r in retention_rules(settings, now)}


def purge(
    store: Store,
    settings: Settings,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    batch_size: int = BATCH_SIZE,
    progress: Progress = _ignore,
    should_stop: ShouldStop = _never,
    actor: str = audit_trail.ACTOR_CLI,
) -> PurgeResult:
    """Delete every row past its retention in keyset batches; record the run."""
    now = now or datetime.now(UTC)
    result = PurgeResult(dry_run=dry_run)
    if dry_run:
        result.counts = expired_counts(store, settings, now)
    else:
        for rule in retention_rules(settings, now):
            done, stopped = _delete_batches(
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
        audit_trail.append(
            conn, actor=actor, action="purge", route="cli", outcome=outcome, count=result.total
        )
        _log(
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


def _log(conn: Connection, **values: Any) -> None:
    conn.execute(privacy_log.insert().values(at=datetime.now(UTC), **values))


# ------------------------------------------------------------------ erasure


@dataclass(frozen=True)
class Erasure:
    """What one erasure did: counts, the subject's pseudonym and its tombstones."""

    subject: str
    payment_methods: int
    subscriptions: int
    transactions: int
    erased_at: datetime
    # The accounts tombstoned: where an event created before erased_at no longer links.
    accounts: tuple[str, ...] = ()
    legal_basis: str = ERASURE_LEGAL_BASIS

    def as_dict(self) -> dict[str, Any]:
        """Return the erasure as the API and the command line report it."""
        return {
            "subject": self.subject,
            "deleted": {
                "payment_methods": self.payment_methods,
                "subscriptions": self.subscriptions,
            },
            "unlinked": {"transactions": self.transactions},
            "tombstone": {"erased_at": _plain(self.erased_at), "accounts": list(self.accounts)},
            "legal_basis": self.legal_basis,
        }


def _customer_rows(
    table: Table, store: Store, provider: str, customer: str, accounts: Sequence[str] | None
) -> list[ColumnElement[bool]]:
    conditions = [
        table.c.provider == provider,
        table.c.customer_bidx == store.cipher.bidx("customer", customer),
    ]
    if accounts is not None:
        conditions.append(table.c.account.in_(sorted(accounts)))
    return conditions


def endpoint_names(settings: Settings | None, provider: str) -> list[str]:
    """Return the names of a provider's configured endpoints (the accounts it receives on)."""
    if settings is None:
        return []
    return sorted({e.name for e in settings.endpoints if e.provider == provider})


def erase(
    store: Store,
    *,
    provider: str,
    customer: str,
    accounts: Sequence[str] | None = None,
    settings: Settings | None = None,
    actor: str = audit_trail.ACTOR_CLI,
    route: str = "cli",
) -> Erasure:
    """Erase a customer in one transaction: delete methods and subscriptions, unlink billing.

    The same transaction writes the tombstones that keep it erased (``_tombstone``).
    ``settings`` names the provider's configured endpoints, tombstoned too when no
    account is given.
    """
    pm, sub, txn = payment_methods, subscriptions, transactions
    with store.writing() as conn:
        if store.dialect == "postgresql":
            # Exclusive against every delivery's shared hold (gateway.store): one still
            # running commits first and is erased below; one arriving later waits, then
            # meets the tombstones. SQLite's single writer gives the same order.
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ERASURE_LOCK})
        # Taken once the lock is held: the moment the erasure happens in commit order.
        erased_at = datetime.now(UTC)
        cards = conn.execute(
            select(pm.c.account, pm.c.token_bidx).where(
                *_customer_rows(pm, store, provider, customer, accounts)
            )
        ).all()
        subs = conn.execute(
            select(sub.c.account, sub.c.id).where(
                *_customer_rows(sub, store, provider, customer, accounts)
            )
        ).all()
        provider_events = select(events.c.seq).where(events.c.provider == provider)
        # The change feed must not keep naming what is erased.
        if cards:
            conn.execute(
                delete(event_objects).where(
                    event_objects.c.record_type == "payment_method",
                    event_objects.c.object_bidx.in_(sorted({c.token_bidx for c in cards})),
                    event_objects.c.event_seq.in_(provider_events),
                )
            )
        if subs:
            conn.execute(
                delete(event_objects).where(
                    event_objects.c.record_type == "subscription",
                    event_objects.c.object_id.in_(sorted({s.id for s in subs})),
                    event_objects.c.event_seq.in_(provider_events),
                )
            )
        unlinked: dict[int, str] = {}
        unlinked.update(
            conn.execute(
                update(txn)
                .where(*_customer_rows(txn, store, provider, customer, accounts))
                .values(customer=None, customer_bidx=None)
                .returning(txn.c.pk, txn.c.account)
            ).all()
        )
        # A transaction paid with an erased card loses the card too, whoever it names.
        by_account: dict[str, list[str]] = {}
        for card in cards:
            by_account.setdefault(card.account, []).append(card.token_bidx)
        for account, tokens in sorted(by_account.items()):
            unlinked.update(
                conn.execute(
                    update(txn)
                    .where(
                        txn.c.provider == provider,
                        txn.c.account == account,
                        txn.c.payment_method_bidx.in_(sorted(tokens)),
                    )
                    .values(payment_method=None, payment_method_bidx=None)
                    .returning(txn.c.pk, txn.c.account)
                ).all()
            )
        deleted_pm = conn.execute(
            delete(pm).where(*_customer_rows(pm, store, provider, customer, accounts))
        ).rowcount
        deleted_sub = conn.execute(
            delete(sub).where(*_customer_rows(sub, store, provider, customer, accounts))
        ).rowcount
        if accounts is not None:
            tombstoned = set(accounts)
        else:
            # Every account a late event about the customer may arrive on: those that held
            # their rows, and every endpoint of the provider configured now (the webhook
            # route answers 404 on any other). One row per account, because deliveries
            # look tombstones up by their own account, by primary key.
            tombstoned = {c.account for c in cards} | {s.account for s in subs}
            tombstoned |= set(unlinked.values()) | set(endpoint_names(settings, provider))
        _tombstone(
            conn,
            store,
            provider=provider,
            accounts=tombstoned,
            customer=customer,
            tokens={c.token_bidx for c in cards},
            erased_at=erased_at,
        )
        result = Erasure(
            subject=store.cipher.pseudonym(provider, customer),
            payment_methods=int(deleted_pm),
            subscriptions=int(deleted_sub),
            transactions=len(unlinked),
            erased_at=erased_at,
            accounts=tuple(sorted(tombstoned)),
        )
        audit_trail.append(
            conn,
            actor=actor,
            action="customers.erase",
            route=route,
            outcome="ok",
            count=result.payment_methods + result.subscriptions + result.transactions,
        )
        _log(
            conn,
            actor=actor,
            action="erase",
            provider=provider,
            account=None if accounts is None else ",".join(sorted(accounts))[:64],
            subject=result.subject,
            transactions=result.transactions,
            payment_methods=result.payment_methods,
            subscriptions=result.subscriptions,
            events=0,
            audit_entries=0,
            legal_basis=ERASURE_LEGAL_BASIS,
            outcome="ok",
        )
    _checkpoint(store)
    return result


def _tombstone(
    conn: Connection,
    store: Store,
    *,
    provider: str,
    accounts: Iterable[str],
    customer: str,
    tokens: Iterable[str],
    erased_at: datetime,
) -> None:
    """Upsert the tombstones of a customer and of their cards' tokens in each account.

    Blind indexes only (the same kinds the record tables' ``*_bidx`` columns use): no
    customer id or token is written. A repeated erasure moves erased_at forward, never
    back. Every token is tombstoned in every account, like the customer: a card erased
    in one account is as erased in another.
    """
    customer_bidx = store.cipher.bidx("customer", customer)
    kinds = [("customer", customer_bidx), *(("token", t) for t in sorted(tokens))]
    rows = [
        {
            "provider": provider,
            "account": account,
            "kind": kind,
            "bidx": bidx,
            "erased_at": erased_at,
        }
        for account in sorted(accounts)
        for kind, bidx in kinds
    ]
    if not rows:
        return
    insert = postgresql.insert if store.dialect == "postgresql" else sqlite.insert
    stmt = insert(erasures)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[
                erasures.c.provider,
                erasures.c.account,
                erasures.c.kind,
                erasures.c.bidx,
            ],
            set_={"erased_at": stmt.excluded.erased_at},
            where=erasures.c.erased_at < stmt.excluded.erased_at,
        ),
        rows,
    )


def _erasure_times(
    conn: Connection, store: Store, provider: str, customer: str, accounts: Sequence[str] | None
) -> list[dict[str, Any]]:
    """Return when a customer was erased, per account (no value of theirs is held)."""
    condition = [
        erasures.c.provider == provider,
        erasures.c.kind == "customer",
        erasures.c.bidx == store.cipher.bidx("customer", customer),
    ]
    if accounts is not None:
        condition.append(erasures.c.account.in_(sorted(accounts)))
    found = conn.execute(
        select(erasures.c.account, erasures.c.erased_at)
        .where(*condition)
        .order_by(erasures.c.account)
    )
    return [{"account": account, "erased_at": _plain(at)} for account, at in found]


def _checkpoint(store: Store) -> None:
    """Fold SQLite's WAL into the file, so old page images of erased rows leave the WAL too."""
    if store.dialect != "sqlite":
        return
    # secure_delete zeroes the freed cells in the file; the WAL still holds the pages as they
    # were before. Best effort: a busy checkpoint leaves them until the next one.
    with store.engine.connect() as conn:
        # Outside any transaction (the driver is in autocommit), or it cannot checkpoint.
        raw: Any = conn.connection.dbapi_connection
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").close()


# ------------------------------------------------------------------ export


def _served(table: Table) -> list[str]:
    record_type = {"transactions": "transaction", "payment_methods": "payment_method"}.get(
        table.name, "subscription"
    )
    # str(): column names are SQLAlchemy quoted_name, which orjson refuses as keys.
    return [*_EXPORTED_BOOKKEEPING, *(str(name) for name in field_columns(record_type))]


def export_columns() -> dict[str, list[str]]:
    """Return the exported columns of each record type, in order (the CSV headers)."""
    return {name: _served(table) for name, table in EXPORT_TABLES}


def _iter_customer(
    conn: Connection,
    store: Store,
    table: Table,
    provider: str,
    customer: str,
    accounts: Sequence[str] | None,
) -> Iterator[dict[str, Any]]:
    """Yield a customer's rows of one table, opened, in pk batches."""
    record_type = {"transactions": "transaction", "payment_methods": "payment_method"}.get(
        table.name, "subscription"
    )
    served = _served(table)
    condition = _held_about(conn, store, table, provider, customer, accounts)
    last = 0
    while True:
        rows = (
            conn.execute(
                select(table)
                .where(condition, table.c.pk > last)
                .order_by(table.c.pk)
                .limit(BATCH_SIZE)
            )
            .mappings()
            .all()
        )
        if not rows:
            return
        last = int(rows[-1]["pk"])
        for row in rows:
            opened = open_record(store.cipher, record_type, dict(row))
            yield {name: _plain(opened[name]) for name in served}


def _held_about(
    conn: Connection,
    store: Store,
    table: Table,
    provider: str,
    customer: str,
    accounts: Sequence[str] | None,
) -> ColumnElement[bool]:
    """Return the condition of a table's rows about a customer: theirs, or paid with their card."""
    own = and_(*_customer_rows(table, store, provider, customer, accounts))
    if table is not transactions:
        return own
    pm = payment_methods
    cards: dict[str, list[str]] = {}
    for account, token in conn.execute(
        select(pm.c.account, pm.c.token_bidx).where(
            *_customer_rows(pm, store, provider, customer, accounts)
        )
    ):
        cards.setdefault(account, []).append(token)
    paid = [
        and_(
            table.c.provider == provider,
            table.c.account == account,
            table.c.payment_method_bidx.in_(sorted(tokens)),
        )
        for account, tokens in sorted(cards.items())
    ]
    return or_(own, *paid)


def _plain(value: Any) -> Any:
    return value.isoformat().replace("+00:00", "Z") if isinstance(value, datetime) else value


def export(
    store: Store,
    *,
    provider: str,
    customer: str,
    accounts: Sequence[str] | None = None,
    actor: str = audit_trail.ACTOR_CLI,
    route: str = "cli",
) -> dict[str, Any]:
    """Return every record held about a customer, opened, and record the request."""
    document: dict[str, Any] = {
        "provider": provider,
        "customer": customer,
        "generated_at": _plain(datetime.now(UTC)),
        "legal_basis": EXPORT_LEGAL_BASIS,
    }
    with store.engine.connect() as conn:
        for name, table in EXPORT_TABLES:
            document[name] = list(_iter_customer(conn, store, table, provider, customer, accounts))
        # That (and when) the subject was erased, from the tombstones: no erased value.
        document["erasures"] = _erasure_times(conn, store, provider, customer, accounts)
    counts = {name: len(document[name]) for name, _ in EXPORT_TABLES}
    with store.writing() as conn:
        audit_trail.append(
            conn,
            actor=actor,
            action="customers.export",
            route=route,
            outcome="ok",
            count=sum(counts.values()),
        )
        _log(
            conn,
            actor=actor,
            action="export",
            provider=provider,
            subject=store.cipher.pseudonym(provider, customer),
            events=0,
            audit_entries=0,
            legal_basis=EXPORT_LEGAL_BASIS,
            outcome="ok",
            **counts,
        )
    return document


# ------------------------------------------------------------------ key rotation


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
        name: _count(store, _table(name), _stale(_table(name), list(cols), prefix))
        for name, cols in SEALED.items()
    }
    counts["event_objects"] = _count(store, event_objects, _stale_objects(prefix))
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
    progress: Progress = _ignore,
    should_stop: ShouldStop = _never,
) -> dict[str, int]:
    """Re-seal every value under the current data key in keyset batches; record the run."""
    prefix = _current_prefix(store.cipher)
    counts: dict[str, int] = {}
    stopped = False
    for name, columns in SEALED.items():
        table = _table(name)
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
    outcome = "interrupted" if stopped else "ok"
    with store.writing() as conn:
        audit_trail.append(
            conn,
            actor=audit_trail.ACTOR_CLI,
            action="rotate_keys",
            route="cli",
            outcome=outcome,
            count=sum(counts.values()),
        )
        _log(
            conn,
            actor=audit_trail.ACTOR_CLI,
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


def open_object_id(cipher: Cipher, event_seq: int, record_type: str, object_id: str) -> str:
    """Return a change-feed object id as served: a payment method's token opened."""
    if record_type != "payment_method":
        return object_id
    opened = cipher.open(object_id, Cipher.object_aad(event_seq, record_type))
    if opened is None:  # pragma: no cover - object ids are never NULL
        raise UndecryptableValue("empty object id")
    return opened
