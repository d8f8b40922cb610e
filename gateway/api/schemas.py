"""Read-API schemas: query arguments in, records out (separate from the provider schemas)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final, cast

from marshmallow import RAISE, Schema, ValidationError, fields, missing, validate

from gateway.core.records import (
    BRANDS,
    EVENT_OUTCOMES,
    PAYMENT_METHOD_STATUSES,
    SUBSCRIPTION_STATUSES,
    TRANSACTION_KINDS,
    TRANSACTION_STATUSES,
)

PROVIDER_PATTERN = r"^[a-z][a-z0-9_]{0,15}$"
ACCOUNT_PATTERN = r"^[a-z0-9_-]{1,64}$"
ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,128}$"
CURSOR_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
MAX_LIMIT = 500
# seq and pk are 64-bit signed in the database.
MAX_SEQ = 2**63 - 1
DEFAULT_LIMIT = 100

# ASCII digits only: \d and int() also read other scripts' digits (Arabic-Indic three is 3).
_RFC3339 = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2})[Tt ]([0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.([0-9]{1,32}))?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
# At most 19 digits: no wider than a BIGINT, and never near int()'s digit limit.
_DECIMAL = re.compile(r"[0-9]{1,19}")


class Digits(fields.Integer):
    """Load a non-negative integer of 1-19 ASCII digits, nothing else (no sign, space or "_")."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if not isinstance(value, str) or _DECIMAL.fullmatch(value) is None:
            raise self.make_error("invalid")
        return int(value)


class Pattern(validate.Regexp):
    """Match a regular expression against the whole value; Regexp lets a final newline pass."""

    def __call__(self, value: Any) -> Any:
        regex = cast("re.Pattern[str]", self.regex)
        if not isinstance(value, str) or regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


class RFC3339(fields.DateTime):
    """An RFC 3339 timestamp: an offset is required in, UTC with "Z" goes out."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        if value is None:
            return None
        text: str = value.astimezone(UTC).isoformat()
        return text.removesuffix("+00:00") + "Z"

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        match = _RFC3339.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            raise ValidationError("must be an RFC 3339 timestamp with an offset")
        date, time, fraction, offset = match.groups()
        offset = "+00:00" if offset in ("Z", "z") else offset
        micro = f".{(fraction or '')[:6]:0<6}"
        try:
            return datetime.fromisoformat(f"{date}T{time}{micro}{offset}").astimezone(UTC)
        except (ValueError, OverflowError) as exc:
            # OverflowError: year 1 or 9999 moved past the calendar's end by its offset.
            raise ValidationError("must be an RFC 3339 timestamp with an offset") from exc


def _choice(words: Any) -> validate.OneOf:
    return validate.OneOf(sorted(words))


# ---------------------------------------------------------------- query arguments (in)


class _Query(Schema):
    class Meta:
        unknown = RAISE


class PageQuery(_Query):
    """Filters and paging every record list takes."""

    provider = fields.String(validate=Pattern(PROVIDER_PATTERN))
    account = fields.String(validate=Pattern(ACCOUNT_PATTERN))
    customer = fields.String(validate=Pattern(ID_PATTERN))
    updated_since = RFC3339(metadata={"description": "RFC 3339; records updated at or after"})
    limit = Digits(load_default=DEFAULT_LIMIT, validate=validate.Range(min=1, max=MAX_LIMIT))
    cursor = fields.String(
        validate=Pattern(CURSOR_PATTERN),
        metadata={"description": "next_cursor of the previous page"},
    )


class TransactionQuery(PageQuery):
    """Filters of the transaction list."""

    status = fields.String(validate=_choice(TRANSACTION_STATUSES))
    kind = fields.String(validate=_choice(TRANSACTION_KINDS))


class PaymentMethodQuery(PageQuery):
    """Filters of the payment-method list."""

    status = fields.String(validate=_choice(PAYMENT_METHOD_STATUSES))


class SubscriptionQuery(PageQuery):
    """Filters of the subscription list."""

    status = fields.String(validate=_choice(SUBSCRIPTION_STATUSES))


class RecordQuery(_Query):
    """Arguments of a single-record read."""

    account = fields.String(
        validate=Pattern(ACCOUNT_PATTERN),
        metadata={"description": "needed only when two accounts hold the same id"},
    )


class EventQuery(_Query):
    """Arguments of the change feed."""

    after = Digits(
        load_default=0,
        validate=validate.Range(min=0, max=MAX_SEQ),
        metadata={"description": "the seq (next_after) the consumer has processed"},
    )
    limit = Digits(load_default=DEFAULT_LIMIT, validate=validate.Range(min=1, max=MAX_LIMIT))
    provider = fields.String(validate=Pattern(PROVIDER_PATTERN))
    account = fields.String(validate=Pattern(ACCOUNT_PATTERN))


class AuditLogQuery(_Query):
    """Arguments of the audit log."""

    after = Digits(load_default=0, validate=validate.Range(min=0, max=MAX_SEQ))
    limit = Digits(load_default=DEFAULT_LIMIT, validate=validate.Range(min=1, max=MAX_LIMIT))


# ---------------------------------------------------------------- records (out)


def _ref() -> fields.String:
    return fields.String(required=True, allow_none=True)


class RecordOut(Schema):
    """What every record carries besides its allowlisted fields."""

    provider = fields.String(required=True)
    account = fields.String(required=True)
    created_at = RFC3339(required=True)
    updated_at = RFC3339(required=True)
    last_event_id = fields.String(required=True)


class PaymentMethodOut(RecordOut):
    """A stored payment method."""

    token = fields.String(required=True)
    customer = _ref()
    brand = fields.String(required=True, allow_none=True, validate=_choice(BRANDS))
    last4 = fields.String(required=True, allow_none=True, validate=Pattern(r"^\d{4}$"))
    exp_month = fields.Integer(required=True, allow_none=True)
    exp_year = fields.Integer(required=True, allow_none=True)
    status = fields.String(
        required=True, allow_none=True, validate=_choice(PAYMENT_METHOD_STATUSES)
    )


class EmbeddedPaymentMethodOut(PaymentMethodOut):
    """A transaction's payment method; only the token is known until its own event arrives."""

    created_at = RFC3339(required=True, allow_none=True)
    updated_at = RFC3339(required=True, allow_none=True)
    last_event_id = fields.String(required=True, allow_none=True)


class TransactionOut(RecordOut):
    """A stored transaction with its payment method embedded."""

    id = fields.String(required=True)
    kind = fields.String(required=True, allow_none=True, validate=_choice(TRANSACTION_KINDS))
    status = fields.String(required=True, allow_none=True, validate=_choice(TRANSACTION_STATUSES))
    provider_status = _ref()
    amount = fields.Integer(required=True, allow_none=True)
    currency = fields.String(required=True, allow_none=True, validate=Pattern(r"^[A-Z]{3}$"))
    customer = _ref()
    payment_intent = _ref()
    charge = _ref()
    order = _ref()
    invoice = _ref()
    subscription = _ref()
    refund_of = _ref()
    payment_method = fields.Nested(EmbeddedPaymentMethodOut, required=True, allow_none=True)


class SubscriptionOut(RecordOut):
    """A stored subscription."""

    id = fields.String(required=True)
    customer = _ref()
    plan = _ref()
    status = fields.String(required=True, allow_none=True, validate=_choice(SUBSCRIPTION_STATUSES))
    provider_status = _ref()
    current_period_end = RFC3339(required=True, allow_none=True)
    cancel_at_period_end = fields.Boolean(required=True, allow_none=True)


class ObjectIdsOut(Schema):
    """The ids of the records one event touched, by record type."""

    transaction = fields.List(fields.String(), required=True)
    payment_method = fields.List(fields.String(), required=True)
    subscription = fields.List(fields.String(), required=True)


class EventOut(Schema):
    """One entry of the change feed."""

    seq = fields.Integer(required=True)
    provider = fields.String(required=True)
    account = fields.String(required=True)
    id = fields.String(required=True)
    type = fields.String(required=True)
    occurred_at = RFC3339(required=True)
    received_at = RFC3339(required=True)
    outcome = fields.String(required=True, validate=_choice(EVENT_OUTCOMES))
    object_ids = fields.Nested(ObjectIdsOut, required=True)
    dropped_fields = fields.Integer(required=True)


class _Page(Schema):
    next_cursor = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "pass as cursor for the next page; null on the last page"},
    )


class TransactionPage(_Page):
    """A page of transactions."""

    data = fields.List(fields.Nested(TransactionOut), required=True)


class PaymentMethodPage(_Page):
    """A page of payment methods."""

    data = fields.List(fields.Nested(PaymentMethodOut), required=True)


class SubscriptionPage(_Page):
    """A page of subscriptions."""

    data = fields.List(fields.Nested(SubscriptionOut), required=True)


class EventPage(Schema):
    """A page of the change feed."""

    data = fields.List(fields.Nested(EventOut), required=True)
    next_after = fields.Integer(
        required=True, metadata={"description": "pass as after on the next poll"}
    )
    has_more = fields.Boolean(
        required=True, metadata={"description": "true: poll again now; false: caught up"}
    )


class ErrorDetail(Schema):
    """What went wrong, without any value from the request."""

    code = fields.String(required=True)
    message = fields.String(required=True)


class ErrorOut(Schema):
    """The one error shape."""

    error = fields.Nested(ErrorDetail, required=True)


# ---------------------------------------------------------------- data subjects and audit (out)


class CustomerQuery(_Query):
    """Arguments of a customer's export or erasure."""

    account = fields.String(
        validate=Pattern(ACCOUNT_PATTERN),
        metadata={
            "description": "only this account (endpoint); default: every account the key sees"
        },
    )


class ExportErasureOut(Schema):
    """When the customer was erased from one account (no erased value is held)."""

    account = fields.String(required=True)
    erased_at = fields.String(required=True, metadata={"format": "date-time"})


class CustomerExportOut(Schema):
    """Every record held about a customer, each as the record routes serve it."""

    provider = fields.String(required=True)
    customer = fields.String(required=True)
    generated_at = fields.String(required=True, metadata={"format": "date-time"})
    legal_basis = fields.String(required=True)
    transactions = fields.List(fields.Nested(TransactionOut), required=True)
    payment_methods = fields.List(fields.Nested(PaymentMethodOut), required=True)
    subscriptions = fields.List(fields.Nested(SubscriptionOut), required=True)
    erasures = fields.List(fields.Nested(ExportErasureOut), required=True)


class ErasedCountsOut(Schema):
    """The records an erasure deleted."""

    payment_methods = fields.Integer(required=True)
    subscriptions = fields.Integer(required=True)


class UnlinkedCountsOut(Schema):
    """The transactions an erasure kept, unlinked from the customer."""

    transactions = fields.Integer(required=True)


class TombstoneOut(Schema):
    """Where and since when an event about the customer no longer links to them."""

    erased_at = fields.String(required=True, metadata={"format": "date-time"})
    accounts = fields.List(fields.String(), required=True)


class ErasureOut(Schema):
    """What one erasure did: counts and the subject's keyed-hash pseudonym, no value."""

    subject = fields.String(required=True, metadata={"description": "keyed-hash pseudonym"})
    deleted = fields.Nested(ErasedCountsOut, required=True)
    unlinked = fields.Nested(UnlinkedCountsOut, required=True)
    tombstone = fields.Nested(TombstoneOut, required=True)
    legal_basis = fields.String(required=True)


class AuditEntryOut(Schema):
    """One entry of the audit log: who did what by which route, never a value."""

    seq = fields.Integer(required=True)
    at = RFC3339(required=True)
    actor = fields.String(required=True, metadata={"description": "a key prefix, cli or anonymous"})
    action = fields.String(required=True)
    route = fields.String(required=True, metadata={"description": "a route template, or cli"})
    outcome = fields.String(required=True)
    count = fields.Integer(required=True)


class AuditLogPage(Schema):
    """A page of the audit log."""

    data = fields.List(fields.Nested(AuditEntryOut), required=True)
    next_after = fields.Integer(
        required=True,
        allow_none=True,
        metadata={"description": "pass as after for the next page; null on the last page"},
    )
    has_more = fields.Boolean(required=True)


# ---------------------------------------------------------------- dumpers (out, per page)

Dumper = Callable[[Mapping[str, Any]], dict[str, Any]]
_PASS_THROUGH: Final = {fields.String: str, fields.Integer: int, fields.Boolean: bool}


def dumper(schema: type[Schema]) -> Dumper:
    """Return a function dumping a mapping exactly as ``schema().dump`` does, built once.

    A schema instance deep-copies its declared fields: one per record was most of a page's
    time. The returned builder walks the declared fields of one instance made here; a value
    of the field's own plain type (str for String, int for Integer, bool for Boolean) is
    served as is, as marshmallow serves it; anything else goes through the field itself.
    """
    steps = [_step(name, field) for name, field in schema().dump_fields.items()]

    def dump(obj: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, convert in steps:
            if name in obj:
                out[name] = convert(obj[name])
        return out

    return dump


def _step(name: str, field: fields.Field[Any]) -> tuple[str, Callable[[Any], Any]]:
    # A field whose dumped key, source attribute or default differ from its name would need
    # more than this builder does: refuse it when the module loads, not when a page is served.
    if field.data_key not in (None, name) or field.attribute not in (None, name):
        raise TypeError(f"{name}: the read-API dumper serves fields under their own names")
    if field.dump_default is not missing:
        raise TypeError(f"{name}: the read-API dumper does not fill dump defaults")
    return name, _converter(name, field)


def _converter(name: str, field: fields.Field[Any]) -> Callable[[Any], Any]:
    if isinstance(field, fields.Nested):
        nested = field.schema
        if nested.many or field.many or nested.only or nested.exclude:
            raise TypeError(f"{name}: the read-API dumper nests one whole schema")
        inner = dumper(type(nested))
        return lambda value: None if value is None else inner(value)
    if isinstance(field, fields.List):
        item = _converter(name, field.inner)
        return lambda value: None if value is None else [item(each) for each in value]
    if type(field) not in _PASS_THROUGH and not isinstance(field, RFC3339):
        raise TypeError(f"{name}: no read-API dumper for {type(field).__name__}")
    plain = _PASS_THROUGH.get(type(field))
    serialise = field._serialize

    def convert(value: Any) -> Any:
        if value is None or type(value) is plain:
            return value
        return serialise(value, name, None)

    return convert
