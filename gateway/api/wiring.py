"""Register the read API and every other keyed blueprint under the rate limit, with OpenAPI."""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Iterable
from typing import Any

from flask import Blueprint, Flask, Response, request
from flask_limiter import Limiter, RateLimitExceeded

from gateway.api.auth import rate_key
from gateway.api.openapi import KeyedOperation, build_spec, docs_bp
from gateway.api.records import bp
from gateway.config.settings import Settings
from gateway.web.http import error_response


def init_app(
    app: Flask,
    settings: Settings,
    *,
    keyed: Iterable[Blueprint] = (),
    operations: Iterable[KeyedOperation] = (),
) -> None:
    """Register the read API and other keyed blueprints, the rate limit, OpenAPI and docs.

    ``operations`` documents the routes of keyed blueprints from packages above this one.
    """
    limiter = Limiter(
        key_func=rate_key,
        app=app,
        storage_uri=settings.rate_limit_storage,
        default_limits=[settings.rate_limit],
        # Only the read API: providers' webhooks must never be turned away by a read quota.
        default_limits_exempt_when=lambda: not request.path.startswith("/v1/"),
        strategy="fixed-window",
        key_prefix="paysieve",
        # A lost Redis degrades to per-process limits; it does not take the API down.
        swallow_errors=True,
        in_memory_fallback_enabled=True,
    )
    app.extensions["paysieve.limiter"] = limiter
    app.extensions["paysieve.openapi"] = build_spec(tuple(operations))

    @app.errorhandler(RateLimitExceeded)
    def _rate_limited(exc: RateLimitExceeded) -> Response:
        response = error_response(429, "rate_limited", "too many requests; retry later")
        current = limiter.current_limit
        wait, window = 1.0, 1
        if current is not None:
            wait, window = current.reset_at - time.time(), current.limit.get_expiry()
        response.headers["Retry-After"] = str(min(window, max(1, math.ceil(wait))))
        return response

    limited = [bp, *keyed]
    for blueprint in limited:
        app.register_blueprint(blueprint)
    app.register_blueprint(docs_bp)
    _scope_to_blueprints(app, limiter, [blueprint.name for blueprint in limited])


def _scope_to_blueprints(app: Flask, limiter: Limiter, blueprints: list[str]) -> None:
    """Run flask-limiter's request hooks for the keyed blueprints' routes, not every request.

    flask-limiter hooks every request and then finds the webhooks exempt, at about a
    tenth of a millisecond per delivery. Hooks keyed by a blueprint's name run only for
    its routes; the limiter's check stays the first thing they run, before any route
    (and so before authentication) sees the request.
    """

    def owned(hook: Any) -> bool:
        return getattr(hook, "__self__", None) is limiter or (
            isinstance(hook, functools.partial) and limiter in hook.args
        )

    registries: tuple[dict[Any, list[Any]], ...] = (
        app.before_request_funcs,
        app.after_request_funcs,
        app.teardown_request_funcs,
    )
    for hooks in registries:
        ours = [hook for hook in hooks.get(None, []) if owned(hook)]
        if not ours:
            raise RuntimeError("flask-limiter's request hooks were not found")
        hooks[None] = [hook for hook in hooks[None] if not owned(hook)]
        for blueprint in blueprints:
            hooks.setdefault(blueprint, [])[:0] = ours
