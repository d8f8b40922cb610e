"""The read API's per-process dumpers serve exactly what a fresh marshmallow dump serves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import Schema, fields

from gateway.api.schemas import (
    EventOut,
    PaymentMethodOut,
    SubscriptionOut,
    TransactionOut,
    dumper,
)

T0 = datetime(2026, 3, 2, 14, 0, 0, 123456, tzinfo=UTC)
PM = {
    "provider": "stripe",
    "account": "default",
    "created_at": T0,
    "updated_at": T0,
    "last_event_id": "evt_1",
    "token": "pm_1",
    "customer": "cus_1",
    "brand": "visa",
    "last4": "4242",
    "exp_month": 1,
    "exp_year": 2030,
    "status": "active",
    "pk": 7,
    "token_bidx": "ab" * 8,
}
TXN = {
    "pk": 3,
    "provider": "stripe",
    "account": "default",
    "created_at": T0,
    "updated_at": T0 + timedelta(seconds=1),
    "last_event_id": "evt_2",
    "last_event_at": T0,
    "id": "ch_1",
    "kind": "payment",
    "status": "succeeded",
    "provider_status": "succeeded",
    "amount": 1000,
    "currency": "EUR",
    "customer": None,
    "payment_intent": None,
    "charge": None,
    "order": None,
    "invoice": None,
    "subscription": None,
    "refund_of": None,
    "payment_method": PM,
    "pm_token": "undeclared",
}


def _same(schema: type[Schema], obj: dict[str, Any]) -> None:
    expected = schema().dump(obj)
    got = dumper(schema)(obj)
    assert got == expected
    # Answers are served in field order (the app does not sort keys).
    assert list(got) == list(expected)
    if isinstance(got.get("payment_method"), dict):
        assert list(got["payment_method"]) == list(expected["payment_method"])


@pytest.mark.parametrize(
    "obj",
    [
        TXN,
        TXN | {"payment_method": None},
        TXN | {"payment_method": dict.fromkeys(PM) | {"token": "pm_2"}},
        TXN | {"amount": True, "created_at": T0.astimezone(timezone(timedelta(hours=5)))},
        {k: v for k, v in TXN.items() if k not in ("charge", "payment_method")},
    ],
    ids=["joined", "no-method", "token-only", "odd-types", "missing-keys"],
)
def test_transactions(obj: dict[str, Any]) -> None:
    _same(TransactionOut, obj)


def test_payment_methods_and_subscriptions() -> None:
    _same(PaymentMethodOut, PM)
    _same(PaymentMethodOut, PM | {"exp_month": None, "last4": None})
    sub = {
        "provider": "stripe",
        "account": "default",
        "created_at": T0,
        "updated_at": T0,
        "last_event_id": "evt_3",
        "id": "sub_1",
        "customer": "cus_1",
        "plan": None,
        "status": "active",
        "provider_status": "active",
        "current_period_end": T0,
        "cancel_at_period_end": False,
    }
    _same(SubscriptionOut, sub)
    _same(SubscriptionOut, sub | {"current_period_end": None, "cancel_at_period_end": 1})


def test_events() -> None:
    event = {
        "seq": 5,
        "provider": "stripe",
        "account": "default",
        "id": "evt_1",
        "type": "charge.succeeded",
        "occurred_at": T0,
        "received_at": T0,
        "outcome": "stored",
        "object_ids": {"transaction": ["ch_1"], "payment_method": [], "subscription": ["s"]},
        "dropped_fields": 0,
        "txid": 9,
    }
    _same(EventOut, event)


_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=20),
    st.datetimes(timezones=st.just(UTC)),
    st.floats(allow_nan=False),
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(TXN)), _VALUE))
def test_any_values_serve_as_marshmallow_serves_them(values: dict[str, Any]) -> None:
    obj = TXN | values
    if obj["payment_method"] is not None and not isinstance(obj["payment_method"], dict):
        obj["payment_method"] = None
    try:
        expected: Any = TransactionOut().dump(obj)
    except Exception as exc:  # noqa: BLE001 - the dumper must refuse the same values
        with pytest.raises(type(exc)):
            dumper(TransactionOut)(obj)
        return
    assert dumper(TransactionOut)(obj) == expected


def test_a_field_it_cannot_serve_is_refused_when_built() -> None:
    class Renamed(Schema):
        name = fields.String(data_key="other")

    class Unknown(Schema):
        when = fields.Date()

    with pytest.raises(TypeError, match="own names"):
        dumper(Renamed)
    with pytest.raises(TypeError, match="Date"):
        dumper(Unknown)
