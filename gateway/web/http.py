"""HTTP plumbing shared by every route: JSON errors, response headers, request log lines."""

from __future__ import annotations

import json
import logging
from typing import Final

from flask import Flask, Response, request
from gunicorn.http.errors import ParseException
from werkzeug.exceptions import HTTPException
from werkzeug.serving import WSGIRequestHandler

from gateway.core.errors import GatewayError

log = logging.getLogger(__name__)

# What request logs name instead of a path: the route template, or this for no route.
UNMATCHED: Final = "<unmatched>"
# The WSGI environ key holding it, for servers' access logs (gunicorn: %({paysieve.route}e)s).
ROUTE_ENVIRON_KEY: Final = "paysieve.route"
_LOGGED_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

SECURITY_HEADERS = {
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

# Werkzeug's own descriptions can echo the request; answer with ours.
_HTTP_CODES = {
    400: ("bad_request", "the request is malformed"),
    401: ("unauthorized", "a valid API key is required"),
    403: ("forbidden", "the API key may not do this"),
    404: ("not_found", "no such resource"),
    405: ("method_not_allowed", "method not allowed on this route"),
    408: ("request_timeout", "the request was not received in time"),
    411: ("length_required", "the request needs a Content-Length"),
    413: ("payload_too_large", "the body is larger than the gateway accepts"),
    414: ("uri_too_long", "the request URI is too long"),
    415: ("unsupported_media_type", "the body must be JSON"),
    417: ("expectation_failed", "the Expect header cannot be met"),
    429: ("rate_limited", "too many requests"),
    431: ("headers_too_large", "the request headers are too large"),
    501: ("not_implemented", "the method is not implemented"),
    505: ("http_version_not_supported", "the HTTP version is not supported"),
}


def route_template() -> str:
    """Return the request's route template (never its values), or UNMATCHED."""
    rule = request.url_rule
    return rule.rule if rule is not None else UNMATCHED


def error_body(status: int) -> tuple[str, bytes]:
    """Return the error code and JSON body answering a status with no more specific error."""
    code, message = _HTTP_CODES.get(status, ("http_error", "request failed"))
    return code, json.dumps({"error": {"code": code, "message": message}}).encode()


def error_response(status: int, code: str, message: str) -> Response:
    """Return the one JSON error shape every route answers with.

    Built without the app context (as Flask's jsonify would build it: compact, ASCII, a
    final newline), so the webhook routes' plain WSGI path (gateway.ingest.webhooks)
    answers its errors byte for byte as every other route does.
    """
    body = json.dumps(
        {"error": {"code": code, "message": message}}, separators=(",", ":"), ensure_ascii=True
    )
    return Response(body + "\n", status=status, mimetype="application/json")


def gateway_error(exc: GatewayError) -> Response:
    """Answer a GatewayError with its status, code and message (and Retry-After, if any)."""
    response = error_response(exc.status, exc.code, exc.message)
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def http_error(exc: HTTPException) -> Response:
    """Answer werkzeug's HTTP errors with our codes and messages, never its descriptions."""
    status = exc.code or 500
    code, message = _HTTP_CODES.get(status, ("http_error", "request failed"))
    response = error_response(status, code, message)
    if status == 405 and exc.valid_methods:  # type: ignore[attr-defined]
        response.headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
    return response


def unexpected_error(exc: Exception) -> Response:
    """Answer any other exception: 400 for a body gunicorn refused, else 500, type logged."""
    if isinstance(exc, ParseException):
        # gunicorn refusing the body while the app reads it (a malformed chunk).
        return error_response(400, "malformed_body", "the request body is malformed")
    # The top: log the type only; a message could carry request data.
    log.error("unhandled %s", type(exc).__name__)
    return error_response(500, "internal_error", "internal error")


def security_headers(response: Response) -> Response:
    """Add the headers every response carries, unless the route set its own."""
    headers = response.headers
    for name, value in SECURITY_HEADERS.items():
        if name not in headers:
            headers[name] = value
    return response


def init_app(app: Flask) -> None:
    """Register the error handlers and the headers every response carries."""
    app.register_error_handler(GatewayError, gateway_error)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, unexpected_error)
    app.after_request(security_headers)

    @app.before_request
    def _note_route() -> None:
        # For the server's access log, which sees the environ but not Flask's routing.
        request.environ[ROUTE_ENVIRON_KEY] = route_template()


class DevRequestHandler(WSGIRequestHandler):
    """Serve development requests: log route templates only, answer malformed HTTP in JSON."""

    def handle_one_request(self) -> None:
        """Handle one request, forgetting the previous one's environ (keep-alive)."""
        vars(self).pop("environ", None)
        super().handle_one_request()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Log the method, route template and status: never the path or its query string."""
        environ = getattr(self, "environ", None) or {}
        route = environ.get(ROUTE_ENVIRON_KEY, UNMATCHED)
        command = self.command if self.command in _LOGGED_METHODS else "-"
        self.log("info", '"%s %s" %s %s', command, route, code, size)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Answer a request the HTTP parser refused with the JSON error shape."""
        # http.server's page and reason phrase repeat the request line: neither is sent.
        # A client's malformed request is a 4xx whatever http.server calls it (505 for a
        # version it does not speak): a 5xx would read as the gateway failing.
        if code >= 500:
            code = 400
        _, body = error_body(code)
        # A request line that did not parse leaves http.server at HTTP/0.9, which would
        # send the body without a status line or headers: answer in HTTP/1.0.
        if self.request_version == "HTTP/0.9":
            self.request_version = "HTTP/1.0"
        self.close_connection = True
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        for name, value in SECURITY_HEADERS.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD" and code >= 200 and code not in (204, 304):
            self.wfile.write(body)
