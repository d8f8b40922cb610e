"""The OpenAPI document: every keyed route and method is in it, each with the scope it enforces."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine

from tests.support.api import bearer, make_key

SCOPES = ("records:read", "customers:erase", "audit:read", "subscribers:manage")


def _routes(app: Flask) -> list[tuple[str, str]]:
    """Return (method, OpenAPI path) of every /v1 route the app serves."""
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/v1/"):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        found += [(m.lower(), path) for m in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})]
    return found


def _sample_path(path: str) -> str:
    return (
        path.replace("{provider}", "stripe")
        .replace("{ident}", "x_1")
        .replace("{customer}", "cus_1")
        .replace("{name}", "billing")
    )


def test_every_v1_route_and_method_is_documented(app: Flask, client: FlaskClient) -> None:
    paths = client.get("/openapi.json").get_json()["paths"]
    routes = _routes(app)
    assert ("delete", "/v1/customers/{provider}/{customer}") in routes
    assert ("get", "/v1/audit-log") in routes
    missing = [(method, path) for method, path in routes if method not in paths.get(path, {})]
    assert missing == []
    # And nothing documented that is not served.
    documented = {(m, p) for p, ops in paths.items() for m in ops if m != "parameters"}
    assert documented == set(routes)


def test_every_operation_states_its_scope(client: FlaskClient) -> None:
    paths = client.get("/openapi.json").get_json()["paths"]
    for path, operations in paths.items():
        for method, operation in operations.items():
            scope = operation["x-scope"]
            assert scope in SCOPES, (method, path)
            assert f"`{scope}` scope" in operation["description"], (method, path)
            assert scope in operation["responses"]["403"]["description"], (method, path)
    assert paths["/v1/customers/{provider}/{customer}/export"]["get"]["x-scope"] == "records:read"
    assert paths["/v1/customers/{provider}/{customer}"]["delete"]["x-scope"] == "customers:erase"
    assert paths["/v1/audit-log"]["get"]["x-scope"] == "audit:read"
    assert paths["/v1/subscribers"]["post"]["x-scope"] == "subscribers:manage"


@pytest.mark.parametrize("scope", SCOPES)
def test_each_route_enforces_the_scope_its_document_states(
    app: Flask, client: FlaskClient, engine: Engine, scope: str
) -> None:
    paths = client.get("/openapi.json").get_json()["paths"]
    holder = bearer(make_key(engine, scope))
    others = bearer(make_key(engine, *(s for s in SCOPES if s != scope)))
    for method, path in _routes(app):
        url = _sample_path(path)
        stated = paths[path][method]["x-scope"]
        refused = client.open(url, method=method.upper(), headers=others)
        allowed = client.open(url, method=method.upper(), headers=holder)
        if stated == scope:
            assert refused.status_code == 403, (method, path)
            assert scope in refused.get_json()["error"]["message"]
            # Past the scope: found or not, or (a POST without its body) refused for the body.
            assert allowed.status_code in (200, 404, 415), (method, path)
        else:
            assert allowed.status_code == 403, (method, path)
