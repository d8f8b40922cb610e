"""Encryption at rest: AES-GCM sealed references and keyed blind indexes for lookups.

A sealed value is ``v1.<kid>.<base64url(nonce || ciphertext || tag)>``: ``kid`` is
eight hex characters derived from the key, so the key that sealed a value can be
found (and counted in SQL with ``substr``) without decrypting it. The associated
data binds each value to its table, column and record identity, so a ciphertext
copied to another row or column fails to open.

Equality lookups never decrypt: each sealed column has a ``<column>_bidx`` twin
holding HMAC-SHA256(index key, kind, value), truncated to 128 bits. The kind is
shared by columns that hold the same kind of id (a transaction's
``payment_method`` and a payment method's ``token``), so they still join.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.core import guard
from gateway.core.errors import CardDataRefused, ConfigurationError

VERSION: Final = "v1"
PREFIX: Final = VERSION + "."
KID_LENGTH: Final = 8
# substr() offsets (1-based) of the key id inside a sealed value, for SQL scans.
KID_START: Final = len(PREFIX) + 1
_BODY_START: Final = len(PREFIX) + KID_LENGTH + 1
NONCE_BYTES: Final = 12
KEY_BYTES: Final = 32
BIDX_BYTES: Final = 16

HOW_TO_GENERATE: Final = "generate one with `paysieve data-keys generate`"

# table -> sealed column -> blind index kind.
SEALED: Final[Mapping[str, Mapping[str, str]]] = {
    "transactions": {"customer": "customer", "payment_method": "token"},
    "payment_methods": {"token": "token", "customer": "customer"},
    "subscriptions": {"customer": "customer"},
}
# The column whose value identifies a row inside its associated data.
IDENTITY_COLUMN: Final[Mapping[str, str]] = {
    "transactions": "id",
    "payment_methods": "token_bidx",
    "subscriptions": "id",
}


class UndecryptableValue(Exception):
    """A sealed value cannot be opened: unknown key, tampering or a value from another row."""


def bidx_column(column: str) -> str:
    """Return the name of a sealed column's blind index column."""
    return f"{column}_bidx"


def generate_key() -> str:
    """Return a fresh 256-bit key, base64url without padding."""
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).rstrip(b"=").decode("ascii")


def _decode_key(text: str, what: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != KEY_BYTES:
        # Never echo the value: it is (meant to be) a secret.
        raise ConfigurationError(
            f"{what}: each key must be 32 bytes, base64url encoded; {HOW_TO_GENERATE}"
        )
    return raw


def key_id(key: bytes) -> str:
    """Return the public id of a data key: a keyed hash, so it reveals nothing of the key."""
    return hmac.new(key, b"paysieve data key id", hashlib.sha256).hexdigest()[:KID_LENGTH]


def aad(table: str, column: str, *identity: str) -> bytes:
    """Return the associated data binding a value to its table, column and record."""
    # Length-prefixed, so no choice of ids can make two different tuples encode alike.
    return _aad_prefix(table, column) + b"".join(map(_length_prefixed, identity))


def _length_prefixed(part: str) -> bytes:
    encoded = part.encode()
    return len(encoded).to_bytes(2, "big") + encoded


@functools.lru_cache(maxsize=256)
def _aad_prefix(table: str, column: str) -> bytes:
    """Return the fixed start of a column's associated data (every row and read repeats it)."""
    return b"".join(map(_length_prefixed, (VERSION, table, column)))


@dataclass(frozen=True)
class _Key:
    kid: str
    aead: AESGCM


class Cipher:
    """Seal and open references under the configured data keys; compute blind indexes."""

    def __init__(self, data_keys: Sequence[bytes], index_key: bytes) -> None:
        if not data_keys:
            raise ConfigurationError("at least one data key is required")
        # AESGCM objects are built once: the webhook path only encrypts.
        self._keys = [_Key(key_id(k), AESGCM(k)) for k in data_keys]
        self._by_kid = {k.kid: k for k in self._keys}
        self._index_key = index_key
        self._pseudonym_key = hmac.new(
            index_key, b"paysieve pseudonym key", hashlib.sha256
        ).digest()

    @property
    def current_kid(self) -> str:
        """Return the id of the key new values are sealed under."""
        return self._keys[0].kid

    @property
    def kids(self) -> frozenset[str]:
        """Return the ids of every key that can open values."""
        return frozenset(self._by_kid)

    def seal(self, value: str | None, associated: bytes) -> str | None:
        """Return a value sealed under the current key (None stays None)."""
        if value is None:
            return None
        # Sealing is no defence for card data: the API opens sealed values on the way out.
        if guard.card_data_reason(value) is not None:
            raise CardDataRefused("a value to be stored looks like card data; nothing was stored")
        key = self._keys[0]
        nonce = os.urandom(NONCE_BYTES)
        body = nonce + key.aead.encrypt(nonce, value.encode(), associated)
        return f"{PREFIX}{key.kid}.{base64.urlsafe_b64encode(body).rstrip(b'=').decode('ascii')}"

    def open(self, sealed: str | None, associated: bytes) -> str | None:
        """Return the plaintext of a sealed value; raise UndecryptableValue if it cannot be."""
        if sealed is None:
            return None
        kid = kid_of(sealed)
        if kid is None or sealed[_BODY_START - 1 : _BODY_START] != ".":
            raise UndecryptableValue("not a sealed value")
        key = self._by_kid.get(kid)
        if key is None:
            raise UndecryptableValue(f"sealed under key id {kid}, which is not configured")
        encoded = sealed[_BODY_START:]
        try:
            body = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
            plain = key.aead.decrypt(body[:NONCE_BYTES], body[NONCE_BYTES:], associated)
        except (binascii.Error, ValueError, InvalidTag) as exc:
            raise UndecryptableValue("a sealed value failed authentication") from exc
        return plain.decode()

    def bidx(self, kind: str, value: str | None) -> str | None:
        """Return the blind index of a value of a kind (customer, token)."""
        if value is None:
            return None
        mac = hmac.new(self._index_key, kind.encode() + b"\x00" + value.encode(), hashlib.sha256)
        return mac.digest()[:BIDX_BYTES].hex()

    def pseudonym(self, provider: str, customer: str) -> str:
        """Return a keyed-hash pseudonym of a customer for the audit trail."""
        message = "\x00".join((provider, customer)).encode()
        return hmac.new(self._pseudonym_key, message, hashlib.sha256).hexdigest()

    # ------------------------------------------------------------ record rows

    def seal_row(self, table: str, values: Mapping[str, Any]) -> dict[str, Any]:
        """Return a row to write: sealed columns encrypted and their blind indexes added."""
        sealed = SEALED[table]
        row = dict(values)
        for column, kind in sealed.items():
            if column in row:
                row[bidx_column(column)] = self.bidx(kind, row[column])
        identity = self._identity(table, row)
        for column in sealed:
            if column in row:
                row[column] = self.seal(row[column], aad(table, column, *identity))
        return row

    def open_row(self, table: str, row: Mapping[str, Any]) -> dict[str, Any]:
        """Return a stored row with its sealed columns opened and blind indexes removed."""
        sealed = SEALED[table]
        values = dict(row)
        # The record's part of every column's associated data, encoded once per row.
        record = b"".join(map(_length_prefixed, self._identity(table, values)))
        for column in sealed:
            if column in values:
                values[column] = self.open(values[column], _aad_prefix(table, column) + record)
            values.pop(bidx_column(column), None)
        return values

    @staticmethod
    def _identity(table: str, row: Mapping[str, Any]) -> tuple[str, str, str]:
        return (str(row["provider"]), str(row["account"]), str(row[IDENTITY_COLUMN[table]]))

    # ------------------------------------------------------------ event objects

    @staticmethod
    def object_aad(event_seq: int, record_type: str) -> bytes:
        """Return the associated data of a sealed change-feed object id."""
        return aad("event_objects", "object_id", str(event_seq), record_type)


def kid_of(sealed: str) -> str | None:
    """Return the key id a sealed value names, or None for a value that is not sealed."""
    if not sealed.startswith(PREFIX):
        return None
    return sealed[len(PREFIX) : len(PREFIX) + KID_LENGTH]


def read_key_file(path: str) -> tuple[str, ...]:
    """Return the keys of a key file: one per line, # comments and blank lines ignored."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read the data key file {path}: {exc.strerror}") from None
    return tuple(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


def cipher_from_settings(data_keys: Iterable[str], data_keys_file: str, index_key: str) -> Cipher:
    """Build the cipher from settings; refuse, naming the variable, when keys are missing."""
    keys = list(data_keys)
    if data_keys_file:
        keys += read_key_file(data_keys_file)
    if not keys:
        raise ConfigurationError(
            "no data encryption key: set PAYSIEVE_DATA_KEYS (or data_keys_file) to a key; "
            + HOW_TO_GENERATE
        )
    if not index_key:
        raise ConfigurationError(
            "no blind index key: set PAYSIEVE_INDEX_KEY to its own key (not a data key); "
            + HOW_TO_GENERATE
        )
    raw = [_decode_key(k, "PAYSIEVE_DATA_KEYS") for k in keys]
    index = _decode_key(index_key, "PAYSIEVE_INDEX_KEY")
    if index in raw:
        raise ConfigurationError("PAYSIEVE_INDEX_KEY must differ from every data key")
    return Cipher(raw, index)


# The prefix the read API gives a transaction's joined payment-method columns.
JOINED_PM_PREFIX: Final = "pm_"
