"""Plant personal data and card numbers in every free-text field a provider sends."""

from __future__ import annotations

import secrets
from typing import Any

from gateway.audit.selftest import planting as selftest_planting

# Card numbers in the shapes they hide in: bare, spaced, dashed, dotted; every brand.
PANS = (
    "4242424242424242",
    "4000 0566 5566 5556",
    "5555-5555-5555-4444",
    "2223.0031.2200.3222",
    "378282246310005",
    "6011 1111 1111 1117",
    "3566002020360505",
    "6200000000000005",
)

# The shipped self-test's list, plus Stripe and PayPal fields that also carry
# personal data or links (Razorpay keeps invoice_id: tests/razorpay_planting.py).
FREE_TEXT_KEYS = selftest_planting.FREE_TEXT_KEYS | {
    "fingerprint",
    "iin",
    "invoice_id",
    "receipt_url",
    "hosted_invoice_url",
    "invoice_pdf",
    "url",
    "success_url",
    "cancel_url",
}
FREE_FORM_KEYS = frozenset({"metadata", "notes"})


class Planter:
    """Replace free text with unique planted values and remember each one."""

    def __init__(self) -> None:
        self.planted: list[str] = []
        self._n = 0

    def value(self) -> str:
        """Return a new planted value: alternately a card number and personal data."""
        self._n += 1
        marker = secrets.token_hex(4)
        if self._n % 2:
            pan = PANS[self._n // 2 % len(PANS)]
            self.planted.append(pan)
            return f"card {pan} ref {marker}"
        text = f"Planted Person {marker} planted.{marker}@example.com"
        self.planted.append(text)
        return text

    def plant(self, node: Any) -> Any:
        """Walk a payload and plant in every free-text and free-form field, in place."""
        if isinstance(node, dict):
            for key in list(node):
                child = node[key]
                if key in FREE_FORM_KEYS:
                    pan = PANS[self._n % len(PANS)]
                    self.planted.append(pan.replace(" ", "").replace("-", "").replace(".", ""))
                    extra = {pan.replace(" ", "").replace("-", "").replace(".", ""): self.value()}
                    node[key] = (
                        (child if isinstance(child, dict) else {}) | extra | {"note": self.value()}
                    )
                elif key in FREE_TEXT_KEYS and (child is None or isinstance(child, str)):
                    node[key] = self.value()
                else:
                    self.plant(child)
        elif isinstance(node, list):
            for child in node:
                self.plant(child)
        return node


def plant(event: dict[str, Any]) -> list[str]:
    """Plant in a whole event (and an unknown nested key) and return the planted values."""
    planter = Planter()
    planter.plant(event)
    planter.planted.append("5105105105105100")
    event["x_unknown"] = {"nested": [{"5105105105105100": 5105105105105100}]}
    return planter.planted
