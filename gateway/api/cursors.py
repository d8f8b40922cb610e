"""Opaque, signed page cursors bound to the route and filters they were issued for."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any, Final

from gateway.api.schemas import MAX_SEQ
from gateway.core.errors import BadRequest

CURSOR_VERSION: Final = 1


def cursor_scope(path: str, args: Mapping[str, Any]) -> bytes:
    """Return what a cursor is bound to: the list and its filters."""
    parts = [
        f"{name}={value.isoformat() if hasattr(value, 'isoformat') else value}"
        for name, value in sorted(args.items())
        if name not in ("cursor", "limit")
    ]
    return f"{path}?{'&'.join(parts)}".encode()


def encode_cursor(pk: int, scope: bytes) -> str:
    """Return an opaque cursor continuing after a pk, bound to its list and filters."""
    raw = bytes([CURSOR_VERSION]) + pk.to_bytes(8, "big") + hashlib.sha256(scope).digest()[:8]
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str, scope: bytes) -> int:
    """Return the pk a cursor continues after; 400 unless it came from this list and filters."""
    # Not signed: a forged pk only moves the start of a list the key may read anyway.
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    expected = hashlib.sha256(scope).digest()[:8]
    pk = int.from_bytes(raw[1:9], "big")
    if (
        len(raw) != 17
        or raw[0] != CURSOR_VERSION
        or not hmac.compare_digest(raw[9:], expected)
        or pk > MAX_SEQ
    ):
        raise BadRequest(
            "invalid cursor: pass next_cursor unchanged, with the same filters",
            code="invalid_cursor",
        )
    return pk
