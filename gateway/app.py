"""The application factory."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from adapters.base import Adapter
from adapters.registry import adapter_classes
from gateway.api import audit_log, customers, health, wiring
from gateway.api.openapi import build_spec
from gateway.config.settings import Settings, load_settings
from gateway.core.crypto import cipher_from_settings
from gateway.core.errors import ConfigurationError
from gateway.ingest import webhooks
from gateway.ingest.pipeline import Pipeline
from gateway.ingest.sources import SourceNetworks
from gateway.observability import logs, metrics
from gateway.outbound import routes as outbound_routes
from gateway.privacy import data_keys
from gateway.storage.engine import make_engine
from gateway.storage.store import Store
from gateway.web import http

log = logging.getLogger(__name__)


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the gateway from defaults, the config file, the environment and test overrides."""
    overrides = dict(test_config or {})
    testing = bool(overrides.pop("TESTING", False))
    settings = load_settings(overrides=overrides)
    if not testing:
        logs.configure(settings.log_level)

    # No static folder: /docs serves its own assets, and nothing else is a file.
    app = Flask(__name__, static_folder=None)
    app.config.update(
        TESTING=testing,
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        # Flask's automatic OPTIONS answer is an empty HTML page; without it OPTIONS is a
        # JSON 405 like any other method a route does not take.
        PROVIDE_AUTOMATIC_OPTIONS=False,
    )
    # Werkzeug redirects "//" and missing trailing slashes with an HTML page whose Location
    # repeats the path; without these a path is found as sent or answered with a JSON 404.
    app.url_map.merge_slashes = False
    app.url_map.strict_slashes = False
    # Providers post bodies with their own field order; never re-sort JSON answers.
    app.json.sort_keys = False  # type: ignore[attr-defined]

    cipher = cipher_from_settings(settings.data_keys, settings.data_keys_file, settings.index_key)
    store = Store(make_engine(settings.database_url), cipher)
    # Refuse to serve data no configured key opens, before the first request finds out.
    try:
        data_keys.check_keys(store)
    except ConfigurationError:
        store.engine.dispose()
        raise
    adapters = build_adapters(settings)
    app.extensions["paysieve.settings"] = settings
    app.extensions["paysieve.store"] = store
    app.extensions["paysieve.pipeline"] = Pipeline(settings, store, adapters)
    app.extensions["paysieve.sources"] = SourceNetworks(settings)
    # The provider routes as plain WSGI in front of Flask, behind ProxyFix (which must
    # see every request first).
    webhooks.install(app)
    if settings.trusted_proxy_hops:
        # Only then are X-Forwarded-For/-Proto believed: remote_addr (source allowlists, rate
        # limits) becomes the address the last trusted hop saw, not the load balancer's.
        hops = settings.trusted_proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]

    http.init_app(app)
    metrics.init_app(app)
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(health.bp)
    # Every keyed route, each under the read API's rate limit.
    wiring.init_app(
        app,
        settings,
        keyed=(audit_log.bp, customers.bp, outbound_routes.bp),
        operations=outbound_routes.operations(),
    )
    return app


def openapi_document() -> dict[str, Any]:
    """Return the OpenAPI document /openapi.json serves, every keyed route in it."""
    return build_spec(outbound_routes.operations())


def preflight(settings: Settings | None = None) -> Settings:
    """Check what create_app would refuse, without building an app: the settings, the keys,
    each provider's configuration, and (when the database answers) the stored key ids.

    gunicorn's master runs it before forking (gunicorn.conf.py), so a configuration error
    is one line there, not one traceback per worker.
    """
    settings = load_settings() if settings is None else settings
    cipher = cipher_from_settings(settings.data_keys, settings.data_keys_file, settings.index_key)
    for name, cls in sorted(adapter_classes().items()):
        adapter = cls(settings)
        for endpoint in settings.endpoints:
            if endpoint.provider == name:
                adapter.enabled(endpoint)
    store = Store(make_engine(settings.database_url), cipher)
    try:
        # An unreachable database is not refused here: workers answer 503 until it is back.
        data_keys.check_keys(store)
    finally:
        store.engine.dispose()
    return settings


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
