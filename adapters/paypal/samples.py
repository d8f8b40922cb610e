"""Realistic PayPal webhook events, personal data included, for simulate and tests.

The resources follow the shapes PayPal sends (Orders v2, Payments v2 and v1,
Subscriptions v1, Vault v3); the people, cards and ids are made up. Ids are
fresh random values on every call so repeated simulations never collide.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

Obj = dict[str, Any]

_UPPER: Final = string.ascii_uppercase + string.digits
_MIXED: Final = string.ascii_letters + string.digits
SANDBOX: Final = "https://api.sandbox.paypal.com"


def random_id(length: int = 17, alphabet: str = _UPPER) -> str:
    """Return a PayPal-looking resource id such as ``8MC585209K746392H``."""
    return "".join(secrets.choice(alphabet) for _ in range(length))


def event_id() -> str:
    """Return a webhook event id such as ``WH-2WR32451HC0233532-67976317FL4543714``."""
    return f"WH-{random_id(17)}-{random_id(17)}"


def rfc3339(moment: datetime) -> str:
    """Return a UTC time the way PayPal writes it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _Ids:
    """The ids one sample's resources share, so references line up."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))
    order: str = field(default_factory=random_id)
    capture: str = field(default_factory=random_id)
    authorization: str = field(default_factory=random_id)
    refund: str = field(default_factory=random_id)
    sale: str = field(default_factory=random_id)
    payment: str = field(default_factory=lambda: "PAY-" + random_id(24))
    subscription: str = field(default_factory=lambda: "I-" + random_id(12))
    plan: str = field(default_factory=lambda: "P-" + random_id(24))
    token: str = field(default_factory=lambda: random_id(10, _MIXED).lower())
    customer: str = field(default_factory=lambda: random_id(10, _MIXED))
    payer: str = field(default_factory=lambda: random_id(13))
    merchant: str = field(default_factory=lambda: random_id(13))


def _money(value: str, currency: str = "USD") -> Obj:
    return {"currency_code": currency, "value": value}


def _link(path: str, rel: str = "self", method: str = "GET") -> Obj:
    return {"href": SANDBOX + path, "rel": rel, "method": method}


def _address() -> Obj:
    return {
        "address_line_1": "2211 N First Street",
        "address_line_2": "Building 17",
        "admin_area_2": "San Jose",
        "admin_area_1": "CA",
        "postal_code": "95131",
        "country_code": "US",
    }


def _payer(ids: _Ids) -> Obj:
    return {
        "name": {"given_name": "Jane", "surname": "Doe"},
        "email_address": "jane.doe@example.com",
        "payer_id": ids.payer,
        "phone": {"phone_type": "MOBILE", "phone_number": {"national_number": "4085551234"}},
        "birth_date": "1984-07-19",
        "address": _address(),
    }


def _shipping() -> Obj:
    return {
        "name": {"full_name": "Jane Q Doe"},
        "email_address": "jane.doe@example.com",
        "phone_number": {"country_code": "1", "national_number": "4085551234"},
        "address": _address(),
    }


def _payee(ids: _Ids) -> Obj:
    return {"email_address": "billing@merchant.example", "merchant_id": ids.merchant}


def _card(ids: _Ids, *, vaulted: bool) -> Obj:
    card: Obj = {
        "name": "Jane Q Doe",
        "last_digits": "7704",
        "brand": "VISA",
        "available_networks": ["VISA"],
        "type": "CREDIT",
        "expiry": "2029-11",
        "billing_address": _address(),
        "authentication_result": {
            "liability_shift": "POSSIBLE",
            "three_d_secure": {"enrollment_status": "Y", "authentication_status": "Y"},
        },
    }
    if vaulted:
        card["attributes"] = {
            "vault": {"id": ids.token, "status": "VAULTED", "customer": {"id": ids.customer}}
        }
    return card


def _paypal_wallet(ids: _Ids) -> Obj:
    return {
        "email_address": "jane.doe@example.com",
        "account_id": ids.payer,
        "account_status": "VERIFIED",
        "name": {"given_name": "Jane", "surname": "Doe"},
        "phone_number": {"national_number": "4085551234"},
        "address": _address(),
    }


def _related(ids: _Ids, **extra: str) -> Obj:
    return {"related_ids": {"order_id": ids.order, **extra}}


def _capture(ids: _Ids, *, status: str, value: str = "42.50", currency: str = "USD") -> Obj:
    ts = rfc3339(ids.now)
    capture: Obj = {
        "id": ids.capture,
        "status": status,
        "amount": _money(value, currency),
        "final_capture": True,
        "seller_protection": {
            "status": "ELIGIBLE",
            "dispute_categories": ["ITEM_NOT_RECEIVED", "UNAUTHORIZED_TRANSACTION"],
        },
        "seller_receivable_breakdown": {
            "gross_amount": _money(value, currency),
            "paypal_fee": _money("1.71" if currency == "USD" else value, currency),
            "net_amount": _money(value, currency),
        },
        "invoice_id": "INV-2026-0042",
        "custom_id": "member-8812 renewal for Jane Doe",
        "note_to_payer": "Thanks Jane, see you next year",
        "supplementary_data": _related(ids, authorization_id=ids.authorization),
        "payee": _payee(ids),
        "create_time": ts,
        "update_time": ts,
        "links": [
            _link(f"/v2/payments/captures/{ids.capture}"),
            _link(f"/v2/payments/captures/{ids.capture}/refund", "refund", "POST"),
            _link(f"/v2/checkout/orders/{ids.order}", "up"),
        ],
    }
    if status == "PENDING":
        capture["status_details"] = {"reason": "PENDING_REVIEW"}
    if status == "DECLINED":
        capture["processor_response"] = {"response_code": "5120", "avs_code": "Y", "cvv_code": "M"}
    if status == "REVERSED":
        capture["status_details"] = {"reason": "BUYER_COMPLAINT"}
    return capture


def _refund(ids: _Ids) -> Obj:
    ts = rfc3339(ids.now)
    return {
        "id": ids.refund,
        "status": "COMPLETED",
        "amount": _money("42.50"),
        "note_to_payer": "Sorry Jane, refunded as promised",
        "seller_payable_breakdown": {
            "gross_amount": _money("42.50"),
            "paypal_fee": _money("0.00"),
            "net_amount": _money("42.50"),
            "total_refunded_amount": _money("42.50"),
        },
        "invoice_id": "INV-2026-0042",
        "custom_id": "member-8812 renewal for Jane Doe",
        "payer": {"email_address": "billing@merchant.example", "merchant_id": ids.merchant},
        "links": [
            _link(f"/v2/payments/refunds/{ids.refund}"),
            _link(f"/v2/payments/captures/{ids.capture}", "up"),
        ],
        "create_time": ts,
        "update_time": ts,
    }


def _authorization(ids: _Ids, *, status: str) -> Obj:
    ts = rfc3339(ids.now)
    return {
        "id": ids.authorization,
        "status": status,
        "amount": _money("42.50"),
        "invoice_id": "INV-2026-0042",
        "custom_id": "member-8812 renewal for Jane Doe",
        "seller_protection": {"status": "ELIGIBLE", "dispute_categories": ["ITEM_NOT_RECEIVED"]},
        "supplementary_data": _related(ids),
        "payee": _payee(ids),
        "expiration_time": rfc3339(ids.now + timedelta(days=29)),
        "create_time": ts,
        "update_time": ts,
        "links": [
            _link(f"/v2/payments/authorizations/{ids.authorization}"),
            _link(f"/v2/checkout/orders/{ids.order}", "up"),
        ],
    }


def _amount_v1(total: str, currency: str = "USD", **details: str) -> Obj:
    return {"total": total, "currency": currency, "details": details or {"subtotal": total}}


def _sale_v1(ids: _Ids, *, state: str, subscription: bool = True) -> Obj:
    """A Payments v1 sale: how PayPal bills a subscription, or a one-off v1 payment."""
    ts = rfc3339(ids.now)
    sale: Obj = {
        "id": ids.sale,
        "state": state,
        "amount": _amount_v1("9.99"),
        "payment_mode": "INSTANT_TRANSFER",
        "protection_eligibility": "ELIGIBLE",
        "protection_eligibility_type": "ITEM_NOT_RECEIVED_ELIGIBLE,UNAUTHORIZED_PAYMENT_ELIGIBLE",
        "transaction_fee": {"value": "0.59", "currency": "USD"},
        "custom": "member-8812 for Jane Doe",
        "invoice_number": "INV-2026-0042",
        "soft_descriptor": "PAYPAL *PAYSIEVE DEMO",
        "description": "Monthly membership for Jane Doe",
        "create_time": ts,
        "update_time": ts,
        "links": [
            _link(f"/v1/payments/sale/{ids.sale}"),
            _link(f"/v1/payments/sale/{ids.sale}/refund", "refund", "POST"),
        ],
    }
    if subscription:
        sale["billing_agreement_id"] = ids.subscription
    else:
        sale["payment_mode"] = "ECHECK"
        sale["parent_payment"] = ids.payment
        sale["clearing_time"] = rfc3339(ids.now + timedelta(days=7))
        sale["links"].append(_link(f"/v1/payments/payment/{ids.payment}", "parent_payment"))
    if state == "pending":
        sale["reason_code"] = "ECHECK"
    if state == "denied":
        sale["reason_code"] = "PAYMENT_DENIED"
        sale.pop("transaction_fee")
    return sale


def _sale_refund_v1(ids: _Ids, *, reversal: bool) -> Obj:
    """What SALE.REFUNDED and SALE.REVERSED carry: the refund (or reversal) transaction."""
    ts = rfc3339(ids.now)
    links = [_link(f"/v1/payments/refund/{ids.refund}")]
    if reversal:
        # PayPal took the money back (a chargeback): a negative total, no sale named.
        return {
            "id": ids.refund,
            "state": "completed",
            "amount": _amount_v1("-9.99", subtotal="-9.49", tax="-0.50"),
            "reason_code": "CHARGEBACK",
            "create_time": ts,
            "update_time": ts,
            "links": links,
        }
    links.append(_link(f"/v1/payments/sale/{ids.sale}", "sale"))
    links.append(_link(f"/v1/payments/payment/{ids.payment}", "parent_payment"))
    return {
        "id": ids.refund,
        "state": "completed",
        "amount": {"total": "9.99", "currency": "USD"},
        "sale_id": ids.sale,
        "parent_payment": ids.payment,
        "refund_from_transaction_fee": {"currency": "USD", "value": "0.29"},
        "refund_from_received_amount": {"currency": "USD", "value": "9.70"},
        "total_refunded_amount": {"currency": "USD", "value": "9.99"},
        "custom": "member-8812 for Jane Doe",
        "invoice_number": "INV-2026-0042",
        "description": "Refund for Jane Doe, call her on 4085551234",
        "reason": "Jane Doe cancelled within the trial",
        "create_time": ts,
        "update_time": ts,
        "links": links,
    }


def _authorization_v1(ids: _Ids, *, state: str) -> Obj:
    """A Payments v1 authorization (state, amount.total), as v1 integrations receive it."""
    ts = rfc3339(ids.now)
    return {
        "id": ids.authorization,
        "state": state,
        "amount": _amount_v1("42.50", subtotal="40.00", tax="2.50"),
        "payment_mode": "INSTANT_TRANSFER",
        "protection_eligibility": "ELIGIBLE",
        "protection_eligibility_type": "ITEM_NOT_RECEIVED_ELIGIBLE,UNAUTHORIZED_PAYMENT_ELIGIBLE",
        "parent_payment": ids.payment,
        "custom": "member-8812 renewal for Jane Doe",
        "invoice_number": "INV-2026-0042",
        "soft_descriptor": "PAYPAL *PAYSIEVE DEMO",
        "valid_until": rfc3339(ids.now + timedelta(days=29)),
        "create_time": ts,
        "update_time": ts,
        "links": [
            _link(f"/v1/payments/authorization/{ids.authorization}"),
            _link(f"/v1/payments/authorization/{ids.authorization}/capture", "capture", "POST"),
            _link(f"/v1/payments/authorization/{ids.authorization}/void", "void", "POST"),
            _link(f"/v1/payments/payment/{ids.payment}", "parent_payment"),
        ],
    }


def _purchase_unit(ids: _Ids, *, captured: bool) -> Obj:
    unit: Obj = {
        "reference_id": "default",
        "amount": _money("42.50"),
        "payee": _payee(ids),
        "description": "Annual membership for Jane Doe",
        "custom_id": "member-8812 renewal",
        "invoice_id": "INV-2026-0042",
        "soft_descriptor": "PAYSIEVE DEMO",
        "items": [
            {
                "name": "Annual membership",
                "quantity": "1",
                "unit_amount": _money("42.50"),
                "description": "Gift for Jane's brother",
            },
        ],
        "shipping": _shipping(),
    }
    if captured:
        capture = _capture(ids, status="COMPLETED")
        capture.pop("supplementary_data")
        unit["payments"] = {"captures": [capture]}
    return unit


def _order(ids: _Ids, *, status: str, source: str) -> Obj:
    ts = rfc3339(ids.now)
    payment_source: Obj = (
        {"card": _card(ids, vaulted=True)} if source == "card" else {"paypal": _paypal_wallet(ids)}
    )
    return {
        "id": ids.order,
        "intent": "CAPTURE",
        "status": status,
        "payment_source": payment_source,
        "purchase_units": [_purchase_unit(ids, captured=status == "COMPLETED")],
        "payer": _payer(ids),
        "create_time": ts,
        "update_time": ts,
        "links": [
            _link(f"/v2/checkout/orders/{ids.order}"),
            _link(f"/v2/checkout/orders/{ids.order}/capture", "capture", "POST"),
        ],
    }


def _subscription(ids: _Ids, *, status: str, failed: bool = False) -> Obj:
    ts = rfc3339(ids.now)
    billing: Obj = {
        "outstanding_balance": _money("9.99" if failed else "0.00"),
        "cycle_executions": [
            {
                "tenure_type": "REGULAR",
                "sequence": 1,
                "cycles_completed": 1,
                "cycles_remaining": 0,
                "total_cycles": 0,
            }
        ],
        "last_payment": {"amount": _money("9.99"), "time": ts},
        "next_billing_time": rfc3339(ids.now + timedelta(days=30)),
        "failed_payments_count": 1 if failed else 0,
    }
    if failed:
        billing["last_failed_payment"] = {
            "amount": _money("9.99"),
            "time": ts,
            "reason_code": "PAYMENT_DENIED",
        }
    if status in ("CANCELLED", "EXPIRED", "SUSPENDED"):
        billing.pop("next_billing_time")
    resource: Obj = {
        "id": ids.subscription,
        "plan_id": ids.plan,
        "status": status,
        "status_update_time": ts,
        "start_time": ts,
        "quantity": "1",
        "custom_id": "member-8812 for Jane Doe",
        "shipping_amount": _money("0.00"),
        "subscriber": {
            "name": {"given_name": "Jane", "surname": "Doe"},
            "email_address": "jane.doe@example.com",
            "payer_id": ids.payer,
            "phone": {"phone_number": {"national_number": "4085551234"}},
            "shipping_address": {"name": {"full_name": "Jane Q Doe"}, "address": _address()},
        },
        "billing_info": billing,
        "create_time": ts,
        "update_time": ts,
        "plan_overridden": False,
        "links": [_link(f"/v1/billing/subscriptions/{ids.subscription}")],
    }
    if status in ("SUSPENDED", "CANCELLED"):
        resource["status_change_note"] = "Jane asked to stop, call her on 4085551234"
    return resource


def _vault_token(ids: _Ids, *, deleted: bool) -> Obj:
    if deleted:
        return {"id": ids.token, "links": []}
    return {
        "id": ids.token,
        "customer": {"id": ids.customer},
        "payment_source": {"card": _card(ids, vaulted=False)},
        "links": [_link(f"/v3/vault/payment-tokens/{ids.token}")],
    }


@dataclass(frozen=True)
class _Kind:
    resource_type: str
    resource_version: str
    summary: str
    build: Callable[[_Ids], Obj]


_KINDS: Final[dict[str, _Kind]] = {
    "PAYMENT.SALE.COMPLETED": _Kind(
        "sale",
        "1.0",
        "Payment completed for $ 9.99 USD",
        lambda i: _sale_v1(i, state="completed"),
    ),
    "PAYMENT.SALE.PENDING": _Kind(
        "sale",
        "1.0",
        "Payment pending for $ 9.99 USD",
        lambda i: _sale_v1(i, state="pending", subscription=False),
    ),
    "PAYMENT.SALE.DENIED": _Kind(
        "sale", "1.0", "A $ 9.99 USD sale payment was denied", lambda i: _sale_v1(i, state="denied")
    ),
    "PAYMENT.SALE.REFUNDED": _Kind(
        "refund",
        "1.0",
        "A $ 9.99 USD sale payment was refunded",
        lambda i: _sale_refund_v1(i, reversal=False),
    ),
    "PAYMENT.SALE.REVERSED": _Kind(
        "refund",
        "1.0",
        "A $ 9.99 USD sale payment was reversed",
        lambda i: _sale_refund_v1(i, reversal=True),
    ),
    "PAYMENT.CAPTURE.COMPLETED": _Kind(
        "capture",
        "2.0",
        "Payment completed for $ 42.50 USD",
        lambda i: _capture(i, status="COMPLETED"),
    ),
    "PAYMENT.CAPTURE.PENDING": _Kind(
        "capture", "2.0", "Payment pending for $ 42.50 USD", lambda i: _capture(i, status="PENDING")
    ),
    "PAYMENT.CAPTURE.DENIED": _Kind(
        "capture", "2.0", "Payment denied for $ 42.50 USD", lambda i: _capture(i, status="DECLINED")
    ),
    "PAYMENT.CAPTURE.REFUNDED": _Kind(
        "refund", "2.0", "A $ 42.50 USD capture payment was refunded", _refund
    ),
    "PAYMENT.CAPTURE.REVERSED": _Kind(
        "capture",
        "2.0",
        "A $ 42.50 USD capture payment was reversed",
        lambda i: _capture(i, status="REVERSED"),
    ),
    "PAYMENT.AUTHORIZATION.CREATED": _Kind(
        "authorization",
        "2.0",
        "A payment authorization was created",
        lambda i: _authorization(i, status="CREATED"),
    ),
    "PAYMENT.AUTHORIZATION.VOIDED": _Kind(
        "authorization",
        "2.0",
        "A payment authorization was voided",
        lambda i: _authorization(i, status="VOIDED"),
    ),
    "CHECKOUT.ORDER.APPROVED": _Kind(
        "checkout-order",
        "2.0",
        "An order has been approved by buyer",
        lambda i: _order(i, status="APPROVED", source="card"),
    ),
    "CHECKOUT.ORDER.COMPLETED": _Kind(
        "checkout-order",
        "2.0",
        "Checkout Order Completed",
        lambda i: _order(i, status="COMPLETED", source="paypal"),
    ),
    "BILLING.SUBSCRIPTION.CREATED": _Kind(
        "subscription",
        "2.0",
        "Subscription created",
        lambda i: _subscription(i, status="APPROVAL_PENDING"),
    ),
    "BILLING.SUBSCRIPTION.ACTIVATED": _Kind(
        "subscription", "2.0", "Subscription activated", lambda i: _subscription(i, status="ACTIVE")
    ),
    "BILLING.SUBSCRIPTION.UPDATED": _Kind(
        "subscription", "2.0", "Subscription updated", lambda i: _subscription(i, status="ACTIVE")
    ),
    "BILLING.SUBSCRIPTION.SUSPENDED": _Kind(
        "subscription",
        "2.0",
        "Subscription suspended",
        lambda i: _subscription(i, status="SUSPENDED"),
    ),
    "BILLING.SUBSCRIPTION.CANCELLED": _Kind(
        "subscription",
        "2.0",
        "Subscription cancelled",
        lambda i: _subscription(i, status="CANCELLED"),
    ),
    "BILLING.SUBSCRIPTION.EXPIRED": _Kind(
        "subscription", "2.0", "Subscription expired", lambda i: _subscription(i, status="EXPIRED")
    ),
    "BILLING.SUBSCRIPTION.PAYMENT.FAILED": _Kind(
        "subscription",
        "2.0",
        "Subscription payment failed",
        lambda i: _subscription(i, status="ACTIVE", failed=True),
    ),
    "VAULT.PAYMENT-TOKEN.CREATED": _Kind(
        "payment_token",
        "3.0",
        "A payment token has been created.",
        lambda i: _vault_token(i, deleted=False),
    ),
    "VAULT.PAYMENT-TOKEN.DELETED": _Kind(
        "payment_token",
        "3.0",
        "A payment token has been deleted.",
        lambda i: _vault_token(i, deleted=True),
    ),
}

# The same event types as Payments v1 integrations receive them.
_V1_KINDS: Final[dict[str, _Kind]] = {
    "PAYMENT.AUTHORIZATION.CREATED": _Kind(
        "authorization",
        "1.0",
        "A payment authorization was created",
        lambda i: _authorization_v1(i, state="authorized"),
    ),
    "PAYMENT.AUTHORIZATION.VOIDED": _Kind(
        "authorization",
        "1.0",
        "A payment authorization was voided",
        lambda i: _authorization_v1(i, state="voided"),
    ),
}

EVENT_TYPES: Final[tuple[str, ...]] = tuple(_KINDS)
# The resource versions each event type has samples in ("2.0" and "1.0" where both exist).
VERSIONS: Final[dict[str, tuple[str, ...]]] = {
    event_type: (kind.resource_version,)
    + ((_V1_KINDS[event_type].resource_version,) if event_type in _V1_KINDS else ())
    for event_type, kind in _KINDS.items()
}


def build_event(
    event_type: str, *, event_id_: str | None = None, version: str | None = None
) -> Obj:
    """Return a full webhook event of a supported type with fresh ids (in a resource version)."""
    kind = _KINDS[event_type]
    if version is not None and version != kind.resource_version:
        if event_type not in _V1_KINDS or version != _V1_KINDS[event_type].resource_version:
            raise ValueError(f"no PayPal {event_type} sample in resource version {version}")
        kind = _V1_KINDS[event_type]
    return _envelope(event_type, _Ids(), event_id_=event_id_, kind=kind)


# One customer's vaulted card, an order paid with it, captured and refunded, in PayPal's order.
LIFECYCLE: Final = (
    "VAULT.PAYMENT-TOKEN.CREATED",
    "CHECKOUT.ORDER.APPROVED",
    "PAYMENT.CAPTURE.COMPLETED",
    "PAYMENT.CAPTURE.REFUNDED",
)


def lifecycle() -> list[tuple[str, Obj]]:
    """Return the LIFECYCLE events of one customer, one order and one card, a second apart."""
    ids = _Ids()
    start = ids.now - timedelta(seconds=len(LIFECYCLE))
    events = []
    for step, event_type in enumerate(LIFECYCLE, start=1):
        ids.now = start + timedelta(seconds=step)
        events.append((event_type, _envelope(event_type, ids)))
    return events


def _envelope(
    event_type: str, ids: _Ids, *, event_id_: str | None = None, kind: _Kind | None = None
) -> Obj:
    kind = kind or _KINDS[event_type]
    wh = event_id_ or event_id()
    return {
        "id": wh,
        "event_version": "1.0",
        "create_time": ids.now.strftime("%Y-%m-%dT%H:%M:%S.") + "000Z",
        "resource_type": kind.resource_type,
        "resource_version": kind.resource_version,
        "event_type": event_type,
        "summary": kind.summary,
        "resource": kind.build(ids),
        "links": [
            _link(f"/v1/notifications/webhooks-events/{wh}"),
            _link(f"/v1/notifications/webhooks-events/{wh}/resend", "resend", "POST"),
        ],
    }
