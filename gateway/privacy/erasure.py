"""Erasure: delete a customer's data, unlink kept transactions, leave a tombstone."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Connection, Table, delete, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement

from gateway.audit import audit_log
from gateway.config.settings import Settings
from gateway.privacy.batching import plain, write_privacy_log
from gateway.storage.store import ERASURE_LOCK, Store
from gateway.storage.tables import (
    erasures,
    event_objects,
    events,
    payment_methods,
    subscriptions,
    transactions,
)

# Why transactions outlive an erasure request, recorded with each erasure.
ERASURE_LEGAL_BASIS: Final = (
    "GDPR art. 17(3)(b) and (e): transactions keep their billing core (ids, amounts, "
    "currency, status, dates) for statutory accounting retention (commercial and tax "
    "law), unlinked from the customer; payment methods and subscriptions deleted"
)


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
            "tombstone": {"erased_at": plain(self.erased_at), "accounts": list(self.accounts)},
            "legal_basis": self.legal_basis,
        }


def customer_rows(
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
    actor: str = audit_log.ACTOR_CLI,
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
            # Exclusive against every delivery's shared hold (gateway.storage.store): one still
            # running commits first and is erased below; one arriving later waits, then
            # meets the tombstones. SQLite's single writer gives the same order.
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ERASURE_LOCK})
        # Taken once the lock is held: the moment the erasure happens in commit order.
        erased_at = datetime.now(UTC)
        cards = conn.execute(
            select(pm.c.account, pm.c.token_bidx).where(
                *customer_rows(pm, store, provider, customer, accounts)
            )
        ).all()
        subs = conn.execute(
            select(sub.c.account, sub.c.id).where(
                *customer_rows(sub, store, provider, customer, accounts)
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
                .where(*customer_rows(txn, store, provider, customer, accounts))
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
            delete(pm).where(*customer_rows(pm, store, provider, customer, accounts))
        ).rowcount
        deleted_sub = conn.execute(
            delete(sub).where(*customer_rows(sub, store, provider, customer, accounts))
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
        audit_log.append(
            conn,
            actor=actor,
            action="customers.erase",
            route=route,
            outcome="ok",
            count=result.payment_methods + result.subscriptions + result.transactions,
        )
        write_privacy_log(
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


def erasure_times(
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
    return [{"account": account, "erased_at": plain(at)} for account, at in found]


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
