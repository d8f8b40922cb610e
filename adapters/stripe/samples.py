"""Realistic Stripe event payloads, personal data included, for simulate and tests.

The objects follow the shapes Stripe sends at ``API_VERSION``; the people,
cards and ids are made up. Ids are fresh random values on every call so
repeated simulations never collide in storage.
"""

from __future__ import annotations

import secrets
import string
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

API_VERSION: Final = "2025-08-27.basil"

_ALPHABET: Final = string.ascii_letters + string.digits
_DAY: Final = 86_400

Obj = dict[str, Any]


def _chars(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def random_id(prefix: str, length: int = 24) -> str:
    """Return a Stripe-looking id such as ``pi_3QxY...``."""
    return f"{prefix}_{_chars(length)}"


@dataclass
class _Ids:
    """The ids one sample event's objects share, so references line up."""

    now: int = field(default_factory=lambda: int(time.time()))
    customer: str = field(default_factory=lambda: random_id("cus", 14))
    payment_intent: str = field(default_factory=lambda: random_id("pi"))
    charge: str = field(default_factory=lambda: random_id("ch"))
    payment_method: str = field(default_factory=lambda: random_id("pm"))
    refund: str = field(default_factory=lambda: random_id("re"))
    dispute: str = field(default_factory=lambda: random_id("dp"))
    setup_intent: str = field(default_factory=lambda: random_id("seti"))
    subscription: str = field(default_factory=lambda: random_id("sub"))
    subscription_item: str = field(default_factory=lambda: random_id("si", 14))
    price: str = field(default_factory=lambda: random_id("price"))
    product: str = field(default_factory=lambda: random_id("prod", 14))
    invoice: str = field(default_factory=lambda: random_id("in"))
    session: str = field(default_factory=lambda: "cs_test_a1" + _chars(56))
    fingerprint: str = field(default_factory=lambda: _chars(16))


def _address() -> Obj:
    return {
        "city": "San Francisco",
        "country": "US",
        "line1": "510 Townsend St",
        "line2": "Apt 4",
        "postal_code": "94103",
        "state": "CA",
    }


def _billing_details() -> Obj:
    return {
        "address": _address(),
        "email": "jenny.rosen@example.com",
        "name": "Jenny Rosen",
        "phone": "+14155550123",
        "tax_id": None,
    }


def _shipping() -> Obj:
    return {
        "address": _address(),
        "carrier": "USPS",
        "name": "Jenny Rosen",
        "phone": "+14155550123",
        "tracking_number": "9400111899223344556677",
    }


def _metadata() -> Obj:
    return {"order_id": "6735", "customer_note": "Leave at the door", "loyalty_tier": "gold"}


def _card(ids: _Ids) -> Obj:
    """Return a PaymentMethod's ``card`` hash."""
    return {
        "brand": "visa",
        "checks": {
            "address_line1_check": "pass",
            "address_postal_code_check": "pass",
            "cvc_check": "pass",
        },
        "country": "US",
        "display_brand": "visa",
        "exp_month": 12,
        "exp_year": 2030,
        "fingerprint": ids.fingerprint,
        "funding": "credit",
        "generated_from": None,
        "last4": "4242",
        "networks": {"available": ["visa"], "preferred": None},
        "regulated_status": "unregulated",
        "three_d_secure_usage": {"supported": True},
        "wallet": None,
    }


def _payment_method(ids: _Ids, *, customer: str | None) -> Obj:
    return {
        "id": ids.payment_method,
        "object": "payment_method",
        "allow_redisplay": "always",
        "billing_details": _billing_details(),
        "card": _card(ids),
        "created": ids.now - 120,
        "customer": customer,
        "customer_account": None,
        "livemode": False,
        "metadata": _metadata(),
        "type": "card",
    }


def _charge_card_details(ids: _Ids) -> Obj:
    """Return a Charge's ``payment_method_details``."""
    return {
        "card": {
            "amount_authorized": 4999,
            "authorization_code": "123456",
            "brand": "visa",
            "checks": {
                "address_line1_check": "pass",
                "address_postal_code_check": "pass",
                "cvc_check": "pass",
            },
            "country": "US",
            "exp_month": 12,
            "exp_year": 2030,
            "extended_authorization": {"status": "disabled"},
            "fingerprint": ids.fingerprint,
            "funding": "credit",
            "incremental_authorization": {"status": "unavailable"},
            "installments": None,
            "last4": "4242",
            "mandate": None,
            "multicapture": {"status": "unavailable"},
            "network": "visa",
            "network_token": {"used": False},
            "network_transaction_id": "104557651805572",
            "overcapture": {"maximum_amount_capturable": 4999, "status": "unavailable"},
            "regulated_status": "unregulated",
            "three_d_secure": None,
            "wallet": None,
        },
        "type": "card",
    }


def _refund(ids: _Ids, *, status: str) -> Obj:
    refund: Obj = {
        "id": ids.refund,
        "object": "refund",
        "amount": 4999,
        "balance_transaction": random_id("txn"),
        "charge": ids.charge,
        "created": ids.now,
        "currency": "usd",
        "destination_details": {
            "card": {
                "reference": "7316458892",
                "reference_status": "available",
                "reference_type": "acquirer_reference_number",
                "type": "refund",
            },
            "type": "card",
        },
        "metadata": {"reason_detail": "Jenny Rosen changed her mind"},
        "payment_intent": ids.payment_intent,
        "reason": "requested_by_customer",
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": status,
        "transfer_reversal": None,
    }
    if status == "failed":
        # The card was closed before the refund reached it: Stripe returns the money.
        refund["failure_reason"] = "expired_or_canceled_card"
        refund["failure_balance_transaction"] = random_id("txn")
        refund["destination_details"]["card"]["reference_status"] = "unavailable"
    return refund


def _charge(
    ids: _Ids,
    *,
    status: str = "succeeded",
    captured: bool = True,
    refunded: bool = False,
    disputed: bool = False,
) -> Obj:
    failed = status == "failed"
    return {
        "id": ids.charge,
        "object": "charge",
        "amount": 4999,
        "amount_captured": 4999 if captured else 0,
        "amount_refunded": 4999 if refunded else 0,
        "application": None,
        "application_fee": None,
        "application_fee_amount": None,
        "balance_transaction": None if failed else random_id("txn"),
        "billing_details": _billing_details(),
        "calculated_statement_descriptor": "PAYSIEVE DEMO",
        "captured": captured,
        "created": ids.now,
        "currency": "usd",
        "customer": ids.customer,
        "description": "Order 6735 for Jenny Rosen",
        "disputed": disputed,
        "failure_balance_transaction": None,
        "failure_code": "card_declined" if failed else None,
        "failure_message": "Your card was declined." if failed else None,
        "fraud_details": {},
        "livemode": False,
        "metadata": _metadata(),
        "on_behalf_of": None,
        "outcome": {
            "network_status": "declined_by_network" if failed else "approved_by_network",
            "reason": "generic_decline" if failed else None,
            "risk_level": "normal",
            "risk_score": 32,
            "seller_message": "The bank did not return any further details with this decline."
            if failed
            else "Payment complete.",
            "type": "issuer_declined" if failed else "authorized",
        },
        "paid": not failed,
        "payment_intent": ids.payment_intent,
        "payment_method": ids.payment_method,
        "payment_method_details": _charge_card_details(ids),
        "radar_options": {},
        "receipt_email": "jenny.rosen@example.com",
        "receipt_number": None,
        "receipt_url": "https://pay.stripe.com/receipts/payment/" + random_id("CAcaFwoV", 40),
        "refunded": refunded,
        "refunds": {
            "object": "list",
            "data": [_refund(ids, status="succeeded")] if refunded else [],
            "has_more": False,
            "total_count": 1 if refunded else 0,
            "url": f"/v1/charges/{ids.charge}/refunds",
        },
        "review": None,
        "shipping": _shipping(),
        "source": None,
        "source_transfer": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": status,
        "transfer_data": None,
        "transfer_group": None,
    }


def _payment_intent(ids: _Ids, *, status: str) -> Obj:
    failed = status == "requires_payment_method"
    has_charge = status in ("succeeded", "requires_capture", "processing")
    manual = status == "requires_capture"
    return {
        "id": ids.payment_intent,
        "object": "payment_intent",
        "amount": 4999,
        "amount_capturable": 4999 if manual else 0,
        "amount_details": {"tip": {}},
        "amount_received": 4999 if status == "succeeded" else 0,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": {"allow_redirects": "always", "enabled": True},
        "canceled_at": ids.now if status == "canceled" else None,
        "cancellation_reason": "requested_by_customer" if status == "canceled" else None,
        "capture_method": "manual" if manual else "automatic_async",
        "client_secret": ids.payment_intent + "_secret_" + _chars(25),
        "confirmation_method": "automatic",
        "created": ids.now - 60,
        "currency": "usd",
        "customer": ids.customer,
        "description": "Order 6735 for Jenny Rosen",
        "last_payment_error": {
            "charge": ids.charge,
            "code": "card_declined",
            "decline_code": "insufficient_funds",
            "doc_url": "https://stripe.com/docs/error-codes/card-declined",
            "message": "Your card has insufficient funds.",
            "payment_method": _payment_method(ids, customer=ids.customer),
            "type": "card_error",
        }
        if failed
        else None,
        "latest_charge": ids.charge if has_charge or failed else None,
        "livemode": False,
        "metadata": _metadata(),
        "next_action": {
            "type": "use_stripe_sdk",
            "use_stripe_sdk": {
                "type": "three_d_secure_redirect",
                "stripe_js": "https://hooks.stripe.com/3d_secure_2/hosted",
            },
        }
        if status == "requires_action"
        else None,
        "on_behalf_of": None,
        # Stripe clears the payment method when a payment attempt fails.
        "payment_method": None if failed else ids.payment_method,
        "payment_method_configuration_details": None,
        "payment_method_options": {
            "card": {
                "installments": None,
                "mandate_options": None,
                "network": None,
                "request_three_d_secure": "automatic",
            },
        },
        "payment_method_types": ["card"],
        "processing": {"card": {}, "type": "card"} if status == "processing" else None,
        "receipt_email": "jenny.rosen@example.com",
        "review": None,
        "setup_future_usage": "off_session",
        "shipping": _shipping(),
        "source": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": status,
        "transfer_data": None,
        "transfer_group": None,
    }


def _dispute(ids: _Ids, *, status: str) -> Obj:
    return {
        "id": ids.dispute,
        "object": "dispute",
        "amount": 4999,
        "balance_transactions": [],
        "charge": ids.charge,
        "created": ids.now,
        "currency": "usd",
        "enhanced_eligibility_types": [],
        "evidence": {
            "access_activity_log": None,
            "billing_address": "510 Townsend St, San Francisco, CA 94103",
            "cancellation_policy": None,
            "customer_communication": None,
            "customer_email_address": "jenny.rosen@example.com",
            "customer_name": "Jenny Rosen",
            "customer_purchase_ip": "203.0.113.7",
            "product_description": "Order 6735",
            "shipping_address": "510 Townsend St, San Francisco, CA 94103",
            "shipping_tracking_number": "9400111899223344556677",
            "uncategorized_text": None,
        },
        "evidence_details": {
            "due_by": ids.now + 14 * _DAY,
            "has_evidence": False,
            "past_due": False,
            "submission_count": 0,
        },
        "is_charge_refundable": status != "lost",
        "livemode": False,
        "metadata": {},
        "payment_intent": ids.payment_intent,
        "payment_method_details": {
            "card": {"brand": "visa", "case_type": "chargeback", "network_reason_code": "10.4"},
            "type": "card",
        },
        "reason": "fraudulent",
        "status": status,
    }


def _setup_intent(ids: _Ids) -> Obj:
    return {
        "id": ids.setup_intent,
        "object": "setup_intent",
        "application": None,
        "automatic_payment_methods": {"allow_redirects": "always", "enabled": True},
        "cancellation_reason": None,
        "client_secret": ids.setup_intent + "_secret_" + _chars(30),
        "created": ids.now - 30,
        "customer": ids.customer,
        "description": "Card saved for Jenny Rosen",
        "flow_directions": None,
        "last_setup_error": None,
        "latest_attempt": random_id("setatt"),
        "livemode": False,
        "mandate": None,
        "metadata": _metadata(),
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": ids.payment_method,
        "payment_method_configuration_details": None,
        "payment_method_options": {"card": {"request_three_d_secure": "automatic"}},
        "payment_method_types": ["card"],
        "single_use_mandate": None,
        "status": "succeeded",
        "usage": "off_session",
    }


def _price(ids: _Ids) -> Obj:
    return {
        "id": ids.price,
        "object": "price",
        "active": True,
        "billing_scheme": "per_unit",
        "created": ids.now - 90 * _DAY,
        "currency": "eur",
        "livemode": False,
        "lookup_key": None,
        "metadata": {},
        "nickname": "Pro monthly",
        "product": ids.product,
        "recurring": {
            "interval": "month",
            "interval_count": 1,
            "meter": None,
            "trial_period_days": None,
            "usage_type": "licensed",
        },
        "tax_behavior": "exclusive",
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "recurring",
        "unit_amount": 1900,
        "unit_amount_decimal": "1900",
    }


def _subscription(ids: _Ids, *, status: str, cancel_at_period_end: bool = False) -> Obj:
    start = ids.now - 10 * _DAY
    end = start + 30 * _DAY
    canceled = status == "canceled"
    return {
        "id": ids.subscription,
        "object": "subscription",
        "application": None,
        "automatic_tax": {"disabled_reason": None, "enabled": True, "liability": {"type": "self"}},
        "billing_cycle_anchor": start,
        "billing_mode": {"type": "flexible"},
        "cancel_at": end if cancel_at_period_end else None,
        "cancel_at_period_end": cancel_at_period_end,
        "canceled_at": ids.now if canceled else None,
        "cancellation_details": {
            "comment": "Jenny Rosen: too expensive for me right now" if canceled else None,
            "feedback": "too_expensive" if canceled else None,
            "reason": "cancellation_requested" if canceled else None,
        },
        "collection_method": "charge_automatically",
        "created": start,
        "currency": "eur",
        "customer": ids.customer,
        "days_until_due": None,
        "default_payment_method": ids.payment_method,
        "default_source": None,
        "default_tax_rates": [],
        "description": "Pro plan for Jenny Rosen",
        "discounts": [],
        "ended_at": ids.now if canceled else None,
        "invoice_settings": {"account_tax_ids": None, "issuer": {"type": "self"}},
        # Since API 2025-03-31 the period lives on each item, not on the subscription.
        "items": {
            "object": "list",
            "data": [
                {
                    "id": ids.subscription_item,
                    "object": "subscription_item",
                    "created": start,
                    "current_period_end": end,
                    "current_period_start": start,
                    "discounts": [],
                    "metadata": {},
                    "price": _price(ids),
                    "quantity": 1,
                    "subscription": ids.subscription,
                    "tax_rates": [],
                }
            ],
            "has_more": False,
            "total_count": 1,
            "url": f"/v1/subscription_items?subscription={ids.subscription}",
        },
        "latest_invoice": ids.invoice,
        "livemode": False,
        "metadata": _metadata(),
        "next_pending_invoice_item_invoice": None,
        "on_behalf_of": None,
        "pause_collection": {"behavior": "void", "resumes_at": None}
        if status == "paused"
        else None,
        "payment_settings": {"payment_method_types": None, "save_default_payment_method": "off"},
        "pending_invoice_item_interval": None,
        "pending_setup_intent": None,
        "pending_update": None,
        "schedule": None,
        "start_date": start,
        "status": status,
        "test_clock": None,
        "transfer_data": None,
        "trial_end": None,
        "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
        "trial_start": None,
    }


def _invoice(ids: _Ids, *, status: str, attempted: bool = True) -> Obj:
    paid = status == "paid"
    return {
        "id": ids.invoice,
        "object": "invoice",
        "account_country": "DE",
        "account_name": "Paysieve Demo GmbH",
        "account_tax_ids": None,
        "amount_due": 2261,
        "amount_overpaid": 0,
        "amount_paid": 2261 if paid else 0,
        "amount_remaining": 0 if paid else 2261,
        "amount_shipping": 0,
        "application": None,
        "attempt_count": 1 if attempted else 0,
        "attempted": attempted,
        "auto_advance": not paid,
        "automatic_tax": {
            "disabled_reason": None,
            "enabled": True,
            "liability": {"type": "self"},
            "provider": "stripe",
            "status": "complete",
        },
        "automatically_finalizes_at": None,
        "billing_reason": "subscription_cycle",
        "collection_method": "charge_automatically",
        "created": ids.now - 3600,
        "currency": "eur",
        "custom_fields": None,
        "customer": ids.customer,
        "customer_address": _address(),
        "customer_email": "jenny.rosen@example.com",
        "customer_name": "Jenny Rosen",
        "customer_phone": "+14155550123",
        "customer_shipping": _shipping(),
        "customer_tax_exempt": "none",
        "customer_tax_ids": [{"type": "eu_vat", "value": "DE123456789"}],
        "default_payment_method": None,
        "default_source": None,
        "default_tax_rates": [],
        "description": "Pro plan, billed monthly",
        "discounts": [],
        "due_date": None,
        "effective_at": ids.now - 3600,
        "ending_balance": 0,
        "footer": None,
        "from_invoice": None,
        "hosted_invoice_url": "https://invoice.stripe.com/i/acct_1Demo/test_" + random_id("YW", 40),
        "invoice_pdf": "https://pay.stripe.com/invoice/acct_1Demo/test_"
        + random_id("YW", 40)
        + "/pdf",
        "issuer": {"type": "self"},
        "last_finalization_error": None,
        "latest_revision": None,
        "lines": {
            "object": "list",
            "data": [
                {
                    "id": random_id("il"),
                    "object": "line_item",
                    "amount": 1900,
                    "currency": "eur",
                    "description": "1 × Pro (at €19.00 / month)",
                    "discount_amounts": [],
                    "discountable": True,
                    "discounts": [],
                    "invoice": ids.invoice,
                    "livemode": False,
                    "metadata": {},
                    "parent": {
                        "invoice_item_details": None,
                        "subscription_item_details": {
                            "invoice_item": None,
                            "proration": False,
                            "proration_details": {"credited_items": None},
                            "subscription": ids.subscription,
                            "subscription_item": ids.subscription_item,
                        },
                        "type": "subscription_item_details",
                    },
                    "period": {"end": ids.now + 30 * _DAY, "start": ids.now},
                    "pricing": {
                        "price_details": {"price": ids.price, "product": ids.product},
                        "type": "price_details",
                        "unit_amount_decimal": "1900",
                    },
                    "quantity": 1,
                    "taxes": [],
                }
            ],
            "has_more": False,
            "total_count": 1,
            "url": f"/v1/invoices/{ids.invoice}/lines",
        },
        "livemode": False,
        "metadata": _metadata(),
        "next_payment_attempt": None if paid else ids.now + 3 * _DAY,
        "number": "A1B2C3D4-0007",
        "on_behalf_of": None,
        # Since API 2025-03-31 the subscription is here, not at the top level.
        "parent": {
            "quote_details": None,
            "subscription_details": {"metadata": {}, "subscription": ids.subscription},
            "type": "subscription_details",
        },
        "payment_settings": {
            "default_mandate": None,
            "payment_method_options": None,
            "payment_method_types": None,
        },
        "period_end": ids.now,
        "period_start": ids.now - 30 * _DAY,
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "receipt_number": "2817-5537" if paid else None,
        "rendering": None,
        "shipping_cost": None,
        "shipping_details": None,
        "starting_balance": 0,
        "statement_descriptor": None,
        "status": status,
        "status_transitions": {
            "finalized_at": ids.now - 3600 if status != "draft" else None,
            "marked_uncollectible_at": None,
            "paid_at": ids.now if paid else None,
            "voided_at": ids.now if status == "void" else None,
        },
        "subtotal": 1900,
        "subtotal_excluding_tax": 1900,
        "test_clock": None,
        "total": 2261,
        "total_discount_amounts": [],
        "total_excluding_tax": 1900,
        "total_pretax_credit_amounts": [],
        "total_taxes": [
            {
                "amount": 361,
                "tax_behavior": "exclusive",
                "taxability_reason": "standard_rated",
                "taxable_amount": 1900,
                "type": "tax_rate_details",
            }
        ],
        "webhooks_delivered_at": ids.now - 3600,
    }


def _checkout_session(ids: _Ids) -> Obj:
    return {
        "id": ids.session,
        "object": "checkout.session",
        "adaptive_pricing": {"enabled": False},
        "after_expiration": None,
        "allow_promotion_codes": None,
        "amount_subtotal": 4999,
        "amount_total": 4999,
        "automatic_tax": {"enabled": False, "liability": None, "provider": None, "status": None},
        "billing_address_collection": "required",
        "cancel_url": "https://shop.example.com/cart",
        "client_reference_id": "user-8841",
        "client_secret": None,
        "collected_information": {
            "business_name": None,
            "individual_name": None,
            "shipping_details": {"address": _address(), "name": "Jenny Rosen"},
        },
        "consent": None,
        "consent_collection": None,
        "created": ids.now - 300,
        "currency": "usd",
        "custom_fields": [],
        "custom_text": {
            "after_submit": None,
            "shipping_address": None,
            "submit": None,
            "terms_of_service_acceptance": None,
        },
        "customer": ids.customer,
        "customer_creation": "always",
        "customer_details": {
            "address": _address(),
            "business_name": None,
            "email": "jenny.rosen@example.com",
            "individual_name": None,
            "name": "Jenny Rosen",
            "phone": "+14155550123",
            "tax_exempt": "none",
            "tax_ids": [],
        },
        "customer_email": "jenny.rosen@example.com",
        "discounts": [],
        "expires_at": ids.now + _DAY,
        "invoice": None,
        "invoice_creation": {"enabled": False, "invoice_data": None},
        "livemode": False,
        "locale": "auto",
        "metadata": _metadata(),
        "mode": "payment",
        "payment_intent": ids.payment_intent,
        "payment_link": None,
        "payment_method_collection": "if_required",
        "payment_method_configuration_details": None,
        "payment_method_options": {"card": {"request_three_d_secure": "automatic"}},
        "payment_method_types": ["card"],
        "payment_status": "paid",
        "phone_number_collection": {"enabled": True},
        "recovered_from": None,
        "saved_payment_method_options": None,
        "setup_intent": None,
        "shipping_address_collection": {"allowed_countries": ["US", "CA"]},
        "shipping_cost": None,
        "shipping_options": [],
        "status": "complete",
        "submit_type": "pay",
        "subscription": None,
        "success_url": "https://shop.example.com/thanks?session_id={CHECKOUT_SESSION_ID}",
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "hosted",
        "url": None,
    }


def _delayed_checkout_session(ids: _Ids, *, paid: bool) -> Obj:
    """A subscription Checkout Session paid by bank debit: the money moves days later."""
    session = _checkout_session(ids)
    session.update(
        {
            "mode": "subscription",
            "payment_intent": None,
            "subscription": ids.subscription,
            "invoice": ids.invoice,
            "payment_method_types": ["us_bank_account"],
            "payment_method_options": {
                "us_bank_account": {
                    "financial_connections": {"permissions": ["payment_method"]},
                    "verification_method": "automatic",
                }
            },
            "payment_status": "paid" if paid else "unpaid",
            "submit_type": None,
        }
    )
    return session


# Each builder returns (data.object, data.previous_attributes or None).
Builder = Callable[[_Ids], tuple[Obj, Obj | None]]


def _pi(status: str) -> Builder:
    return lambda ids: (_payment_intent(ids, status=status), None)


def _pm_automatically_updated(ids: _Ids) -> tuple[Obj, Obj | None]:
    # The card network pushed a new expiry date: the previous one is in previous_attributes.
    pm = _payment_method(ids, customer=ids.customer)
    pm["card"]["exp_year"] = 2032
    pm["card"]["exp_month"] = 3
    return pm, {"card": {"exp_month": 12, "exp_year": 2030}}


def _pm_updated(ids: _Ids) -> tuple[Obj, Obj | None]:
    return _payment_method(ids, customer=ids.customer), {
        "billing_details": {"phone": "+14155550999", "address": {"line2": None}}
    }


def _sub_updated(ids: _Ids) -> tuple[Obj, Obj | None]:
    return _subscription(ids, status="active", cancel_at_period_end=True), {
        "cancel_at": None,
        "cancel_at_period_end": False,
    }


def _sub_paused(ids: _Ids) -> tuple[Obj, Obj | None]:
    return _subscription(ids, status="paused"), None


def _charge_updated(ids: _Ids) -> tuple[Obj, Obj | None]:
    charge = _charge(ids)
    charge["description"] = "Order 6735 for Jenny Rosen (gift wrapped)"
    return charge, {"description": "Order 6735 for Jenny Rosen"}


BUILDERS: Final[dict[str, Builder]] = {
    "payment_intent.succeeded": _pi("succeeded"),
    "payment_intent.payment_failed": _pi("requires_payment_method"),
    "payment_intent.processing": _pi("processing"),
    "payment_intent.canceled": _pi("canceled"),
    "payment_intent.requires_action": _pi("requires_action"),
    "payment_intent.amount_capturable_updated": _pi("requires_capture"),
    "charge.succeeded": lambda ids: (_charge(ids), None),
    "charge.failed": lambda ids: (_charge(ids, status="failed", captured=False), None),
    "charge.captured": lambda ids: (_charge(ids), None),
    "charge.refunded": lambda ids: (_charge(ids, refunded=True), None),
    "charge.updated": _charge_updated,
    "charge.dispute.created": lambda ids: (_dispute(ids, status="needs_response"), None),
    "charge.dispute.closed": lambda ids: (_dispute(ids, status="lost"), None),
    "refund.created": lambda ids: (_refund(ids, status="pending"), None),
    "refund.updated": lambda ids: (_refund(ids, status="succeeded"), {"status": "pending"}),
    "refund.failed": lambda ids: (_refund(ids, status="failed"), {"status": "succeeded"}),
    "payment_method.attached": lambda ids: (_payment_method(ids, customer=ids.customer), None),
    "payment_method.detached": lambda ids: (
        _payment_method(ids, customer=None),
        {"customer": ids.customer},
    ),
    "payment_method.updated": _pm_updated,
    "payment_method.automatically_updated": _pm_automatically_updated,
    "setup_intent.succeeded": lambda ids: (_setup_intent(ids), None),
    "customer.subscription.created": lambda ids: (_subscription(ids, status="active"), None),
    "customer.subscription.updated": _sub_updated,
    "customer.subscription.deleted": lambda ids: (_subscription(ids, status="canceled"), None),
    "customer.subscription.paused": _sub_paused,
    "customer.subscription.resumed": lambda ids: (_subscription(ids, status="active"), None),
    "invoice.paid": lambda ids: (_invoice(ids, status="paid"), None),
    "invoice.payment_failed": lambda ids: (_invoice(ids, status="open"), None),
    "invoice.finalized": lambda ids: (_invoice(ids, status="open", attempted=False), None),
    "invoice.voided": lambda ids: (_invoice(ids, status="void", attempted=False), None),
    "checkout.session.completed": lambda ids: (_checkout_session(ids), None),
    "checkout.session.async_payment_succeeded": lambda ids: (
        _delayed_checkout_session(ids, paid=True),
        None,
    ),
    "checkout.session.async_payment_failed": lambda ids: (
        _delayed_checkout_session(ids, paid=False),
        None,
    ),
}

# Events Stripe raises on its own schedule carry no API request.
_AUTOMATIC_PREFIXES: Final = ("invoice.", "payment_method.automatically_updated")


def build_event(event_type: str, *, event_id: str | None = None) -> Obj:
    """Return a full Stripe event envelope of this type, or raise KeyError."""
    return _envelope(event_type, _Ids(), event_id=event_id)


# One customer's card, paid with and refunded: the events Stripe sends, in its order.
LIFECYCLE: Final = (
    "payment_method.attached",
    "payment_intent.succeeded",
    "charge.succeeded",
    "charge.refunded",
)


def lifecycle() -> list[tuple[str, Obj]]:
    """Return the LIFECYCLE events of one customer, one payment and one card, a second apart."""
    ids = _Ids()
    start = ids.now - len(LIFECYCLE)
    events = []
    for step, event_type in enumerate(LIFECYCLE, start=1):
        ids.now = start + step
        events.append((event_type, _envelope(event_type, ids)))
    return events


def _envelope(event_type: str, ids: _Ids, *, event_id: str | None = None) -> Obj:
    builder = BUILDERS[event_type]
    obj, previous = builder(ids)
    data: Obj = {"object": obj}
    if previous is not None:
        data["previous_attributes"] = previous
    automatic = event_type.startswith(_AUTOMATIC_PREFIXES)
    return {
        "id": event_id if event_id is not None else random_id("evt"),
        "object": "event",
        "api_version": API_VERSION,
        "created": ids.now,
        "data": data,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {
            "id": None if automatic else random_id("req", 14),
            "idempotency_key": None if automatic else str(uuid.uuid4()),
        },
        "type": event_type,
    }
