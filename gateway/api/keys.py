"""API keys for the read API: high-entropy, stored only as a hash, scoped, bound to accounts."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import Connection, or_, select, update

from gateway.core import guard
from gateway.storage.tables import api_keys

SCOPES: Final = ("records:read", "customers:erase", "audit:read", "subscribers:manage")

# psk_<12 hex lookup prefix>_<43 urlsafe chars: 256 random bits>
_KEY_RE = re.compile(r"psk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
_PREFIX_RE = re.compile(r"[0-9a-f]{12}")
_ACCOUNT_RE = re.compile(r"[a-z0-9_-]{1,64}")
_NAME_RE = re.compile(r"[\w .:@/-]{1,64}")

# Each use would otherwise be a write; a minute is precise enough for "last used".
LAST_USED_GRANULARITY = timedelta(minutes=1)

# Compared against when a prefix is unknown, so both paths hash and compare.
_DUMMY_HASH = hashlib.sha256(b"paysieve-no-such-key").hexdigest()


class InvalidKeyRequest(ValueError):
    """A key cannot be created or changed as asked."""


@dataclass(frozen=True)
class ApiKey:
    """What the gateway knows about one key: never the key itself."""

    prefix: str
    name: str
    scopes: frozenset[str]
    # None: every account.
    accounts: frozenset[str] | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    def allows(self, scope: str) -> bool:
        """Return whether the key carries a scope."""
        return scope in self.scopes

    def sees(self, account: str) -> bool:
        """Return whether the key may read an account's records."""
        return self.accounts is None or account in self.accounts


def hash_key(key: str) -> str:
    """Return the stored form of a key: SHA-256 suffices for 256 random bits."""
    return hashlib.sha256(key.encode("ascii")).hexdigest()


def create(
    conn: Connection,
    *,
    name: str,
    scopes: Iterable[str],
    accounts: Iterable[str] = (),
    now: datetime | None = None,
) -> tuple[str, ApiKey]:
    """Create a key; return the key (shown once, never stored) and its record."""
    wanted = sorted(set(scopes))
    bound = sorted(set(accounts))
    if not _NAME_RE.fullmatch(name):
        raise InvalidKeyRequest("the name must be 1-64 letters, digits, spaces or .:@/_-")
    if not wanted:
        raise InvalidKeyRequest("a key needs at least one scope")
    unknown = [s for s in wanted if s not in SCOPES]
    if unknown:
        raise InvalidKeyRequest(f"unknown scope; choose from {', '.join(SCOPES)}")
    if any(not _ACCOUNT_RE.fullmatch(a) for a in bound):
        raise InvalidKeyRequest("account names are 1-64 of a-z, 0-9, _ and -")
    prefix = secrets.token_hex(6)
    # A prefix is stored and served (the audit log's actor): one that happens to read
    # as a card number would be refused by storage, so draw another.
    while guard.card_data_reason(prefix) is not None:
        prefix = secrets.token_hex(6)
    key = f"psk_{prefix}_{secrets.token_urlsafe(32)}"
    created = now or datetime.now(UTC)
    conn.execute(
        api_keys.insert().values(
            prefix=prefix,
            key_hash=hash_key(key),
            name=name,
            scopes=" ".join(wanted),
            accounts=" ".join(bound) if bound else None,
            created_at=created,
        )
    )
    record = ApiKey(
        prefix=prefix,
        name=name,
        scopes=frozenset(wanted),
        accounts=frozenset(bound) if bound else None,
        created_at=created,
        last_used_at=None,
        revoked_at=None,
    )
    return key, record


def list_keys(conn: Connection) -> list[ApiKey]:
    """Return every key, oldest first, revoked ones included."""
    rows = conn.execute(select(api_keys).order_by(api_keys.c.pk)).mappings()
    return [_from_row(row) for row in rows]


def revoke(conn: Connection, prefix: str, *, now: datetime | None = None) -> bool:
    """Revoke the key with a prefix; return whether a live key was revoked."""
    if not _PREFIX_RE.fullmatch(prefix):
        return False
    result = conn.execute(
        update(api_keys)
        .where(api_keys.c.prefix == prefix, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=now or datetime.now(UTC))
    )
    return bool(result.rowcount)


def authenticate(conn: Connection, presented: str) -> ApiKey | None:
    """Return the live key a presented secret belongs to, or None."""
    match = _KEY_RE.fullmatch(presented)
    if match is None:
        return None
    row = (
        conn.execute(select(api_keys).where(api_keys.c.prefix == match.group(1))).mappings().first()
    )
    stored = row["key_hash"] if row is not None else _DUMMY_HASH
    if not hmac.compare_digest(stored, hash_key(presented)) or row is None:
        return None
    key = _from_row(row)
    return None if key.revoked_at is not None else key


def touch(conn: Connection, prefix: str, *, now: datetime | None = None) -> None:
    """Record that a key was used, at most once per LAST_USED_GRANULARITY."""
    at = now or datetime.now(UTC)
    conn.execute(
        update(api_keys)
        .where(
            api_keys.c.prefix == prefix,
            or_(
                api_keys.c.last_used_at.is_(None),
                api_keys.c.last_used_at < at - LAST_USED_GRANULARITY,
            ),
        )
        .values(last_used_at=at)
    )


def is_prefix(value: str) -> bool:
    """Return whether a string has the shape of a key prefix."""
    return _PREFIX_RE.fullmatch(value) is not None


def _from_row(row: Any) -> ApiKey:
    accounts = row["accounts"]
    return ApiKey(
        prefix=row["prefix"],
        name=row["name"],
        scopes=frozenset(row["scopes"].split()),
        accounts=frozenset(accounts.split()) if accounts else None,
        created_at=row["created_at"],
        last_used_at=row["last_used_at"],
        revoked_at=row["revoked_at"],
    )
