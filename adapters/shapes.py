"""Marshmallow fields that validate each kept value to its shape.

Every inbound schema is built from these: a value that fails its shape is
dropped by the schema (and counted by the pipeline), never stored raw.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from babel.numbers import get_currency_precision, list_currencies
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,128}\Z"
MAX_AMOUNT = 2**63 - 1
# 9999-12-31T23:59:59Z, the last second a datetime (and both databases) can hold.
MAX_EPOCH_SECONDS: Final = 253402300799

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
# ASCII digits only ("\d" also matches other scripts' digits); always fullmatch.
_RFC3339: Final = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?(?:Z|[+-][0-9]{2}:[0-9]{2})"
)
_SUBMICRO: Final = re.compile(r"(\.[0-9]{6})[0-9]+")

_CURRENCIES = frozenset(list_currencies())

# Provider words for card networks, folded to the closed set in records.BRANDS.
_BRAND_ALIASES = {
    "visa": "visa",
    "mastercard": "mastercard",
    "master_card": "mastercard",
    "mc": "mastercard",
    "amex": "amex",
    "american_express": "amex",
    "americanexpress": "amex",
    "discover": "discover",
    "diners": "diners",
    "diners_club": "diners",
    "dinersclub": "diners",
    "jcb": "jcb",
    "unionpay": "unionpay",
    "union_pay": "unionpay",
    "china_union_pay": "unionpay",
    "cup": "unionpay",
    "rupay": "rupay",
    "maestro": "maestro",
}


class StrictSchema(Schema):
    """Base of every inbound schema: what is not declared is gone."""

    class Meta:
        unknown = EXCLUDE


class Id(fields.String):
    """A provider id or reference (``ch_...``, ``pay_...``, ``WH-...``)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(validate=validate.Regexp(ID_PATTERN), allow_none=True, **kwargs)


class Last4(fields.String):
    """The last four digits of a card number."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(validate=validate.Regexp(r"^[0-9]{4}\Z"), allow_none=True, **kwargs)


class StrictInteger(fields.Integer):
    """An integer that is a JSON number: never a string, a float or a boolean."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, allow_none=True, **kwargs)

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> int:
        # bool is an int subclass in Python: JSON true must not load as 1.
        if isinstance(value, bool):
            raise self.make_error("invalid")
        return int(super()._deserialize(value, attr, data, **kwargs))


class ExpMonth(StrictInteger):
    """A card's expiry month, 1-12."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(validate=validate.Range(min=1, max=12), **kwargs)


class ExpYear(StrictInteger):
    """A card's four-digit expiry year."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(validate=validate.Range(min=1000, max=9999), **kwargs)


class Amount(StrictInteger):
    """An amount in integer minor units."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(validate=validate.Range(min=0, max=MAX_AMOUNT), **kwargs)


class Currency(fields.String):
    """An ISO 4217 currency code, upper-cased."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_none=True, **kwargs)

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> str:
        code = super()._deserialize(value, attr, data, **kwargs).upper()
        if code not in _CURRENCIES:
            raise ValidationError("Not an ISO 4217 currency.")
        return code


class Brand(fields.String):
    """A card network, normalised to the closed set (``unknown`` when unrecognised)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_none=True, **kwargs)

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> str:
        word = super()._deserialize(value, attr, data, **kwargs)
        return normalise_brand(word)


class Timestamp(StrictInteger):
    """Epoch seconds, loaded as an aware UTC datetime."""

    def _deserialize(  # type: ignore[override]
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> datetime:
        # The range is checked on the seconds: field validators would see the datetime.
        try:
            return from_epoch(super()._deserialize(value, attr, data, **kwargs))
        except ValueError as exc:
            raise ValidationError("Not epoch seconds in range.") from exc


class Word(fields.String):
    """A provider's status or type word: short, plain, no free text."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            validate=validate.Regexp(r"^[A-Za-z0-9_.-]{1,64}\Z"), allow_none=True, **kwargs
        )


def from_epoch(seconds: Any) -> datetime:
    """Return epoch seconds as an aware UTC datetime, or raise ValueError if out of range."""
    # bool is an int subclass; floats and digit strings are not epoch seconds on the wire.
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise ValueError("not integer epoch seconds")
    if not 0 <= seconds <= MAX_EPOCH_SECONDS:
        raise ValueError("epoch seconds out of range")
    # Arithmetic, not fromtimestamp: no platform time_t limit, no OverflowError or OSError.
    return _EPOCH + timedelta(seconds=seconds)


def parse_rfc3339(value: Any) -> datetime:
    """Return an aware UTC datetime for an RFC 3339 string, or raise ValueError."""
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError("not an RFC 3339 time")
    # Python 3.11 accepts at most microseconds; keep the first six digits.
    text = _SUBMICRO.sub(r"\1", value).replace("Z", "+00:00")
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except (ValueError, OverflowError):
        # A valid local time with an offset can fall past year 9999 (or before year 1)
        # in UTC. Not chained: fromisoformat's own message quotes the value.
        raise ValueError("not a representable RFC 3339 time") from None


def normalise_brand(word: str) -> str:
    """Return the closed-set brand for a provider's network word."""
    key = word.strip().lower().replace(" ", "_").replace("-", "_")
    return _BRAND_ALIASES.get(key, "unknown")


def currency_exponent(code: str) -> int:
    """Return how many minor-unit digits an ISO 4217 currency has."""
    if code.upper() not in _CURRENCIES:
        raise ValueError("not an ISO 4217 currency")
    return int(get_currency_precision(code.upper()))


def load_partial(schema: Schema, data: Any, prefix: str = "") -> tuple[dict[str, Any], list[str]]:
    """Load data, keeping the valid fields and listing the paths that failed."""
    if not isinstance(data, Mapping):
        return {}, [prefix.rstrip(".") or "<root>"]
    try:
        return schema.load(data), []
    except ValidationError as exc:
        valid = exc.valid_data if isinstance(exc.valid_data, dict) else {}
        return valid, sorted(_error_paths(exc.messages, prefix))


def _error_paths(messages: Any, prefix: str) -> list[str]:
    if isinstance(messages, dict):
        paths: list[str] = []
        for key, sub in messages.items():
            if isinstance(sub, dict):
                paths.extend(_error_paths(sub, f"{prefix}{key}."))
            else:
                paths.append(f"{prefix}{key}")
        return paths
    return [prefix.rstrip(".") or "<root>"]
