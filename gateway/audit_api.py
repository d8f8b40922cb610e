"""GET /v1/audit-log: the append-only audit trail, for keys with the audit:read scope."""

from __future__ import annotations

from typing import Any, Final

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy import select

from gateway import audit_trail, keys
from gateway.api import authorize
from gateway.db import audit_log
from gateway.errors import BadRequest, GatewayError
from gateway.store import Store

AUDIT_SCOPE: Final = "audit:read"
ROUTE: Final = "/v1/audit-log"
MAX_LIMIT: Final = 500

bp = Blueprint("audit_log", __name__)


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise BadRequest(f"{name} must be an integer from {low} to {high}")
    return int(raw)


@bp.get(ROUTE)
def list_audit_log() -> Response:
    """Serve audit entries after a seq, oldest first (keyset pages: pass next_after back)."""
    store: Store = current_app.extensions["paysieve.store"]
    key = None
    try:
        key = authorize(AUDIT_SCOPE)
        unknown = sorted(set(request.args) - {"after", "limit"})
        if unknown:
            raise BadRequest("unknown query parameter")
        after = _int_arg("after", 0, 0, 2**63 - 1)
        limit = _int_arg("limit", 100, 1, MAX_LIMIT)
        query = (
            select(audit_log)
            .where(audit_log.c.seq > after)
            .order_by(audit_log.c.seq)
            .limit(limit + 1)
        )
        with store.engine.connect() as conn:
            rows = [dict(row._mapping) for row in conn.execute(query)]
    except GatewayError as exc:
        actor = key.prefix if key is not None else audit_trail.ACTOR_ANONYMOUS
        with store.writing() as conn:
            audit_trail.append(
                conn, actor=actor, action="audit_log.read", route=ROUTE, outcome=exc.code
            )
        raise
    page = rows[:limit]
    data: list[dict[str, Any]] = [
        {
            "seq": row["seq"],
            "at": row["at"].isoformat().replace("+00:00", "Z"),
            "actor": row["actor"],
            "action": row["action"],
            "route": row["route"],
            "outcome": row["outcome"],
            "count": row["count"],
        }
        for row in page
    ]
    # Reading the trail is itself an audited act, written before the answer leaves.
    with store.writing() as conn:
        audit_trail.append(
            conn,
            actor=key.prefix,
            action="audit_log.read",
            route=ROUTE,
            outcome="ok",
            count=len(data),
        )
        keys.touch(conn, key.prefix)
    next_after = data[-1]["seq"] if len(rows) > limit else None
    return jsonify({"data": data, "next_after": next_after, "has_more": next_after is not None})
