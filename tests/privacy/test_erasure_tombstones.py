"""Erasure holds: what an erasure removed is never linked again by an event created before it.

Every delivery here goes through the real webhook route, correctly signed by the
provider's own scheme (PayPal in offline certificate mode, so nothing is mocked).
"""

from __future__ import annotations

import secrets
import string
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, select, text

from adapters.registry import adapter_classes
from gateway.cli import main
from gateway.config.settings import Settings
from gateway.core.crypto import generate_key
from gateway.privacy.erasure import erase
from gateway.privacy.retention import purge
from gateway.privacy.rotation import rotate_keys
from gateway.storage.store import ERASURE_LOCK
from gateway.storage.tables import erasures
from tests.support.api import bearer, make_key, store_of
from tests.support.database import (
    TEST_DATA_KEY,
    TEST_INDEX_KEY,
    all_rows,
    database_bytes,
    make_cipher,
    plain_rows,
)
from tests.support.webhooks import sample, signed_post, stripe_endpoint

RAZORPAY_SECRET = "rzp-tombstone-" + "t" * 32


def _letters(length: int) -> str:
    # Letters only: a random digit run could look like a card number to the guard.
    return "".join(secrets.choice(string.ascii_letters) for _ in range(length))


def _dig(node: Any, path: str) -> Any:
    for part in path.split("."):
        node = node[part]
    return node


@dataclass(frozen=True)
class Provider:
    """How one provider's events carry a customer and a card, and when they were created."""

    name: str
    # An event storing a payment method attached to a customer.
    card_event: str
    card_token: str
    card_customer: str
    # An event storing a transaction paid with a card, by a customer.
    charge_event: str
    charge_id: str
    charge_token: str
    charge_customer: str

    def endpoint(self, var_dir: Path) -> dict[str, Any]:
        """Return this provider's endpoint table for a test gateway."""
        if self.name == "stripe":
            return stripe_endpoint()
        if self.name == "razorpay":
            return {"provider": "razorpay", "name": "default", "webhook_secrets": [RAZORPAY_SECRET]}
        options = adapter_classes()["paypal"](Settings()).dev_options(var_dir)
        return {"provider": "paypal", "name": "default", **options}

    def created(self, event: dict[str, Any], at: int) -> None:
        """Set when the provider created the event (the event's occurred_at)."""
        if self.name == "stripe":
            event["created"] = at
        elif self.name == "razorpay":
            event["created_at"] = at
        else:
            moment = datetime.fromtimestamp(at, UTC)
            event["create_time"] = moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")

    def new_id(self, event: dict[str, Any]) -> str:
        """Give the event a fresh id (in the body, or for Razorpay the header); return it."""
        if self.name == "razorpay":
            return "evt_" + _letters(14)
        event["id"] = ("evt_" if self.name == "stripe" else "WH-") + _letters(24)
        return str(event["id"])


PROVIDERS = {
    "stripe": Provider(
        "stripe",
        "payment_method.attached",
        "data.object.id",
        "data.object.customer",
        "charge.succeeded",
        "data.object.id",
        "data.object.payment_method",
        "data.object.customer",
    ),
    "razorpay": Provider(
        "razorpay",
        "token.activated",
        "payload.token.entity.id",
        "payload.token.entity.customer_id",
        "payment.captured",
        "payload.payment.entity.id",
        "payload.payment.entity.token_id",
        "payload.payment.entity.customer_id",
    ),
    "paypal": Provider(
        "paypal",
        "VAULT.PAYMENT-TOKEN.CREATED",
        "resource.id",
        "resource.customer.id",
        "CHECKOUT.ORDER.APPROVED",
        "resource.id",
        "resource.payment_source.card.attributes.vault.id",
        "resource.payment_source.card.attributes.vault.customer.id",
    ),
}


@dataclass
class Subject:
    """A customer with a stored card, and the deliveries that stored them."""

    provider: Provider
    client: FlaskClient
    customer: str
    token: str
    card_event: dict[str, Any]
    charge_event: dict[str, Any]
    charge: str

    def post(self, event: dict[str, Any] | bytes, event_id: str | None = None) -> str:
        """Deliver an event, signed now; return the status the gateway answered."""
        response = signed_post(self.client, self.provider.name, event, event_id=event_id)
        assert response.status_code == 200, response.get_json()
        return str(response.get_json()["status"])

    def charge_by_them(self, at: int) -> tuple[dict[str, Any], str]:
        """Return a new charge event by this customer with this card, created at a time."""
        event = sample(self.provider.name, self.provider.charge_event)
        theirs = {
            _dig(event, self.provider.charge_customer): self.customer,
            _dig(event, self.provider.charge_token): self.token,
        }
        raw = orjson.dumps(event).decode()
        for old, new in theirs.items():
            raw = raw.replace(old, new)
        event = orjson.loads(raw)
        self.provider.created(event, at)
        return event, str(_dig(event, self.provider.charge_id))

    def card_again(self, at: int) -> dict[str, Any]:
        """Return the card event again as a new event (fresh id), created at a time."""
        event = orjson.loads(orjson.dumps(self.card_event))
        self.provider.created(event, at)
        return event


def store_subject(provider: Provider, client: FlaskClient) -> Subject:
    """Store customer C's card and a charge C paid with it, as events from ten minutes ago."""
    created = int(time.time()) - 600
    card = sample(provider.name, provider.card_event)
    provider.created(card, created)
    subject = Subject(
        provider,
        client,
        customer=str(_dig(card, provider.card_customer)),
        token=str(_dig(card, provider.card_token)),
        card_event=card,
        charge_event={},
        charge="",
    )
    subject.card_event = card
    assert subject.post(card, provider.new_id(card)) == "stored"
    subject.charge_event, subject.charge = subject.charge_by_them(created + 1)
    assert subject.post(subject.charge_event, provider.new_id(subject.charge_event)) == "stored"
    assert linked(client.application, subject)["payment_methods"], "the card was not stored"
    assert subject.charge in linked(client.application, subject)["transactions"]
    return subject


def linked(app: Flask, subject: Subject) -> dict[str, list[str]]:
    """Return what links the subject's customer or card: payment methods, transactions."""
    rows = plain_rows(store_of(app).engine)
    mine = (subject.customer, subject.token)
    return {
        "payment_methods": [
            str(r["token"])
            for r in rows["payment_methods"]
            if r["customer"] in mine or r["token"] in mine
        ],
        "transactions": [
            str(r["id"])
            for r in rows["transactions"]
            if r["customer"] in mine or r["payment_method"] in mine
        ],
        "subscriptions": [str(r["id"]) for r in rows["subscriptions"] if r["customer"] in mine],
    }


def feed_names(app: Flask, engine: Engine, token: str) -> bool:
    """Return whether the change feed serves the token anywhere."""
    key = bearer(make_key(engine))
    served = app.test_client().get("/v1/events?after=0&limit=100", headers=key)
    assert served.status_code == 200
    return token in served.get_data(as_text=True)


def erase_by_api(client: FlaskClient, engine: Engine, provider: str, customer: str) -> Any:
    """Erase a customer through the API; return the answer's JSON."""
    key = bearer(make_key(engine, "customers:erase"))
    response = client.delete(f"/v1/customers/{provider}/{customer}", headers=key)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


@pytest.fixture(params=sorted(PROVIDERS))
def provider(request: pytest.FixtureRequest) -> Provider:
    """Return each provider in turn."""
    return PROVIDERS[request.param]


@pytest.fixture
def gateway(provider: Provider, make_app: Callable[..., Flask], tmp_path: Path) -> FlaskClient:
    """Return a client of a gateway with the provider's default endpoint."""
    return make_app(endpoints=[provider.endpoint(tmp_path)]).test_client()


# ------------------------------------------------------------------ the guarantee


def test_nothing_created_before_the_erasure_links_the_customer_again(
    provider: Provider, gateway: FlaskClient, engine: Engine, database_url: str
) -> None:
    app = gateway.application
    subject = store_subject(provider, gateway)
    answer = erase_by_api(gateway, engine, provider.name, subject.customer)
    assert answer["deleted"]["payment_methods"] >= 1
    assert answer["tombstone"]["accounts"] == ["default"]
    assert linked(app, subject) == {"payment_methods": [], "transactions": [], "subscriptions": []}

    # (a) The very same bodies again, freshly signed (Razorpay: under a fresh event id).
    for event in (subject.card_event, subject.charge_event):
        status = subject.post(orjson.dumps(event), event_id="evt_" + _letters(14))
        assert status in ("stored", "duplicate")
    assert linked(app, subject) == {"payment_methods": [], "transactions": [], "subscriptions": []}

    # (b) Late events, created before the erasure, delivered after it.
    before = int(time.time()) - 300
    late_card = subject.card_again(before)
    assert subject.post(late_card, provider.new_id(late_card)) == "stored"
    late_charge, late_id = subject.charge_by_them(before)
    assert subject.post(late_charge, provider.new_id(late_charge)) == "stored"
    assert linked(app, subject) == {"payment_methods": [], "transactions": [], "subscriptions": []}
    # The late charge keeps its billing core, unlinked; the change feed does not name the card.
    kept = {r["id"]: r for r in plain_rows(engine)["transactions"]}
    assert kept[late_id]["amount"] is not None and kept[late_id]["currency"] is not None
    assert kept[subject.charge]["customer"] is None
    assert not feed_names(app, engine, subject.token)

    # (d) The tombstones hold blind indexes only.
    cipher = make_cipher()
    with engine.connect() as conn:
        tombstones = {(r.account, r.kind, r.bidx) for r in conn.execute(select(erasures)).all()}
    assert tombstones == {
        ("default", "customer", cipher.bidx("customer", subject.customer)),
        ("default", "token", cipher.bidx("token", subject.token)),
    }
    raw = repr(all_rows(engine)["erasures"])
    blob = database_bytes(database_url)
    for value in (subject.customer, subject.token):
        assert value not in raw
        assert value.encode() not in blob

    # (c) A genuinely new event, created after the erasure, is stored as it is.
    after = int(time.time()) + 5
    new_card = subject.card_again(after)
    assert subject.post(new_card, provider.new_id(new_card)) == "stored"
    new_charge, new_id = subject.charge_by_them(after)
    assert subject.post(new_charge, provider.new_id(new_charge)) == "stored"
    now_linked = linked(app, subject)
    assert now_linked["payment_methods"] == [subject.token]
    assert now_linked["transactions"] == [new_id]
    rows = plain_rows(engine)
    method = next(r for r in rows["payment_methods"] if r["token"] == subject.token)
    assert method["customer"] == subject.customer
    charge = next(r for r in rows["transactions"] if r["id"] == new_id)
    assert (charge["customer"], charge["payment_method"]) == (subject.customer, subject.token)
    # Still sealed at rest after the new link.
    blob = database_bytes(database_url)
    assert subject.customer.encode() not in blob and subject.token.encode() not in blob


def _without_times(node: Any) -> None:
    """Remove every created_at from an event, in place."""
    if isinstance(node, dict):
        node.pop("created_at", None)
        for child in node.values():
            _without_times(child)
    elif isinstance(node, list):
        for child in node:
            _without_times(child)


@pytest.mark.parametrize("provider", [PROVIDERS["razorpay"]], ids=["razorpay"])
def test_an_event_that_gives_no_time_never_links_an_erased_customer(
    provider: Provider, gateway: FlaskClient, engine: Engine
) -> None:
    # Without a time in the body the gateway falls back to the time of receipt, which
    # would read as after the erasure: such an event counts as before it instead.
    app = gateway.application
    subject = store_subject(provider, gateway)
    erase_by_api(gateway, engine, provider.name, subject.customer)
    for event in (subject.card_event, subject.charge_event):
        timeless = orjson.loads(orjson.dumps(event))
        _without_times(timeless)
        assert subject.post(timeless, provider.new_id(timeless)) in ("stored", "duplicate")
    assert linked(app, subject) == {"payment_methods": [], "transactions": [], "subscriptions": []}


# ------------------------------------------------------------------ accounts


def _stripe_card(customer: str, created: int) -> dict[str, Any]:
    event = sample("stripe", "payment_method.attached")
    event["data"]["object"]["customer"] = customer
    event["created"] = created
    return event


@pytest.fixture
def two_accounts(make_app: Callable[..., Flask]) -> FlaskClient:
    """Return a gateway with two Stripe endpoints: default and eu."""
    return make_app(endpoints=[stripe_endpoint(), stripe_endpoint("eu")]).test_client()


def _customers(engine: Engine) -> list[tuple[str, str]]:
    rows = plain_rows(engine)["payment_methods"]
    return sorted((str(r["account"]), str(r["customer"])) for r in rows)


def test_erasure_without_an_account_holds_on_every_configured_endpoint(
    two_accounts: FlaskClient,
    engine: Engine,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = two_accounts
    before = int(time.time()) - 600
    response = signed_post(client, "stripe", _stripe_card("cus_tombA", before))
    assert response.get_json()["status"] == "stored"
    # The command line reads the same endpoints from the configuration file.
    config = tmp_path / "paysieve.toml"
    config.write_text(
        "".join(
            f'[[endpoints]]\nprovider = "stripe"\nname = "{name}"\n'
            f'webhook_secrets = ["{stripe_endpoint()["webhook_secrets"][0]}"]\n'
            for name in ("default", "eu")
        )
    )
    monkeypatch.setenv("PAYSIEVE_CONFIG", str(config))
    monkeypatch.setenv("PAYSIEVE_DATABASE_URL", database_url)
    monkeypatch.setenv("PAYSIEVE_DATA_KEYS", TEST_DATA_KEY)
    monkeypatch.setenv("PAYSIEVE_INDEX_KEY", TEST_INDEX_KEY)
    result = CliRunner().invoke(main, ["erase", "--provider", "stripe", "--customer", "cus_tombA"])
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.stdout)["tombstone"]["accounts"] == ["default", "eu"]
    # A late event on the endpoint that never held the customer is not linked either.
    late = signed_post(client, "stripe", _stripe_card("cus_tombA", before), endpoint="eu")
    assert late.get_json()["status"] == "stored"
    assert _customers(engine) == []
    fresh = int(time.time()) + 5
    signed_post(client, "stripe", _stripe_card("cus_tombA", fresh), endpoint="eu")
    assert _customers(engine) == [("eu", "cus_tombA")]


def test_erasure_by_api_without_an_account_holds_on_every_configured_endpoint(
    two_accounts: FlaskClient, engine: Engine
) -> None:
    client = two_accounts
    before = int(time.time()) - 600
    signed_post(client, "stripe", _stripe_card("cus_tombC", before))
    answer = erase_by_api(client, engine, "stripe", "cus_tombC")
    assert answer["tombstone"]["accounts"] == ["default", "eu"]
    signed_post(client, "stripe", _stripe_card("cus_tombC", before), endpoint="eu")
    assert _customers(engine) == []


def test_erasure_in_one_account_leaves_the_others_alone(
    two_accounts: FlaskClient, engine: Engine
) -> None:
    client = two_accounts
    before = int(time.time()) - 600
    signed_post(client, "stripe", _stripe_card("cus_tombB", before))
    key = bearer(make_key(engine, "customers:erase"))
    answer = client.delete("/v1/customers/stripe/cus_tombB?account=default", headers=key)
    assert answer.get_json()["tombstone"]["accounts"] == ["default"]
    signed_post(client, "stripe", _stripe_card("cus_tombB", before))
    signed_post(client, "stripe", _stripe_card("cus_tombB", before), endpoint="eu")
    assert _customers(engine) == [("eu", "cus_tombB")]
    with engine.connect() as conn:
        tombstones = sorted(
            tuple(r) for r in conn.execute(select(erasures.c.account, erasures.c.kind))
        )
    assert tombstones == [("default", "customer"), ("default", "token")]


def test_a_second_erasure_moves_the_tombstone_forward(
    make_app: Callable[..., Flask], engine: Engine
) -> None:
    client = make_app().test_client()
    signed_post(client, "stripe", _stripe_card("cus_tombC", int(time.time()) - 600))
    store = store_of(client.application)
    first = erase(store, provider="stripe", customer="cus_tombC")
    # Between the two erasures the customer came back with a new card.
    signed_post(client, "stripe", _stripe_card("cus_tombC", int(time.time()) + 1))
    assert len(_customers(engine)) == 1
    time.sleep(1.1)
    second = erase(store, provider="stripe", customer="cus_tombC")
    assert second.erased_at > first.erased_at
    with engine.connect() as conn:
        rows = conn.execute(select(erasures.c.kind, erasures.c.erased_at)).all()
    # One customer row (moved forward) and a token row per card erased, each with its time.
    assert sorted(kind for kind, _ in rows) == ["customer", "token", "token"]
    assert max(at for _, at in rows) == second.erased_at
    assert next(at for kind, at in rows if kind == "customer") == second.erased_at
    # A card created between the two erasures, delivered late: only the second one stops it.
    between = int(second.erased_at.timestamp())
    assert first.erased_at < datetime.fromtimestamp(between, UTC) <= second.erased_at
    signed_post(client, "stripe", _stripe_card("cus_tombC", between))
    assert _customers(engine) == []


# ------------------------------------------------------------------ what is kept


def test_tombstones_outlive_purge_and_key_rotation(
    make_app: Callable[..., Flask], engine: Engine
) -> None:
    app = make_app()
    client = app.test_client()
    before = int(time.time()) - 600
    signed_post(client, "stripe", _stripe_card("cus_tombD", before))
    store = store_of(app)
    erase(store, provider="stripe", customer="cus_tombD")
    with engine.connect() as conn:
        kept = conn.execute(select(erasures)).all()
    assert len(kept) == 2
    settings: Settings = app.extensions["paysieve.settings"]
    # Far enough ahead that every record class has outlived its retention.
    purge(store, settings, now=datetime.now(UTC) + timedelta(days=10_000))
    # Blind indexes are under the index key, which rotation never changes: nothing to redo.
    new_key = generate_key()
    rotated = make_app(data_keys=(new_key, TEST_DATA_KEY))
    rotate_keys(store_of(rotated))
    with engine.connect() as conn:
        assert conn.execute(select(erasures)).all() == kept
    signed_post(rotated.test_client(), "stripe", _stripe_card("cus_tombD", before))
    assert plain_rows(engine, make_cipher(new_key))["payment_methods"] == []


def test_export_says_when_the_subject_was_erased_without_values(
    make_app: Callable[..., Flask], engine: Engine
) -> None:
    client = make_app(endpoints=[stripe_endpoint(), stripe_endpoint("eu")]).test_client()
    signed_post(client, "stripe", _stripe_card("cus_tombE", int(time.time()) - 600))
    erasure = erase(store_of(client.application), provider="stripe", customer="cus_tombE")
    key = bearer(make_key(engine))
    document = client.get("/v1/customers/stripe/cus_tombE/export", headers=key).get_json()
    assert document["payment_methods"] == []
    stamp = erasure.erased_at.isoformat().replace("+00:00", "Z")
    assert document["erasures"] == [{"account": "default", "erased_at": stamp}]
    bound = bearer(make_key(engine, accounts=["eu"]))
    narrowed = client.get("/v1/customers/stripe/cus_tombE/export", headers=bound).get_json()
    assert narrowed["erasures"] == []
    never = client.get("/v1/customers/stripe/cus_never/export", headers=key).get_json()
    assert never["erasures"] == []


# ------------------------------------------------------------------ concurrency


def test_erasure_waits_for_deliveries_in_flight(
    make_app: Callable[..., Flask], engine: Engine, dialect: str
) -> None:
    if dialect != "postgresql":
        pytest.skip("SQLite has one writer at a time: an erasure cannot overlap a delivery")
    app = make_app()
    store = store_of(app)
    settings: Settings = app.extensions["paysieve.settings"]
    done = threading.Event()

    def run() -> None:
        # Never seen here: the configured endpoint is tombstoned all the same.
        erase(store, provider="stripe", customer="cus_tombF", settings=settings)
        done.set()

    # A delivery's transaction, as the store opens it: the erasure lock held shared.
    with engine.connect() as conn, conn.begin():
        conn.execute(text("SELECT pg_advisory_xact_lock_shared(:key)"), {"key": ERASURE_LOCK})
        worker = threading.Thread(target=run)
        worker.start()
        time.sleep(0.5)
        assert not done.is_set(), "the erasure did not wait for the delivery in flight"
        with engine.connect() as other:
            assert other.execute(select(erasures)).all() == []
    worker.join(timeout=10)
    assert done.is_set()
    with engine.connect() as conn:
        assert len(conn.execute(select(erasures)).all()) == 1
