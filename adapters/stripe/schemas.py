"""Load schemas for the Stripe objects paysieve keeps fields from.

Each schema declares the Stripe key names it reads; everything else in the
object is excluded by ``StrictSchema``. Nested objects (a charge's card, a
subscription's first item) get their own schema and are loaded separately
with ``load_partial``, so one bad inner field costs that field, not the
whole object.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import fields

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


class Ref(Id):
    """A reference that Stripe sends as an id or, when expanded, as the object itself."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> str:
        # Keep only the expanded object's id; the rest of it is never read here.
        if isinstance(value, Mapping):
            value = value.get("id")
        return str(super()._deserialize(value, attr, data, **kwargs))


class Flag(fields.Boolean):
    """A JSON boolean, and nothing that merely looks like one ("yes", 1)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_none=True, **kwargs)

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class CardSchema(StrictSchema):
    """The card details of a payment method, a charge or a legacy card object."""

    brand = Brand()
    last4 = Last4()
    exp_month = ExpMonth()
    exp_year = ExpYear()


class PaymentIntentSchema(StrictSchema):
    """A PaymentIntent's ids, status and money."""

    id = Id()
    status = Word()
    amount = Amount()
    currency = Currency()
    customer = Ref()
    latest_charge = Ref()
    payment_method = Ref()
    # Removed in API 2022-11-15 and later, still sent to older endpoints.
    invoice = Ref()


class ChargeSchema(StrictSchema):
    """A Charge's ids, status flags and money."""

    id = Id()
    status = Word()
    amount = Amount()
    amount_refunded = Amount()
    captured = Flag()
    refunded = Flag()
    disputed = Flag()
    currency = Currency()
    customer = Ref()
    payment_intent = Ref()
    payment_method = Id()
    invoice = Ref()


class PaymentMethodDetailsSchema(StrictSchema):
    """Which kind of payment method a charge used."""

    type = Word()


class RefundSchema(StrictSchema):
    """A Refund's ids, status and money."""

    id = Id()
    status = Word()
    amount = Amount()
    currency = Currency()
    charge = Ref()
    payment_intent = Ref()


class DisputeSchema(StrictSchema):
    """A Dispute's ids, status and money."""

    id = Id()
    status = Word()
    amount = Amount()
    currency = Currency()
    charge = Ref()
    payment_intent = Ref()


class PaymentMethodSchema(StrictSchema):
    """A PaymentMethod (or legacy card) token and its customer."""

    id = Id()
    customer = Ref()


class SetupIntentSchema(StrictSchema):
    """A SetupIntent's saved payment method and customer."""

    id = Id()
    status = Word()
    customer = Ref()
    payment_method = Ref()


class SubscriptionSchema(StrictSchema):
    """A Subscription's ids, status and period."""

    id = Id()
    status = Word()
    customer = Ref()
    # Top level up to API 2025-03-31; on each item from then on.
    current_period_end = Timestamp()
    cancel_at_period_end = Flag()


class SubscriptionItemSchema(StrictSchema):
    """The period end a subscription item carries in newer API versions."""

    current_period_end = Timestamp()


class PlanRefSchema(StrictSchema):
    """The id of a price or a legacy plan."""

    id = Id()


class InvoiceSchema(StrictSchema):
    """An Invoice's ids, status and amount due."""

    id = Id()
    status = Word()
    amount_due = Amount()
    currency = Currency()
    customer = Ref()
    # These three moved (parent.subscription_details, payments) in API 2025-03-31.
    subscription = Ref()
    payment_intent = Ref()
    charge = Ref()


class SubscriptionDetailsSchema(StrictSchema):
    """The subscription an invoice bills, in newer API versions."""

    subscription = Ref()


class InvoicePaymentSchema(StrictSchema):
    """The PaymentIntent or Charge that paid an invoice, in newer API versions."""

    payment_intent = Ref()
    charge = Ref()


class CheckoutSessionSchema(StrictSchema):
    """A Checkout Session's ids, payment status and total."""

    id = Id()
    status = Word()
    payment_status = Word()
    amount_total = Amount()
    currency = Currency()
    customer = Ref()
    payment_intent = Ref()
    subscription = Ref()
    invoice = Ref()
