"""Subscribers: the endpoints billing services register, with sealed signing secrets."""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import Connection, delete, select, update

from gateway.config.settings import IPNetwork
from gateway.core import guard
from gateway.core.crypto import Cipher, aad
from gateway.core.errors import BadRequest, Conflict, NotFound
from gateway.outbound.addresses import AddressRefused, Resolver, check_endpoint
from gateway.storage.tables import outbound_deliveries, subscribers

SECRET_PREFIX: Final = "whsec_"  # noqa: S105 - the format's prefix, not a secret
SECRET_BYTES: Final = 32
# How long the previous secret keeps signing after a rotation.
ROTATION_OVERLAP: Final = timedelta(hours=24)

NAME_RE: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_TYPE_RE: Final = re.compile(r"[A-Za-z0-9_.:*-]{1,128}")
_ACCOUNT_RE: Final = re.compile(r"[a-z0-9_-]{1,64}")


# What each part of a subscriber is called on the command line (the API uses the field name).
OPTIONS: Final = {
    "name": "--name",
    "url": "--url",
    "event_types": "--event",
    "accounts": "--account",
}


class InvalidSubscriber(BadRequest):
    """A subscriber request that cannot be accepted; the message names the option and fix."""

    code = "invalid_subscriber"

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{OPTIONS[field]}: {detail}")
        self.field, self.detail = field, detail


class SubscriberExists(Conflict):
    """A subscriber of the name asked for is registered already."""

    def __init__(self) -> None:
        super().__init__("a subscriber of this name exists (see `paysieve subscribers list`)")


@dataclass(frozen=True)
class Subscriber:
    """A subscriber as listed: never its secret."""

    id: int
    name: str
    url: str
    event_types: tuple[str, ...]
    accounts: tuple[str, ...] | None
    enabled: bool
    disabled_reason: str | None
    created_at: datetime
    failing_since: datetime | None
    rotating_until: datetime | None


def new_secret() -> str:
    """Return a fresh signing secret: whsec_ and the base64 of 32 random bytes."""
    while True:
        secret = SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()
        # Sealing refuses what looks like card data; a random secret almost never does.
        if guard.card_data_reason(secret) is None:
            return secret


def _aad(name: str, column: str) -> bytes:
    return aad("subscribers", column, name)


def _validated(
    name: str, url: str, event_types: Sequence[str], accounts: Sequence[str]
) -> tuple[str, str | None]:
    if not NAME_RE.fullmatch(name):
        raise InvalidSubscriber(
            "name", "must be 1-64 of a-z, 0-9, _ and -, starting with a letter or digit"
        )
    for pattern in event_types:
        if not _TYPE_RE.fullmatch(pattern):
            raise InvalidSubscriber(
                "event_types",
                "must be a change-feed event type such as charge.succeeded,"
                " with * wildcards (charge.*, *)",
            )
    for account in accounts:
        if not _ACCOUNT_RE.fullmatch(account):
            raise InvalidSubscriber(
                "accounts", "must be an account name: 1-64 of a-z, 0-9, _ and -"
            )
    types = " ".join(sorted(set(event_types))) or "*"
    return types, " ".join(sorted(set(accounts))) or None


@dataclass(frozen=True)
class NewSubscriber:
    """A subscriber request that passed every check, ready to be inserted."""

    name: str
    url: str
    event_types: str
    accounts: str | None


def checked(
    *,
    name: str,
    url: str,
    event_types: Sequence[str],
    accounts: Sequence[str],
    networks: Sequence[IPNetwork],
    resolver: Resolver,
) -> NewSubscriber:
    """Check a subscriber request, resolving its host: before any transaction is opened."""
    # Before anything else, so no message (an unresolvable host names itself) echoes one.
    if guard.card_data_reason(url) is not None:
        raise InvalidSubscriber("url", "must not hold anything that looks like a card number")
    types, account_list = _validated(name, url, event_types, accounts)
    try:
        check_endpoint(url, networks, resolver)
    except AddressRefused as exc:
        raise InvalidSubscriber("url", str(exc)) from None
    return NewSubscriber(name, url, types, account_list)


def insert(conn: Connection, cipher: Cipher, new: NewSubscriber) -> str:
    """Insert a checked subscriber; return its signing secret (shown once, stored sealed)."""
    if conn.execute(select(subscribers.c.id).where(subscribers.c.name == new.name)).first():
        raise SubscriberExists
    secret = new_secret()
    conn.execute(
        subscribers.insert().values(
            name=new.name,
            url=new.url,
            secret=cipher.seal(secret, _aad(new.name, "secret")),
            event_types=new.event_types,
            accounts=new.accounts,
            enabled=True,
            created_at=datetime.now(UTC),
        )
    )
    return secret


def add(
    conn: Connection,
    cipher: Cipher,
    *,
    name: str,
    url: str,
    event_types: Sequence[str],
    accounts: Sequence[str],
    networks: Sequence[IPNetwork],
    resolver: Resolver,
) -> str:
    """Check and register a subscriber; return its signing secret."""
    new = checked(
        name=name,
        url=url,
        event_types=event_types,
        accounts=accounts,
        networks=networks,
        resolver=resolver,
    )
    return insert(conn, cipher, new)


def list_all(conn: Connection) -> list[Subscriber]:
    """Return every subscriber, by name."""
    rows = conn.execute(select(subscribers).order_by(subscribers.c.name)).all()
    now = datetime.now(UTC)
    return [_listed(row, now) for row in rows]


def get(conn: Connection, name: str) -> Subscriber:
    """Return one subscriber by name, or refuse naming the command that lists them."""
    return _listed(require(conn, name), datetime.now(UTC))


def _listed(row: Any, now: datetime) -> Subscriber:
    return Subscriber(
        id=int(row.id),
        name=row.name,
        url=row.url,
        event_types=tuple(row.event_types.split()),
        accounts=tuple(row.accounts.split()) if row.accounts is not None else None,
        enabled=bool(row.enabled),
        disabled_reason=row.disabled_reason,
        created_at=row.created_at,
        failing_since=row.failing_since,
        rotating_until=(
            row.previous_secret_expires_at
            if row.previous_secret_expires_at is not None and row.previous_secret_expires_at > now
            else None
        ),
    )


def require(conn: Connection, name: str) -> Any:
    """Return a subscriber row by name, or refuse naming the command that lists them."""
    row = conn.execute(select(subscribers).where(subscribers.c.name == name)).first()
    if row is None:
        raise NotFound("no subscriber has this name (see `paysieve subscribers list`)")
    return row


def rotate_secret(conn: Connection, cipher: Cipher, name: str) -> str:
    """Give a subscriber a new secret; the current one keeps signing for 24 hours."""
    row = require(conn, name)
    current = cipher.open(row.secret, _aad(name, "secret"))
    secret = new_secret()
    conn.execute(
        update(subscribers)
        .where(subscribers.c.id == row.id)
        .values(
            secret=cipher.seal(secret, _aad(name, "secret")),
            previous_secret=cipher.seal(current, _aad(name, "previous_secret")),
            previous_secret_expires_at=datetime.now(UTC) + ROTATION_OVERLAP,
        )
    )
    return secret


def signing_secrets(cipher: Cipher, row: Any, now: datetime) -> list[str]:
    """Return the secrets a delivery is signed with: the current one, and one rotated out."""
    found = [cipher.open(row.secret, _aad(row.name, "secret"))]
    expires = row.previous_secret_expires_at
    if row.previous_secret is not None and expires is not None and expires > now:
        found.append(cipher.open(row.previous_secret, _aad(row.name, "previous_secret")))
    return [secret for secret in found if secret is not None]


def set_enabled(conn: Connection, name: str, *, enabled: bool, reason: str | None = None) -> None:
    """Enable a subscriber (its queued deliveries go out again) or disable it, with a reason."""
    row = require(conn, name)
    conn.execute(
        update(subscribers)
        .where(subscribers.c.id == row.id)
        .values(
            enabled=enabled,
            disabled_reason=None if enabled else (reason or "operator"),
            failing_since=None if enabled else row.failing_since,
        )
    )


def remove(conn: Connection, name: str) -> int:
    """Remove a subscriber and its queued deliveries; return how many deliveries went."""
    row = require(conn, name)
    gone = conn.execute(
        delete(outbound_deliveries).where(outbound_deliveries.c.subscriber_id == row.id)
    ).rowcount
    conn.execute(delete(subscribers).where(subscribers.c.id == row.id))
    return int(gone or 0)
