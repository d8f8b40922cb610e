"""The keyed API's OpenAPI 3 document (every /v1 route, with its scope) and /docs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any, Final

import swagger_ui_bundle
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Response, current_app, jsonify, send_from_directory, url_for
from marshmallow import Schema

from gateway.api.audit_log import AUDIT_SCOPE
from gateway.api.audit_log import ROUTE as AUDIT_ROUTE
from gateway.api.auth import READ_SCOPE
from gateway.api.customers import ERASE_SCOPE
from gateway.api.records import COLLECTIONS
from gateway.api.schemas import (
    ID_PATTERN,
    PROVIDER_PATTERN,
    AuditLogPage,
    AuditLogQuery,
    CustomerExportOut,
    CustomerQuery,
    ErasureOut,
    ErrorOut,
    EventPage,
    EventQuery,
    RecordQuery,
)
from gateway.core.errors import NotFound

docs_bp = Blueprint("docs", __name__)

# Swagger UI needs its own script and stylesheet, data: images from its CSS, and fetches
# of the document (and "try it out") from this origin: nothing else, nothing inline.
DOCS_CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_SWAGGER_DIR = Path(swagger_ui_bundle.swagger_ui_path)
_SWAGGER_FILES = frozenset({"swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png"})

_DOCS_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>paysieve read API</title>
<link rel="icon" href="{static}favicon-32x32.png">
<link rel="stylesheet" href="{static}swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{static}swagger-ui-bundle.js"></script>
<script src="{init}"></script>
</body>
</html>
"""


@dataclass(frozen=True)
class KeyedOperation:
    """An operation a package above this one serves (gateway.outbound.routes), for the document.

    build_spec adds what every keyed operation has: its scope in words and as x-scope, and
    the answers to a bad query, a missing key, a key without the scope, the rate limit and
    a storage outage.
    """

    path: str
    method: str
    scope: str
    description: str
    operation: dict[str, Any]


def build_spec(more: Sequence[KeyedOperation] = ()) -> dict[str, Any]:
    """Return the keyed API's OpenAPI 3 document, generated from the marshmallow schemas.

    ``more`` holds the operations of keyed routes served from packages above this one.
    """
    spec = APISpec(
        title="paysieve read API",
        version=version("paysieve"),
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={
            "description": (
                "Sanitised payment records for billing services, data-subject export and "
                "erasure, and the audit log. Send an API key from `paysieve keys create` as "
                "`Authorization: Bearer <key>`. Each operation names the scope its key needs "
                "(`records:read`, `customers:erase`, `audit:read` or `subscribers:manage`) in "
                "its description and "
                "as `x-scope`; a key without it gets 403."
            )
        },
    )
    spec.components.security_scheme(
        "bearerAuth",
        {"type": "http", "scheme": "bearer", "description": "psk_<prefix>_<secret>"},
    )
    spec.components.schema("Error", schema=ErrorOut)
    spec.components.header(
        "RetryAfter",
        {"description": "seconds to wait before retrying", "schema": {"type": "integer"}},
    )

    def error(description: str, *, retry: bool = False) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "description": description,
            "content": {"application/json": {"schema": "Error"}},
        }
        if retry:
            answer["headers"] = {"Retry-After": "RetryAfter"}
        return answer

    def errors(scope: str) -> dict[str, Any]:
        return {
            "400": error("a query parameter or the cursor is invalid"),
            "401": error("no valid API key"),
            "403": error(f"the key lacks the {scope} scope"),
            "429": error("rate limit exceeded", retry=True),
            "503": error("storage unavailable", retry=True),
        }

    def keyed(scope: str, description: str, operation: dict[str, Any]) -> dict[str, Any]:
        """Return an operation stating its scope in words and as x-scope, with its errors."""
        operation["description"] = f"{description}\n\nRequires a key with the `{scope}` scope."
        operation["x-scope"] = scope
        own = operation["responses"]
        operation["responses"] = {
            **own,
            **{status: answer for status, answer in errors(scope).items() if status not in own},
        }
        return operation

    def ok(schema: type[Schema], description: str) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": schema}}}

    path_params = [
        {
            "in": "path",
            "name": "provider",
            "required": True,
            "schema": {"type": "string", "pattern": PROVIDER_PATTERN},
        },
        {
            "in": "path",
            "name": "ident",
            "required": True,
            "description": "the record's id (a payment method's token)",
            "schema": {"type": "string", "pattern": ID_PATTERN},
        },
    ]
    for collection in COLLECTIONS:
        title = collection.path.replace("-", " ")
        spec.path(
            path=f"/v1/{collection.path}",
            operations={
                "get": keyed(
                    READ_SCOPE,
                    f"Filtered, keyset-paged {title}; pass next_cursor back as cursor.",
                    {
                        "operationId": f"list_{collection.path.replace('-', '_')}",
                        "summary": f"List {title}, oldest first, a page at a time",
                        "tags": ["records"],
                        "parameters": [{"in": "query", "schema": collection.query}],
                        "responses": {"200": ok(collection.page, f"a page of {title}")},
                    },
                )
            },
        )
        spec.path(
            path=f"/v1/{collection.path}/{{provider}}/{{ident}}",
            operations={
                "get": keyed(
                    READ_SCOPE,
                    "One record by provider and id, if the key's accounts hold it.",
                    {
                        "operationId": f"get_{collection.record_type}",
                        "summary": f"Read one {collection.record_type.replace('_', ' ')}",
                        "tags": ["records"],
                        "parameters": [*path_params, {"in": "query", "schema": RecordQuery}],
                        "responses": {
                            "200": ok(collection.item, "the record"),
                            "404": error("no such record visible to this key"),
                        },
                    },
                )
            },
        )
    spec.path(
        path="/v1/events",
        operations={
            "get": keyed(
                READ_SCOPE,
                "Events after a seq with the ids of the records each touched; poll with "
                "next_after while has_more is true.",
                {
                    "operationId": "list_events",
                    "summary": "Poll the change feed: events after a seq, in seq order",
                    "tags": ["events"],
                    "parameters": [{"in": "query", "schema": EventQuery}],
                    "responses": {"200": ok(EventPage, "the next events")},
                },
            )
        },
    )
    customer_params = [
        path_params[0],
        {
            "in": "path",
            "name": "customer",
            "required": True,
            "description": "the provider's customer id",
            "schema": {"type": "string", "pattern": ID_PATTERN},
        },
        {"in": "query", "schema": CustomerQuery},
    ]
    no_customer = error("no such customer: an unknown provider, or an account the key cannot see")
    spec.path(
        path="/v1/customers/{provider}/{customer}/export",
        operations={
            "get": keyed(
                READ_SCOPE,
                "Every record held about a customer (GDPR art. 15 and 20): their transactions "
                "and those paid with their cards, payment methods, subscriptions, each as the "
                "record routes serve it, and when they were erased. Reading records is what "
                "an export does, so it takes the read scope; the read is audited.",
                {
                    "operationId": "export_customer",
                    "summary": "Export everything held about a customer",
                    "tags": ["customers"],
                    "parameters": customer_params,
                    "responses": {
                        "200": ok(CustomerExportOut, "the customer's records"),
                        "404": no_customer,
                    },
                },
            )
        },
    )
    spec.path(
        path="/v1/customers/{provider}/{customer}",
        operations={
            "delete": keyed(
                ERASE_SCOPE,
                "Erase a customer (GDPR art. 17): delete their payment methods and "
                "subscriptions, keep their transactions unlinked from them, and tombstone "
                "them so a late event cannot bring them back. Idempotent; audited.",
                {
                    "operationId": "erase_customer",
                    "summary": "Erase a customer",
                    "tags": ["customers"],
                    "parameters": customer_params,
                    "responses": {
                        "200": ok(ErasureOut, "what the erasure did"),
                        "404": no_customer,
                    },
                },
            )
        },
    )
    spec.path(
        path=AUDIT_ROUTE,
        operations={
            "get": keyed(
                AUDIT_SCOPE,
                "The append-only audit log after a seq, oldest first: who read, erased or "
                "exported how many records by which route. Reading it is audited too.",
                {
                    "operationId": "list_audit_log",
                    "summary": "Read the audit log, a page at a time",
                    "tags": ["audit"],
                    "parameters": [{"in": "query", "schema": AuditLogQuery}],
                    "responses": {"200": ok(AuditLogPage, "a page of audit entries")},
                },
            )
        },
    )
    for extra in more:
        spec.path(
            path=extra.path,
            operations={extra.method: keyed(extra.scope, extra.description, dict(extra.operation))},
        )
    document = spec.to_dict()
    document["security"] = [{"bearerAuth": []}]
    return document


@docs_bp.get("/openapi.json")
def openapi() -> Response:
    """Serve the OpenAPI document."""
    return jsonify(current_app.extensions["paysieve.openapi"])


@docs_bp.get("/docs")
def docs() -> Response:
    """Serve the browsable API page (Swagger UI, served from this gateway)."""
    html = _DOCS_HTML.format(
        static=url_for("docs.docs_static", name=""), init=url_for("docs.docs_init")
    )
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = DOCS_CSP
    return response


@docs_bp.get("/docs/init.js")
def docs_init() -> Response:
    """Serve the script starting Swagger UI (a file: the page's CSP allows no inline script)."""
    options = {"url": url_for("docs.openapi"), "dom_id": "#swagger-ui", "validatorUrl": None}
    script = f"window.ui = SwaggerUIBundle({json.dumps(options)});\n"
    response = Response(script, mimetype="text/javascript")
    response.headers["Content-Security-Policy"] = DOCS_CSP
    return response


@docs_bp.get("/docs/static/<name>")
def docs_static(name: str) -> Response:
    """Serve one of Swagger UI's packaged assets."""
    if name not in _SWAGGER_FILES:
        raise NotFound("no such resource")
    response = send_from_directory(_SWAGGER_DIR, name)
    response.headers["Content-Security-Policy"] = DOCS_CSP
    return response
