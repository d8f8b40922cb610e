"""Realistic Razorpay webhook bodies, personal data included, for simulate and tests.

The entities follow the shapes Razorpay sends (see its webhook payload
reference); the people, cards and ids are made up. Ids are fresh random
values on every call so repeated simulations never collide in storage.
Razorpay bodies carry no event id: it travels in the X-Razorpay-Event-Id header.
"""

from __future__ import annotations

import secrets
import string
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

_ALPHABET: Final = string.ascii_letters + string.digits
_DAY: Final = 86_400
# Razorpay accepts only these in its payment samples; wallets and UPI apps differ.
METHODS: Final = ("card", "netbanking", "upi", "wallet")

Obj = dict[str, Any]


def random_id(prefix: str, length: int = 14) -> str:
    """Return a Razorpay-looking id such as ``pay_DESp9bgForNoUd``."""
    return prefix + "_" + "".join(secrets.choice(_ALPHABET) for _ in range(length))


@dataclass
class _Ids:
    """The ids one sample event's entities share, so references line up."""

    now: int = field(default_factory=lambda: int(time.time()))
    account: str = field(default_factory=lambda: random_id("acc"))
    customer: str = field(default_factory=lambda: random_id("cust"))
    payment: str = field(default_factory=lambda: random_id("pay"))
    order: str = field(default_factory=lambda: random_id("order"))
    card: str = field(default_factory=lambda: random_id("card"))
    token: str = field(default_factory=lambda: random_id("token"))
    refund: str = field(default_factory=lambda: random_id("rfnd"))
    dispute: str = field(default_factory=lambda: random_id("disp"))
    invoice: str = field(default_factory=lambda: random_id("inv"))
    subscription: str = field(default_factory=lambda: random_id("sub"))
    plan: str = field(default_factory=lambda: random_id("plan"))
    payment_link: str = field(default_factory=lambda: random_id("plink"))
    qr_code: str = field(default_factory=lambda: random_id("qr"))
    virtual_account: str = field(default_factory=lambda: random_id("va"))
    bank_transfer: str = field(default_factory=lambda: random_id("bt"))
    bank_account: str = field(default_factory=lambda: random_id("ba"))


def _card(ids: _Ids, *, expiry: bool) -> Obj:
    card: Obj = {
        "id": ids.card,
        "entity": "card",
        "name": "Gaurav Kumar",
        "iin": "411111",
        "last4": "1111",
        "network": "Visa",
        "type": "credit",
        "issuer": "HDFC",
        "international": False,
        "emi": False,
        "sub_type": "consumer",
    }
    if expiry:
        card["expiry_month"] = 11
        card["expiry_year"] = 2031
    return card


def _payment(ids: _Ids, *, method: str = "card", status: str = "captured", **extra: Any) -> Obj:
    """Return a payment entity made with one of the four payment methods."""
    if method not in METHODS:
        raise ValueError(f"unknown payment method {method!r}; choose from {', '.join(METHODS)}")
    failed = status == "failed"
    payment: Obj = {
        "id": ids.payment,
        "entity": "payment",
        "amount": 50000,
        "currency": "INR",
        "base_amount": 50000,
        "status": status,
        "order_id": ids.order,
        "invoice_id": None,
        "international": False,
        "method": method,
        "amount_refunded": 0,
        "amount_transferred": 0,
        "refund_status": None,
        "captured": status in ("captured", "refunded"),
        "description": "Order #1042: 2 x Masala Chai",
        "card_id": None,
        "bank": None,
        "wallet": None,
        "vpa": None,
        "email": "gaurav.kumar@example.com",
        "contact": "+919876543210",
        "customer_id": ids.customer,
        "token_id": None,
        "notes": {"address": "84th Floor, Millennium Tower, Bangalore", "shipping": "express"},
        "fee": None if failed or status == "authorized" else 1180,
        "tax": None if failed or status == "authorized" else 180,
        "error_code": "BAD_REQUEST_ERROR" if failed else None,
        "error_description": "Payment failed" if failed else None,
        "error_source": "issuer" if failed else None,
        "error_step": "payment_authorization" if failed else None,
        "error_reason": "payment_failed" if failed else None,
        "acquirer_data": {},
        "created_at": ids.now - 60,
    }
    if method == "card":
        payment["card_id"] = ids.card
        payment["card"] = _card(ids, expiry=False)
        payment["token_id"] = ids.token
        payment["acquirer_data"] = {"auth_code": "828553", "rrn": "322206890934"}
    elif method == "netbanking":
        payment["bank"] = "HDFC"
        payment["acquirer_data"] = {"bank_transaction_id": "4827433"}
    elif method == "upi":
        payment["vpa"] = "gaurav.kumar@okhdfcbank"
        payment["upi"] = {"payer_account_type": "bank_account", "vpa": "gaurav.kumar@okhdfcbank"}
        payment["acquirer_data"] = {"rrn": "551652213711"}
    else:
        payment["wallet"] = "payzapp"
    payment.update(extra)
    return payment


def _order(ids: _Ids, *, status: str = "paid") -> Obj:
    return {
        "id": ids.order,
        "entity": "order",
        "amount": 50000,
        "amount_paid": 50000 if status == "paid" else 0,
        "amount_due": 0 if status == "paid" else 50000,
        "currency": "INR",
        "receipt": "rcptid #1042",
        "offer_id": None,
        "status": status,
        "attempts": 1,
        "notes": {"customer_name": "Gaurav Kumar"},
        "created_at": ids.now - 120,
    }


def _refund(ids: _Ids, *, status: str) -> Obj:
    return {
        "id": ids.refund,
        "entity": "refund",
        "amount": 20000,
        "currency": "INR",
        "payment_id": ids.payment,
        "notes": {"comment": "Customer asked for a refund by phone"},
        "receipt": None,
        "acquirer_data": {"arn": None if status != "processed" else "10000000000000"},
        "created_at": ids.now - 10,
        "batch_id": None,
        "status": status,
        "speed_processed": "normal",
        "speed_requested": "optimum",
    }


def _dispute(ids: _Ids, *, status: str) -> Obj:
    return {
        "id": ids.dispute,
        "entity": "dispute",
        "payment_id": ids.payment,
        "amount": 50000,
        "currency": "INR",
        "amount_deducted": 50000 if status == "lost" else 0,
        "reason_code": "goods_or_services_not_received_or_partially_received",
        "respond_by": ids.now + 7 * _DAY,
        "status": status,
        "phase": "chargeback",
        "evidence": {
            "amount": 50000,
            "summary": "Delivered to Gaurav Kumar at 84th Floor, Millennium Tower",
            "shipping_proof": None,
            "billing_proof": None,
            "cancellation_proof": None,
            "customer_communication": None,
            "proof_of_service": None,
            "explanation_letter": None,
            "refund_confirmation": None,
            "access_activity_log": None,
            "refund_cancellation_policy": None,
            "term_and_conditions": None,
            "others": None,
            "submitted_at": None,
        },
        "created_at": ids.now - 30,
    }


def _address(kind: str) -> Obj:
    return {
        "id": random_id("addr"),
        "type": kind,
        "primary": True,
        "line1": "84th Floor, Millennium Tower",
        "line2": "Corner of 1st and 1st",
        "zipcode": "560096",
        "city": "Bangalore",
        "state": "Karnataka",
        "country": "in",
    }


def _invoice(ids: _Ids, *, status: str, subscription: bool = False) -> Obj:
    paid = {"paid": 50000, "partially_paid": 20000}.get(status, 0)
    return {
        "id": ids.invoice,
        "entity": "invoice",
        "receipt": "1042",
        "invoice_number": "1042",
        "customer_id": ids.customer,
        "customer_details": {
            "id": ids.customer,
            "name": "Gaurav Kumar",
            "email": "gaurav.kumar@example.com",
            "contact": "9876543210",
            "gstin": "24AABCJ1087G1ZT",
            "billing_address": _address("billing_address"),
            "shipping_address": _address("shipping_address"),
            "customer_name": "Gaurav Kumar",
            "customer_email": "gaurav.kumar@example.com",
            "customer_contact": "9876543210",
        },
        "order_id": ids.order,
        "subscription_id": ids.subscription if subscription else None,
        "payment_id": ids.payment if paid else None,
        "status": status,
        "expire_by": ids.now + 30 * _DAY,
        "issued_at": ids.now - 3600,
        "paid_at": ids.now if status == "paid" else None,
        "cancelled_at": None,
        "expired_at": ids.now if status == "expired" else None,
        "sms_status": "sent",
        "email_status": "sent",
        "date": ids.now - 3600,
        "terms": "Terms and Conditions",
        "partial_payment": True,
        "gross_amount": 42373,
        "tax_amount": 7627,
        "taxable_amount": 42373,
        "amount": 50000,
        "amount_paid": paid,
        "amount_due": 50000 - paid,
        "first_payment_min_amount": None,
        "currency": "INR",
        "description": "Invoice for Gaurav Kumar",
        "notes": {"gst_contact": "gaurav.kumar@example.com"},
        "comment": "Thank you, Gaurav",
        "short_url": "https://rzp.io/i/LgHpOdn",
        "view_less": True,
        "billing_start": None,
        "billing_end": None,
        "type": "invoice",
        "group_taxes_discounts": False,
        "supply_state_code": "29",
        "user_id": random_id("", 14)[1:],
        "created_at": ids.now - 3600,
        "idempotency_key": None,
    }


def _subscription(ids: _Ids, *, status: str) -> Obj:
    ended = status in ("cancelled", "completed")
    return {
        "id": ids.subscription,
        "entity": "subscription",
        "plan_id": ids.plan,
        "customer_id": ids.customer,
        "status": status,
        "type": 2,
        "current_start": None if status == "authenticated" else ids.now - _DAY,
        "current_end": None if status == "authenticated" else ids.now + 29 * _DAY,
        "ended_at": ids.now if ended else None,
        "quantity": 1,
        "notes": {"Important": "Call Gaurav on +919876543210 before renewal"},
        "charge_at": None if ended else ids.now + 29 * _DAY,
        "start_at": ids.now - _DAY,
        "end_at": ids.now + 365 * _DAY,
        "auth_attempts": 0,
        "total_count": 12,
        "paid_count": 12 if status == "completed" else 1,
        "customer_notify": True,
        "created_at": ids.now - 2 * _DAY,
        "expire_by": ids.now + 30 * _DAY,
        "short_url": None,
        "has_scheduled_changes": False,
        "change_scheduled_at": None,
        "source": "api",
        "offer_id": None,
        "remaining_count": 0 if status == "completed" else 11,
    }


def _token(ids: _Ids, *, status: str) -> Obj:
    # expired_at is 2031-11-30T23:59:59+05:30: the card's last valid second, in IST.
    return {
        "id": ids.token,
        "entity": "token",
        "customer_id": ids.customer,
        "method": "card",
        "card": {
            "name": "Gaurav Kumar",
            "last4": "3335",
            "network": "RuPay",
            "type": "debit",
            "issuer": "HDFC",
            "international": False,
            "emi": True,
            "sub_type": "consumer",
            "token_iin": "608001",
        },
        "compliant_with_tokenisation_guidelines": True,
        "expired_at": 1953829799,
        "status": status,
        "notes": {"saved_by": "gaurav.kumar@example.com"},
    }


def _payment_link(ids: _Ids, *, status: str) -> Obj:
    return {
        "id": ids.payment_link,
        "entity": "payment_link",
        "accept_partial": False,
        "amount": 50000,
        "amount_paid": 50000 if status == "paid" else 0,
        "callback_method": "get",
        "callback_url": "https://example-callback-url.com/",
        "cancelled_at": ids.now if status == "cancelled" else 0,
        "created_at": ids.now - 600,
        "currency": "INR",
        "customer": {
            "contact": "+919876543210",
            "email": "gaurav.kumar@example.com",
            "name": "Gaurav Kumar",
        },
        "description": "Payment for policy no #23456",
        "expire_by": ids.now + _DAY,
        "expired_at": ids.now if status == "expired" else 0,
        "first_min_partial_amount": 0,
        "notes": {"policy_name": "Jeevan Bima"},
        "notify": {"email": True, "sms": True, "whatsapp": False},
        "order_id": ids.order if status == "paid" else None,
        "reference_id": "TS1989",
        "reminder_enable": True,
        "reminders": {"status": "failed"},
        "short_url": "https://rzp.io/rzp/S12PdyW",
        "status": status,
        "updated_at": ids.now,
        "upi_link": False,
        "user_id": "",
        "whatsapp_link": False,
    }


def _qr_code(ids: _Ids, *, card: bool) -> Obj:
    """A single-use QR code (UPI, or Bharat QR for cards) that has just been paid."""
    return {
        "id": ids.qr_code,
        "entity": "qr_code",
        "created_at": ids.now - 900,
        "name": "Gaurav Kumar's store counter",
        "usage": "single_use",
        "type": "bharat_qr" if card else "upi_qr",
        "image_url": "https://rzp.io/i/BWcUVrLp",
        "payment_amount": 50000,
        "status": "closed",
        "description": "QR for Gaurav Kumar, 84th Floor, Millennium Tower",
        "fixed_amount": True,
        "payments_amount_received": 50000,
        "payments_count_received": 1,
        "notes": {"purpose": "counter 2", "customer": "gaurav.kumar@example.com"},
        "customer_id": ids.customer,
        "close_by": ids.now + _DAY,
        "closed_at": ids.now,
        "close_reason": "paid",
    }


def _payer_bank_account(ids: _Ids) -> Obj:
    return {
        "id": ids.bank_account,
        "entity": "bank_account",
        "ifsc": "UTIB0000013",
        "bank_name": "Axis Bank",
        "name": "Gaurav Kumar",
        "notes": [],
        "account_number": "765432123456789",
    }


def _virtual_account(ids: _Ids) -> Obj:
    """A Smart Collect virtual account a customer pays into by bank transfer."""
    return {
        "id": ids.virtual_account,
        "name": "Gaurav Kumar",
        "entity": "virtual_account",
        "status": "active",
        "description": "Virtual account for Gaurav Kumar, call +919876543210",
        "amount_expected": None,
        "notes": {"project": "Millennium Tower fit-out"},
        "amount_paid": 50000,
        "customer_id": ids.customer,
        "receivers": [
            {
                "id": random_id("ba"),
                "entity": "bank_account",
                "ifsc": "RATN0VAAPIS",
                "bank_name": "RBL Bank",
                "name": "Gaurav Kumar",
                "notes": [],
                "account_number": "1112220061746877",
            }
        ],
        "close_by": None,
        "closed_at": None,
        "created_at": ids.now - 86400,
    }


def _bank_transfer(ids: _Ids) -> Obj:
    return {
        "id": ids.bank_transfer,
        "entity": "bank_transfer",
        "payment_id": ids.payment,
        "mode": "NEFT",
        "bank_reference": "157414364471",
        "amount": 50000,
        "payer_bank_account": _payer_bank_account(ids),
        "virtual_account_id": ids.virtual_account,
        "virtual_account": _virtual_account(ids),
    }


def _envelope(ids: _Ids, event_type: str, entities: dict[str, Obj], *, created: bool = True) -> Obj:
    event: Obj = {
        "entity": "event",
        "account_id": ids.account,
        "event": event_type,
        "contains": list(entities),
        "payload": {name: {"entity": entity} for name, entity in entities.items()},
    }
    if created:
        event["created_at"] = ids.now
    return event


Builder = Callable[[_Ids, str, str], Obj]


def _payment_event(ids: _Ids, event_type: str, method: str) -> Obj:
    status = {"payment.authorized": "authorized", "payment.failed": "failed"}.get(
        event_type, "captured"
    )
    entities = {"payment": _payment(ids, method=method, status=status)}
    if event_type == "order.paid":
        entities["order"] = _order(ids)
    return _envelope(ids, event_type, entities)


def _refund_event(ids: _Ids, event_type: str, method: str) -> Obj:
    status = {"refund.created": "pending", "refund.failed": "failed"}.get(event_type, "processed")
    payment = _payment(
        ids,
        method=method,
        amount_refunded=20000 if status == "processed" else 0,
        refund_status="partial" if status == "processed" else None,
    )
    return _envelope(ids, event_type, {"refund": _refund(ids, status=status), "payment": payment})


def _dispute_event(ids: _Ids, event_type: str, method: str) -> Obj:
    word = event_type.rsplit(".", 1)[1]
    status = {"created": "open", "action_required": "open"}.get(word, word)
    return _envelope(
        ids,
        event_type,
        {"payment": _payment(ids, method=method), "dispute": _dispute(ids, status=status)},
    )


def _invoice_event(ids: _Ids, event_type: str, method: str) -> Obj:
    status = event_type.split(".", 1)[1]
    if status == "expired":
        return _envelope(ids, event_type, {"invoice": _invoice(ids, status=status)})
    payment = _payment(
        ids,
        method=method,
        invoice_id=ids.invoice,
        description=f"Invoice #{ids.invoice}",
        amount=50000 if status == "paid" else 20000,
    )
    order = _order(ids, status="paid" if status == "paid" else "attempted")
    invoice = _invoice(ids, status=status)
    return _envelope(ids, event_type, {"payment": payment, "order": order, "invoice": invoice})


_SUBSCRIPTION_WORDS: Final = {
    "authenticated": "authenticated",
    "activated": "active",
    "charged": "active",
    "pending": "pending",
    "halted": "halted",
    "paused": "paused",
    "resumed": "active",
    "cancelled": "cancelled",
    "completed": "completed",
    "updated": "active",
}


def _subscription_event(ids: _Ids, event_type: str, method: str) -> Obj:
    word = event_type.split(".", 1)[1]
    entities: dict[str, Obj] = {
        "subscription": _subscription(ids, status=_SUBSCRIPTION_WORDS[word])
    }
    if word in ("charged", "completed"):
        # A recurring card charge: the card carries its expiry, no token is named.
        payment = _payment(
            ids,
            method=method,
            invoice_id=ids.invoice,
            description="Recurring Payment via Subscription",
        )
        if method == "card":
            payment["card"] = _card(ids, expiry=True)
            payment["token_id"] = None
        entities["payment"] = payment
    return _envelope(ids, event_type, entities)


_TOKEN_WORDS: Final = {
    "activated": "active",
    "deactivated": "deactivated",
    "expiry_updated": "active",
    "initiated": "initiated",
    "suspended": "suspended",
    "paused": "paused",
    "cancelled": "cancelled",
    "rejected": "rejected",
}


def _token_event(ids: _Ids, event_type: str, method: str) -> Obj:
    word = event_type.split(".", 1)[1]
    # Razorpay's token events come without created_at (see the adapter's _occurred_at).
    return _envelope(
        ids, event_type, {"token": _token(ids, status=_TOKEN_WORDS[word])}, created=False
    )


def _payment_link_event(ids: _Ids, event_type: str, method: str) -> Obj:
    status = event_type.split(".", 1)[1]
    entities: dict[str, Obj] = {"payment_link": _payment_link(ids, status=status)}
    if status in ("paid", "partially_paid"):
        entities["order"] = _order(ids)
        entities["payment"] = _payment(
            ids, method=method, description=f"#{ids.payment_link}", customer_id=None
        )
    return _envelope(ids, event_type, entities)


def _qr_code_event(ids: _Ids, event_type: str, method: str) -> Obj:
    card = method == "card"
    # A QR code takes UPI, or cards through Bharat QR; never netbanking or a wallet.
    payment = _payment(ids, method="card" if card else "upi", order_id=None, token_id=None)
    payment["description"] = "QRv2 Payment for Gaurav Kumar"
    return _envelope(ids, event_type, {"payment": payment, "qr_code": _qr_code(ids, card=card)})


def _virtual_account_event(ids: _Ids, event_type: str, method: str) -> Obj:
    # Money pushed into a virtual account is a bank transfer, whatever the method asked for.
    payment = _payment(ids, method="netbanking", order_id=None)
    payment.update({"method": "bank_transfer", "bank": None, "acquirer_data": {}})
    payment["description"] = "Bank transfer from Gaurav Kumar"
    entities = {
        "payment": payment,
        "virtual_account": _virtual_account(ids),
        "bank_transfer": _bank_transfer(ids),
    }
    return _envelope(ids, event_type, entities)


def _refund_speed_changed(ids: _Ids, event_type: str, method: str) -> Obj:
    return _envelope(
        ids,
        event_type,
        {"refund": _refund(ids, status="processed"), "payment": _payment(ids, method=method)},
    )


_BUILDERS: Final[dict[str, Builder]] = {
    "payment.authorized": _payment_event,
    "payment.captured": _payment_event,
    "payment.failed": _payment_event,
    "order.paid": _payment_event,
    "refund.created": _refund_event,
    "refund.processed": _refund_event,
    "refund.failed": _refund_event,
    "refund.speed_changed": _refund_speed_changed,
    **{
        f"payment.dispute.{w}": _dispute_event
        for w in ("created", "won", "lost", "closed", "under_review", "action_required")
    },
    "invoice.paid": _invoice_event,
    "invoice.partially_paid": _invoice_event,
    "invoice.expired": _invoice_event,
    **{f"subscription.{w}": _subscription_event for w in _SUBSCRIPTION_WORDS},
    **{f"token.{w}": _token_event for w in _TOKEN_WORDS},
    "payment_link.paid": _payment_link_event,
    "payment_link.partially_paid": _payment_link_event,
    "payment_link.cancelled": _payment_link_event,
    "payment_link.expired": _payment_link_event,
    "qr_code.credited": _qr_code_event,
    "virtual_account.credited": _virtual_account_event,
}

SAMPLE_EVENT_TYPES: Final[tuple[str, ...]] = tuple(_BUILDERS)


def build_event(event_type: str, *, method: str = "card") -> Obj:
    """Return a sample event of a type, paid with a method where it carries a payment."""
    builder = _BUILDERS.get(event_type)
    if builder is None:
        raise ValueError(f"no Razorpay sample for event type {event_type!r}")
    if method not in METHODS:
        raise ValueError(f"unknown payment method {method!r}; choose from {', '.join(METHODS)}")
    return builder(_Ids(), event_type, method)


# One customer's saved card, paid with, captured and refunded, in Razorpay's order.
LIFECYCLE: Final = ("token.activated", "payment.authorized", "payment.captured", "refund.processed")


def lifecycle() -> list[tuple[str, Obj]]:
    """Return the LIFECYCLE events of one customer, one payment and one card, a second apart."""
    ids = _Ids()
    start = ids.now - len(LIFECYCLE)
    events = []
    for step, event_type in enumerate(LIFECYCLE, start=1):
        ids.now = start + step
        events.append((event_type, _BUILDERS[event_type](ids, event_type, "card")))
    return events
