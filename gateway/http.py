"""HTTP plumbing shared by every route: JSON errors and response headers."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from gateway.errors import GatewayError

log = logging.getLogger(__name__)

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
    413: ("payload_too_large", "the body is larger than the gateway accepts"),
    415: ("unsupported_media_type", "the body must be JSON"),
    429: ("rate_limited", "too many requests"),
}


def error_response(status: int, code: str, message: str) -> Response:
    """Return the one JSON error shape every route answers with."""
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    return response


def init_app(app: Flask) -> None:
    """Register the error handlers and the headers every response carries."""

    @app.errorhandler(GatewayError)
    def _gateway_error(exc: GatewayError) -> Response:
        response = error_response(exc.status, exc.code, exc.message)
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            response.headers["Retry-After"] = str(retry_after)
        return response

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        code, message = _HTTP_CODES.get(status, ("http_error", "request failed"))
        response = error_response(status, code, message)
        if status == 405 and exc.valid_methods:  # type: ignore[attr-defined]
            response.headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        # The top: log the type only; a message could carry request data.
        log.error("unhandled %s", type(exc).__name__)
        return error_response(500, "internal_error", "internal error")

    @app.after_request
    def _headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response
