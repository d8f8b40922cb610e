"""Served values: a card number already in the database never leaves through the read API.

The storage boundary refuses such values on write. These tests write them the way a
database from before that boundary, or someone with write access to the database, would:
straight into the tables with SQLAlchemy Core, sealed with the app's own cipher where
the column is sealed. Every read route must then withhold them.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Column, Engine, Table, column, create_engine, insert, select, table
from sqlalchemy.sql.expression import TableClause
from sqlalchemy.types import TypeDecorator, TypeEngine

from gateway.core.crypto import (
    IDENTITY_COLUMN,
    NONCE_BYTES,
    PREFIX,
    SEALED,
    Cipher,
    aad,
    bidx_column,
    key_id,
)
from gateway.storage.tables import (
    UTCDateTime,
    audit_log,
    event_objects,
    events,
    payment_methods,
    subscriptions,
    transactions,
)
from tests.support.api import bearer, make_key, store_of
from tests.support.database import TEST_DATA_KEY
from tests.support.metrics import scrape, value

VISA = "4111111111111111"
MASTERCARD = "5555555555554444"
AMEX = "378282246310005"
PANS = (VISA, MASTERCARD, AMEX)
AT = datetime(2026, 3, 2, 14, 0, 0, tzinfo=UTC)

CHARGE = f"ch_{VISA}"
# Ids are looked up as given: a clean id whose references hold card numbers.
REFERENCES = "ch_references"
CUSTOMER = f"cus_{MASTERCARD}"
TOKEN = f"pm_{AMEX}"
SUBSCRIPTION = f"sub_{VISA}"
EVENT = f"evt_{MASTERCARD}"
# Separators the detector reads through: a number written for people is still a number.
SPACED = "4111-1111-1111-1111"


def _plain_type(column_type: TypeEngine[Any]) -> TypeEngine[Any]:
    """Return a column's storage type without the gateway's bind-time checks."""
    if isinstance(column_type, UTCDateTime) or not isinstance(column_type, TypeDecorator):
        return column_type
    impl: TypeEngine[Any] = column_type.impl_instance
    return impl


def unchecked(real: Table) -> TableClause:
    """Return a table construct that writes raw values, as a direct database client would."""
    columns: list[Column[Any]] = list(real.columns)
    return table(real.name, *[column(c.name, _plain_type(c.type)) for c in columns])


def seal_unchecked(value: str, associated: bytes) -> str:
    """Return a value sealed in the gateway's format under the test data key, unchecked."""
    key = base64.urlsafe_b64decode(TEST_DATA_KEY + "=" * (-len(TEST_DATA_KEY) % 4))
    nonce = os.urandom(NONCE_BYTES)
    body = nonce + AESGCM(key).encrypt(nonce, value.encode(), associated)
    return f"{PREFIX}{key_id(key)}.{base64.urlsafe_b64encode(body).rstrip(b'=').decode()}"


def seal_row(cipher: Cipher, name: str, values: dict[str, Any]) -> dict[str, Any]:
    """Return a record row as the gateway writes it (sealed, indexed), without its checks."""
    row = dict(values)
    for sealed, kind in SEALED[name].items():
        row[bidx_column(sealed)] = cipher.bidx(kind, row.get(sealed))
    identity = (row["provider"], row["account"], row[IDENTITY_COLUMN[name]])
    for sealed in SEALED[name]:
        if row.get(sealed) is not None:
            row[sealed] = seal_unchecked(row[sealed], aad(name, sealed, *identity))
    return row


def bookkeeping(event_id: str = EVENT) -> dict[str, Any]:
    """Return the bookkeeping columns of a record row."""
    return {
        "provider": "stripe",
        "account": "default",
        "created_at": AT,
        "updated_at": AT,
        "last_event_id": event_id,
        "last_event_at": AT,
    }


@pytest.fixture
def planted(app: Flask, database_url: str) -> Iterator[None]:
    """Write card numbers into ids, references, sealed columns, the feed and the audit log."""
    cipher: Cipher = store_of(app).cipher
    # A count column is a 32-bit integer on PostgreSQL, too short for a card number: only
    # SQLite's can hold one.
    count = int(AMEX) if database_url.startswith("sqlite") else 7
    rows: list[tuple[Table, dict[str, Any]]] = [
        (
            transactions,
            seal_row(
                cipher,
                "transactions",
                {
                    **bookkeeping(),
                    "id": CHARGE,
                    "kind": "payment",
                    "status": "succeeded",
                    "provider_status": f"ok {SPACED}",
                    "amount": int(VISA),
                    "currency": "USD",
                    "customer": CUSTOMER,
                    "payment_intent": f"pi_{SPACED}",
                    "charge": VISA,
                    "order": f"order {AMEX}",
                    "payment_method": TOKEN,
                },
            ),
        ),
        (
            transactions,
            seal_row(
                cipher,
                "transactions",
                {
                    **bookkeeping(),
                    "id": REFERENCES,
                    "amount": int(MASTERCARD),
                    "customer": CUSTOMER,
                    "invoice": f"in_{SPACED}",
                    "refund_of": CHARGE,
                    "payment_method": TOKEN,
                },
            ),
        ),
        (
            transactions,
            seal_row(
                cipher,
                "transactions",
                {**bookkeeping("evt_clean"), "id": "ch_clean", "amount": 1999, "customer": None},
            ),
        ),
        (
            payment_methods,
            seal_row(
                cipher,
                "payment_methods",
                {
                    **bookkeeping(),
                    "token": TOKEN,
                    "customer": CUSTOMER,
                    "brand": "amex",
                    "last4": "0005",
                    "exp_month": 12,
                    "exp_year": 2030,
                    "status": "active",
                },
            ),
        ),
        (
            subscriptions,
            seal_row(
                cipher,
                "subscriptions",
                {
                    **bookkeeping(),
                    "id": SUBSCRIPTION,
                    "customer": CUSTOMER,
                    "plan": f"plan_{MASTERCARD}",
                    "status": "active",
                },
            ),
        ),
        (
            events,
            {
                "provider": "stripe",
                "account": "default",
                "id": EVENT,
                "type": f"charge.{VISA}",
                "occurred_at": AT,
                "received_at": AT,
                "outcome": "stored",
                "dropped_fields": count,
            },
        ),
        (
            audit_log,
            {
                "at": AT,
                "actor": "cli",
                "action": f"read.{VISA}",
                "route": f"/v1/{MASTERCARD}",
                "outcome": "ok",
                "count": count,
            },
        ),
    ]
    direct = create_engine(database_url)
    try:
        _write(direct, cipher, rows)
    finally:
        direct.dispose()
    yield


def _write(direct: Engine, cipher: Cipher, rows: list[tuple[Table, dict[str, Any]]]) -> None:
    with direct.begin() as conn:
        for real, values in rows:
            conn.execute(insert(unchecked(real)).values(**values))
        feed = unchecked(events)
        seq = conn.execute(select(feed.c.seq).where(feed.c.id == EVENT)).scalar_one()
        objects = unchecked(event_objects)
        conn.execute(
            insert(objects).values(event_seq=seq, record_type="transaction", object_id=CHARGE)
        )
        conn.execute(
            insert(objects).values(
                event_seq=seq,
                record_type="payment_method",
                object_id=seal_unchecked(TOKEN, Cipher.object_aad(seq, "payment_method")),
                object_bidx=cipher.bidx("token", TOKEN),
            )
        )


def assert_no_card_number(body: bytes) -> None:
    """Assert that no planted number is in an answer, in any of its written forms."""
    text = body.decode()
    squeezed = re.sub(r"[\s._:/|-]", "", text)
    served = [pan[:4] for pan in PANS if pan in squeezed]
    assert not served, f"card numbers starting {served} were served"


ROUTES = [
    "/v1/transactions",
    f"/v1/transactions/stripe/{REFERENCES}",
    "/v1/payment-methods",
    "/v1/subscriptions",
    "/v1/events",
    f"/v1/customers/stripe/{CUSTOMER}/export",
    "/v1/audit-log",
]


@pytest.mark.parametrize("route", ROUTES)
def test_no_route_serves_a_stored_card_number(
    client: FlaskClient,
    engine: Engine,
    planted: None,
    route: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    key = make_key(engine, "records:read", "audit:read")
    before = scrape(client)
    caplog.set_level("INFO")
    response = client.get(route, headers=bearer(key))
    assert response.status_code == 200, response.get_json()
    assert_no_card_number(response.get_data())
    withheld = [r for r in caplog.records if "withheld" in r.getMessage()]
    assert withheld, "a withheld value is logged"
    for record in withheld:
        assert_no_card_number(record.getMessage().encode())
        assert "$." in record.getMessage() or "$[" in record.getMessage()
    after = scrape(client)
    counted = sum(
        v - before.get((name, labels), 0.0)
        for (name, labels), v in after.items()
        if name == "paysieve_served_values_withheld_total"
    )
    assert counted >= 1


def test_withheld_values_are_redacted_strings_and_null_numbers(
    client: FlaskClient, engine: Engine, planted: None
) -> None:
    key = make_key(engine, "records:read")
    listed = client.get("/v1/transactions", headers=bearer(key)).get_json()["data"]
    charge = listed[0]
    assert charge["amount"] is None
    assert charge["id"] == "ch_[REDACTED]"
    assert charge["payment_intent"] == "pi_[REDACTED]"
    assert charge["customer"] == "cus_[REDACTED]"
    assert charge["payment_method"]["token"] == "pm_[REDACTED]"
    # What holds no card data is served as stored.
    assert (charge["status"], charge["currency"], charge["kind"]) == ("succeeded", "USD", "payment")
    assert charge["payment_method"]["last4"] == "0005"
    one = client.get(f"/v1/transactions/stripe/{REFERENCES}", headers=bearer(key)).get_json()
    assert (one["id"], one["amount"], one["invoice"]) == (REFERENCES, None, "in_[REDACTED]")
    clean = client.get("/v1/transactions/stripe/ch_clean", headers=bearer(key)).get_json()
    assert (clean["id"], clean["amount"]) == ("ch_clean", 1999)


def test_withheld_values_are_counted_by_route(
    client: FlaskClient, engine: Engine, planted: None
) -> None:
    key = make_key(engine, "records:read")
    before = scrape(client)
    assert client.get("/v1/events", headers=bearer(key)).status_code == 200
    after = scrape(client)
    labels = {"route": "/v1/events", "reason": "pan"}
    name = "paysieve_served_values_withheld_total"
    # The event's id and type, the touched charge and token, and (SQLite: a count column
    # can hold a card number there) the dropped-field count.
    expected = 5 if engine.dialect.name == "sqlite" else 4
    assert value(after, name, **labels) - value(before, name, **labels) == expected


@pytest.mark.parametrize(
    ("path", "status"),
    [
        (f"/v1/transactions/stripe/{CHARGE}", 404),
        (f"/v1/subscriptions/stripe/{SUBSCRIPTION}", 404),
        (f"/v1/payment-methods/stripe/{TOKEN}", 404),
        (f"/v1/transactions?account={VISA}", 400),
        (f"/v1/events?account={VISA}", 400),
        (f"/v1/transactions?customer={CUSTOMER}", 400),
    ],
)
def test_card_numbers_asked_for_are_refused_without_echo(
    client: FlaskClient, engine: Engine, planted: None, path: str, status: int
) -> None:
    key = make_key(engine, "records:read")
    response = client.get(path, headers=bearer(key))
    assert response.status_code == status, response.get_json()
    assert_no_card_number(response.get_data())


@pytest.mark.parametrize(
    ("record_type", "ident"), [("transaction", REFERENCES), ("payment_method", TOKEN)]
)
def test_an_outbound_webhook_withholds_what_the_api_withholds(
    app: Flask, engine: Engine, planted: None, record_type: str, ident: str
) -> None:
    from datetime import UTC, datetime

    from gateway.outbound.dispatcher import Claim, Dispatcher

    store = app.extensions["paysieve.store"]
    with engine.connect() as conn:
        feed = unchecked(events)
        seq = conn.execute(select(feed.c.seq).where(feed.c.id == EVENT)).scalar_one()
        object_id = (
            seal_unchecked(ident, Cipher.object_aad(seq, record_type))
            if record_type == "payment_method"
            else ident
        )
        now = datetime.now(UTC)
        claim = Claim(1, 1, seq, record_type, object_id, 0, now, now)
        body = Dispatcher(store, app.extensions["paysieve.settings"]).body(conn, claim)
    assert body is not None
    assert json.loads(body)["record_type"] == record_type
    assert_no_card_number(body)
