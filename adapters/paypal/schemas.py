"""Load schemas for the PayPal resources paysieve keeps fields from.

Each schema declares the PayPal key names it reads; everything else (payer,
shipping, payee, names, addresses, free text, links) is excluded by
``StrictSchema``. Nested objects (amount, related ids, card, vault
attributes) get their own schema and are loaded separately with
``load_partial``, so one bad inner field costs that field, not the object.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from marshmallow import ValidationError, fields, validate

from adapters.shapes import (
    MAX_AMOUNT,
    Brand,
    Currency,
    Id,
    Last4,
    StrictSchema,
    Word,
    parse_rfc3339,
)

# PayPal's money value: digits, optionally a point and more digits. No sign,
# no exponent, no spaces; how many decimals are allowed depends on the currency.
# ASCII digits only ("\d" also matches other scripts' digits); always fullmatch
# (a "$" would let a trailing newline through).
_DECIMAL: Final = re.compile(r"([0-9]{1,19})(?:\.([0-9]{1,9}))?")
_EXPIRY: Final = re.compile(r"([0-9]{4})-([0-9]{2})")


def to_minor_units(value: Any, exponent: int) -> int:
    """Return a PayPal decimal string as integer minor units, or raise ValueError."""
    if not isinstance(value, str):
        raise ValueError("amount value is not a string")
    match = _DECIMAL.fullmatch(value)
    if match is None:
        raise ValueError("amount value is not a plain decimal")
    fraction = match.group(2) or ""
    if len(fraction) > exponent:
        raise ValueError("amount has more decimals than its currency allows")
    minor = int(Decimal(value).scaleb(exponent))
    if minor > MAX_AMOUNT:
        raise ValueError("amount is out of range")
    return minor


class Rfc3339(fields.Field[datetime]):
    """An RFC 3339 time, loaded as an aware UTC datetime."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_none=True, **kwargs)

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> datetime:
        try:
            return parse_rfc3339(value)
        except ValueError as exc:
            raise ValidationError("Not an RFC 3339 time.") from exc


class Expiry(fields.Field[tuple[int, int]]):
    """A card expiry as PayPal sends it (``YYYY-MM``), loaded as (year, month)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_none=True, **kwargs)

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> tuple[int, int]:
        match = _EXPIRY.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            raise ValidationError("Not a YYYY-MM expiry.")
        year, month = int(match.group(1)), int(match.group(2))
        if not (1000 <= year <= 9999 and 1 <= month <= 12):
            raise ValidationError("Not a YYYY-MM expiry.")
        return year, month


class MoneySchema(StrictSchema):
    """A PayPal money object; the value is converted once the currency is known."""

    currency_code = Currency(required=True)
    # Shape is checked by to_minor_units, which knows the currency's exponent.
    value = fields.String(required=True)


class RelatedIdsSchema(StrictSchema):
    """The ids PayPal links a capture, authorization or refund to."""

    order_id = Id()
    authorization_id = Id()
    capture_id = Id()


class CaptureSchema(StrictSchema):
    """A capture's id and status (its amount and related ids load separately)."""

    id = Id()
    status = Word()


class AuthorizationSchema(StrictSchema):
    """An authorization's id and status."""

    id = Id()
    status = Word()


class RefundSchema(StrictSchema):
    """A refund's id and status."""

    id = Id()
    status = Word()


class LinkSchema(StrictSchema):
    """One HATEOAS link: only its relation and target are read, to find ids."""

    rel = Word()
    href = fields.String(validate=validate.Length(max=512), allow_none=True)


class OrderSchema(StrictSchema):
    """A checkout order's id and status."""

    id = Id()
    status = Word()


class CardSchema(StrictSchema):
    """The card a payment source or vault token carries: brand, last digits, expiry."""

    brand = Brand()
    last_digits = Last4()
    expiry = Expiry()


class VaultAttributesSchema(StrictSchema):
    """The vault token a card was saved as."""

    id = Id()
    status = Word()


class CustomerRefSchema(StrictSchema):
    """A PayPal vault customer reference."""

    id = Id()


class PaymentTokenSchema(StrictSchema):
    """A vault payment token's id."""

    id = Id()


class SubscriptionSchema(StrictSchema):
    """A subscription's ids and status."""

    id = Id()
    plan_id = Id()
    status = Word()


class BillingInfoSchema(StrictSchema):
    """When a subscription next bills (the end of the current period)."""

    next_billing_time = Rfc3339()


# -- Payments v1 (sales, their refunds and reversals, authorizations) -----------------


class MoneyV1Schema(StrictSchema):
    """A Payments v1 amount (``total`` and ``currency``; its ``details`` are never read)."""

    currency = Currency(required=True)
    # Shape is checked by to_minor_units, which knows the currency's exponent.
    total = fields.String(required=True)


class SaleSchema(StrictSchema):
    """A v1 sale: its id, state, billing agreement (the subscription) and parent payment."""

    id = Id()
    state = Word()
    billing_agreement_id = Id()
    parent_payment = Id()


class SaleRefundSchema(StrictSchema):
    """A v1 refund or reversal of a sale: its id, state, the sale and the parent payment."""

    id = Id()
    state = Word()
    sale_id = Id()
    parent_payment = Id()


class AuthorizationV1Schema(StrictSchema):
    """A v1 authorization: its id, state and parent payment."""

    id = Id()
    state = Word()
    parent_payment = Id()
