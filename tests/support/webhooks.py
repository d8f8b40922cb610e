"""Signed deliveries: the test secrets, sample events, and a post signed as its provider signs."""

from __future__ import annotations

import time
from typing import Any

import orjson
from flask.testing import FlaskClient

from adapters.registry import adapter_classes
from gateway.config.settings import Settings

STRIPE_SECRET = "whsec_test_" + "a" * 32
STRIPE_OLD_SECRET = "whsec_test_" + "b" * 32


def stripe_endpoint(
    name: str = "default", secrets_: tuple[str, ...] = (STRIPE_SECRET,)
) -> dict[str, Any]:
    """Return a Stripe endpoint table as the TOML file would give it."""
    return {"provider": "stripe", "name": name, "webhook_secrets": list(secrets_)}


def signed_post(
    client: FlaskClient,
    provider: str,
    event: dict[str, Any] | bytes,
    *,
    endpoint: str = "default",
    event_id: str | None = None,
    timestamp: int | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    """Post an event signed the way its provider signs it, with the app's own secrets."""
    app = client.application
    settings: Settings = app.extensions["paysieve.settings"]
    adapter = app.extensions["paysieve.pipeline"].adapters[provider]
    config = settings.endpoint(provider, endpoint)
    assert config is not None
    raw = event if isinstance(event, bytes) else orjson.dumps(event)
    if event_id is None:
        event_id = str(event.get("id")) if isinstance(event, dict) else "evt_raw"
    sent = adapter.sign(raw, config, timestamp=timestamp or int(time.time()), event_id=event_id)
    sent["Content-Type"] = "application/json"
    sent.update(headers or {})
    path = f"/webhooks/{provider}" + ("" if endpoint == "default" else f"/{endpoint}")
    return client.post(path, data=raw, headers=sent)


def sample(provider: str, event_type: str, **kwargs: Any) -> dict[str, Any]:
    """Return the adapter's realistic sample event of a type."""
    return adapter_classes()[provider](Settings()).sample_event(event_type, **kwargs)
