"""The Razorpay adapter: verify ``X-Razorpay-Signature``, keep the allowlisted fields."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import razorpay
from marshmallow import Schema
from razorpay.errors import SignatureVerificationError

from adapters.base import Adapter, SanitiseRun, header
from adapters.razorpay import samples
from adapters.razorpay.schemas import (
    CardSchema,
    CreatedSchema,
    DisputeSchema,
    InvoiceSchema,
    PaymentSchema,
    RefundSchema,
    SubscriptionSchema,
    TokenCardSchema,
    TokenSchema,
)
from adapters.razorpay.vocabulary import VOCABULARY
from adapters.shapes import ID_PATTERN, load_partial
from gateway.core import guard
from gateway.core.errors import MalformedBody, VerificationError
from gateway.core.records import EventMeta, Sanitised

if TYPE_CHECKING:
    from gateway.config.settings import EndpointConfig

SIGNATURE_HEADER: Final = "X-Razorpay-Signature"
EVENT_ID_HEADER: Final = "X-Razorpay-Event-Id"

_SIGNATURE = re.compile(r"^[0-9a-fA-F]{64}$")
_ID = re.compile(ID_PATTERN)
_EVENT_TYPE = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
# Razorpay sets a token's expired_at to the last second of the expiry month in
# India Standard Time; read in UTC, a midnight-IST instant would name the month before.
_IST: Final = timezone(timedelta(hours=5, minutes=30), "IST")

# Provider status words -> normalised statuses. A word missing from a map
# (Razorpay adds statuses over time) falls back to what the event type implies.
_PAYMENT_STATUS: Final = {
    "created": "pending",
    "pending": "pending",
    "authorized": "authorized",
    "captured": "succeeded",
    "failed": "failed",
    "refunded": "refunded",
}
_REFUND_STATUS: Final = {
    "created": "pending",
    "pending": "pending",
    "processed": "succeeded",
    "failed": "failed",
}
_DISPUTE_STATUS: Final = {
    "open": "disputed",
    "under_review": "disputed",
    # The merchant won: the payment stands.
    "won": "succeeded",
    # The money went back to the customer.
    "lost": "failed",
    # Closed without a decision (accepted fraud alert, withdrawn or retrieval
    # request answered); Razorpay deducts nothing, so nothing was reversed.
    "closed": "canceled",
}
_INVOICE_STATUS: Final = {
    "draft": "pending",
    "issued": "pending",
    "paid": "succeeded",
    # Money is still owed; provider_status keeps "partially_paid".
    "partially_paid": "pending",
    "cancelled": "canceled",
    # Past expire_by unpaid: Razorpay accepts no more payments on it.
    "expired": "canceled",
    "deleted": "canceled",
}
_SUBSCRIPTION_STATUS: Final = {
    # Neither has been charged yet: created awaits the mandate, authenticated
    # holds it until start_at. provider_status tells the two apart.
    "created": "incomplete",
    "authenticated": "incomplete",
    "active": "active",
    # A charge failed and Razorpay is retrying.
    "pending": "past_due",
    # Retries are exhausted but money is owed; a new payment method revives it,
    # so it is past_due rather than canceled.
    "halted": "past_due",
    "paused": "paused",
    "cancelled": "canceled",
    # Every billing cycle ran: the subscription reached its natural end.
    "completed": "expired",
    # Never authenticated before expire_by.
    "expired": "expired",
}
_TOKEN_STATUS: Final = {
    "active": "active",
    "expired": "expired",
    # Razorpay never charges a deactivated token again, as Stripe never
    # charges a detached payment method; "deleted" is left for erasure.
    "deactivated": "detached",
    "cancelled": "detached",
    "rejected": "detached",
    "failed": "detached",
    # Unusable now; a later token.activated (a newer event) makes it active again.
    "suspended": "detached",
    "paused": "detached",
    # "initiated" maps to nothing: the token is not usable yet, so no status is stored.
}

# The status an event type implies, used only when the entity's own word is
# missing, unknown or failed its shape.
_IMPLIED_STATUS: Final = {
    "payment.authorized": "authorized",
    "payment.captured": "succeeded",
    "payment.failed": "failed",
    "order.paid": "succeeded",
    "payment_link.paid": "succeeded",
    "qr_code.credited": "succeeded",
    "virtual_account.credited": "succeeded",
    "refund.created": "pending",
    "refund.processed": "succeeded",
    "refund.failed": "failed",
    "payment.dispute.won": "succeeded",
    "payment.dispute.lost": "failed",
    "payment.dispute.closed": "canceled",
    "invoice.paid": "succeeded",
    "invoice.partially_paid": "pending",
    "invoice.expired": "canceled",
    "subscription.activated": "active",
    "subscription.charged": "active",
    "subscription.resumed": "active",
    "subscription.pending": "past_due",
    "subscription.halted": "past_due",
    "subscription.paused": "paused",
    "subscription.cancelled": "canceled",
    "subscription.completed": "expired",
    "token.activated": "active",
    "token.deactivated": "detached",
}

_DISPUTE_EVENTS: Final = tuple(
    f"payment.dispute.{s}"
    for s in ("created", "won", "lost", "closed", "under_review", "action_required")
)
_SUBSCRIPTION_EVENTS: Final = tuple(
    f"subscription.{s}"
    for s in (
        "authenticated",
        "activated",
        "charged",
        "pending",
        "halted",
        "paused",
        "resumed",
        "cancelled",
        "completed",
        "updated",
    )
)
# The token.* events Razorpay documents; any other token.* is handled the same way.
_TOKEN_EVENTS: Final = (
    "token.activated",
    "token.deactivated",
    "token.expiry_updated",
    "token.initiated",
    "token.suspended",
    "token.paused",
    "token.cancelled",
    "token.rejected",
)

# Every event type whose entities become records. payment_link.* carry no
# record of their own (a link is not a payment); paid and partially_paid are
# handled for the payment they carry, cancelled and expired are ignored. Likewise
# a QR code or a virtual account is where a customer paid, not a payment: the
# credited events are handled for the payment entity they carry (the only
# signal of that payment unless payment.captured is also subscribed).
SUPPORTED_EVENT_TYPES: Final[tuple[str, ...]] = (
    "payment.authorized",
    "payment.captured",
    "payment.failed",
    "order.paid",
    "payment_link.paid",
    "payment_link.partially_paid",
    "qr_code.credited",
    "virtual_account.credited",
    "refund.created",
    "refund.processed",
    "refund.failed",
    *_DISPUTE_EVENTS,
    "invoice.paid",
    "invoice.partially_paid",
    "invoice.expired",
    *_SUBSCRIPTION_EVENTS,
    *_TOKEN_EVENTS,
)
_SUPPORTED: Final = frozenset(SUPPORTED_EVENT_TYPES)

_PAYMENT = PaymentSchema()
_CARD = CardSchema()
_REFUND = RefundSchema()
_DISPUTE = DisputeSchema()
_INVOICE = InvoiceSchema()
_SUBSCRIPTION = SubscriptionSchema()
_TOKEN = TokenSchema()
_TOKEN_CARD = TokenCardSchema()
_CREATED = CreatedSchema()

# Every schema by the object path config/allowlist.toml names its sources by.
SCHEMAS: Final[dict[str, Schema]] = {
    "payload.payment.entity": _PAYMENT,
    "payload.payment.entity.card": _CARD,
    "payload.refund.entity": _REFUND,
    "payload.dispute.entity": _DISPUTE,
    "payload.invoice.entity": _INVOICE,
    "payload.subscription.entity": _SUBSCRIPTION,
    "payload.token.entity": _TOKEN,
    "payload.token.entity.card": _TOKEN_CARD,
    "created": _CREATED,
}


def is_supported(event_type: str) -> bool:
    """Return whether events of this type become records (others are ignored)."""
    return event_type in _SUPPORTED or event_type.startswith("token.")


def _entity(payload: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    """Return payload[name]["entity"] when it is an object."""
    wrapper = payload.get(name)
    entity = wrapper.get("entity") if isinstance(wrapper, Mapping) else None
    return entity if isinstance(entity, Mapping) else None


def _prefix(name: str) -> str:
    return f"payload.{name}.entity."


def _copy(values: dict[str, Any], loaded: Mapping[str, Any], pairs: Mapping[str, str]) -> None:
    """Copy the loaded keys present, renamed record-side (record name -> Razorpay name)."""
    for name, source in pairs.items():
        if source in loaded:
            values[name] = loaded[source]


# -- payments -------------------------------------------------------------------


def _payment_status(run: SanitiseRun, loaded: Mapping[str, Any]) -> str | None:
    status = run.status(loaded.get("status"), _PAYMENT_STATUS)
    if status != "succeeded":
        return status
    # A partly refunded payment stays "captured" at Razorpay; refund_status says more.
    if loaded.get("refund_status") == "full":
        return "refunded"
    refunded = loaded.get("amount_refunded")
    if loaded.get("refund_status") == "partial" or (isinstance(refunded, int) and refunded > 0):
        return "partially_refunded"
    return status


def _payment(
    run: SanitiseRun, entity: Mapping[str, Any], *, subscription: str | None
) -> dict[str, Any]:
    """Emit the payment's transaction (and its card's payment method); return what loaded."""
    prefix = _prefix("payment")
    loaded = run.load(_PAYMENT, entity, prefix)
    payment_id = loaded.get("id")
    if not isinstance(payment_id, str):
        return loaded
    # Razorpay's payment is what Stripe calls a charge: naming itself as its
    # charge lets one filter find a payment with its refunds and disputes.
    values: dict[str, Any] = {"id": payment_id, "kind": "payment", "charge": payment_id}
    values["provider_status"] = loaded.get("status")
    values["status"] = _payment_status(run, loaded)
    _copy(
        values,
        loaded,
        {
            "amount": "amount",
            "currency": "currency",
            "customer": "customer_id",
            "order": "order_id",
            "invoice": "invoice_id",
        },
    )
    values["subscription"] = subscription

    card = entity.get("card")
    card_values = run.load(_CARD, card, prefix + "card.") if isinstance(card, Mapping) else {}
    # A saved card's token is the reusable reference; a one-off card has only its card_ id.
    token = loaded.get("token_id")
    reference = token or loaded.get("card_id") or card_values.get("id")
    values["payment_method"] = reference
    run.emit("transaction", values)

    details = {
        "brand": card_values.get("network"),
        "last4": card_values.get("last4"),
        "exp_month": card_values.get("expiry_month"),
        "exp_year": card_values.get("expiry_year"),
    }
    if isinstance(reference, str) and any(v is not None for v in details.values()):
        method: dict[str, Any] = {"token": reference, "customer": loaded.get("customer_id")}
        method.update(details)
        if token:
            # Razorpay just charged the token, so it is usable.
            method["status"] = "active"
        run.emit("payment_method", method)
    return loaded


def _refund(run: SanitiseRun, entity: Mapping[str, Any], payment: Mapping[str, Any]) -> None:
    loaded = run.load(_REFUND, entity, _prefix("refund"))
    if not isinstance(loaded.get("id"), str):
        return
    values: dict[str, Any] = {"id": loaded["id"], "kind": "refund"}
    values["provider_status"] = loaded.get("status")
    values["status"] = run.status(loaded.get("status"), _REFUND_STATUS)
    _copy(
        values,
        loaded,
        {
            "amount": "amount",
            "currency": "currency",
            "refund_of": "payment_id",
            "charge": "payment_id",
        },
    )
    _customer_of_payment(values, loaded, payment)
    run.emit("transaction", values)


def _dispute(run: SanitiseRun, entity: Mapping[str, Any], payment: Mapping[str, Any]) -> None:
    loaded = run.load(_DISPUTE, entity, _prefix("dispute"))
    if not isinstance(loaded.get("id"), str):
        return
    values: dict[str, Any] = {"id": loaded["id"], "kind": "dispute"}
    values["provider_status"] = loaded.get("status")
    # A dispute not known to be decided is treated as open.
    values["status"] = run.status(loaded.get("status"), _DISPUTE_STATUS) or "disputed"
    _copy(values, loaded, {"amount": "amount", "currency": "currency", "charge": "payment_id"})
    _customer_of_payment(values, loaded, payment)
    run.emit("transaction", values)


def _customer_of_payment(
    values: dict[str, Any], loaded: Mapping[str, Any], payment: Mapping[str, Any]
) -> None:
    # Refunds and disputes name no customer; the payment they reverse may.
    if loaded.get("payment_id") is not None and loaded.get("payment_id") == payment.get("id"):
        values["customer"] = payment.get("customer_id")


# -- invoices, subscriptions, tokens -------------------------------------------------


def _invoice(run: SanitiseRun, entity: Mapping[str, Any]) -> None:
    loaded = run.load(_INVOICE, entity, _prefix("invoice"))
    if not isinstance(loaded.get("id"), str):
        return
    # Naming itself as its invoice lets one filter find it with the payments for it.
    values: dict[str, Any] = {"id": loaded["id"], "kind": "invoice", "invoice": loaded["id"]}
    values["provider_status"] = loaded.get("status")
    values["status"] = run.status(loaded.get("status"), _INVOICE_STATUS)
    _copy(
        values,
        loaded,
        {
            # The invoice total; amount_due shrinks as partial payments arrive.
            "amount": "amount",
            "currency": "currency",
            "customer": "customer_id",
            "order": "order_id",
            "subscription": "subscription_id",
        },
    )
    run.emit("transaction", values)


def _subscription(run: SanitiseRun, entity: Mapping[str, Any]) -> str | None:
    """Emit the subscription record and return its id."""
    loaded = run.load(_SUBSCRIPTION, entity, _prefix("subscription"))
    if not isinstance(loaded.get("id"), str):
        return None
    values: dict[str, Any] = {"id": loaded["id"]}
    values["provider_status"] = loaded.get("status")
    # An unknown word: nothing says the subscription is in good standing.
    values["status"] = run.status(loaded.get("status"), _SUBSCRIPTION_STATUS) or "incomplete"
    _copy(
        values,
        loaded,
        {"plan": "plan_id", "customer": "customer_id", "current_period_end": "current_end"},
    )
    run.emit("subscription", values)
    return str(loaded["id"])


def _token(run: SanitiseRun, entity: Mapping[str, Any]) -> None:
    prefix = _prefix("token")
    loaded = run.load(_TOKEN, entity, prefix)
    if not isinstance(loaded.get("id"), str):
        return
    values: dict[str, Any] = {"token": loaded["id"], "customer": loaded.get("customer_id")}
    values["status"] = run.status(loaded.get("status"), _TOKEN_STATUS)
    card = entity.get("card")
    if isinstance(card, Mapping):
        found = run.load(_TOKEN_CARD, card, prefix + "card.")
        _copy(
            values,
            found,
            {
                "brand": "network",
                "last4": "last4",
                "exp_month": "expiry_month",
                "exp_year": "expiry_year",
            },
        )
        expired_at = loaded.get("expired_at")
        if isinstance(expired_at, datetime) and "exp_month" not in values:
            # A card token's expired_at is the card's expiry; UPI and e-mandate
            # tokens have no card, so their expired_at is not read as one.
            try:
                local = expired_at.astimezone(_IST)
            except OverflowError:
                # The last hours of year 9999 in UTC are year 10000 in India: no expiry.
                run.out.dropped.append(prefix + "expired_at")
            else:
                values["exp_month"] = local.month
                values["exp_year"] = local.year
    run.emit("payment_method", values)


# -- events -----------------------------------------------------------------------


def _entities(event: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    payload = event.get("payload")
    if not isinstance(payload, Mapping):
        return
    for name in payload:
        entity = _entity(payload, name)
        if entity is not None:
            yield str(name), entity


def _occurred_at(event: Mapping[str, Any]) -> datetime | None:
    """Return when the event happened, for ordering deliveries of one object.

    The event's own created_at when sent. Some events (token.* and a few
    subscription.activated and refund.speed_changed deliveries) come without
    one: then the latest created_at of the entities they carry (no event can
    predate the objects in it, so that is the tightest bound the body gives),
    and failing that None: the body does not say (the caller uses the time of receipt).
    """
    if "created_at" in event and event["created_at"] is not None:
        loaded, failed = load_partial(_CREATED, {"created_at": event["created_at"]})
        if failed or not isinstance(loaded.get("created_at"), datetime):
            raise MalformedBody("event created_at is not epoch seconds")
        return loaded["created_at"]  # type: ignore[no-any-return]
    latest: datetime | None = None
    for _name, entity in _entities(event):
        loaded, _failed = load_partial(_CREATED, entity)
        created = loaded.get("created_at")
        if isinstance(created, datetime) and (latest is None or created > latest):
            latest = created
    return latest


def _event_id(headers: Mapping[str, str]) -> str:
    value = header(headers, EVENT_ID_HEADER)
    if value is None or value == "":
        raise VerificationError("missing X-Razorpay-Event-Id header")
    # fullmatch: a $ anchor alone would let a trailing newline through. The id
    # is stored, so one that carries a card number is refused like any bad id.
    if not _ID.fullmatch(value) or guard.contains_pan(value):
        raise VerificationError("malformed X-Razorpay-Event-Id header")
    return value


class RazorpayAdapter(Adapter):
    """Razorpay webhooks: entity snapshots in, payment records out."""

    name = "razorpay"
    signature_header = SIGNATURE_HEADER
    vocabulary = VOCABULARY

    def enabled(self, endpoint: EndpointConfig) -> bool:
        """Return whether the endpoint has at least one webhook secret."""
        return bool(endpoint.webhook_secrets)

    def how_to_enable(self) -> str:
        """Return the startup hint for a disabled Razorpay endpoint."""
        return (
            "set PAYSIEVE_RAZORPAY_WEBHOOK_SECRETS to the webhook secret entered in the "
            "Razorpay Dashboard (comma-separated during rotation) to enable Razorpay"
        )

    def dev_options(self, var_dir: Path) -> dict[str, Any]:
        """Return a development endpoint's options: one fresh random secret."""
        return {"webhook_secrets": [secrets.token_urlsafe(32)]}

    def verify(self, raw_body: bytes, headers: Mapping[str, str], endpoint: EndpointConfig) -> None:
        """Raise VerificationError unless a configured secret signed these exact bytes."""
        signature = header(headers, SIGNATURE_HEADER)
        if signature is None or signature == "":
            raise VerificationError("missing X-Razorpay-Signature header")
        # The library compares str with hmac.compare_digest, which raises on
        # non-ASCII: only a well-formed hex digest may reach it.
        if not _SIGNATURE.fullmatch(signature):
            raise VerificationError("malformed X-Razorpay-Signature header")
        # Razorpay signs no timestamp, so the event id (deduplicated in storage)
        # is the only replay protection: a delivery without one is refused.
        _event_id(headers)
        if not endpoint.webhook_secrets:
            raise VerificationError("no Razorpay webhook secret is configured")
        try:
            # The library wants text and re-encodes it as UTF-8; a strict decode
            # makes that round trip byte-exact, so the bytes received are verified.
            body = raw_body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise VerificationError("body is not UTF-8") from exc
        utility = razorpay.Utility()
        digest = signature.lower()
        # After a rotation Razorpay still signs retries of older events with the old secret.
        for secret in endpoint.webhook_secrets:
            try:
                utility.verify_webhook_signature(body, digest, secret)
            except SignatureVerificationError:
                continue
            return
        raise VerificationError("signature does not match")

    def meta(self, event: dict[str, Any], headers: Mapping[str, str]) -> EventMeta:
        """Return the header's event id, the event type and when it happened."""
        event_type = event.get("event")
        if not isinstance(event_type, str) or not _EVENT_TYPE.fullmatch(event_type):
            raise MalformedBody("event type is missing or malformed")
        occurred = _occurred_at(event)
        return EventMeta(
            id=_event_id(headers),
            type=event_type,
            occurred_at=occurred or datetime.now(UTC),
            time_unknown=occurred is None,
        )

    def sanitise(self, event: dict[str, Any]) -> Sanitised:
        """Keep the allowlisted fields of a supported event's entities."""
        event_type = event.get("event")
        if not isinstance(event_type, str) or not is_supported(event_type):
            return Sanitised(handled=False)
        payload = event.get("payload")
        if not isinstance(payload, Mapping):
            raise MalformedBody("event has no payload")
        run = SanitiseRun(event_type, implied=_IMPLIED_STATUS, drop_nulls=True)
        # Entities are read by name, whatever "contains" lists: some deliveries
        # (subscription.activated with an upfront payment) carry more than it says.
        subscription_id = None
        entity = _entity(payload, "subscription")
        if entity is not None:
            subscription_id = _subscription(run, entity)
        entity = _entity(payload, "token")
        if entity is not None:
            _token(run, entity)
        entity = _entity(payload, "invoice")
        if entity is not None:
            _invoice(run, entity)
        payment: Mapping[str, Any] = {}
        entity = _entity(payload, "payment")
        if entity is not None:
            payment = _payment(run, entity, subscription=subscription_id)
        entity = _entity(payload, "refund")
        if entity is not None:
            _refund(run, entity, payment)
        entity = _entity(payload, "dispute")
        if entity is not None:
            _dispute(run, entity, payment)
        return run.out

    def sample_event(
        self, event_type: str, *, event_id: str | None = None, method: str = "card"
    ) -> dict[str, Any]:
        """Return a realistic Razorpay event, personal data included, with fresh ids.

        Razorpay sends the event id only in the X-Razorpay-Event-Id header, so
        event_id is not part of the body; ``sign`` puts it in the header.
        """
        return samples.build_event(event_type, method=method)

    def sample_event_types(self) -> tuple[str, ...]:
        """Return the event types sample_event builds."""
        return samples.SAMPLE_EVENT_TYPES

    def sample_lifecycle(self) -> list[tuple[str, dict[str, Any]]]:
        """Return samples.LIFECYCLE's events: one customer, one payment, one card."""
        return samples.lifecycle()

    def sign(
        self, raw_body: bytes, endpoint: EndpointConfig, *, timestamp: int, event_id: str
    ) -> dict[str, str]:
        """Return the headers Razorpay sends: the body's HMAC with the first secret, the id."""
        if not endpoint.webhook_secrets:
            raise ValueError("the endpoint has no Razorpay webhook secret")
        # Razorpay signs no timestamp; the argument exists for providers that do.
        key = endpoint.webhook_secrets[0].encode("utf-8")
        digest = hmac.new(key, raw_body, hashlib.sha256).hexdigest()
        return {SIGNATURE_HEADER: digest, EVENT_ID_HEADER: event_id}
