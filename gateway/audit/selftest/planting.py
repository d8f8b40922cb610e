"""Plant card numbers and personal data in provider payloads.

Generation draws from a ``random.Random`` that hypothesis supplies
(``st.randoms()``), so every case is reproducible from hypothesis's seed and
a payload costs microseconds, not a draw per value.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

# (brand, IIN prefix, length): every brand the guard knows, short and long forms.
CARD_BRANDS: Final[tuple[tuple[str, str, int], ...]] = (
    ("visa", "4", 16),
    ("visa", "4", 13),
    ("visa", "4", 19),
    ("mastercard", "51", 16),
    ("mastercard", "55", 16),
    ("mastercard", "2221", 16),
    ("mastercard", "2720", 16),
    ("amex", "34", 15),
    ("amex", "37", 15),
    ("discover", "6011", 16),
    ("discover", "644", 16),
    ("discover", "65", 19),
    ("diners", "300", 14),
    ("diners", "36", 14),
    ("diners", "38", 16),
    ("jcb", "3528", 16),
    ("jcb", "3589", 19),
    ("unionpay", "62", 16),
    ("unionpay", "81", 19),
    ("rupay", "60", 16),
    ("rupay", "508", 16),
    ("rupay", "353", 16),
    ("maestro", "50", 12),
    ("maestro", "6759", 18),
)

# Keys that carry free text or personal data in Stripe, Razorpay and PayPal payloads.
FREE_TEXT_KEYS: Final = frozenset(
    {
        "description",
        "name",
        "email",
        "phone",
        "receipt_email",
        "line1",
        "line2",
        "city",
        "postal_code",
        "statement_descriptor",
        "customer_email",
        "customer_name",
        "customer_phone",
        "client_reference_id",
        "footer",
        "custom_id",
        "note_to_payer",
        "summary",
        "vpa",
        "contact",
        "given_name",
        "surname",
        "full_name",
        "email_address",
        "address_line_1",
        "address_line_2",
        "admin_area_1",
        "admin_area_2",
        "national_number",
        "soft_descriptor",
        "comment",
        "seller_message",
        "failure_message",
        "nickname",
        "custom",
        "invoice_number",
        "reason",
        "account_number",
    }
)
FREE_FORM_KEYS: Final = frozenset({"metadata", "notes"})

_FIRST: Final = ("Jenny", "Rahul", "Amélie", "Olu", "Mei", "José", "Zoë", "Ivan")
_LAST: Final = ("Rosen", "Sharma", "Dubois", "Adeyemi", "Chen", "García", "Müller", "Petrov")


def luhn_complete(body: str) -> str:
    """Return body with the Luhn check digit appended."""
    total = 0
    for index, char in enumerate(reversed(body)):
        digit = int(char)
        if index % 2 == 0:
            digit *= 2
            digit -= 9 if digit > 9 else 0
        total += digit
    return body + str((10 - total % 10) % 10)


def card_number(rng: random.Random) -> str:
    """Return a brand-shaped, Luhn-valid card number (digits only)."""
    _brand, prefix, length = rng.choice(CARD_BRANDS)
    middle = "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
    return luhn_complete(prefix + middle)


def formatted(pan: str, separator: str) -> str:
    """Return a PAN in groups of four joined by a separator ("" for none)."""
    if not separator:
        return pan
    return separator.join(pan[i : i + 4] for i in range(0, len(pan), 4))


@dataclass
class Plants:
    """Everything planted in one payload, in every form it was written."""

    values: list[str] = field(default_factory=list)
    pans: list[str] = field(default_factory=list)

    def needles(self) -> list[str]:
        """Return the strings that must appear nowhere (every PAN digits-only too)."""
        return [*self.values, *self.pans]


def personal_data(rng: random.Random) -> str:
    """Return a unique piece of personal data: a name, an e-mail address, a phone, an address."""
    marker = "".join(rng.choice("abcdefghjkmnpqrstuvwxyz") for _ in range(12))
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    kind = rng.choice(("email", "name", "phone", "address"))
    if kind == "email":
        return f"{first.lower()}.{marker}@example.com"
    if kind == "phone":
        return f"+44 7700 900{rng.randint(100, 999)} {marker}"
    if kind == "address":
        return f"{rng.randint(1, 999)} {marker} Street, {first}ville"
    return f"{first} {marker} {last}"


def planted_value(rng: random.Random, plants: Plants) -> Any:
    """Return a value to plant: a card number (string, text or JSON number) or personal data."""
    if rng.random() < 0.5:
        pan = card_number(rng)
        plants.pans.append(pan)
        style = rng.choice(("string", "number", "spaced", "dashed", "dotted", "text"))
        if style == "number":
            return int(pan)
        if style == "text":
            text = f"card {formatted(pan, ' ')} exp 12/30"
            plants.values.append(text)
            return text
        separator = {"string": "", "spaced": " ", "dashed": "-", "dotted": "."}[style]
        shown = formatted(pan, separator)
        plants.values.append(shown)
        return shown
    text = personal_data(rng)
    plants.values.append(text)
    return text


def extra_key(rng: random.Random, plants: Plants) -> str:
    """Return an extra key: an unknown field name, a card number, or personal data."""
    kind = rng.choice(("name", "name", "pan", "pan_spaced", "personal"))
    if kind == "name":
        return "x_" + "".join(
            rng.choice("abcdefghijklmnopqrstuvwxyz_") for _ in range(rng.randint(1, 12))
        )
    if kind == "personal":
        text = personal_data(rng)
        plants.values.append(text)
        return text
    pan = card_number(rng)
    plants.pans.append(pan)
    shown = formatted(pan, " " if kind == "pan_spaced" else "")
    plants.values.append(shown)
    return shown


def replace_free_text(node: Any, make: Callable[[], str], plants: Plants) -> None:
    """Replace every free-text and free-form value of a payload with planted data, in place."""
    if isinstance(node, dict):
        for key in list(node):
            child = node[key]
            if key in FREE_FORM_KEYS:
                text = make()
                plants.values.append(text)
                node[key] = {"note": text}
            elif key in FREE_TEXT_KEYS and (child is None or isinstance(child, str)):
                text = make()
                plants.values.append(text)
                node[key] = text
            else:
                replace_free_text(child, make, plants)
    elif isinstance(node, list):
        for child in node:
            replace_free_text(child, make, plants)


def containers(node: Any) -> tuple[list[dict[str, Any]], list[list[Any]]]:
    """Return every object and every array inside a payload."""
    objects: list[dict[str, Any]] = []
    arrays: list[list[Any]] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            objects.append(current)
            stack.extend(current.values())
        elif isinstance(current, list):
            arrays.append(current)
            stack.extend(current)
    return objects, arrays


def noisy(rng: random.Random, base: dict[str, Any], plants: Plants) -> dict[str, Any]:
    """Return a copy of a payload with extra keys and array items planted at random depths."""
    payload = copy.deepcopy(base)
    objects, arrays = containers(payload)
    for _ in range(rng.randint(1, 8)):
        target = rng.choice(objects)
        key = extra_key(rng, plants)
        shape = rng.choice(("value", "object", "array"))
        if shape == "value":
            value: Any = planted_value(rng, plants)
        elif shape == "object":
            value = {extra_key(rng, plants): planted_value(rng, plants)}
        else:
            value = [planted_value(rng, plants), {"x_nested": planted_value(rng, plants)}]
        target[key] = value
    for _ in range(rng.randint(0, 2) if arrays else 0):
        # Appended, never inserted: adapters read the first item of some lists.
        rng.choice(arrays).append(planted_value(rng, plants))
    return payload
