"""Who is asking: the request's API key, its scopes, the rate-limit key, audited reads."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final

from flask import Response, current_app, g, request
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from gateway.api import keys
from gateway.api.answers import json_answer
from gateway.api.keys import ApiKey
from gateway.audit import audit_log
from gateway.core.errors import Forbidden, GatewayError, StorageUnavailable, Unauthorized
from gateway.storage.store import Store
from gateway.web.http import route_template

log = logging.getLogger(__name__)

READ_SCOPE: Final = "records:read"
_STORAGE_ERRORS = (OperationalError, PoolTimeout, DBAPIError)


def current_key() -> ApiKey | None:
    """Return the valid key the request carries, authenticating once per request."""
    if "paysieve_key" not in g:
        g.paysieve_key = _authenticate_request()
    key: ApiKey | None = g.paysieve_key
    return key


def authorize(scope: str) -> ApiKey:
    """Return the request's key if it carries a scope; raise 401 or 403 otherwise."""
    key = current_key()
    if key is None:
        raise Unauthorized("a valid API key is required")
    if not key.allows(scope):
        log.warning(
            "key %s lacks the %s scope for %s %s",
            key.prefix,
            scope,
            request.method,
            route_template(),
        )
        raise Forbidden(f"the API key lacks the {scope} scope")
    return key


def actor() -> str:
    """Return who the request acts as in the audit trail: its key's prefix, or anonymous."""
    # Set once authentication ran, so a key refused for its scope is still named.
    key: ApiKey | None = g.get("paysieve_key")
    return key.prefix if key is not None else audit_log.ACTOR_ANONYMOUS


def _authenticate_request() -> ApiKey | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    with reading() as conn:
        return keys.authenticate(conn, token.strip())


def rate_key() -> str:
    """Return the rate-limit bucket: the key's prefix, or the client address without one."""
    try:
        key = current_key()
    except StorageUnavailable:
        # Raising here would make the limiter think its own storage failed.
        key = None
    return f"key:{key.prefix}" if key is not None else f"addr:{request.remote_addr}"


def current_store() -> Store:
    store: Store = current_app.extensions["paysieve.store"]
    return store


@contextmanager
def reading() -> Iterator[Connection]:
    """Yield a read connection; storage failures become a 503."""
    try:
        with current_store().engine.connect() as conn:
            yield conn
    except _STORAGE_ERRORS as exc:
        log.warning("storage unavailable for a read: %s", type(exc).__name__)
        raise StorageUnavailable("storage is unavailable; retry later") from exc


def _audit(who: str, outcome: str, count: int, key: ApiKey | None) -> None:
    """Write one audit entry (and the key's last use) in one short transaction."""
    rule = request.url_rule.rule if request.url_rule is not None else "/"
    with current_store().writing() as conn:
        audit_log.append(conn, actor=who, action="read", route=rule, outcome=outcome, count=count)
        if key is not None:
            keys.touch(conn, key.prefix)


View = Callable[..., tuple[Mapping[str, Any], int]]


def audited_read(view: View) -> Callable[..., Response]:
    """Authorize a records:read view, and audit who read how many records by which route."""

    @functools.wraps(view)
    def wrapper(**kwargs: Any) -> Response:
        key: ApiKey | None = None
        try:
            key = authorize(READ_SCOPE)
            payload, count = view(key, **kwargs)
        except StorageUnavailable:
            raise
        except GatewayError as exc:
            try:
                _audit(actor(), exc.code, 0, None)
            except StorageUnavailable:
                log.warning("audit entry for a refused read could not be written")
            raise
        # Written before the answer leaves: no audit entry, no records.
        _audit(key.prefix, "ok", count, key)
        return json_answer(payload)

    return wrapper
