"""The Stripe adapter: verify ``Stripe-Signature``, keep the allowlisted fields."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import stripe
from marshmallow import Schema

from adapters.base import Adapter, SanitiseRun, header
from adapters.shapes import ID_PATTERN, from_epoch, parse_rfc3339
from adapters.stripe import samples
from adapters.stripe.schemas import (
    CardSchema,
    ChargeSchema,
    CheckoutSessionSchema,
    DisputeSchema,
    InvoicePaymentSchema,
    InvoiceSchema,
    PaymentIntentSchema,
    PaymentMethodDetailsSchema,
    PaymentMethodSchema,
    PlanRefSchema,
    RefundSchema,
    SetupIntentSchema,
    SubscriptionDetailsSchema,
    SubscriptionItemSchema,
    SubscriptionSchema,
)
from adapters.stripe.vocabulary import VOCABULARY
from gateway.core.errors import MalformedBody, VerificationError
from gateway.core.records import EventMeta, Sanitised

if TYPE_CHECKING:
    from gateway.config.settings import EndpointConfig

SIGNATURE_HEADER: Final = "Stripe-Signature"

_ID = re.compile(ID_PATTERN)
_WORD = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# Always fullmatch: a "$" would let a trailing newline through.
_DIGITS = re.compile(r"[0-9]{1,12}")
# Stripe sends one t and a v1 per secret (a few during rotation): a few hundred characters.
_MAX_SIGNATURE_HEADER: Final = 4096

# Card-like payment method details whose brand/last4/expiry we keep.
_CARD_TYPES: Final = ("card", "card_present")

_PREFIX: Final = "data.object."

# Provider status words -> normalised transaction status. A word missing from
# a map (Stripe adds statuses over time) still yields a record: the status
# implied by the event type where it implies one, else the kind's default.
_PAYMENT_INTENT_STATUS: Final = {
    "requires_payment_method": "pending",
    "requires_confirmation": "pending",
    "requires_action": "requires_action",
    "processing": "pending",
    "requires_capture": "authorized",
    "canceled": "canceled",
    "succeeded": "succeeded",
}
_REFUND_STATUS: Final = {
    "pending": "pending",
    "requires_action": "requires_action",
    "succeeded": "succeeded",
    "failed": "failed",
    "canceled": "canceled",
}
_DISPUTE_STATUS: Final = {
    "won": "succeeded",
    "lost": "failed",
    "warning_closed": "canceled",
    # Stripe closed it before it became a chargeback (e.g. Visa Compelling Evidence 3.0).
    "prevented": "canceled",
    "needs_response": "disputed",
    "under_review": "disputed",
    "warning_needs_response": "disputed",
    "warning_under_review": "disputed",
}
_INVOICE_STATUS: Final = {
    "paid": "succeeded",
    "open": "pending",
    "draft": "pending",
    "void": "canceled",
    "uncollectible": "failed",
}
_CHECKOUT_PAYMENT_STATUS: Final = {
    "paid": "succeeded",
    "unpaid": "pending",
    "no_payment_required": "succeeded",
}
_SUBSCRIPTION_STATUS: Final = {
    "trialing": "trialing",
    "active": "active",
    "past_due": "past_due",
    # Stripe stopped retrying; money is still owed, which is what past_due means here.
    "unpaid": "past_due",
    "paused": "paused",
    "canceled": "canceled",
    "incomplete": "incomplete",
    "incomplete_expired": "expired",
}

# The status an event type implies, used when the object's own word is unknown
# or failed its shape, and to override it where Stripe's word misleads.
_IMPLIED_STATUS: Final = {
    "payment_intent.succeeded": "succeeded",
    "payment_intent.payment_failed": "failed",
    "payment_intent.processing": "pending",
    "payment_intent.canceled": "canceled",
    "payment_intent.requires_action": "requires_action",
    "payment_intent.amount_capturable_updated": "authorized",
    "charge.succeeded": "succeeded",
    "charge.failed": "failed",
    "charge.captured": "succeeded",
    "invoice.paid": "succeeded",
    "invoice.payment_failed": "failed",
    "invoice.voided": "canceled",
    "customer.subscription.deleted": "canceled",
    "customer.subscription.paused": "paused",
    "customer.subscription.resumed": "active",
    "checkout.session.async_payment_succeeded": "succeeded",
    "checkout.session.async_payment_failed": "failed",
}
# Stripe reports these with a word that hides the outcome: a failed
# PaymentIntent goes back to requires_payment_method, a failed invoice stays
# open, a deleted subscription is canceled (said explicitly for clarity), and a
# Checkout Session whose delayed payment failed stays "unpaid".
_OVERRIDES: Final = frozenset(
    {
        "payment_intent.payment_failed",
        "invoice.payment_failed",
        "customer.subscription.deleted",
        "checkout.session.async_payment_failed",
    }
)

_PAYMENT_INTENT = PaymentIntentSchema()
_CHARGE = ChargeSchema()
_CARD = CardSchema()
_PM_DETAILS = PaymentMethodDetailsSchema()
_REFUND = RefundSchema()
_DISPUTE = DisputeSchema()
_PAYMENT_METHOD = PaymentMethodSchema()
_SETUP_INTENT = SetupIntentSchema()
_SUBSCRIPTION = SubscriptionSchema()
_SUBSCRIPTION_ITEM = SubscriptionItemSchema()
_PLAN_REF = PlanRefSchema()
_INVOICE = InvoiceSchema()
_SUBSCRIPTION_DETAILS = SubscriptionDetailsSchema()
_INVOICE_PAYMENT = InvoicePaymentSchema()
_CHECKOUT_SESSION = CheckoutSessionSchema()

# Every schema by the object path config/allowlist.toml names its sources by
# (held equal to the allowlist by gateway/audit/selftest/test_allowlist.py).
SCHEMAS: Final[dict[str, Schema]] = {
    "payment_intent": _PAYMENT_INTENT,
    "charge": _CHARGE,
    "charge.payment_method_details": _PM_DETAILS,
    "card": _CARD,
    "refund": _REFUND,
    "dispute": _DISPUTE,
    "payment_method": _PAYMENT_METHOD,
    "setup_intent": _SETUP_INTENT,
    "subscription": _SUBSCRIPTION,
    "subscription.items": _SUBSCRIPTION_ITEM,
    "plan": _PLAN_REF,
    "invoice": _INVOICE,
    "invoice.parent.subscription_details": _SUBSCRIPTION_DETAILS,
    "invoice.payments.payment": _INVOICE_PAYMENT,
    "checkout.session": _CHECKOUT_SESSION,
}


def _copy(values: dict[str, Any], loaded: Mapping[str, Any], pairs: Mapping[str, str]) -> None:
    """Copy the loaded keys present, renamed record-side (record name -> Stripe name)."""
    for name, source in pairs.items():
        if source in loaded:
            values[name] = loaded[source]


def _provider_status(values: dict[str, Any], loaded: Mapping[str, Any], key: str) -> Any:
    word = loaded.get(key)
    if key in loaded:
        values["provider_status"] = word
    return word


def _first(container: Any, key: str) -> Any:
    """Return container[key]["data"][0], a Stripe list's first entry, or None."""
    listing = container.get(key) if isinstance(container, Mapping) else None
    data = listing.get("data") if isinstance(listing, Mapping) else None
    return data[0] if isinstance(data, list) and data else None


# -- payment methods ----------------------------------------------------------


def _payment_method_record(
    run: SanitiseRun, token: Any, card: Any, card_prefix: str, extra: Mapping[str, Any]
) -> None:
    """Emit a payment_method record when the token is known."""
    if not isinstance(token, str):
        return
    values: dict[str, Any] = {"token": token}
    values.update(extra)
    values.update(run.load(_CARD, card, card_prefix))
    fill_only: frozenset[str] = frozenset()
    if "status" not in values:
        # Only payment_method.* events speak for the card's status; a charge or
        # intent that mentions the card merely implies it was active then.
        values["status"] = "active"
        fill_only = frozenset({"status"})
    run.emit("payment_method", values, fill_only=fill_only)


def _expanded_payment_method(run: SanitiseRun, pm: Any, prefix: str) -> None:
    """Emit a payment_method record from an expanded PaymentMethod that has a card."""
    if not isinstance(pm, Mapping) or not isinstance(pm.get("card"), Mapping):
        return
    loaded = run.load(_PAYMENT_METHOD, pm, prefix)
    extra: dict[str, Any] = {}
    _copy(extra, loaded, {"customer": "customer"})
    _payment_method_record(run, loaded.get("id"), pm["card"], prefix + "card.", extra)


def _payment_method_event(run: SanitiseRun, obj: Mapping[str, Any]) -> None:
    loaded = run.load(_PAYMENT_METHOD, obj, _PREFIX)
    extra: dict[str, Any] = {}
    _copy(extra, loaded, {"customer": "customer"})
    extra["status"] = "active"
    if run.event_type == "payment_method.detached":
        # Present as None (not absent) so storage clears the old customer link.
        extra["customer"] = None
        extra["status"] = "detached"
    # An expiry in the past still reads as active: sanitise never reads the clock.
    _payment_method_record(run, loaded.get("id"), obj.get("card"), _PREFIX + "card.", extra)


def _setup_intent_event(run: SanitiseRun, obj: Mapping[str, Any]) -> None:
    loaded = run.load(_SETUP_INTENT, obj, _PREFIX)
    extra: dict[str, Any] = {}
    _copy(extra, loaded, {"customer": "customer"})
    pm = obj.get("payment_method")
    card = pm.get("card") if isinstance(pm, Mapping) else None
    _payment_method_record(
        run, loaded.get("payment_method"), card, _PREFIX + "payment_method.card.", extra
    )


# -- transactions -------------------------------------------------------------


def _payment_intent_event(run: SanitiseRun, obj: Mapping[str, Any]) -> None:
    loaded = run.load(_PAYMENT_INTENT, obj, _PREFIX)
    if not isinstance(loaded.get("id"), str):
        return
    values: dict[str, Any] = {"id": loaded["id"], "kind": "payment"}
    word = _provider_status(values, loaded, "status")
    values["status"] = run.status(word, _PAYMENT_INTENT_STATUS, "pending")
    _copy(
        values,
        loaded,
        {
            "amount": "amount",
            "currency": "currency",
            "customer": "customer",
            "charge": "latest_charge",
            "invoice": "invoice",
            "payment_method": "payment_method",
        },
    )
    run.emit("transaction", values)
    _expanded_payment_method(run, obj.get("payment_method"), _PREFIX + "payment_method.")


def _charge_status(run: SanitiseRun, loaded: Mapping[str, Any]) -> str:
    word = loaded.get("status")
    if word == "succeeded":
        # An uncaptured successful charge is only an authorisation hold.
        base = "authorized" if loaded.get("captured") is False else "succeeded"
    elif word in ("failed", "pending"):
        base = str(word)
    else:
        base = run.status(word, {}, "pending")
    if loaded.get("disputed") is True:
        return "disputed"
    if loaded.get("refunded") is True:
        return "refunded"
    refunded = loaded.get("amount_refunded")
    if isinstance(refunded, int) and refunded > 0:
        return "partially_refunded"
    return base


def _charge_event(run: SanitiseRun, obj: Mapping[str, Any]) -> None:
    loaded = run.load(_CHARGE, obj, _PREFIX)
    if not isinstance(loaded.get("id"), str):
        return
    charge_id = loaded["id"]
    # A charge names itself as its charge, so one filter finds it with its refunds and disputes.
    values: dict[str, Any] = {"id": charge_id, "kind": "payment", "charge": charge_id}
    _provider_status(values, loaded, "status")
    values["status"] = _charge_status(run, loaded)
    _copy(
        values,
        loaded,
        {
            "amount": "amount",
            "currency": "currency",
            "customer": "customer",
            "payment_intent": "payment_intent",
            "invoice": "invoice",
            "payment_method": "payment_method",
        },
    )
    run.emit("transaction", values)

    details = obj.get("payment_method_details")
    kind = run.load(_PM_DETAILS, details, _PREFIX + "payment_method_details.").get("type")
    if isinstance(details, Mapping) and kind in _CARD_TYPES:
        extra: dict[str, Any] = {}
        _copy(extra, loaded, {"customer": "customer"})
        _payment_method_record(
            run,
            loaded.get("payment_method"),
            details.get(kind),
            f"{_PREFIX}payment_method_details.{kind}.",
            extra,
        )

    refunds = obj.get("refunds")
    listed = refunds.get("data") if isinstance(refunds, Mapping) else None
    if isinstance(listed, list):
        for index, refund in enumerate(listed):
            if isinstance(refund, Mapping):
                _refund(run, refund, f"{_PREFIX}refunds.data.{index}.", charge_id)


def _refund(run: SanitiseRun, obj: Mapping[str, Any], prefix: str, charge_id: str | None) -> None:
    loaded = run.load(_REFUND, obj, prefix)
    if not isinstance(loaded.get("id"), str):
        return
    values: dict[str, Any] = {"id": loaded["id"], "kind": "refund"}
    word = _provider_status(values, loaded, "status")
    # Event-type implications are about the charge, not the refunds it lists.
    values["status"] = _REFUND_STATUS.get(word, "pending") if isinstance(word, str) else "pending"
    _copy(
        values,
        loaded,
        {
            "amount": "amount",
            "currency": "currency",
            "charge": "charge",
            "refund_of": "charge",
            "payment_intent": "payment_intent",
        },
    )
    if charge_id is not None and "charge" not in loaded:
        values["charge"] = values["refund_of"] = charge_id
    run.emit("transaction", values)


def _refund_event(run: SanitiseRun, obj: Mapping[str, Any]) -> None:
    _refund(run, obj, _PREFIX, None)


def _dispute_event(run: SanitiseRun, obj: Mapping[str, Any]) -> None:
    loaded = run.load(_DISPUTE, obj, _PREFIX)
    if not isinstance(loaded.get("id"), str):
        return
    values: dict[str, Any] = {"id": loaded["id"], "kind": "dispute"}
    word = _provider_status(values, loaded, "status")
    # A dispute not known to be closed is treated as open.
    values["status"] = run.status(word, _DISPUTE_STATUS, "disputed")
    _copy(
        values,
        loaded,
        {
            "amount": "amount",
            "currency": "currency",
            "charge": "charge",
            "payment_intent": "payment_intent",
        },
    )
    run.emit("transaction", values)


def _invoice_event(run: SanitiseRun, obj: Mapping[str, Any]) -> None:
    loaded = run.load(_INVOICE, obj, _PREFIX)
    if not isinstance(loaded.get("id"), str):
        return
    values: dict[str, Any] = {"id": loaded["id"], "kind": "invoice"}
    word = _provider_status(values, loaded, "status")
    values["status"] = run.status(word, _INVOICE_STATUS, "pending")
    _copy(
        values,
        loaded,
        {
            # What the customer owes: amount_paid is 0 until paid and partial after.
            "amount": "amount_due",
            "currency": "currency",
            "customer": "customer",
            "subscription": "subscription",
            "payment_intent": "payment_intent",
            "charge": "charge",
        },
    )
    if values.get("subscription") is None:
        parent = obj.get("parent")
        details = parent.get("subscription_details") if isinstance(parent, Mapping) else None
        if isinstance(details, Mapping):
            found = run.load(
                _SUBSCRIPTION_DETAILS, details, _PREFIX + "parent.subscription_details."
            )
            _copy(values, found, {"subscription": "subscription"})
    if "payment_intent" not in values and "charge" not in values:
        # API 2025-03-31 and later list payments instead (when included).
        entry = _first(obj, "payments")
        payment = entry.get("payment") if isinstance(entry, Mapping) else None
        if isinstance(payment, Mapping):
            found = run.load(_INVOICE_PAYMENT, payment, f"{_PREFIX}payments.data.0.payment.")
            _copy(values, found, {"payment_intent": "payment_intent", "charge": "charge"})
    run.emit("transaction", values)


def _checkout_session_event(run: SanitiseRun, obj: Mapping[str, Any]) -> None:
    # The session is stored as a payment transaction under its cs_ id: it is
    # the one object that ties a checkout to its customer, PaymentIntent,
    # subscription and invoice. Its amount repeats the PaymentIntent's (or the
    # first invoice's), so totals must be summed over pi_/in_ rows, not cs_.
    loaded = run.load(_CHECKOUT_SESSION, obj, _PREFIX)
    if not isinstance(loaded.get("id"), str):
        return
    values: dict[str, Any] = {"id": loaded["id"], "kind": "payment"}
    # payment_status, not status ("complete"), says whether money moved.
    word = _provider_status(values, loaded, "payment_status")
    values["status"] = run.status(word, _CHECKOUT_PAYMENT_STATUS, "pending")
    _copy(
        values,
        loaded,
        {
            "amount": "amount_total",
            "currency": "currency",
            "customer": "customer",
            "payment_intent": "payment_intent",
            "subscription": "subscription",
            "invoice": "invoice",
        },
    )
    run.emit("transaction", values)


# -- subscriptions ------------------------------------------------------------


def _subscription_event(run: SanitiseRun, obj: Mapping[str, Any]) -> None:
    loaded = run.load(_SUBSCRIPTION, obj, _PREFIX)
    if not isinstance(loaded.get("id"), str):
        return
    values: dict[str, Any] = {"id": loaded["id"]}
    _copy(
        values,
        loaded,
        {
            "customer": "customer",
            "current_period_end": "current_period_end",
            "cancel_at_period_end": "cancel_at_period_end",
        },
    )
    word = _provider_status(values, loaded, "status")
    # An unknown word: nothing says the subscription is in good standing.
    values["status"] = run.status(word, _SUBSCRIPTION_STATUS, "incomplete")

    item = _first(obj, "items")
    item_prefix = f"{_PREFIX}items.data.0."
    if isinstance(item, Mapping):
        for key in ("price", "plan"):
            if isinstance(item.get(key), Mapping):
                plan = run.load(_PLAN_REF, item[key], f"{item_prefix}{key}.")
                _copy(values, plan, {"plan": "id"})
                break
        if values.get("current_period_end") is None:
            # Since API 2025-03-31 the period lives on each item.
            period = run.load(_SUBSCRIPTION_ITEM, item, item_prefix)
            _copy(values, period, {"current_period_end": "current_period_end"})
    if "plan" not in values and isinstance(obj.get("plan"), Mapping):
        plan = run.load(_PLAN_REF, obj["plan"], _PREFIX + "plan.")
        _copy(values, plan, {"plan": "id"})
    run.emit("subscription", values)


Handler = Callable[[SanitiseRun, Mapping[str, Any]], None]

_HANDLERS: Final[dict[str, Handler]] = {
    "payment_intent.succeeded": _payment_intent_event,
    "payment_intent.payment_failed": _payment_intent_event,
    "payment_intent.processing": _payment_intent_event,
    "payment_intent.canceled": _payment_intent_event,
    "payment_intent.requires_action": _payment_intent_event,
    "payment_intent.amount_capturable_updated": _payment_intent_event,
    "charge.succeeded": _charge_event,
    "charge.failed": _charge_event,
    "charge.captured": _charge_event,
    "charge.refunded": _charge_event,
    "charge.updated": _charge_event,
    "charge.dispute.created": _dispute_event,
    "charge.dispute.closed": _dispute_event,
    "refund.created": _refund_event,
    "refund.updated": _refund_event,
    # Since API version 2024-10-28 Stripe sends it for every refund type, not only cards.
    "refund.failed": _refund_event,
    "payment_method.attached": _payment_method_event,
    "payment_method.detached": _payment_method_event,
    "payment_method.updated": _payment_method_event,
    "payment_method.automatically_updated": _payment_method_event,
    "setup_intent.succeeded": _setup_intent_event,
    "customer.subscription.created": _subscription_event,
    "customer.subscription.updated": _subscription_event,
    "customer.subscription.deleted": _subscription_event,
    "customer.subscription.paused": _subscription_event,
    "customer.subscription.resumed": _subscription_event,
    "invoice.paid": _invoice_event,
    "invoice.payment_failed": _invoice_event,
    "invoice.finalized": _invoice_event,
    "invoice.voided": _invoice_event,
    "checkout.session.completed": _checkout_session_event,
    # A delayed payment method (bank debit, vouchers) settles after completed:
    # these are the only signal that the session was paid, or was not.
    "checkout.session.async_payment_succeeded": _checkout_session_event,
    "checkout.session.async_payment_failed": _checkout_session_event,
}

SUPPORTED_EVENT_TYPES: Final[tuple[str, ...]] = tuple(_HANDLERS)


def _is_thin(event: Mapping[str, Any]) -> bool:
    # Thin (v2) notifications carry only a reference to the changed object.
    return event.get("object") == "v2.core.event"


def _parse_signature_header(value: str) -> int:
    """Return the header's timestamp, or raise VerificationError if it is malformed."""
    if len(value) > _MAX_SIGNATURE_HEADER:
        raise VerificationError("malformed Stripe-Signature header: too long")
    # stripe's comparison raises TypeError on non-ASCII text; str.isdigit accepts "²".
    if not value.isascii():
        raise VerificationError("malformed Stripe-Signature header: not ASCII")
    # Same splitting as stripe's own parser (no trimming), so both read the same t.
    timestamps: list[str] = []
    has_v1 = False
    for item in value.split(","):
        key, sep, part = item.partition("=")
        if not sep:
            continue
        if key == "t":
            timestamps.append(part)
        elif key == "v1" and part:
            has_v1 = True
    if not timestamps:
        raise VerificationError("malformed Stripe-Signature header: no timestamp")
    if len(timestamps) > 1:
        raise VerificationError("malformed Stripe-Signature header: several timestamps")
    if not _DIGITS.fullmatch(timestamps[0]):
        raise VerificationError("malformed Stripe-Signature header: timestamp is not an integer")
    if not has_v1:
        raise VerificationError("malformed Stripe-Signature header: no v1 signature")
    return int(timestamps[0])


def _occurred_at(created: Any) -> datetime:
    """Return the event's creation time: epoch seconds (snapshot) or RFC 3339 (thin)."""
    if isinstance(created, int) and not isinstance(created, bool):
        try:
            return from_epoch(created)
        except ValueError as exc:
            raise MalformedBody("event created is out of range") from exc
    if isinstance(created, str):
        try:
            return parse_rfc3339(created)
        except ValueError as exc:
            raise MalformedBody("event created is missing or not a time") from exc
    raise MalformedBody("event created is missing or not a time")


class StripeAdapter(Adapter):
    """Stripe webhooks: snapshot events in, payment records out."""

    name = "stripe"
    signature_header = SIGNATURE_HEADER
    vocabulary = VOCABULARY

    def enabled(self, endpoint: EndpointConfig) -> bool:
        """Return whether the endpoint has at least one webhook secret."""
        return bool(endpoint.webhook_secrets)

    def how_to_enable(self) -> str:
        """Return the startup hint for a disabled Stripe endpoint."""
        return (
            "set PAYSIEVE_STRIPE_WEBHOOK_SECRETS to the endpoint's whsec_... signing secret "
            "(comma-separated during rotation) to enable Stripe"
        )

    def dev_options(self, var_dir: Path) -> dict[str, Any]:
        """Return a development endpoint's options: one fresh whsec_ secret."""
        return {"webhook_secrets": ["whsec_" + secrets.token_urlsafe(32)]}

    def verify(self, raw_body: bytes, headers: Mapping[str, str], endpoint: EndpointConfig) -> None:
        """Raise VerificationError unless a configured secret signed these bytes recently."""
        value = header(headers, SIGNATURE_HEADER)
        if value is None:
            raise VerificationError("missing Stripe-Signature header")
        if not value.strip():
            raise VerificationError("malformed Stripe-Signature header: empty")
        if not endpoint.webhook_secrets:
            raise VerificationError("no Stripe webhook secret is configured")
        timestamp = _parse_signature_header(value)
        try:
            # Stripe signs the text: decode here so a bad byte is our error, not theirs.
            payload = raw_body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise VerificationError("body is not UTF-8") from exc

        # The window is checked first: it is cheap, and the tolerance is public.
        tolerance = self.settings.tolerance_seconds
        now = time.time()
        if timestamp < now - tolerance:
            raise VerificationError("timestamp is too old")
        # stripe's helper only rejects old timestamps; a future one could be replayed later.
        if timestamp > now + tolerance:
            raise VerificationError("timestamp is in the future")

        for secret in endpoint.webhook_secrets:
            try:
                stripe.WebhookSignature.verify_header(payload, value, secret, tolerance=tolerance)
            except stripe.SignatureVerificationError:
                continue
            return
        # The clock may have crossed the window edge since the check above.
        if timestamp < time.time() - tolerance:
            raise VerificationError("timestamp is too old")
        raise VerificationError("signature does not match")

    def meta(self, event: dict[str, Any], headers: Mapping[str, str]) -> EventMeta:
        """Return the event's id, type and creation time, or raise MalformedBody."""
        event_id = event.get("id")
        if not isinstance(event_id, str) or not _ID.fullmatch(event_id):
            raise MalformedBody("event id is missing or malformed")
        event_type = event.get("type")
        if not isinstance(event_type, str) or not _WORD.fullmatch(event_type):
            raise MalformedBody("event type is missing or malformed")
        return EventMeta(
            id=event_id, type=event_type, occurred_at=_occurred_at(event.get("created"))
        )

    def sanitise(self, event: dict[str, Any]) -> Sanitised:
        """Keep the allowlisted fields of a supported snapshot event."""
        if _is_thin(event):
            return Sanitised(handled=False)
        event_type = event.get("type")
        if not isinstance(event_type, str) or event_type not in _HANDLERS:
            return Sanitised(handled=False)
        data = event.get("data")
        obj = data.get("object") if isinstance(data, Mapping) else None
        if not isinstance(obj, Mapping):
            raise MalformedBody("event has no data.object")
        run = SanitiseRun(event_type, implied=_IMPLIED_STATUS, overrides=_OVERRIDES)
        _HANDLERS[event_type](run, obj)
        return run.out

    def supported_event_types(self) -> tuple[str, ...]:
        """Return the Stripe event types that become records."""
        return SUPPORTED_EVENT_TYPES

    def schemas(self) -> Mapping[str, Schema]:
        """Return the inbound schemas by allowlist object path."""
        return SCHEMAS

    def sample_event(self, event_type: str, *, event_id: str | None = None) -> dict[str, Any]:
        """Return a realistic Stripe event of a supported type, personal data included."""
        if event_type not in _HANDLERS:
            raise ValueError(f"unsupported Stripe event type: {event_type}")
        return samples.build_event(event_type, event_id=event_id)

    def sample_event_types(self) -> tuple[str, ...]:
        """Return the event types sample_event builds."""
        return tuple(t for t in samples.BUILDERS if t in _HANDLERS)

    def sample_lifecycle(self) -> list[tuple[str, dict[str, Any]]]:
        """Return samples.LIFECYCLE's events: one customer, one payment, one card."""
        return samples.lifecycle()

    def sign(
        self, raw_body: bytes, endpoint: EndpointConfig, *, timestamp: int, event_id: str
    ) -> dict[str, str]:
        """Return the Stripe-Signature header for this body, signed with the first secret."""
        if not endpoint.webhook_secrets:
            raise ValueError("the endpoint has no Stripe webhook secret")
        # Stripe's header carries no event id; the id lives in the body.
        value = stripe.WebhookSignature.generate_signature_header(
            raw_body.decode("utf-8"), endpoint.webhook_secrets[0], timestamp=timestamp
        )
        return {SIGNATURE_HEADER: value}
