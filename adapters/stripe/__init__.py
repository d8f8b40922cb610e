"""Stripe: webhook verification with stripe's WebhookSignature, allowlisted records out."""

from __future__ import annotations

from adapters.stripe.adapter import SUPPORTED_EVENT_TYPES, StripeAdapter

__all__ = ["SUPPORTED_EVENT_TYPES", "StripeAdapter"]
