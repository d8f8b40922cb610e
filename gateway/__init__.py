"""paysieve: verified payment webhooks in, an audited allowlist of fields stored."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the gateway app (``gunicorn 'gateway:create_app()'``)."""
    # Imported here so adapters can import gateway modules without a cycle.
    from gateway.app import create_app as factory

    return factory(test_config)


__all__ = ["create_app"]
