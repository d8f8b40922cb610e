"""The read API's OpenAPI 3 document and its browsable /docs page."""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path
from typing import Any, Final

import swagger_ui_bundle
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Response, current_app, jsonify, send_from_directory, url_for
from marshmallow import Schema

from gateway.api.records import COLLECTIONS
from gateway.api.schemas import (
    ID_PATTERN,
    PROVIDER_PATTERN,
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


def build_spec() -> dict[str, Any]:
    """Return the read API's OpenAPI 3 document, generated from the marshmallow schemas."""
    spec = APISpec(
        title="paysieve read API",
        version=version("paysieve"),
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={
            "description": (
                "Sanitised payment records for billing services. Send an API key from "
                "`paysieve keys create` as `Authorization: Bearer <key>`."
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

    errors = {
        "400": error("a query parameter or the cursor is invalid"),
        "401": error("no valid API key"),
        "403": error("the key lacks the records:read scope"),
        "429": error("rate limit exceeded", retry=True),
        "503": error("storage unavailable", retry=True),
    }

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
                "get": {
                    "operationId": f"list_{collection.path.replace('-', '_')}",
                    "summary": f"List {title}, oldest first, a page at a time",
                    "tags": ["records"],
                    "parameters": [{"in": "query", "schema": collection.query}],
                    "responses": {"200": ok(collection.page, f"a page of {title}"), **errors},
                }
            },
        )
        spec.path(
            path=f"/v1/{collection.path}/{{provider}}/{{ident}}",
            operations={
                "get": {
                    "operationId": f"get_{collection.record_type}",
                    "summary": f"Read one {collection.record_type.replace('_', ' ')}",
                    "tags": ["records"],
                    "parameters": [*path_params, {"in": "query", "schema": RecordQuery}],
                    "responses": {
                        "200": ok(collection.item, "the record"),
                        "404": error("no such record visible to this key"),
                        **errors,
                    },
                }
            },
        )
    spec.path(
        path="/v1/events",
        operations={
            "get": {
                "operationId": "list_events",
                "summary": "Poll the change feed: events after a seq, in seq order",
                "tags": ["events"],
                "parameters": [{"in": "query", "schema": EventQuery}],
                "responses": {"200": ok(EventPage, "the next events"), **errors},
            }
        },
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
