"""The audit log: append-only entries of who did what and how much, never with which values."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Final

from sqlalchemy import Connection

from gateway.storage.tables import audit_log

ACTOR_CLI: Final = "cli"
ACTOR_ANONYMOUS: Final = "anonymous"
# The outbound webhook sender (gateway.outbound), acting on what an endpoint answered.
ACTOR_OUTBOUND: Final = "outbound"

# Shapes that cannot carry a value from a request or a record: a key prefix or a fixed
# actor, dotted action words, route templates (placeholders, not their values).
_ACTOR_RE = re.compile(r"[0-9a-f]{12}|cli|anonymous|outbound")
_WORD_RE = re.compile(r"[a-z][a-z0-9_.:]{0,63}")
_ROUTE_RE = re.compile(r"(/[A-Za-z0-9_.<>:-]*)+|cli")


def append(
    conn: Connection,
    *,
    actor: str,
    action: str,
    route: str,
    outcome: str,
    count: int = 0,
    at: datetime | None = None,
) -> None:
    """Append one entry inside the caller's transaction."""
    if not _ACTOR_RE.fullmatch(actor):
        raise ValueError("actor must be a key prefix, 'cli', 'anonymous' or 'outbound'")
    if not _WORD_RE.fullmatch(action) or not _WORD_RE.fullmatch(outcome):
        raise ValueError("action and outcome are lower-case words")
    if len(route) > 128 or not _ROUTE_RE.fullmatch(route):
        raise ValueError("route must be a route template or 'cli'")
    if count < 0:
        raise ValueError("count cannot be negative")
    conn.execute(
        audit_log.insert().values(
            at=at or datetime.now(UTC),
            actor=actor,
            action=action,
            route=route,
            outcome=outcome,
            count=count,
        )
    )
