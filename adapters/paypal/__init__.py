"""PayPal: webhooks verified by PayPal's API or offline by certificate, then minimised."""

from __future__ import annotations

from adapters.paypal.adapter import PayPalAdapter

__all__ = ["PayPalAdapter"]
