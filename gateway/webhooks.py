"""The webhook routes providers post to."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from gateway.errors import PayloadTooLarge
from gateway.pipeline import Pipeline

bp = Blueprint("webhooks", __name__)


@bp.post("/webhooks/<provider>", defaults={"endpoint": "default"})
@bp.post("/webhooks/<provider>/<endpoint>")
def receive(provider: str, endpoint: str) -> Response:
    """Verify, minimise and store one provider delivery."""
    pipeline: Pipeline = current_app.extensions["paysieve.pipeline"]
    adapter, config = pipeline.route(provider, endpoint)
    pipeline.check_content_type(request.mimetype)
    limit = pipeline.settings.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge("the body is larger than the gateway accepts")
    try:
        # Werkzeug stops reading a chunked body at the limit too.
        raw_body = request.get_data(cache=False)
    except RequestEntityTooLarge as exc:
        raise PayloadTooLarge("the body is larger than the gateway accepts") from exc
    outcome = pipeline.process(adapter, config, raw_body, request.headers)
    return jsonify({"status": outcome.status, "event_id": outcome.event_id})
