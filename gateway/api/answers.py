"""Query arguments in, JSON answers out: validation, and no card data ever served."""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from typing import Any, Final

import orjson
from flask import Response, current_app, request
from marshmallow import Schema, ValidationError

from gateway.core import guard
from gateway.core.errors import BadRequest
from gateway.observability import metrics
from gateway.web.http import route_template

log = logging.getLogger(__name__)

# Card numbers have 12-19 digits: a shorter string or a smaller integer cannot hold one.
_SHORTEST_CARD_TEXT: Final = 12
_SMALLEST_CARD_NUMBER: Final = 10**11

# Answer fields that hold an event id (the change feed's id, a record's last event).
_EVENT_ID_FIELDS: Final = frozenset({"id", "last_event_id"})


def json_answer(payload: Mapping[str, Any]) -> Response:
    """Return a read-API answer as JSON, every value holding card data withheld first."""
    withhold_card_data(payload, route_template())
    # orjson, not jsonify: a 100-record page is encoded several times faster. Anything it
    # cannot encode itself (none of the serializers' values) goes to Flask's own default.
    body = orjson.dumps(payload, default=current_app.json.default)  # type: ignore[attr-defined]
    return Response(body, mimetype="application/json")


def withhold_card_data(payload: Mapping[str, Any], where: str) -> None:
    """Withhold, in place, every value of a served payload that holds card data.

    The second line behind the storage boundary: rows written before it, or by hand, are
    still never served, by the read API or by an outbound webhook. Withheld values are
    logged by JSON path, never by value.
    """
    withheld: list[tuple[str, str]] = []
    _withhold(payload, "$", withheld)
    for path, reason in withheld:
        metrics.served_value_withheld(where, reason)
        log.warning("withheld card data (%s) at %s from an answer on %s", reason, path, where)


def _withhold(node: Any, path: str, withheld: list[tuple[str, str]]) -> None:
    """Replace, in place, each string or integer under node holding card data; note its path."""
    is_object = isinstance(node, dict)
    for name in node.keys() if is_object else range(len(node)):
        value = node[name]
        if isinstance(value, str):
            if len(value) < _SHORTEST_CARD_TEXT:
                continue
            # An event id is read as event ids are stored (gateway.storage.tables.EventId): a
            # PayPal id group by group. Record ids named "id" only ever passed the plain check.
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


@functools.cache
def _query_schema(schema: type[Schema]) -> Schema:
    """Return the one instance of a query schema (an instance deep-copies its fields)."""
    return schema()


def load_query(schema: type[Schema]) -> dict[str, Any]:
    """Load query arguments; a failure names our parameter, never the value sent."""
    if any(len(values) > 1 for values in request.args.listvalues()):
        raise BadRequest("a query parameter is repeated", code="invalid_parameter")
    instance = _query_schema(schema)
    try:
        loaded: dict[str, Any] = instance.load(request.args.to_dict())
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {}
        known = sorted(name for name in messages if name in instance.fields)
        if not known:
            raise BadRequest("unknown query parameter", code="invalid_parameter") from None
        raise BadRequest(f"invalid query parameter: {known[0]}", code="invalid_parameter") from None
    for name, value in sorted(loaded.items()):
        # No stored value holds card data, and storage refuses to be asked for one. Numbers
        # too: a change feed's `after` is echoed as next_after, which the served-value
        # check would have to withhold (a null where the document promises an integer).
        if isinstance(value, str | int) and not isinstance(value, bool):
            if guard.card_data_reason(value) is not None:
                raise BadRequest(f"invalid query parameter: {name}", code="invalid_parameter")
    return loaded
