"""The webhook routes providers post to."""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, cast

import orjson
from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from gateway.core.errors import PayloadTooLarge
from gateway.ingest.pipeline import Pipeline
from gateway.ingest.sources import SourceNetworks
from gateway.observability import metrics

bp = Blueprint("webhooks", __name__)


@bp.post("/webhooks/<provider>", defaults={"endpoint": "default"})
@bp.post("/webhooks/<provider>/<endpoint>")
def receive(provider: str, endpoint: str) -> Response:
    """Verify, minimise and store one provider delivery."""
    pipeline: Pipeline = current_app.extensions["paysieve.pipeline"]
    adapter, config = pipeline.route(provider, endpoint)
    sources: SourceNetworks = current_app.extensions["paysieve.sources"]
    with metrics.observe_delivery(adapter.name, config.name) as seen:
        # Before the body is read: a delivery from outside the allowlist costs nothing.
        sources.check(config, request.remote_addr)
        pipeline.check_content_type(request.mimetype)
        limit = pipeline.settings.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise PayloadTooLarge("the body is larger than the gateway accepts")
        raw_body = read_body(request.stream, limit)
        # Headers is a case-insensitive multi-dict; adapters only call .get() on it.
        headers = cast("Mapping[str, str]", request.headers)
        outcome = pipeline.process(adapter, config, raw_body, headers)
        seen.outcome, seen.dropped = outcome.status, outcome.dropped
    # orjson: this answer is sent once per delivery, and Flask's jsonify costs more.
    body = orjson.dumps({"status": outcome.status, "event_id": outcome.event_id})
    return Response(body, status=200, mimetype="application/json")


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
