"""The read API billing services use: keyed, scoped, keyset-paged, audited, rate-limited."""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import logging
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any, Final

import swagger_ui_bundle
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    g,
    jsonify,
    request,
    send_from_directory,
    url_for,
)
from flask_limiter import Limiter, RateLimitExceeded
from marshmallow import Schema, ValidationError
from sqlalchemy import Connection, Table, and_, func, literal_column, select
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.sql.elements import ColumnElement

from gateway import audit_trail, guard, keys, metrics
from gateway.api_schemas import (
    ID_PATTERN,
    MAX_SEQ,
    PROVIDER_PATTERN,
    ErrorOut,
    EventOut,
    EventPage,
    EventQuery,
    PaymentMethodOut,
    PaymentMethodPage,
    PaymentMethodQuery,
    RecordQuery,
    SubscriptionOut,
    SubscriptionPage,
    SubscriptionQuery,
    TransactionOut,
    TransactionPage,
    TransactionQuery,
)
from gateway.crypto import SEALED, Cipher, bidx_column
from gateway.db import (
    event_objects,
    events,
    field_columns,
    payment_methods,
    subscriptions,
    transactions,
)
from gateway.errors import (
    BadRequest,
    Forbidden,
    GatewayError,
    NotFound,
    StorageUnavailable,
    Unauthorized,
)
from gateway.http import error_response, route_template
from gateway.keys import ApiKey
from gateway.records import RECORD_TYPES
from gateway.settings import Settings
from gateway.store import Store

log = logging.getLogger(__name__)

READ_SCOPE: Final = "records:read"
CURSOR_VERSION: Final = 1

bp = Blueprint("api", __name__, url_prefix="/v1")
docs_bp = Blueprint("docs", __name__)

_STORAGE_ERRORS = (OperationalError, PoolTimeout, DBAPIError)

# Card numbers have 12-19 digits: a shorter string or a smaller integer cannot hold one.
_SHORTEST_CARD_TEXT: Final = 12
_SMALLEST_CARD_NUMBER: Final = 10**11

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


# ------------------------------------------------------------------ collections


@dataclass(frozen=True)
class Collection:
    """One record list and its single-record route."""

    record_type: str
    path: str
    table: Table
    identity: str
    query: type[Schema]
    item: type[Schema]
    page: type[Schema]
    filters: tuple[str, ...]


COLLECTIONS: Final = (
    Collection(
        "transaction",
        "transactions",
        transactions,
        "id",
        TransactionQuery,
        TransactionOut,
        TransactionPage,
        ("provider", "account", "customer", "status", "kind"),
    ),
    Collection(
        "payment_method",
        "payment-methods",
        payment_methods,
        "token",
        PaymentMethodQuery,
        PaymentMethodOut,
        PaymentMethodPage,
        ("provider", "account", "customer", "status"),
    ),
    Collection(
        "subscription",
        "subscriptions",
        subscriptions,
        "id",
        SubscriptionQuery,
        SubscriptionOut,
        SubscriptionPage,
        ("provider", "account", "customer", "status"),
    ),
)

# Served besides the allowlisted fields; pk and last_event_at stay inside.
SERVED_BOOKKEEPING: Final = ("provider", "account", "created_at", "updated_at", "last_event_id")


# ------------------------------------------------------------------ keys and scopes


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
    return key.prefix if key is not None else audit_trail.ACTOR_ANONYMOUS


def _authenticate_request() -> ApiKey | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    with reading() as conn:
        return keys.authenticate(conn, token.strip())


def _rate_key() -> str:
    """Return the rate-limit bucket: the key's prefix, or the client address without one."""
    try:
        key = current_key()
    except StorageUnavailable:
        # Raising here would make the limiter think its own storage failed.
        key = None
    return f"key:{key.prefix}" if key is not None else f"addr:{request.remote_addr}"


# ------------------------------------------------------------------ storage helpers


def _store() -> Store:
    store: Store = current_app.extensions["paysieve.store"]
    return store


@contextmanager
def reading() -> Iterator[Connection]:
    """Yield a read connection; storage failures become a 503."""
    try:
        with _store().engine.connect() as conn:
            yield conn
    except _STORAGE_ERRORS as exc:
        log.warning("storage unavailable for a read: %s", type(exc).__name__)
        raise StorageUnavailable("storage is unavailable; retry later") from exc


def _audit(who: str, outcome: str, count: int, key: ApiKey | None) -> None:
    """Write one audit entry (and the key's last use) in one short transaction."""
    rule = request.url_rule.rule if request.url_rule is not None else "/"
    with _store().writing() as conn:
        audit_trail.append(conn, actor=who, action="read", route=rule, outcome=outcome, count=count)
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


# ------------------------------------------------------------------ answers


# Answer fields that hold an event id (the change feed's id, a record's last event).
_EVENT_ID_FIELDS: Final = frozenset({"id", "last_event_id"})


def json_answer(payload: Mapping[str, Any]) -> Response:
    """Return a read-API answer as JSON, every value holding card data withheld first."""
    # The second line behind the storage boundary: rows written before it, or by hand,
    # are still never served. Withheld values are logged by JSON path, never by value.
    withheld: list[tuple[str, str]] = []
    _withhold(payload, "$", withheld)
    if withheld:
        route = route_template()
        for path, reason in withheld:
            metrics.served_value_withheld(route, reason)
            log.warning("withheld card data (%s) at %s from an answer on %s", reason, path, route)
    return jsonify(payload)


def _withhold(node: Any, path: str, withheld: list[tuple[str, str]]) -> None:
    """Replace, in place, each string or integer under node holding card data; note its path."""
    is_object = isinstance(node, dict)
    for name in node.keys() if is_object else range(len(node)):
        value = node[name]
        if isinstance(value, str):
            if len(value) < _SHORTEST_CARD_TEXT:
                continue
            # An event id is read as event ids are stored (gateway.db.EventId): a PayPal
            # id group by group. Record ids named "id" only ever passed the plain check.
            check = guard.scan_event_id if name in _EVENT_ID_FIELDS else guard.card_data_reason
            reason = check(value)
            if reason is None:
                continue
            redacted = guard.redact(value)
            node[name] = redacted if guard.card_data_reason(redacted) is None else None
        elif isinstance(value, int) and not isinstance(value, bool):
            if -_SMALLEST_CARD_NUMBER < value < _SMALLEST_CARD_NUMBER:
                continue
            reason = guard.card_data_reason(value)
            if reason is None:
                continue
            node[name] = None
        elif isinstance(value, dict | list):
            _withhold(value, f"{path}.{name}" if is_object else f"{path}[{name}]", withheld)
            continue
        else:
            continue
        withheld.append((f"{path}.{name}" if is_object else f"{path}[{name}]", reason))


# ------------------------------------------------------------------ arguments and cursors


def load_query(schema: type[Schema]) -> dict[str, Any]:
    """Load query arguments; a failure names our parameter, never the value sent."""
    if any(len(values) > 1 for values in request.args.listvalues()):
        raise BadRequest("a query parameter is repeated", code="invalid_parameter")
    instance = schema()
    try:
        loaded: dict[str, Any] = instance.load(request.args.to_dict())
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {}
        known = sorted(name for name in messages if name in instance.fields)
        if not known:
            raise BadRequest("unknown query parameter", code="invalid_parameter") from None
        raise BadRequest(f"invalid query parameter: {known[0]}", code="invalid_parameter") from None
    for name, value in sorted(loaded.items()):
        # No stored value holds card data, and storage refuses to be asked for one.
        if isinstance(value, str) and guard.card_data_reason(value) is not None:
            raise BadRequest(f"invalid query parameter: {name}", code="invalid_parameter")
    return loaded


def _cursor_scope(path: str, args: Mapping[str, Any]) -> bytes:
    """Return what a cursor is bound to: the list and its filters."""
    parts = [
        f"{name}={value.isoformat() if hasattr(value, 'isoformat') else value}"
        for name, value in sorted(args.items())
        if name not in ("cursor", "limit")
    ]
    return f"{path}?{'&'.join(parts)}".encode()


def encode_cursor(pk: int, scope: bytes) -> str:
    """Return an opaque cursor continuing after a pk, bound to its list and filters."""
    raw = bytes([CURSOR_VERSION]) + pk.to_bytes(8, "big") + hashlib.sha256(scope).digest()[:8]
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str, scope: bytes) -> int:
    """Return the pk a cursor continues after; 400 unless it came from this list and filters."""
    # Not signed: a forged pk only moves the start of a list the key may read anyway.
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    expected = hashlib.sha256(scope).digest()[:8]
    pk = int.from_bytes(raw[1:9], "big")
    if (
        len(raw) != 17
        or raw[0] != CURSOR_VERSION
        or not hmac.compare_digest(raw[9:], expected)
        or pk > MAX_SEQ
    ):
        raise BadRequest(
            "invalid cursor: pass next_cursor unchanged, with the same filters",
            code="invalid_cursor",
        )
    return pk


def _equals(table: Table, column: str, value: str) -> ColumnElement[bool]:
    """Return column = value; a sealed column is matched through its blind index."""
    kind = SEALED.get(table.name, {}).get(column)
    if kind is None:
        return table.c[column] == value
    return table.c[bidx_column(column)] == _store().cipher.bidx(kind, value)


def _visible(table: Table, key: ApiKey) -> list[ColumnElement[bool]]:
    """Return the condition limiting rows to the key's accounts."""
    if key.accounts is None:
        return []
    return [table.c.account.in_(sorted(key.accounts))]


# ------------------------------------------------------------------ record queries


_PM_FIELDS: Final = (*SERVED_BOOKKEEPING, *field_columns("payment_method"))


def _select(collection: Collection) -> Any:
    """Return the select of a collection's rows (transactions with their payment method)."""
    if collection.record_type != "transaction":
        return select(collection.table)
    pm = payment_methods
    # Tokens are sealed with random nonces: they join on their blind indexes.
    joined = transactions.outerjoin(
        pm,
        and_(
            pm.c.provider == transactions.c.provider,
            pm.c.account == transactions.c.account,
            pm.c.token_bidx == transactions.c.payment_method_bidx,
        ),
    )
    return select(transactions, *[c.label(f"pm_{c.name}") for c in pm.columns]).select_from(joined)


def _record(collection: Collection, row: Mapping[str, Any]) -> dict[str, Any]:
    """Return the served form of a row; the dump schema drops every undeclared column."""
    cipher = _store().cipher
    values = cipher.open_row(collection.table.name, row)
    if collection.record_type == "transaction":
        token = values.get("payment_method")
        if values.get("pm_pk") is not None:
            method = {c.name: values[f"pm_{c.name}"] for c in payment_methods.columns}
            values["payment_method"] = cipher.open_row(payment_methods.name, method)
        elif token is not None:
            # The transaction's event named the token before the method's own event arrived.
            values["payment_method"] = dict.fromkeys(_PM_FIELDS) | {
                "token": token,
                "provider": values["provider"],
                "account": values["account"],
            }
    dumped: dict[str, Any] = collection.item().dump(values)
    return dumped


def _list(collection: Collection, key: ApiKey) -> tuple[dict[str, Any], int]:
    args = load_query(collection.query)
    table = collection.table
    conditions = _visible(table, key)
    conditions += [_equals(table, name, args[name]) for name in collection.filters if name in args]
    if "updated_since" in args:
        conditions.append(table.c.updated_at >= args["updated_since"])
    scope = _cursor_scope(collection.path, args)
    if "cursor" in args:
        conditions.append(table.c.pk > decode_cursor(args["cursor"], scope))
    limit: int = args["limit"]
    # Keyset on pk, never OFFSET: records existing when a walk starts keep their place, and
    # ones added during it land after the cursor, so each existing record is served once.
    query = _select(collection).where(*conditions).order_by(table.c.pk).limit(limit + 1)
    with reading() as conn:
        rows = [dict(row._mapping) for row in conn.execute(query)]
    page = rows[:limit]
    next_cursor = encode_cursor(int(page[-1]["pk"]), scope) if len(rows) > limit else None
    data = [_record(collection, row) for row in page]
    return {"data": data, "next_cursor": next_cursor}, len(data)


def _one(
    collection: Collection, key: ApiKey, provider: str, ident: str
) -> tuple[dict[str, Any], int]:
    args = load_query(RecordQuery)
    if (
        not re.fullmatch(PROVIDER_PATTERN, provider)
        or not re.fullmatch(ID_PATTERN, ident)
        # No record can have such an id: storage refuses card data.
        or guard.card_data_reason(ident) is not None
    ):
        raise NotFound("no such record")
    table = collection.table
    conditions = [
        table.c.provider == provider,
        _equals(table, collection.identity, ident),
        *_visible(table, key),
    ]
    if "account" in args:
        conditions.append(table.c.account == args["account"])
    query = _select(collection).where(*conditions).order_by(table.c.pk).limit(2)
    with reading() as conn:
        rows = [dict(row._mapping) for row in conn.execute(query)]
    if not rows:
        raise NotFound("no such record")
    if len(rows) > 1:
        raise BadRequest(
            "two accounts hold a record with this id: pass account", code="ambiguous_record"
        )
    return _record(collection, rows[0]), 1


def _register(collection: Collection) -> None:
    name = collection.path.replace("-", "_")

    @audited_read
    def list_view(key: ApiKey) -> tuple[dict[str, Any], int]:
        return _list(collection, key)

    @audited_read
    def one_view(key: ApiKey, provider: str, ident: str) -> tuple[dict[str, Any], int]:
        return _one(collection, key, provider, ident)

    bp.add_url_rule(f"/{collection.path}", f"list_{name}", list_view, methods=["GET"])
    bp.add_url_rule(
        f"/{collection.path}/<provider>/<ident>", f"get_{name}", one_view, methods=["GET"]
    )


for _collection in COLLECTIONS:
    _register(_collection)


# ------------------------------------------------------------------ change feed


def _horizon() -> ColumnElement[bool] | None:
    """Return the condition holding back events a running transaction could still precede."""
    if _store().dialect != "postgresql":
        # SQLite writers are serialised from BEGIN IMMEDIATE to commit: seq order is commit order.
        return None
    # Store._insert_events_in_seq_order takes xid and seqs under one lock, so seq order is
    # xid order: every event below the oldest running xid is final, and a running one can
    # only get a higher seq.
    oldest_running: ColumnElement[int] = literal_column(
        "pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
    )
    return func.coalesce(events.c.txid, 0) < oldest_running


@bp.get("/events")
@audited_read
def list_events(key: ApiKey) -> tuple[dict[str, Any], int]:
    """Serve the change feed: events after a seq, in seq order, with the ids they touched."""
    args = load_query(EventQuery)
    after: int = args["after"]
    limit: int = args["limit"]
    conditions = [events.c.seq > after, *_visible(events, key)]
    conditions += [events.c[name] == args[name] for name in ("provider", "account") if name in args]
    horizon = _horizon()
    if horizon is not None:
        conditions.append(horizon)
    query = select(events).where(*conditions).order_by(events.c.seq).limit(limit + 1)
    with reading() as conn:
        rows = [dict(row._mapping) for row in conn.execute(query)][: limit + 1]
        page = rows[:limit]
        touched: dict[int, dict[str, list[str]]] = {
            int(row["seq"]): {record_type: [] for record_type in RECORD_TYPES} for row in page
        }
        if touched:
            objects = conn.execute(
                select(event_objects)
                .where(event_objects.c.event_seq.in_(sorted(touched)))
                .order_by(
                    event_objects.c.event_seq,
                    event_objects.c.record_type,
                    event_objects.c.object_id,
                )
            )
            cipher = _store().cipher
            for obj in objects:
                ident = obj.object_id
                if obj.record_type == "payment_method":
                    aad = Cipher.object_aad(int(obj.event_seq), obj.record_type)
                    ident = cipher.open(ident, aad)
                touched[int(obj.event_seq)].setdefault(obj.record_type, []).append(ident)
            for ids in touched.values():
                for names in ids.values():
                    names.sort()
    schema = EventOut()
    data = [schema.dump(dict(row) | {"object_ids": touched[int(row["seq"])]}) for row in page]
    next_after = int(page[-1]["seq"]) if page else after
    return {"data": data, "next_after": next_after, "has_more": len(rows) > limit}, len(data)


# ------------------------------------------------------------------ OpenAPI and docs


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


# ------------------------------------------------------------------ wiring


def init_app(app: Flask, settings: Settings, *, keyed: Iterable[Blueprint] = ()) -> None:
    """Register the read API and other keyed blueprints, the rate limit, OpenAPI and docs."""
    limiter = Limiter(
        key_func=_rate_key,
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
    app.extensions["paysieve.openapi"] = build_spec()

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
