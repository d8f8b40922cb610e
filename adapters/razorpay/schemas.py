"""Load schemas for the Razorpay entities paysieve keeps fields from.

Each schema declares the Razorpay key names it reads; everything else in the
entity (``email``, ``contact``, ``vpa``, ``notes``, ``description``,
``acquirer_data``, ``bank``, ``wallet``, ``card.name``, ``card.iin``,
addresses, ...) is excluded by ``StrictSchema``. A payment's card and a
token's card get their own schemas and are loaded separately with
``load_partial``, so one bad inner field costs that field, not the object.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from adapters.shapes import (
    Amount,
    Brand,
    Currency,
    ExpMonth,
    ExpYear,
    Id,
    Last4,
    StrictSchema,
    Timestamp,
    Word,
)

# Always fullmatch: a "$" would let a trailing newline through.
_SHORT_DIGITS = re.compile(r"[0-9]{1,4}")


def _digits_to_int(value: Any) -> Any:
    # Razorpay's card APIs send expiry as 2 in some places and "02" in others.
    if isinstance(value, str) and _SHORT_DIGITS.fullmatch(value):
        return int(value)
    return value


class RazorpayExpMonth(ExpMonth):
    """A card's expiry month, sent as a number or a digit string."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> int:
        return int(super()._deserialize(_digits_to_int(value), attr, data, **kwargs))


class RazorpayExpYear(ExpYear):
    """A card's four-digit expiry year, sent as a number or a digit string."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> int:
        return int(super()._deserialize(_digits_to_int(value), attr, data, **kwargs))


class CreatedSchema(StrictSchema):
    """The creation time every Razorpay event and entity may carry."""

    created_at = Timestamp()


class PaymentSchema(StrictSchema):
    """A payment's ids, status and money."""

    id = Id()
    status = Word()
    # "partial" or "full" once refunds exist; the payment's status stays "captured" for partial.
    refund_status = Word()
    amount = Amount()
    amount_refunded = Amount()
    currency = Currency()
    order_id = Id()
    invoice_id = Id()
    customer_id = Id()
    token_id = Id()
    card_id = Id()


class CardSchema(StrictSchema):
    """The card of a payment: its id, network, last four digits and expiry."""

    id = Id()
    network = Brand()
    last4 = Last4()
    expiry_month = RazorpayExpMonth()
    expiry_year = RazorpayExpYear()


class RefundSchema(StrictSchema):
    """A refund's ids, status and money."""

    id = Id()
    status = Word()
    amount = Amount()
    currency = Currency()
    payment_id = Id()


class DisputeSchema(StrictSchema):
    """A dispute's ids, status and money."""

    id = Id()
    status = Word()
    amount = Amount()
    currency = Currency()
    payment_id = Id()


class InvoiceSchema(StrictSchema):
    """An invoice's ids, status and total."""

    id = Id()
    status = Word()
    amount = Amount()
    currency = Currency()
    customer_id = Id()
    order_id = Id()
    payment_id = Id()
    subscription_id = Id()


class SubscriptionSchema(StrictSchema):
    """A subscription's ids, status and current period."""

    id = Id()
    status = Word()
    plan_id = Id()
    customer_id = Id()
    current_end = Timestamp()


class TokenSchema(StrictSchema):
    """A saved payment method (token): its id, customer, status and expiry instant."""

    id = Id()
    status = Word()
    customer_id = Id()
    expired_at = Timestamp()


class TokenCardSchema(StrictSchema):
    """A token's card: network, last four digits and, where sent, expiry."""

    network = Brand()
    last4 = Last4()
    expiry_month = RazorpayExpMonth()
    expiry_year = RazorpayExpYear()
