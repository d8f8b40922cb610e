"""Plant personal data and card numbers in every free-text field a provider sends."""

from __future__ import annotations

import copy
import secrets
import string
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine

from gateway.audit.selftest import planting as selftest_planting
from tests.support.database import assert_nowhere
from tests.support.webhooks import signed_post

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


# Card numbers shaped like a provider id (no spaces): only the guard stands between them and
# storage when they arrive in an id field.
ID_SHAPED_PANS = (
    "4242424242424242",
    "5555-5555-5555-4444",
    "2223.0031.2200.3222",
    "378282246310005",
)

Path = tuple[str | int, ...]


def leaf_paths(node: Any, path: Path = ()) -> list[Path]:
    """Return the path of every scalar (string, number, boolean, null) in a payload."""
    if isinstance(node, dict):
        return [p for key, child in node.items() for p in leaf_paths(child, (*path, key))]
    if isinstance(node, list):
        return [p for index, child in enumerate(node) for p in leaf_paths(child, (*path, index))]
    return [path]


def _get_at(node: Any, path: Path) -> Any:
    for step in path:
        node = node[step]
    return node


def _set_at(node: Any, path: Path, value: Any) -> None:
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value


def each_leaf_planted(event: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], list[str]]]:
    """Yield (path, event with that one field planted, needles) for every field of an event.

    Each field gets, in turn, an id-shaped card number and personal data (a name
    with an e-mail address), whatever it held; a number field also gets the card
    number as a JSON number.
    """
    for index, path in enumerate(leaf_paths(event)):
        pan = ID_SHAPED_PANS[index % len(ID_SHAPED_PANS)]
        digits = pan.replace("-", "").replace(".", "")
        marker = secrets.token_hex(4)
        person = f"Planted Person {marker} planted.{marker}@example.com"
        plants: list[tuple[Any, list[str]]] = [(pan, [pan, digits]), (person, [person])]
        original = _get_at(event, path)
        if isinstance(original, int | float) and not isinstance(original, bool):
            plants.append((int(digits), [digits]))
        for value, needles in plants:
            planted = copy.deepcopy(event)
            _set_at(planted, path, value)
            yield ".".join(str(step) for step in path), planted, needles


def _letters(length: int) -> str:
    return "".join(secrets.choice(string.ascii_letters) for _ in range(length))


# Every read route that can serve what a delivery stored (MAX_LIMIT rows each).
READ_ROUTES = (
    "/v1/transactions?limit=500",
    "/v1/payment-methods?limit=500",
    "/v1/subscriptions?limit=500",
    "/v1/events?after=0&limit=500",
)


def assert_each_leaf_stays_out(
    client: FlaskClient,
    provider: str,
    event: dict[str, Any],
    *,
    engine: Engine,
    database_url: str,
    caplog: pytest.LogCaptureFixture,
    auth: dict[str, str],
) -> int:
    """Post an event once per planted field; assert no needle is stored, logged or served.

    Every delivery gets a fresh event id (in the body, or in Razorpay's header) so
    none is a duplicate, unless the planted field is the event id itself. Returns
    how many deliveries were stored.
    """
    stored = 0
    for path, planted, needles in each_leaf_planted(event):
        fresh = ("WH-" + _letters(20).upper()) if provider == "paypal" else "evt_" + _letters(24)
        if "id" in planted and path != "id":
            planted["id"] = fresh
        caplog.clear()
        response = signed_post(client, provider, planted, event_id=fresh)
        assert response.status_code in (200, 400), (path, response.status_code)
        stored += response.status_code == 200 and response.get_json()["status"] == "stored"
        texts = [response.get_data(as_text=True), caplog.text]
        texts += [client.get(route, headers=auth).get_data(as_text=True) for route in READ_ROUTES]
        try:
            assert_nowhere(needles, engine, database_url, *texts)
        except AssertionError as exc:
            raise AssertionError(f"planted in {path}: {exc}") from None
    return stored
