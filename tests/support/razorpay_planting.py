"""Plant personal data and card numbers in every free-text field of a Razorpay event."""

from __future__ import annotations

from typing import Any

from tests.support.planting import PANS, Planter

# Razorpay keys that carry free text or personal data (card.name, customer
# details, addresses, dispute evidence, link customers, ...).
FREE_TEXT = frozenset(
    {
        "description",
        "email",
        "contact",
        "vpa",
        "name",
        "iin",
        "token_iin",
        "receipt",
        "comment",
        "terms",
        "customer_name",
        "customer_email",
        "customer_contact",
        "gstin",
        "line1",
        "line2",
        "zipcode",
        "city",
        "summary",
        "reference_id",
        "short_url",
        "callback_url",
        "payer_name",
        "error_description",
        "invoice_number",
    }
)
# Personal data the samples carry that planting may not reach: never stored either.
PERSONAL = ["Gaurav", "gaurav.kumar", "9876543210", "Millennium Tower", "24AABCJ1087G1ZT"]


def plant(event: dict[str, Any]) -> list[str]:
    """Plant in every free-text field and notes (values and keys); return what was planted."""
    planter = Planter()
    counter = iter(range(10_000))

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key in list(node):
                child = node[key]
                if key == "notes":
                    pan = PANS[next(counter) % len(PANS)].replace(" ", "").replace("-", "")
                    pan = pan.replace(".", "")
                    planter.planted.append(pan)
                    node[key] = {pan: planter.value(), "note": planter.value()}
                elif key in FREE_TEXT and (child is None or isinstance(child, str)):
                    node[key] = planter.value()
                else:
                    walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(event)
    event["x_unknown"] = {"card_number": "5105105105105100"}
    return [*planter.planted, "5105105105105100", *PERSONAL]
