"""Map provider names to their adapter classes."""

from __future__ import annotations

from adapters.base import Adapter

_REGISTRY: dict[str, type[Adapter]] = {}


def register(cls: type[Adapter]) -> type[Adapter]:
    """Add an adapter class under its name (a class decorator)."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"adapter {cls.name!r} is registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def adapter_classes() -> dict[str, type[Adapter]]:
    """Return every known adapter class by provider name."""
    _load_builtin()
    return dict(_REGISTRY)


def _load_builtin() -> None:
    # Importing a provider package registers it.
    import adapters.paypal  # noqa: F401
    import adapters.razorpay  # noqa: F401
    import adapters.stripe  # noqa: F401
