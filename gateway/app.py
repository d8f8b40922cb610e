"""The application factory."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask

from adapters.base import Adapter
from adapters.registry import adapter_classes
from gateway import health, http, logs, webhooks
from gateway.pipeline import Pipeline
from gateway.settings import Settings, load_settings
from gateway.store import Store, make_engine

log = logging.getLogger(__name__)


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the gateway from defaults, the config file, the environment and test overrides."""
    overrides = dict(test_config or {})
    testing = bool(overrides.pop("TESTING", False))
    settings = load_settings(overrides=overrides)
    if not testing:
        logs.configure(settings.log_level)

    app = Flask(__name__)
    app.config.update(TESTING=testing, MAX_CONTENT_LENGTH=settings.max_body_bytes)
    # Providers post bodies with their own field order; never re-sort JSON answers.
    app.json.sort_keys = False  # type: ignore[attr-defined]

    store = Store(make_engine(settings.database_url))
    adapters = build_adapters(settings)
    app.extensions["paysieve.settings"] = settings
    app.extensions["paysieve.store"] = store
    app.extensions["paysieve.pipeline"] = Pipeline(settings, store, adapters)

    http.init_app(app)
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(health.bp)
    return app


def build_adapters(settings: Settings) -> dict[str, Adapter]:
    """Instantiate every provider adapter and log which endpoints are enabled."""
    adapters: dict[str, Adapter] = {}
    for name, cls in sorted(adapter_classes().items()):
        adapter = cls(settings)
        adapters[name] = adapter
        enabled = [e.name for e in settings.endpoints if e.provider == name and adapter.enabled(e)]
        if enabled:
            log.info("provider %s enabled for endpoints: %s", name, ", ".join(enabled))
        else:
            log.warning("provider %s is disabled: %s", name, adapter.how_to_enable())
    return adapters
