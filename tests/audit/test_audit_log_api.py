"""GET /v1/audit-log: readable with audit:read only, keyset-paged, values never recorded."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy import Engine

from gateway import audit_trail, keys


def _key(engine: Engine, *scopes: str) -> dict[str, str]:
    with engine.begin() as conn:
        key, _ = keys.create(conn, name="auditor", scopes=scopes)
    return {"Authorization": f"Bearer {key}"}


def test_needs_the_audit_scope(client: FlaskClient, engine: Engine) -> None:
    assert client.get("/v1/audit-log").status_code == 401
    assert client.get("/v1/audit-log", headers=_key(engine, "records:read")).status_code == 403


def test_lists_entries_in_pages_and_audits_itself(client: FlaskClient, engine: Engine) -> None:
    reader = _key(engine, "records:read")
    auditor = _key(engine, "audit:read")
    with engine.begin() as conn:
        audit_trail.append(conn, actor="cli", action="keys.create", route="cli", outcome="ok")
    assert client.get("/v1/transactions/stripe/ch_secretvalue1", headers=reader).status_code == 404
    first = client.get("/v1/audit-log?limit=1", headers=auditor).get_json()
    assert len(first["data"]) == 1 and first["has_more"] is True
    rest = client.get(f"/v1/audit-log?after={first['next_after']}", headers=auditor).get_json()
    entries = first["data"] + rest["data"]
    assert [e["action"] for e in entries][:2] == ["keys.create", "read"]
    assert entries[1]["route"].startswith("/v1/transactions/<provider>/<")
    assert "ch_secretvalue1" not in repr(entries)
    again = client.get("/v1/audit-log", headers=auditor).get_json()["data"]
    assert [e["action"] for e in again][-1] == "audit_log.read"
    assert client.get("/v1/audit-log?limit=0", headers=auditor).status_code == 400
    assert client.get("/v1/audit-log?x=1", headers=auditor).status_code == 400
