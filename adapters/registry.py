"""Map provider names to their adapter classes: the built-in providers, loaded here.

The provider packages do not import this module: it imports them.
"""

from __future__ import annotations

from adapters.base import Adapter
from adapters.paypal import PayPalAdapter
from adapters.razorpay import RazorpayAdapter
from adapters.stripe import StripeAdapter

_BUILT_IN: tuple[type[Adapter], ...] = (PayPalAdapter, RazorpayAdapter, StripeAdapter)


def _by_name(classes: tuple[type[Adapter], ...]) -> dict[str, type[Adapter]]:
    registry: dict[str, type[Adapter]] = {}
    for cls in classes:
        if cls.name in registry and registry[cls.name] is not cls:
            raise ValueError(f"adapter {cls.name!r} is registered twice")
        registry[cls.name] = cls
    return registry


_REGISTRY = _by_name(_BUILT_IN)


def adapter_classes() -> dict[str, type[Adapter]]:
    """Return every known adapter class by provider name."""
    return dict(_REGISTRY)
