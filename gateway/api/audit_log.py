"""GET /v1/audit-log: the append-only audit log, for keys with the audit:read scope."""

from __future__ import annotations

from typing import Any, Final

from flask import Blueprint, Response, current_app
from sqlalchemy import select

from gateway.api import answers, auth, keys
from gateway.api.schemas import AuditLogQuery
from gateway.audit import audit_log
from gateway.core.errors import GatewayError, StorageUnavailable
from gateway.storage import tables
from gateway.storage.store import Store

AUDIT_SCOPE: Final = "audit:read"
ROUTE: Final = "/v1/audit-log"

bp = Blueprint("audit_log", __name__)


@bp.get(ROUTE)
def list_audit_log() -> Response:
    """Serve audit entries after a seq, oldest first (keyset pages: pass next_after back)."""
    store: Store = current_app.extensions["paysieve.store"]
    try:
        key = auth.authorize(AUDIT_SCOPE)
        args = answers.load_query(AuditLogQuery)
        after: int = args["after"]
        limit: int = args["limit"]
        query = (
            select(tables.audit_log)
            .where(tables.audit_log.c.seq > after)
            .order_by(tables.audit_log.c.seq)
            .limit(limit + 1)
        )
        with auth.reading() as conn:
            rows = [dict(row._mapping) for row in conn.execute(query)]
    except StorageUnavailable:
        raise
    except GatewayError as exc:
        with store.writing() as conn:
            audit_log.append(
                conn, actor=auth.actor(), action="audit_log.read", route=ROUTE, outcome=exc.code
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
        audit_log.append(
            conn,
            actor=key.prefix,
            action="audit_log.read",
            route=ROUTE,
            outcome="ok",
            count=len(data),
        )
        keys.touch(conn, key.prefix)
    next_after = data[-1]["seq"] if len(rows) > limit else None
    return answers.json_answer(
        {"data": data, "next_after": next_after, "has_more": next_after is not None}
    )
