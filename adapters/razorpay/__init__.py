"""Razorpay: webhook verification with razorpay's Utility, allowlisted records out."""

from __future__ import annotations

from adapters.razorpay.adapter import SUPPORTED_EVENT_TYPES, RazorpayAdapter

__all__ = ["SUPPORTED_EVENT_TYPES", "RazorpayAdapter"]
