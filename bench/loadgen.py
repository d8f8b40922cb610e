"""Pre-sign distinct provider events into a request file that bench/wrk.lua cycles through."""

from __future__ import annotations

import random
import time
from pathlib import Path

import orjson

from adapters.registry import adapter_classes
from gateway.config.settings import Settings

# A representative mix per provider: payments dominate real webhook traffic.
EVENT_MIX: dict[str, tuple[str, ...]] = {
    "stripe": (
        "payment_intent.succeeded",
        "charge.succeeded",
        "charge.succeeded",
        "charge.refunded",
        "payment_method.attached",
        "customer.subscription.updated",
        "invoice.paid",
    ),
    "razorpay": (
        "payment.authorized",
        "payment.captured",
        "payment.captured",
        "refund.processed",
        "order.paid",
        "subscription.charged",
        "token.activated",
    ),
    "paypal": (
        "PAYMENT.CAPTURE.COMPLETED",
        "PAYMENT.CAPTURE.COMPLETED",
        "PAYMENT.CAPTURE.REFUNDED",
        "CHECKOUT.ORDER.COMPLETED",
        "BILLING.SUBSCRIPTION.ACTIVATED",
        "VAULT.PAYMENT-TOKEN.CREATED",
    ),
}


def write_requests(
    path: Path,
    settings: Settings,
    provider: str,
    count: int,
    *,
    duplicate_ratio: float = 0.0,
    seed: int = 7,
) -> int:
    """Write count signed requests (a share of them repeats); return the distinct events."""
    adapter = adapter_classes()[provider](settings)
    endpoint = settings.endpoint(provider, "default")
    if endpoint is None:
        raise SystemExit(f"bench configuration has no {provider} endpoint")
    rng = random.Random(seed)
    mix = EVENT_MIX[provider]
    now = int(time.time())
    signed: list[str] = []
    distinct = 0
    for n in range(count):
        if signed and rng.random() < duplicate_ratio:
            # A redelivery: the provider sends the same bytes and signature again.
            signed.append(rng.choice(signed))
            continue
        event = adapter.sample_event(mix[n % len(mix)])
        # The separator keeps digit runs short: an id whose digits could be a card
        # number is refused as malformed, as it should be.
        event_id = str(event.get("id") or f"evt_bench{n:09d}_{rng.getrandbits(32):08x}")
        raw = orjson.dumps(event)
        headers = adapter.sign(raw, endpoint, timestamp=now, event_id=event_id)
        headers["Content-Type"] = "application/json"
        header_line = "\t".join(f"{k}: {v}" for k, v in headers.items())
        signed.append(f"/webhooks/{provider}\n{header_line}\n{raw.decode()}")
        distinct += 1
    path.write_text("\n".join(signed) + "\n", encoding="utf-8")
    return distinct
