"""The webhook routes providers post to: a plain WSGI path in front of Flask.

Every delivery takes the same steps whichever way it arrives: ``answer`` routes,
limits, verifies, minimises and stores it. The Flask routes exist for the URL map,
the OpenAPI document and any path the plain one leaves to them; ``WebhookPath`` answers
``POST /webhooks/<provider>[/<endpoint>]`` itself, without a request context, URL
matching, signals or per-request hooks it does not need. It keeps every part of the
answer the Flask route gives: the JSON error shapes and Retry-After, the security
headers, the body limit, the route template for the access log, the request timing.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from typing import IO, TYPE_CHECKING, Final, cast

import orjson
from flask import Blueprint, Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.wrappers import Request

from gateway.core.errors import GatewayError, PayloadTooLarge
from gateway.ingest.pipeline import Pipeline
from gateway.ingest.sources import SourceNetworks
from gateway.observability import metrics
from gateway.web import http

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

bp = Blueprint("webhooks", __name__)

PROVIDER_RULE: Final = "/webhooks/<provider>"
ENDPOINT_RULE: Final = "/webhooks/<provider>/<endpoint>"
# What the Flask rules match with werkzeug's default converter: one or two segments.
# A path that is not plain ASCII is left to Flask, which decodes it as werkzeug does.
_PATH: Final = re.compile(r"/webhooks/([^/]+)(?:/([^/]+))?")


@bp.post(PROVIDER_RULE, defaults={"endpoint": "default"})
@bp.post(ENDPOINT_RULE)
def receive(provider: str, endpoint: str) -> Response:
    """Verify, minimise and store one provider delivery."""
    return answer(current_app, request, provider, endpoint)


def answer(app: Flask, incoming: Request, provider: str, endpoint: str) -> Response:
    """Verify, minimise and store one delivery; answer what it came to (errors raise)."""
    pipeline: Pipeline = app.extensions["paysieve.pipeline"]
    adapter, config = pipeline.route(provider, endpoint)
    sources: SourceNetworks = app.extensions["paysieve.sources"]
    with metrics.observe_delivery(adapter.name, config.name) as seen:
        # Before the body is read: a delivery from outside the allowlist costs nothing.
        sources.check(config, incoming.remote_addr)
        pipeline.check_content_type(incoming.mimetype)
        limit = pipeline.settings.max_body_bytes
        if incoming.content_length is not None and incoming.content_length > limit:
            raise PayloadTooLarge("the body is larger than the gateway accepts")
        raw_body = read_body(incoming.stream, limit)
        # Headers is a case-insensitive multi-dict; adapters only call .get() on it.
        headers = cast("Mapping[str, str]", incoming.headers)
        outcome = pipeline.process(adapter, config, raw_body, headers)
        seen.outcome, seen.dropped = outcome.status, outcome.dropped
    # orjson: this answer is sent once per delivery, and Flask's jsonify costs more.
    body = orjson.dumps({"status": outcome.status, "event_id": outcome.event_id})
    return Response(body, status=200, mimetype="application/json")


class WebhookPath:
    """Answer the provider routes as plain WSGI; pass every other request to Flask."""

    def __init__(self, app: Flask, fallback: WSGIApplication) -> None:
        """``fallback`` is the Flask app's own WSGI callable (app.wsgi_app before this)."""
        self.app = app
        self.fallback = fallback
        self._limit = app.config["MAX_CONTENT_LENGTH"]

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Serve one request."""
        path = environ.get("PATH_INFO", "")
        match = _PATH.fullmatch(path) if environ.get("REQUEST_METHOD") == "POST" else None
        if match is None or not path.isascii():
            return self.fallback(environ, start_response)
        provider, endpoint = match.group(1), match.group(2)
        rule = PROVIDER_RULE if endpoint is None else ENDPOINT_RULE
        # For the server's access log, as gateway.web.http notes it for Flask's routes.
        environ[http.ROUTE_ENVIRON_KEY] = rule
        started = time.perf_counter()
        incoming = Request(environ)
        # Werkzeug's own cap on the stream, as Flask sets it from MAX_CONTENT_LENGTH.
        incoming.max_content_length = self._limit
        response: Response
        try:
            response = answer(self.app, incoming, provider, endpoint or "default")
        except GatewayError as exc:
            response = http.gateway_error(exc)
        except HTTPException as exc:
            response = http.http_error(exc)
        except Exception as exc:
            response = http.unexpected_error(exc)
        http.security_headers(response)
        metrics.observe_request(rule, "POST", response.status_code, started)
        return response(environ, start_response)


def install(app: Flask) -> None:
    """Put the plain webhook path in front of the app's WSGI callable."""
    app.wsgi_app = WebhookPath(app, app.wsgi_app)  # type: ignore[method-assign]


def read_body(stream: IO[bytes], limit: int) -> bytes:
    """Read at most limit bytes, raising PayloadTooLarge on the first byte past it.

    A chunked body has no Content-Length, so the limit is enforced while reading.
    """
    chunks: list[bytes] = []
    size = 0
    try:
        while chunk := stream.read(min(65536, limit + 1 - size)):
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge("the body is larger than the gateway accepts")
            chunks.append(chunk)
    except RequestEntityTooLarge as exc:
        # Werkzeug's own cap on a streamed body tripped first.
        raise PayloadTooLarge("the body is larger than the gateway accepts") from exc
    return b"".join(chunks)
