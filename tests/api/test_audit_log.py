"""GET /v1/audit-log: readable with audit:read only, keyset-paged, values never recorded."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, select

from gateway.api import keys
from gateway.audit import audit_log
from gateway.storage import tables


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
        audit_log.append(conn, actor="cli", action="keys.create", route="cli", outcome="ok")
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


@pytest.mark.parametrize(
    "query",
    [
        "after=%C2%B2",  # a superscript two: str.isdigit says yes, int() says no
        "after=%D9%A3",  # an Arabic-Indic three: int() reads it as 3
        "after=99999999999999999999999",
        "after=" + "9" * 5000,  # past int()'s digit limit
        "after=-1",
        "after=1_0",
        "after=+1",
        "after=%201",
        "after=",
        "limit=%D9%A3",
        "limit=501",
        "after=1&after=2",
    ],
)
def test_bad_arguments_are_400_without_echo(
    client: FlaskClient, engine: Engine, query: str
) -> None:
    response = client.get(f"/v1/audit-log?{query}", headers=_key(engine, "audit:read"))
    assert response.status_code == 400, query
    assert response.get_json()["error"]["code"] == "invalid_parameter"
    assert set(response.get_json()["error"]) == {"code", "message"}
    assert "999" not in response.get_data(as_text=True)


def test_largest_seq_is_an_empty_page(client: FlaskClient, engine: Engine) -> None:
    # 2**63 - 9: the largest BIGINT no answer withholds as card data (2**63 - 1 is refused).
    response = client.get(f"/v1/audit-log?after={2**63 - 9}", headers=_key(engine, "audit:read"))
    assert response.status_code == 200
    assert response.get_json() == {"data": [], "next_after": None, "has_more": False}


def test_refused_scope_names_the_key_prefix(client: FlaskClient, engine: Engine) -> None:
    headers = _key(engine, "records:read")
    prefix = headers["Authorization"].split("_")[1]
    assert client.get("/v1/audit-log", headers=headers).status_code == 403
    with engine.connect() as conn:
        rows = conn.execute(select(tables.audit_log.c.actor, tables.audit_log.c.outcome)).all()
    assert [tuple(row) for row in rows] == [(prefix, "forbidden")]
