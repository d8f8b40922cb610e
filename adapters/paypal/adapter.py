"""The PayPal adapter: verify PAYPAL-* transmission headers, keep the allowlisted fields."""

from __future__ import annotations

import base64
import binascii
import functools
import re
import secrets
import string
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from marshmallow import Schema, ValidationError

from adapters.base import Adapter, SanitiseRun, parse_json
from adapters.paypal import samples
from adapters.paypal.devpki import DEV_CERT_URL, write_dev_pki
from adapters.paypal.schemas import (
    AuthorizationSchema,
    AuthorizationV1Schema,
    BillingInfoSchema,
    CaptureSchema,
    CardSchema,
    CustomerRefSchema,
    LinkSchema,
    MoneySchema,
    MoneyV1Schema,
    OrderSchema,
    PaymentTokenSchema,
    RefundSchema,
    RelatedIdsSchema,
    SaleRefundSchema,
    SaleSchema,
    SubscriptionSchema,
    VaultAttributesSchema,
    to_minor_units,
)
from adapters.paypal.verify_api import ApiVerifier, verify_request_body
from adapters.paypal.verify_cert import AUTH_ALGO, CertVerifier, cert_name, signed_message
from adapters.paypal.vocabulary import VOCABULARY
from adapters.shapes import ID_PATTERN, currency_exponent, parse_rfc3339
from gateway.core.errors import ConfigurationError, MalformedBody, VerificationError
from gateway.core.records import EventMeta, Sanitised

if TYPE_CHECKING:
    from gateway.config.settings import EndpointConfig, Settings

TRANSMISSION_ID: Final = "PAYPAL-TRANSMISSION-ID"
TRANSMISSION_TIME: Final = "PAYPAL-TRANSMISSION-TIME"
TRANSMISSION_SIG: Final = "PAYPAL-TRANSMISSION-SIG"
CERT_URL: Final = "PAYPAL-CERT-URL"
AUTH_ALGO_HEADER: Final = "PAYPAL-AUTH-ALGO"

MODES: Final = ("api", "cert")

_ID = re.compile(ID_PATTERN)
_EVENT_TYPE = re.compile(r"^[A-Z0-9_.-]{1,64}$")
# The transmission id is a UUID; refusing "|" keeps the signed message unambiguous.
_TRANSMISSION_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_SIG = re.compile(r"^[A-Za-z0-9+/=]{1,2048}$")
_MAX_HEADER = 512
_CAPTURE_LINK = re.compile(
    r"^https://api(?:-m)?(?:\.sandbox)?\.paypal\.com/v2/payments/captures/([A-Za-z0-9]{1,64})$"
)

_RESOURCE: Final = "resource."

# PayPal status words -> normalised statuses. A word missing from a map still
# yields a record: the status the event type implies, else the kind's default.
_CAPTURE_STATUS: Final = {
    "COMPLETED": "succeeded",
    "PENDING": "pending",
    "DECLINED": "failed",
    "FAILED": "failed",
    "REFUNDED": "refunded",
    "PARTIALLY_REFUNDED": "partially_refunded",
    # PayPal took the funds back (a chargeback or PayPal's own reversal): money is gone.
    "REVERSED": "refunded",
}
_AUTHORIZATION_STATUS: Final = {
    "CREATED": "authorized",
    "PENDING": "pending",
    "CAPTURED": "succeeded",
    "PARTIALLY_CAPTURED": "succeeded",
    "DENIED": "failed",
    "EXPIRED": "canceled",
    "VOIDED": "canceled",
}
_REFUND_STATUS: Final = {
    "COMPLETED": "succeeded",
    "PENDING": "pending",
    "FAILED": "failed",
    "CANCELLED": "canceled",
}
_ORDER_STATUS: Final = {
    "CREATED": "pending",
    "SAVED": "pending",
    # The payer consented; no money is held or moved until the merchant captures.
    "APPROVED": "pending",
    "PAYER_ACTION_REQUIRED": "requires_action",
    "VOIDED": "canceled",
    "COMPLETED": "succeeded",
}
_SUBSCRIPTION_STATUS: Final = {
    "APPROVAL_PENDING": "incomplete",
    "APPROVED": "incomplete",
    "ACTIVE": "active",
    "SUSPENDED": "paused",
    "CANCELLED": "canceled",
    "EXPIRED": "expired",
}
# Payments v1 words (lower case): sales, their refunds and reversals, authorizations.
_SALE_STATUS: Final = {
    "completed": "succeeded",
    "pending": "pending",
    "denied": "failed",
    "refunded": "refunded",
    "partially_refunded": "partially_refunded",
    # As with a reversed capture: PayPal took the money back.
    "reversed": "refunded",
}
_SALE_REFUND_STATUS: Final = {
    "completed": "succeeded",
    "pending": "pending",
    "failed": "failed",
    "cancelled": "canceled",
}
_AUTHORIZATION_V1_STATUS: Final = {
    "pending": "pending",
    "authorized": "authorized",
    "captured": "succeeded",
    "partially_captured": "succeeded",
    "expired": "canceled",
    "voided": "canceled",
}
# States only a sale has: a REFUNDED or REVERSED resource in one is the sale itself
# (its new state), not the refund or reversal transaction PayPal usually sends.
_SALE_ONLY_STATES: Final = frozenset({"refunded", "partially_refunded", "reversed", "denied"})
_SALE_REFUND_EVENTS: Final = frozenset({"PAYMENT.SALE.REFUNDED", "PAYMENT.SALE.REVERSED"})

_IMPLIED_STATUS: Final = {
    "PAYMENT.SALE.COMPLETED": "succeeded",
    "PAYMENT.SALE.PENDING": "pending",
    "PAYMENT.SALE.DENIED": "failed",
    "PAYMENT.SALE.REVERSED": "refunded",
    "PAYMENT.CAPTURE.COMPLETED": "succeeded",
    "PAYMENT.CAPTURE.PENDING": "pending",
    "PAYMENT.CAPTURE.DENIED": "failed",
    "PAYMENT.CAPTURE.REVERSED": "refunded",
    "PAYMENT.AUTHORIZATION.CREATED": "authorized",
    "PAYMENT.AUTHORIZATION.VOIDED": "canceled",
    "CHECKOUT.ORDER.COMPLETED": "succeeded",
    "BILLING.SUBSCRIPTION.ACTIVATED": "active",
    "BILLING.SUBSCRIPTION.SUSPENDED": "paused",
    "BILLING.SUBSCRIPTION.CANCELLED": "canceled",
    "BILLING.SUBSCRIPTION.EXPIRED": "expired",
    # PayPal leaves the subscription ACTIVE while it retries the failed payment.
    "BILLING.SUBSCRIPTION.PAYMENT.FAILED": "past_due",
}
_OVERRIDES: Final = frozenset({"BILLING.SUBSCRIPTION.PAYMENT.FAILED"})

_MONEY = MoneySchema()
_RELATED = RelatedIdsSchema()
_CAPTURE = CaptureSchema()
_AUTHORIZATION = AuthorizationSchema()
_REFUND = RefundSchema()
_LINK = LinkSchema()
_ORDER = OrderSchema()
_CARD = CardSchema()
_VAULT = VaultAttributesSchema()
_CUSTOMER = CustomerRefSchema()
_TOKEN = PaymentTokenSchema()
_SUBSCRIPTION = SubscriptionSchema()
_BILLING = BillingInfoSchema()
_MONEY_V1 = MoneyV1Schema()
_SALE = SaleSchema()
_SALE_REFUND = SaleRefundSchema()
_AUTHORIZATION_V1 = AuthorizationV1Schema()

# Every schema by the object path config/allowlist.toml names its sources by.
SCHEMAS: Final[dict[str, Schema]] = {
    "capture": _CAPTURE,
    "authorization": _AUTHORIZATION,
    "refund": _REFUND,
    "order": _ORDER,
    "subscription": _SUBSCRIPTION,
    "payment_token": _TOKEN,
    "amount": _MONEY,
    "supplementary_data.related_ids": _RELATED,
    "links": _LINK,
    "payment_source.card": _CARD,
    "payment_source.card.attributes.vault": _VAULT,
    "customer": _CUSTOMER,
    "billing_info": _BILLING,
    "sale": _SALE,
    "sale_refund": _SALE_REFUND,
    "authorization_v1": _AUTHORIZATION_V1,
    "amount_v1": _MONEY_V1,
}


def _get(obj: Any, *keys: str) -> Any:
    """Return obj[k1][k2]..., or None where a level is missing or not an object."""
    for key in keys:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def money(value: Any, path: str) -> tuple[int, str]:
    """Return (minor units, currency) of a PayPal money object, or raise MalformedBody."""
    try:
        loaded = _MONEY.load(value) if isinstance(value, Mapping) else None
    except ValidationError:
        loaded = None
    if loaded is None:
        raise MalformedBody(f"{path} is not a valid PayPal amount")
    currency = loaded["currency_code"]
    try:
        return to_minor_units(loaded["value"], currency_exponent(currency)), currency
    except ValueError as exc:
        # The message names the path only: the value itself never leaves the gateway.
        raise MalformedBody(f"{path} is not a valid {currency} amount") from exc


def money_v1(value: Any, path: str, *, refund: bool = False) -> tuple[int, str]:
    """Return (minor units, currency) of a Payments v1 amount, or raise MalformedBody."""
    try:
        loaded = _MONEY_V1.load(value) if isinstance(value, Mapping) else None
    except ValidationError:
        loaded = None
    if loaded is None:
        raise MalformedBody(f"{path} is not a valid PayPal amount")
    currency = loaded["currency"]
    total = loaded["total"]
    if refund and total.startswith("-"):
        # PayPal writes what a refund or reversal took back as a negative total
        # ("-0.49"); a refund record's amount is what went back, as Stripe's is.
        total = total[1:]
    try:
        return to_minor_units(total, currency_exponent(currency)), currency
    except ValueError as exc:
        # The message names the path only: the value itself never leaves the gateway.
        raise MalformedBody(f"{path} is not a valid {currency} amount") from exc


def _add_money(values: dict[str, Any], obj: Mapping[str, Any], prefix: str) -> None:
    if obj.get("amount") is not None:
        values["amount"], values["currency"] = money(obj["amount"], prefix + "amount")


def _related(run: SanitiseRun, obj: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    related = _get(obj, "supplementary_data", "related_ids")
    if related is None:
        return {}
    return run.load(_RELATED, related, prefix + "supplementary_data.related_ids.")


def _up_capture(run: SanitiseRun, obj: Mapping[str, Any], prefix: str) -> str | None:
    """Return the capture id a refund's ``up`` link points to (only the id is kept)."""
    links = obj.get("links")
    if not isinstance(links, list):
        return None
    for index, link in enumerate(links):
        loaded = run.load(_LINK, link, f"{prefix}links.{index}.")
        href = loaded.get("href")
        if loaded.get("rel") == "up" and isinstance(href, str):
            match = _CAPTURE_LINK.fullmatch(href)
            if match:
                return match.group(1)
    return None


# -- payments -----------------------------------------------------------------


def _capture(run: SanitiseRun, obj: Any, prefix: str, extra: Mapping[str, Any]) -> None:
    loaded = run.load(_CAPTURE, obj, prefix)
    if not isinstance(loaded.get("id"), str) or not isinstance(obj, Mapping):
        return
    values: dict[str, Any] = {"id": loaded["id"], "kind": "payment", **extra}
    if "status" in loaded:
        values["provider_status"] = loaded["status"]
    values["status"] = run.status(loaded.get("status"), _CAPTURE_STATUS, "pending")
    _add_money(values, obj, prefix)
    related = _related(run, obj, prefix)
    if "order_id" in related:
        values["order"] = related["order_id"]
    run.emit("transaction", values)


def _authorization(run: SanitiseRun, obj: Any, prefix: str, extra: Mapping[str, Any]) -> None:
    loaded = run.load(_AUTHORIZATION, obj, prefix)
    if not isinstance(loaded.get("id"), str) or not isinstance(obj, Mapping):
        return
    values: dict[str, Any] = {"id": loaded["id"], "kind": "payment", **extra}
    if "status" in loaded:
        values["provider_status"] = loaded["status"]
    values["status"] = run.status(loaded.get("status"), _AUTHORIZATION_STATUS, "pending")
    _add_money(values, obj, prefix)
    related = _related(run, obj, prefix)
    if "order_id" in related:
        values["order"] = related["order_id"]
    run.emit("transaction", values)


def _refund(run: SanitiseRun, obj: Any, prefix: str, extra: Mapping[str, Any]) -> None:
    loaded = run.load(_REFUND, obj, prefix)
    if not isinstance(loaded.get("id"), str) or not isinstance(obj, Mapping):
        return
    values: dict[str, Any] = {"id": loaded["id"], "kind": "refund", **extra}
    if "status" in loaded:
        values["provider_status"] = loaded["status"]
    # The event type (CAPTURE.REFUNDED) describes the capture, not the refund's own state.
    word = loaded.get("status")
    values["status"] = _REFUND_STATUS.get(word, "pending") if isinstance(word, str) else "pending"
    _add_money(values, obj, prefix)
    related = _related(run, obj, prefix)
    if "order_id" in related:
        values["order"] = related["order_id"]
    capture = related.get("capture_id") or _up_capture(run, obj, prefix)
    if capture is not None:
        values["refund_of"] = capture
    run.emit("transaction", values)


def _capture_event(run: SanitiseRun, obj: Mapping[str, Any]) -> None:
    _capture(run, obj, _RESOURCE, {})


def _authorization_event(run: SanitiseRun, obj: Mapping[str, Any]) -> None:
    # One event type, two resource versions: a v1 Payments authorization (state,
    # amount.total) or a v2 one (status, amount.value), by what the body carries.
    if _is_v1(obj):
        _authorization_v1(run, obj, _RESOURCE)
    else:
        _authorization(run, obj, _RESOURCE, {})


def _refund_event(run: SanitiseRun, obj: Mapping[str, Any]) -> None:
    _refund(run, obj, _RESOURCE, {})


# -- Payments v1: sales (how PayPal bills subscriptions), refunds, authorizations -------


def _is_v1(obj: Mapping[str, Any]) -> bool:
    """Return whether a resource is a Payments v1 object rather than a v2 one."""
    amount = obj.get("amount")
    if isinstance(amount, Mapping):
        return "total" in amount or ("currency" in amount and "currency_code" not in amount)
    return "state" in obj and "status" not in obj


def _copy_ids(values: dict[str, Any], loaded: Mapping[str, Any], pairs: Mapping[str, str]) -> None:
    """Copy the ids present (record name -> PayPal name); a null is unknown, not cleared."""
    for name, source in pairs.items():
        if isinstance(loaded.get(source), str):
            values[name] = loaded[source]


def _add_money_v1(
    values: dict[str, Any], obj: Mapping[str, Any], prefix: str, *, refund: bool = False
) -> None:
    if obj.get("amount") is not None:
        values["amount"], values["currency"] = money_v1(
            obj["amount"], prefix + "amount", refund=refund
        )


def _sale(run: SanitiseRun, obj: Mapping[str, Any], prefix: str) -> None:
    loaded = run.load(_SALE, obj, prefix)
    if not isinstance(loaded.get("id"), str):
        return
    values: dict[str, Any] = {"id": loaded["id"], "kind": "payment"}
    if "state" in loaded:
        values["provider_status"] = loaded["state"]
    values["status"] = run.status(loaded.get("state"), _SALE_STATUS, "pending")
    _add_money_v1(values, obj, prefix)
    # A subscription's payments are sales on its billing agreement (the I- id); the
    # parent payment (PAY-) is the v1 counterpart of a v2 order.
    _copy_ids(values, loaded, {"subscription": "billing_agreement_id", "order": "parent_payment"})
    run.emit("transaction", values)


def _sale_refund(run: SanitiseRun, obj: Mapping[str, Any], prefix: str) -> None:
    loaded = run.load(_SALE_REFUND, obj, prefix)
    if not isinstance(loaded.get("id"), str):
        return
    values: dict[str, Any] = {"id": loaded["id"], "kind": "refund"}
    if "state" in loaded:
        values["provider_status"] = loaded["state"]
    # The event type (SALE.REFUNDED, SALE.REVERSED) describes the sale, not this refund.
    word = loaded.get("state")
    values["status"] = (
        _SALE_REFUND_STATUS.get(word, "pending") if isinstance(word, str) else "pending"
    )
    _add_money_v1(values, obj, prefix, refund=True)
    _copy_ids(values, loaded, {"refund_of": "sale_id", "order": "parent_payment"})
    run.emit("transaction", values)


def _authorization_v1(run: SanitiseRun, obj: Mapping[str, Any], prefix: str) -> None:
    loaded = run.load(_AUTHORIZATION_V1, obj, prefix)
    if not isinstance(loaded.get("id"), str):
        return
    values: dict[str, Any] = {"id": loaded["id"], "kind": "payment"}
    if "state" in loaded:
        values["provider_status"] = loaded["state"]
    values["status"] = run.status(loaded.get("state"), _AUTHORIZATION_V1_STATUS, "pending")
    _add_money_v1(values, obj, prefix)
    _copy_ids(values, loaded, {"order": "parent_payment"})
    run.emit("transaction", values)


def _sale_event(run: SanitiseRun, obj: Mapping[str, Any]) -> None:
    state = obj.get("state")
    if run.event_type in _SALE_REFUND_EVENTS and state not in _SALE_ONLY_STATES:
        # PayPal sends the refund (or the reversal) transaction, its total negative.
        _sale_refund(run, obj, _RESOURCE)
    else:
        _sale(run, obj, _RESOURCE)


# -- payment methods ----------------------------------------------------------


def _card_values(run: SanitiseRun, card: Any, prefix: str) -> dict[str, Any]:
    loaded = run.load(_CARD, card, prefix)
    values: dict[str, Any] = {}
    if "brand" in loaded:
        values["brand"] = loaded["brand"]
    if "last_digits" in loaded:
        values["last4"] = loaded["last_digits"]
    if isinstance(loaded.get("expiry"), tuple):
        values["exp_year"], values["exp_month"] = loaded["expiry"]
    return values


def _vault_token_event(run: SanitiseRun, obj: Mapping[str, Any]) -> None:
    token = run.load(_TOKEN, obj, _RESOURCE).get("id")
    if not isinstance(token, str):
        return
    values: dict[str, Any] = {"token": token}
    if run.event_type == "VAULT.PAYMENT-TOKEN.DELETED":
        values["status"] = "deleted"
    else:
        values["status"] = "active"
        if obj.get("customer") is not None:
            customer = run.load(_CUSTOMER, obj["customer"], _RESOURCE + "customer.")
            if "id" in customer:
                values["customer"] = customer["id"]
        card = _get(obj, "payment_source", "card")
        if card is not None:
            values.update(_card_values(run, card, _RESOURCE + "payment_source.card."))
    run.emit("payment_method", values)


# -- orders -------------------------------------------------------------------


def _order_card(run: SanitiseRun, obj: Mapping[str, Any]) -> dict[str, Any]:
    """Emit the vaulted card an order paid with; return the refs transactions carry."""
    card = _get(obj, "payment_source", "card")
    vault = _get(card, "attributes", "vault")
    if vault is None:
        return {}
    prefix = _RESOURCE + "payment_source.card."
    loaded = run.load(_VAULT, vault, prefix + "attributes.vault.")
    token = loaded.get("id")
    if not isinstance(token, str):
        return {}
    refs: dict[str, Any] = {"payment_method": token}
    customer = _get(vault, "customer")
    if customer is not None:
        found = run.load(_CUSTOMER, customer, prefix + "attributes.vault.customer.")
        if "id" in found:
            refs["customer"] = found["id"]
    values: dict[str, Any] = {"token": token, "status": "active"}
    if "customer" in refs:
        values["customer"] = refs["customer"]
    values.update(_card_values(run, card, prefix))
    # An order shows the card was active then; it must not revive a token deleted since.
    run.emit("payment_method", values, fill_only=frozenset({"status"}))
    return refs


def _order_event(run: SanitiseRun, obj: Mapping[str, Any]) -> None:
    loaded = run.load(_ORDER, obj, _RESOURCE)
    order_id = loaded.get("id")
    if not isinstance(order_id, str):
        return
    refs = _order_card(run, obj)
    values: dict[str, Any] = {"id": order_id, "kind": "payment", "order": order_id, **refs}
    if "status" in loaded:
        values["provider_status"] = loaded["status"]
    values["status"] = run.status(loaded.get("status"), _ORDER_STATUS, "pending")

    units = obj.get("purchase_units")
    units = units if isinstance(units, list) else []
    totals: list[tuple[int, str]] = []
    for index, unit in enumerate(units):
        prefix = f"{_RESOURCE}purchase_units.{index}."
        if isinstance(unit, Mapping) and unit.get("amount") is not None:
            totals.append(money(unit["amount"], prefix + "amount"))
    # Units in one currency add up; mixed currencies have no single total to keep.
    if totals and len({currency for _, currency in totals}) == 1:
        values["amount"] = sum(amount for amount, _ in totals)
        values["currency"] = totals[0][1]
    run.emit("transaction", values)

    children = {"order": order_id, **refs}
    handlers: dict[str, Callable[[SanitiseRun, Any, str, Mapping[str, Any]], None]] = {
        "captures": _capture,
        "authorizations": _authorization,
        "refunds": _refund,
    }
    for index, unit in enumerate(units):
        payments = _get(unit, "payments")
        if not isinstance(payments, Mapping):
            continue
        for key, handler in handlers.items():
            listed = payments.get(key)
            if not isinstance(listed, list):
                continue
            for position, item in enumerate(listed):
                prefix = f"{_RESOURCE}purchase_units.{index}.payments.{key}.{position}."
                handler(run, item, prefix, children)


# -- subscriptions ------------------------------------------------------------


def _subscription_event(run: SanitiseRun, obj: Mapping[str, Any]) -> None:
    loaded = run.load(_SUBSCRIPTION, obj, _RESOURCE)
    if not isinstance(loaded.get("id"), str):
        return
    values: dict[str, Any] = {"id": loaded["id"]}
    if "plan_id" in loaded:
        values["plan"] = loaded["plan_id"]
    if "status" in loaded:
        values["provider_status"] = loaded["status"]
    # An unknown word: nothing says the subscription is in good standing.
    values["status"] = run.status(loaded.get("status"), _SUBSCRIPTION_STATUS, "incomplete")
    billing = obj.get("billing_info")
    if billing is not None:
        found = run.load(_BILLING, billing, _RESOURCE + "billing_info.")
        if "next_billing_time" in found:
            values["current_period_end"] = found["next_billing_time"]
    run.emit("subscription", values)


Handler = Callable[[SanitiseRun, Mapping[str, Any]], None]

_HANDLERS: Final[dict[str, Handler]] = {
    "PAYMENT.SALE.COMPLETED": _sale_event,
    "PAYMENT.SALE.PENDING": _sale_event,
    "PAYMENT.SALE.DENIED": _sale_event,
    "PAYMENT.SALE.REFUNDED": _sale_event,
    "PAYMENT.SALE.REVERSED": _sale_event,
    "PAYMENT.CAPTURE.COMPLETED": _capture_event,
    "PAYMENT.CAPTURE.PENDING": _capture_event,
    "PAYMENT.CAPTURE.DENIED": _capture_event,
    "PAYMENT.CAPTURE.REFUNDED": _refund_event,
    "PAYMENT.CAPTURE.REVERSED": _capture_event,
    "PAYMENT.AUTHORIZATION.CREATED": _authorization_event,
    "PAYMENT.AUTHORIZATION.VOIDED": _authorization_event,
    "CHECKOUT.ORDER.APPROVED": _order_event,
    "CHECKOUT.ORDER.COMPLETED": _order_event,
    "BILLING.SUBSCRIPTION.CREATED": _subscription_event,
    "BILLING.SUBSCRIPTION.ACTIVATED": _subscription_event,
    "BILLING.SUBSCRIPTION.UPDATED": _subscription_event,
    "BILLING.SUBSCRIPTION.SUSPENDED": _subscription_event,
    "BILLING.SUBSCRIPTION.CANCELLED": _subscription_event,
    "BILLING.SUBSCRIPTION.EXPIRED": _subscription_event,
    "BILLING.SUBSCRIPTION.PAYMENT.FAILED": _subscription_event,
    "VAULT.PAYMENT-TOKEN.CREATED": _vault_token_event,
    "VAULT.PAYMENT-TOKEN.DELETED": _vault_token_event,
}

SUPPORTED_EVENT_TYPES: Final[tuple[str, ...]] = tuple(_HANDLERS)


def _header(headers: Mapping[str, str], name: str) -> str:
    """Return a required transmission header, or raise VerificationError."""
    value = headers.get(name)
    if value is None:
        # Plain dicts (tests, other callers) are not case-insensitive like werkzeug's Headers.
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    if not isinstance(value, str) or not value:
        raise VerificationError(f"missing {name} header")
    if len(value) > _MAX_HEADER * 4:
        raise VerificationError(f"malformed {name} header")
    return value


def _is_base64(value: str) -> bool:
    """Return whether a header value is strict, non-empty base64."""
    try:
        return bool(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        return False


def _option(endpoint: EndpointConfig, key: str) -> str | None:
    value = endpoint.options.get(key)
    return value if isinstance(value, str) and value else None


@functools.lru_cache(maxsize=4)
def _signing_key(path: str) -> rsa.RSAPrivateKey:
    """Load a development signing key once (parsing the PEM costs more than signing)."""
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("dev_signing_key is not an RSA key")
    return key


class PayPalAdapter(Adapter):
    """PayPal webhooks: verified by PayPal's API or offline by certificate."""

    name = "paypal"
    signature_header = TRANSMISSION_SIG
    vocabulary = VOCABULARY
    transmission_header = TRANSMISSION_ID

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._verifiers: dict[str, ApiVerifier | CertVerifier] = {}
        self._lock = threading.Lock()

    # -- configuration --------------------------------------------------------

    def mode(self, endpoint: EndpointConfig) -> str:
        """Return the endpoint's verification mode (api unless set), or raise if unknown."""
        mode = endpoint.options.get("verify") or "api"
        if mode not in MODES:
            raise ConfigurationError(
                f"paypal endpoint {endpoint.name!r}: verify must be 'api' or 'cert'"
            )
        return str(mode)

    def enabled(self, endpoint: EndpointConfig) -> bool:
        """Return whether the endpoint has a webhook id and what its mode needs."""
        if _option(endpoint, "webhook_id") is None:
            return False
        if self.mode(endpoint) == "api":
            return bool(_option(endpoint, "client_id") and _option(endpoint, "client_secret"))
        if _option(endpoint, "trust_roots") is None:
            return False
        # Reading the trust roots now makes a bad path fail at startup, not per delivery.
        self.verifier(endpoint)
        return True

    def how_to_enable(self) -> str:
        """Return the startup hint for a disabled PayPal endpoint."""
        return (
            "set PAYSIEVE_PAYPAL_WEBHOOK_ID and either PAYSIEVE_PAYPAL_CLIENT_ID + "
            "PAYSIEVE_PAYPAL_CLIENT_SECRET (verify = api) or PAYSIEVE_PAYPAL_VERIFY=cert with "
            "PAYSIEVE_PAYPAL_TRUST_ROOTS (see docs/providers/paypal.md) to enable PayPal"
        )

    def verifier(self, endpoint: EndpointConfig) -> ApiVerifier | CertVerifier:
        """Return the endpoint's verifier (built once: it holds the token and cert caches)."""
        with self._lock:
            found = self._verifiers.get(endpoint.name)
            if found is None:
                if self.mode(endpoint) == "api":
                    found = ApiVerifier.from_options(endpoint.options)
                else:
                    found = CertVerifier.from_options(endpoint.options)
                self._verifiers[endpoint.name] = found
            return found

    # -- verification ---------------------------------------------------------

    def verify(self, raw_body: bytes, headers: Mapping[str, str], endpoint: EndpointConfig) -> None:
        """Raise VerificationError unless PayPal recently sent exactly these bytes."""
        transmission_id = _header(headers, TRANSMISSION_ID)
        transmission_time = _header(headers, TRANSMISSION_TIME)
        signature = _header(headers, TRANSMISSION_SIG)
        cert_url = _header(headers, CERT_URL)
        auth_algo = _header(headers, AUTH_ALGO_HEADER)
        if not _TRANSMISSION_ID.fullmatch(transmission_id):
            raise VerificationError(f"malformed {TRANSMISSION_ID} header")
        if not _SIG.fullmatch(signature) or not _is_base64(signature):
            raise VerificationError(f"malformed {TRANSMISSION_SIG} header")
        if auth_algo != AUTH_ALGO:
            raise VerificationError(f"unsupported {AUTH_ALGO_HEADER}")

        # Every check that needs no network runs before the first outbound call (the
        # certificate fetch or PayPal's API): unauthenticated garbage costs nothing.
        try:
            sent = parse_rfc3339(transmission_time).timestamp()
        except ValueError as exc:
            raise VerificationError(f"malformed {TRANSMISSION_TIME} header") from exc
        tolerance = self.settings.tolerance_seconds
        now = time.time()
        if sent < now - tolerance:
            raise VerificationError("transmission time is too old")
        if sent > now + tolerance:
            raise VerificationError("transmission time is in the future")
        cert_name(cert_url)
        webhook_id = _option(endpoint, "webhook_id")
        if webhook_id is None:
            raise VerificationError("no PayPal webhook id is configured")
        # api mode splices the bytes into one JSON request, so they must be one object;
        # cert mode would refuse anything else after verifying, so refuse it before.
        parse_json(raw_body)

        verifier = self.verifier(endpoint)
        if isinstance(verifier, ApiVerifier):
            verifier.verify(
                verify_request_body(
                    auth_algo=auth_algo,
                    cert_url=cert_url,
                    transmission_id=transmission_id,
                    transmission_sig=signature,
                    transmission_time=transmission_time,
                    webhook_id=webhook_id,
                    raw_body=raw_body,
                )
            )
        else:
            verifier.verify(
                raw_body,
                transmission_id=transmission_id,
                transmission_time=transmission_time,
                webhook_id=webhook_id,
                signature=signature,
                cert_url=cert_url,
                auth_algo=auth_algo,
            )

    # -- events ---------------------------------------------------------------

    def meta(self, event: dict[str, Any], headers: Mapping[str, str]) -> EventMeta:
        """Return the event's WH- id, type and creation time, or raise MalformedBody."""
        event_id = event.get("id")
        if not isinstance(event_id, str) or not _ID.fullmatch(event_id):
            raise MalformedBody("event id is missing or malformed")
        event_type = event.get("event_type")
        if not isinstance(event_type, str) or not _EVENT_TYPE.fullmatch(event_type):
            raise MalformedBody("event type is missing or malformed")
        try:
            occurred_at = parse_rfc3339(event.get("create_time"))
        except ValueError as exc:
            raise MalformedBody("event create_time is missing or not a time") from exc
        return EventMeta(id=event_id, type=event_type, occurred_at=occurred_at)

    def sanitise(self, event: dict[str, Any]) -> Sanitised:
        """Keep the allowlisted fields of a supported event's resource."""
        event_type = event.get("event_type")
        handler = _HANDLERS.get(event_type) if isinstance(event_type, str) else None
        if handler is None or not isinstance(event_type, str):
            return Sanitised(handled=False)
        resource = event.get("resource")
        if not isinstance(resource, Mapping):
            raise MalformedBody("event has no resource object")
        run = SanitiseRun(event_type, implied=_IMPLIED_STATUS, overrides=_OVERRIDES)
        handler(run, resource)
        return run.out

    def sample_event(
        self, event_type: str, *, event_id: str | None = None, version: str | None = None
    ) -> dict[str, Any]:
        """Return a realistic PayPal event of a supported type, personal data included.

        version picks the resource version where PayPal sends two (``"1.0"`` for a
        Payments v1 authorization); by default the current one.
        """
        if event_type not in _HANDLERS:
            raise ValueError(f"unsupported PayPal event type: {event_type}")
        return samples.build_event(event_type, event_id_=event_id, version=version)

    def sample_variants(self, event_type: str) -> tuple[dict[str, str], ...]:
        """Return one option set per resource version PayPal sends the type in."""
        return tuple({"version": v} for v in samples.VERSIONS.get(event_type, ())) or ({},)

    def sample_event_types(self) -> tuple[str, ...]:
        """Return the event types sample_event builds."""
        return tuple(t for t in samples.EVENT_TYPES if t in _HANDLERS)

    def sample_lifecycle(self) -> list[tuple[str, dict[str, Any]]]:
        """Return samples.LIFECYCLE's events: one customer, one payment, one card."""
        return samples.lifecycle()

    # -- development ----------------------------------------------------------

    def sign(
        self, raw_body: bytes, endpoint: EndpointConfig, *, timestamp: int, event_id: str
    ) -> dict[str, str]:
        """Return PayPal's transmission headers, signed with the endpoint's dev_signing_key."""
        key_path = _option(endpoint, "dev_signing_key")
        webhook_id = _option(endpoint, "webhook_id")
        if key_path is None or webhook_id is None:
            raise ValueError("the endpoint has no dev_signing_key and webhook_id to sign with")
        key = _signing_key(key_path)
        # PayPal's headers carry no event id; the WH- id lives in the body.
        transmission_id = str(uuid.uuid4())
        transmission_time = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        message = signed_message(transmission_id, transmission_time, webhook_id, raw_body)
        signature = key.sign(message, padding.PKCS1v15(), hashes.SHA256())
        return {
            TRANSMISSION_ID: transmission_id,
            TRANSMISSION_TIME: transmission_time,
            TRANSMISSION_SIG: base64.b64encode(signature).decode("ascii"),
            CERT_URL: _option(endpoint, "dev_cert_url") or DEV_CERT_URL,
            AUTH_ALGO_HEADER: AUTH_ALGO,
        }

    def dev_options(self, var_dir: Path) -> dict[str, Any]:
        """Return a cert-mode endpoint trusting a fresh local root, with its cert pre-seeded."""
        pki = write_dev_pki(var_dir / "paypal-dev")
        alphabet = string.ascii_uppercase + string.digits
        webhook_id = "".join(secrets.choice(alphabet) for _ in range(17))
        return {
            "verify": "cert",
            "webhook_id": webhook_id,
            "trust_roots": pki.trust_roots.as_posix(),
            "cert_cache_dir": pki.cert_cache_dir.as_posix(),
            # Offline by construction: the development gateway never contacts PayPal.
            "fetch_certs": False,
            "dev_signing_key": pki.signing_key.as_posix(),
            "dev_cert_url": DEV_CERT_URL,
        }
