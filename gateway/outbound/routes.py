"""/v1/subscribers: outbound webhook endpoints managed by keys with the subscribers:manage scope.

The same operations as ``paysieve subscribers`` (gateway.cli.outbound), each in one write
transaction with its audit entry. A key bound to accounts manages only subscribers bound
to some of those accounts: it can never point an endpoint at another account's records.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Final

import orjson
from flask import Blueprint, Response, current_app, request
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy import Connection

from gateway.api import answers, auth, keys
from gateway.api.keys import ApiKey
from gateway.api.openapi import KeyedOperation
from gateway.audit import audit_log
from gateway.config.settings import Settings, allowed_networks
from gateway.core.errors import (
    BadRequest,
    Forbidden,
    GatewayError,
    NotFound,
    StorageUnavailable,
    UnsupportedMediaType,
)
from gateway.outbound import queue
from gateway.outbound import subscribers as subs
from gateway.outbound.addresses import Resolver, system_resolver
from gateway.storage.store import Store

log = logging.getLogger(__name__)

MANAGE_SCOPE: Final = "subscribers:manage"
ROOT: Final = "/v1/subscribers"
ONE: Final = "/v1/subscribers/<name>"

bp = Blueprint("subscribers", __name__)

# A subscriber's name in a path: what subscribers.add accepts (anything else names none).
_NAME_PATTERN: Final = r"^[a-z0-9][a-z0-9_-]{0,63}$"
_TIME_FORMAT: Final = "%Y-%m-%dT%H:%M:%SZ"


# ------------------------------------------------------------------ schemas


class SubscriberIn(Schema):
    """What a billing service registers: a name, an https URL, what to send."""

    class Meta:
        unknown = RAISE

    name = fields.String(required=True, metadata={"pattern": _NAME_PATTERN, "example": "billing"})
    url = fields.String(
        required=True,
        validate=validate.Length(max=2048),
        metadata={"description": "https, at a public address or an allowed network"},
    )
    event_types = fields.List(
        fields.String(validate=validate.Length(min=1, max=128)),
        load_default=list,
        validate=validate.Length(max=64),
        metadata={"description": "change-feed event types with * wildcards; none means all"},
    )
    accounts = fields.List(
        fields.String(validate=validate.Length(min=1, max=64)),
        load_default=None,
        validate=validate.Length(max=64),
        metadata={
            "description": (
                "only these accounts' changes; none means every account the key sees "
                "(a key bound to accounts: those accounts)"
            )
        },
    )


class ReplayIn(Schema):
    """A window of committed changes to send again."""

    class Meta:
        unknown = RAISE

    since = fields.AwareDateTime(required=True, default_timezone=UTC)
    until = fields.AwareDateTime(load_default=None, default_timezone=UTC)

    @validates_schema
    def _ordered(self, data: Mapping[str, Any], **_: Any) -> None:
        if data.get("until") is not None and data["until"] <= data["since"]:
            raise ValidationError("must be later than since", "until")


class SubscriberOut(Schema):
    """A subscriber as served: never its secret."""

    name = fields.String(required=True)
    url = fields.String(required=True)
    event_types = fields.List(fields.String(), required=True)
    accounts = fields.List(
        fields.String(),
        required=True,
        allow_none=True,
        metadata={"description": "null: every account"},
    )
    state = fields.String(required=True, validate=validate.OneOf(["enabled", "disabled"]))
    disabled_reason = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "operator, gone (the endpoint answered 410) or failing"},
    )
    created_at = fields.String(required=True, metadata={"format": "date-time"})
    failing_since = fields.String(required=True, allow_none=True, metadata={"format": "date-time"})
    rotating_until = fields.String(
        required=True,
        allow_none=True,
        metadata={
            "format": "date-time",
            "description": "until then the previous secret signs too",
        },
    )


class SubscriberList(Schema):
    data = fields.List(fields.Nested(SubscriberOut), required=True)


class SubscriberCreated(SubscriberOut):
    secret = fields.String(
        required=True,
        metadata={"description": "whsec_ and base64 of 32 random bytes: shown this once"},
    )


class SecretOut(Schema):
    name = fields.String(required=True)
    secret = fields.String(
        required=True,
        metadata={
            "description": "the new secret, shown this once; the previous one signs too "
            "for 24 hours"
        },
    )
    rotating_until = fields.String(required=True, metadata={"format": "date-time"})


class RemovedOut(Schema):
    name = fields.String(required=True)
    dropped_deliveries = fields.Integer(required=True)


class ReplayedOut(Schema):
    name = fields.String(required=True)
    queued = fields.Integer(required=True)


_SUBSCRIBER_IN: Final = SubscriberIn()
_REPLAY_IN: Final = ReplayIn()


# ------------------------------------------------------------------ requests


def _store() -> Store:
    store: Store = current_app.extensions["paysieve.store"]
    return store


def _settings() -> Settings:
    settings: Settings = current_app.extensions["paysieve.settings"]
    return settings


def _resolver() -> Resolver:
    # The system's DNS unless the app was built with another (tests without a network).
    resolver: Resolver = current_app.extensions.get("paysieve.resolver", system_resolver)
    return resolver


def _rule() -> str:
    return request.url_rule.rule if request.url_rule is not None else "/"


def _body(schema: Schema) -> dict[str, Any]:
    """Load a JSON object body; a failure names the field, never the value sent."""
    if request.mimetype != "application/json":
        raise UnsupportedMediaType("the body must be application/json")
    try:
        document = orjson.loads(request.get_data(cache=False))
    except orjson.JSONDecodeError:
        raise BadRequest("the body is not valid JSON", code="malformed_body") from None
    if not isinstance(document, dict):
        raise BadRequest("the body must be a JSON object", code="malformed_body")
    try:
        loaded: dict[str, Any] = schema.load(document)
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {}
        known = sorted(name for name in messages if name in schema.fields)
        if not known:
            raise BadRequest("unknown field in the body", code="invalid_field") from None
        raise BadRequest(f"invalid field: {known[0]}", code="invalid_field") from None
    return loaded


def _check_name(name: str) -> None:
    """A path that cannot name a subscriber names none (and is never echoed)."""
    if not subs.NAME_RE.fullmatch(name):
        raise NotFound("no subscriber has this name")


def _visible(key: ApiKey, subscriber: subs.Subscriber) -> bool:
    """Return whether a key may manage a subscriber: every account it sends is the key's."""
    if key.accounts is None:
        return True
    return subscriber.accounts is not None and set(subscriber.accounts) <= key.accounts


def _managed(conn: Connection, key: ApiKey, name: str) -> subs.Subscriber:
    _check_name(name)
    subscriber = subs.get(conn, name)
    if not _visible(key, subscriber):
        # As if it did not exist: a key does not learn what other accounts send where.
        raise NotFound("no subscriber has this name")
    return subscriber


def _when(at: datetime | None) -> str | None:
    return at.astimezone(UTC).strftime(_TIME_FORMAT) if at is not None else None


def _served(subscriber: subs.Subscriber) -> dict[str, Any]:
    return {
        "name": subscriber.name,
        "url": subscriber.url,
        "event_types": list(subscriber.event_types),
        "accounts": list(subscriber.accounts) if subscriber.accounts is not None else None,
        "state": "enabled" if subscriber.enabled else "disabled",
        "disabled_reason": subscriber.disabled_reason,
        "created_at": _when(subscriber.created_at),
        "failing_since": _when(subscriber.failing_since),
        "rotating_until": _when(subscriber.rotating_until),
    }


def _answer(payload: dict[str, Any], status: int = 200) -> Response:
    response = answers.json_answer(payload)
    response.status_code = status
    # Answers name endpoints and may carry a secret: no cache keeps them.
    response.headers["Cache-Control"] = "no-store"
    return response


@contextmanager
def _audited(action: str) -> Iterator[ApiKey]:
    """Authorize a subscriber request; audit it if it is refused (in its own transaction)."""
    try:
        yield auth.authorize(MANAGE_SCOPE)
    except StorageUnavailable:
        raise
    except GatewayError as exc:
        try:
            with _store().writing() as conn:
                audit_log.append(
                    conn, actor=auth.actor(), action=action, route=_rule(), outcome=exc.code
                )
        except StorageUnavailable:
            log.warning("audit entry for a refused subscriber request could not be written")
        raise


@contextmanager
def _changing(key: ApiKey, action: str) -> Iterator[Connection]:
    """Yield one write transaction that ends with the request's audit entry."""
    store = _store()
    with store.writing() as conn:
        yield conn
        audit_log.append(conn, actor=key.prefix, action=action, route=_rule(), outcome="ok")
        keys.touch(conn, key.prefix)
    # The outbox and senders of this process see the change at once, others within seconds.
    store.outbox.invalidate()


# ------------------------------------------------------------------ routes


@bp.get(ROOT)
def list_subscribers() -> Response:
    """Serve the subscribers the key manages, by name, never a secret."""
    with _audited("subscribers.list") as key, _changing(key, "subscribers.list") as conn:
        found = [s for s in subs.list_all(conn) if _visible(key, s)]
    return _answer({"data": [_served(s) for s in found]})


@bp.post(ROOT)
def add_subscriber() -> Response:
    """Register a subscriber; answer its signing secret, this once."""
    with _audited("subscribers.add") as key:
        document = _body(_SUBSCRIBER_IN)
        # An empty list is no accounts named, as absent: never "every account".
        accounts: list[str] | None = document["accounts"] or None
        if key.accounts is not None:
            if accounts is None:
                accounts = sorted(key.accounts)
            elif not set(accounts) <= key.accounts:
                raise Forbidden("the key cannot send other accounts' records")
        try:
            # The host is resolved before the write transaction: no lock waits on the DNS.
            new = subs.checked(
                name=document["name"],
                url=document["url"],
                event_types=document["event_types"],
                accounts=accounts or (),
                networks=allowed_networks(_settings()),
                resolver=_resolver(),
            )
        except subs.InvalidSubscriber as exc:
            raise BadRequest(f"{exc.field}: {exc.detail}", code=exc.code) from None
        with _changing(key, "subscribers.add") as conn:
            secret = subs.insert(conn, _store().cipher, new)
            created = subs.get(conn, new.name)
    return _answer({**_served(created), "secret": secret}, 201)


@bp.get(ONE)
def get_subscriber(name: str) -> Response:
    """Serve one subscriber the key manages."""
    with _audited("subscribers.read") as key, _changing(key, "subscribers.read") as conn:
        subscriber = _managed(conn, key, name)
    return _answer(_served(subscriber))


@bp.delete(ONE)
def remove_subscriber(name: str) -> Response:
    """Remove a subscriber and everything still queued for it."""
    with _audited("subscribers.remove") as key, _changing(key, "subscribers.remove") as conn:
        _managed(conn, key, name)
        dropped = subs.remove(conn, name)
    return _answer({"name": name, "dropped_deliveries": dropped})


@bp.post(f"{ONE}/rotate-secret")
def rotate_subscriber_secret(name: str) -> Response:
    """Give a subscriber a new secret; the previous one signs too for 24 hours."""
    action = "subscribers.rotate_secret"
    with _audited(action) as key, _changing(key, action) as conn:
        _managed(conn, key, name)
        secret = subs.rotate_secret(conn, _store().cipher, name)
        rotated = subs.get(conn, name)
    return _answer(
        {"name": name, "secret": secret, "rotating_until": _when(rotated.rotating_until)}
    )


def _set_enabled(name: str, *, enabled: bool) -> Response:
    action = "subscribers.enable" if enabled else "subscribers.disable"
    with _audited(action) as key, _changing(key, action) as conn:
        _managed(conn, key, name)
        subs.set_enabled(conn, name, enabled=enabled)
        changed = subs.get(conn, name)
    return _answer(_served(changed))


@bp.post(f"{ONE}/disable")
def disable_subscriber(name: str) -> Response:
    """Stop sending to a subscriber; what it is owed stays queued."""
    return _set_enabled(name, enabled=False)


@bp.post(f"{ONE}/enable")
def enable_subscriber(name: str) -> Response:
    """Send to a subscriber again, starting with what stayed queued."""
    return _set_enabled(name, enabled=True)


@bp.post(f"{ONE}/replay")
def replay_subscriber(name: str) -> Response:
    """Queue again what was sent or failed for changes committed in a window."""
    with _audited("subscribers.replay") as key:
        _check_name(name)
        window = _body(_REPLAY_IN)
        with _changing(key, "subscribers.replay") as conn:
            _managed(conn, key, name)
            count = queue.replay(
                conn, name, since=window["since"], until=window["until"], now=datetime.now(UTC)
            )
    return _answer({"name": name, "queued": count})


# ------------------------------------------------------------------ the document


def operations() -> list[KeyedOperation]:
    """Return these routes' OpenAPI operations, for gateway.api.openapi.build_spec."""
    name = {
        "in": "path",
        "name": "name",
        "required": True,
        "description": "the subscriber's name",
        "schema": {"type": "string", "pattern": _NAME_PATTERN},
    }
    path = ROOT + "/{name}"

    def body(schema: type[Schema], description: str) -> dict[str, Any]:
        return {
            "required": True,
            "description": description,
            "content": {"application/json": {"schema": schema}},
        }

    def ok(schema: type[Schema], description: str) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": schema}}}

    def error(description: str) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": "Error"}}}

    missing = {"404": error("no subscriber of this name is managed by this key")}
    bad_body = {
        "400": error("the body is not a JSON object of the fields documented, or one is invalid"),
        "415": error("the body is not application/json"),
    }

    def op(
        method: str,
        at: str,
        description: str,
        spec: dict[str, Any],
    ) -> KeyedOperation:
        spec.setdefault("tags", ["subscribers"])
        return KeyedOperation(at, method, MANAGE_SCOPE, description, spec)

    return [
        op(
            "get",
            ROOT,
            "The subscribers this key manages, by name. Secrets are never served.",
            {
                "operationId": "list_subscribers",
                "summary": "List outbound webhook subscribers",
                "responses": {"200": ok(SubscriberList, "the subscribers")},
            },
        ),
        op(
            "post",
            ROOT,
            "Register an https endpoint to receive signed (Standard Webhooks) change-feed "
            "entries with their records. The answer holds the signing secret, this once; it is "
            "stored sealed. A key bound to accounts registers only endpoints for its accounts.",
            {
                "operationId": "add_subscriber",
                "summary": "Register a subscriber",
                "requestBody": body(SubscriberIn, "the endpoint and what to send it"),
                "responses": {
                    "201": ok(SubscriberCreated, "the subscriber, with its secret"),
                    "409": error("a subscriber of this name exists"),
                    **bad_body,
                },
            },
        ),
        op(
            "get",
            path,
            "One subscriber this key manages.",
            {
                "operationId": "get_subscriber",
                "summary": "Read one subscriber",
                "parameters": [name],
                "responses": {"200": ok(SubscriberOut, "the subscriber"), **missing},
            },
        ),
        op(
            "delete",
            path,
            "Remove a subscriber and everything still queued for it.",
            {
                "operationId": "remove_subscriber",
                "summary": "Remove a subscriber",
                "parameters": [name],
                "responses": {"200": ok(RemovedOut, "what went"), **missing},
            },
        ),
        op(
            "post",
            path + "/rotate-secret",
            "A new signing secret, answered this once; the previous one signs too for 24 "
            "hours, so receivers can switch without missing a delivery.",
            {
                "operationId": "rotate_subscriber_secret",
                "summary": "Rotate a subscriber's signing secret",
                "parameters": [name],
                "responses": {"200": ok(SecretOut, "the new secret"), **missing},
            },
        ),
        op(
            "post",
            path + "/disable",
            "Stop sending to a subscriber; what it is owed stays queued.",
            {
                "operationId": "disable_subscriber",
                "summary": "Disable a subscriber",
                "parameters": [name],
                "responses": {"200": ok(SubscriberOut, "the subscriber"), **missing},
            },
        ),
        op(
            "post",
            path + "/enable",
            "Send to a subscriber again, starting with what stayed queued.",
            {
                "operationId": "enable_subscriber",
                "summary": "Enable a subscriber",
                "parameters": [name],
                "responses": {"200": ok(SubscriberOut, "the subscriber"), **missing},
            },
        ),
        op(
            "post",
            path + "/replay",
            "Queue again what was sent or failed for changes committed in [since, until), "
            "with the same webhook-ids, so receivers deduplicate.",
            {
                "operationId": "replay_subscriber",
                "summary": "Replay a window of deliveries",
                "parameters": [name],
                "requestBody": body(ReplayIn, "the window (RFC 3339 times)"),
                "responses": {
                    "200": ok(ReplayedOut, "how many deliveries were queued again"),
                    **missing,
                    **bad_body,
                },
            },
        ),
    ]
