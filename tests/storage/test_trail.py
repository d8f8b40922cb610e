"""The minimisation trail: counts per shape and day, collapsed paths, guard hits; never values."""

from __future__ import annotations

import ast
import inspect
import re
import secrets
import string
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import responses
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, select

from adapters.paypal import samples as paypal_samples
from adapters.razorpay import samples as razorpay_samples
from adapters.registry import adapter_classes
from adapters.stripe import samples as stripe_samples
from gateway.config.settings import Settings
from gateway.core.guard import scan_text
from gateway.core.records import Record
from gateway.storage.tables import trail_counts, trail_guard_hits, trail_shapes
from gateway.storage.trail import COLLAPSED_KEY, FREE_FORM_KEYS, Trail, collapse_key, leaf_paths
from tests.support.database import all_rows, assert_nowhere
from tests.support.paypal import CERT_URL, Pki, cert_endpoint, make_pki
from tests.support.webhooks import sample, signed_post

PAN = "4242424242424242"
PROVIDERS = ("stripe", "razorpay", "paypal")
STRIPE = adapter_classes()["stripe"].vocabulary
RAZORPAY_SECRET = "rzp-trail-" + "t" * 32
# A card number written with separators, as a key name could carry one, and an e-mail.
SEPARATED_PAN = "4000_0566_5566_5556"
EMAIL = "marta.kowalski@example.org"
# A plain lower-case (snake_case) or camelCase identifier: what a documented word looks like.
_WORD = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*|[a-z][a-z0-9]*(?:[A-Z][a-z0-9]*)+")
_DIGIT_RUN = re.compile(r"[0-9]{4}")


def sample_events(provider: str) -> Iterator[dict[str, Any]]:
    """Yield the project's own sample of every event type the provider's samples build."""
    if provider == "stripe":
        for event_type in stripe_samples.BUILDERS:
            yield stripe_samples.build_event(event_type)
    elif provider == "razorpay":
        for event_type in razorpay_samples.SAMPLE_EVENT_TYPES:
            for method in razorpay_samples.METHODS:
                yield razorpay_samples.build_event(event_type, method=method)
    else:
        for event_type in paypal_samples.EVENT_TYPES:
            for version in paypal_samples.VERSIONS[event_type]:
                yield paypal_samples.build_event(event_type, version=version)


def key_names(node: Any) -> Iterator[str]:
    """Yield every key name of a payload, leaving out the keys of free-form containers."""
    if isinstance(node, dict):
        for key, child in node.items():
            yield key
            if key not in FREE_FORM_KEYS:
                yield from key_names(child)
    elif isinstance(node, list):
        for child in node:
            yield from key_names(child)


def stored_paths(engine: Engine) -> set[str]:
    """Return every path the trail stored."""
    with engine.connect() as conn:
        return set(conn.execute(select(trail_shapes.c.path)).scalars())


def assert_not_stored(
    planted: list[str], placeholders: list[str], engine: Engine, database_url: str
) -> None:
    """Assert no planted key name is in any table or database byte, and the placeholders are."""
    paths = stored_paths(engine)
    for name in planted:
        assert not any(name in path for path in paths), f"key name stored: {name[:4]}..."
    assert_nowhere(planted, engine, database_url)
    for path in placeholders:
        assert path in paths


# -- the vocabularies ----------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_vocabulary_word_is_a_plain_identifier_without_card_data(provider: str) -> None:
    vocabulary = adapter_classes()[provider].vocabulary
    assert vocabulary, "a provider without a vocabulary stores no key name at all"
    for word in vocabulary:
        assert _WORD.fullmatch(word) and len(word) <= 64, word
        assert scan_text(word) is None, word
        assert _DIGIT_RUN.search(word) is None, word
    # The placeholders stay distinguishable from every word.
    assert not vocabulary & {COLLAPSED_KEY, "*", "[]"}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_vocabulary_is_a_reviewed_literal(provider: str) -> None:
    path = Path(inspect.getfile(adapter_classes()[provider])).with_name("vocabulary.py")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    (assignment,) = [
        node
        for node in tree.body
        if isinstance(node, ast.AnnAssign)
        and isinstance(node.target, ast.Name)
        and node.target.id == "VOCABULARY"
    ]
    call = assignment.value
    assert isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
    assert call.func.id == "frozenset"
    (words,) = call.args
    # A set display of string constants: nothing is computed when the module loads.
    assert isinstance(words, ast.Set)
    literal = ast.literal_eval(words)
    assert literal == adapter_classes()[provider].vocabulary


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_vocabulary_covers_every_key_of_the_samples_outside_free_form_maps(
    provider: str,
) -> None:
    vocabulary = adapter_classes()[provider].vocabulary
    missing = {name for event in sample_events(provider) for name in key_names(event)}
    assert missing - vocabulary == set()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_vocabulary_holds_every_field_a_schema_declares(provider: str) -> None:
    # A declared field outside the vocabulary would be stored as a placeholder, never as kept.
    adapter = adapter_classes()[provider](Settings())
    declared = {name for schema in adapter.schemas().values() for name in schema.fields}
    assert declared - adapter.vocabulary == set()


def test_sample_map_keys_are_not_vocabulary() -> None:
    # The samples' metadata keys are a merchant's words, not Stripe's.
    event = stripe_samples.build_event("charge.succeeded")
    assert "order_id" in event["data"]["object"]["metadata"]
    assert "order_id" not in STRIPE
    assert "order_id" in adapter_classes()["razorpay"].vocabulary


# -- the walk ------------------------------------------------------------------------------


def test_only_documented_key_names_are_kept() -> None:
    assert collapse_key("amount", STRIPE) == "amount"
    for key in (PAN, "12", "Jenny Rosen", "JennyRosen", "jenny@example.com", "cus_NffrFeUfNV2Hib"):
        assert collapse_key(key, STRIPE) == COLLAPSED_KEY
    assert collapse_key("amount", frozenset()) == COLLAPSED_KEY
    paths = leaf_paths(
        {
            "data": {
                "object": {
                    "metadata": {"Jenny": "x"},
                    "notes": {"a": 1},
                    "amount": 5,
                    "checks": {"JennyRosen": "pass", "cvc_check": "pass"},
                    "udf": {"amount": {"jenny_rosen": 1}},
                }
            },
            "items": [{"id": "a", "cus_NffrFeUfNV2Hib": 1}, {"id": "b"}],
            PAN: {"nested": 1},
            "pan_4000_0566_5566_5556": 2,
        },
        STRIPE,
    )
    assert set(paths) == {
        "data.object.metadata.*",
        "data.object.notes.*",
        "data.object.amount",
        "data.object.checks.cvc_check",
        f"data.object.checks.{COLLAPSED_KEY}",
        # A documented word under an unknown key is kept; the unknown names are not.
        f"data.object.{COLLAPSED_KEY}.amount.{COLLAPSED_KEY}",
        "items[].id",
        f"items[].{COLLAPSED_KEY}",
        f"{COLLAPSED_KEY}.{COLLAPSED_KEY}",
        COLLAPSED_KEY,
    }


def test_a_provider_without_a_vocabulary_stores_only_placeholders() -> None:
    observed = Trail({"stripe": {"amount"}}).observe(
        "stripe", "charge.succeeded", {"amount": 5, "JennyRosen": {"a": 1}}, [], []
    )
    assert {path for path, _ in observed.paths} == {
        COLLAPSED_KEY,
        f"{COLLAPSED_KEY}.{COLLAPSED_KEY}",
    }


def test_a_shape_of_documented_keys_keeps_its_hash() -> None:
    payload = {
        "id": "evt_1",
        "object": "event",
        "type": "charge.succeeded",
        "data": {
            "object": {
                "id": "ch_1",
                "object": "charge",
                "amount": 4999,
                "currency": "usd",
                "metadata": {"order_id": "6735"},
                "payment_method_details": {
                    "card": {"brand": "visa", "last4": "4242", "checks": {"cvc_check": "pass"}},
                    "type": "card",
                },
                "refunds": {"data": [{"id": "re_1", "amount": 100}], "has_more": False},
                "payment_method_types": ["card"],
            }
        },
    }
    trail = Trail(
        {"stripe": {"amount", "currency", "brand", "last4", "id"}}, vocabularies={"stripe": STRIPE}
    )
    record = Record("transaction", {"amount": 4999, "id": "ch_1"})
    observed = trail.observe(
        "stripe", "charge.succeeded", payload, [record], [], now=datetime(2025, 1, 1, tzinfo=UTC)
    )
    # The hash shapes of documented keys had before only the vocabulary decided what is stored.
    assert observed.shape_hash == "0fe40a1bed8fbdff"


def test_a_structure_seen_before_gives_what_a_fresh_trail_gives() -> None:
    # Observations of one key structure share a plan: which paths are kept still follows
    # each delivery's own values and records, and every answer is the cold computation's.
    names = {"stripe": {"amount", "currency", "brand", "last4", "id", "status"}}
    warm = Trail(names, vocabularies={"stripe": STRIPE})
    for n, (amount, kept_amount, status) in enumerate(
        [(4999, 4999, "paid"), (5000, 1, "paid"), (5000, 5000, None), (4999, 4999, "paid")]
    ):
        event = sample("stripe", "charge.succeeded")
        event["data"]["object"]["amount"] = amount
        event["data"]["object"]["status"] = status
        values: dict[str, Any] = {"amount": kept_amount, "id": f"ch_{n}", "status": status}
        records = [Record("transaction", values)]
        for event_type in ("charge.succeeded", "charge.updated"):
            cold = Trail(names, vocabularies={"stripe": STRIPE})
            got = warm.observe("stripe", event_type, event, records, [])
            expected = cold.observe("stripe", event_type, event, records, [])
            assert (got.shape_hash, got.paths) == (expected.shape_hash, expected.paths)
            assert dict(got.paths)["data.object.amount"] is (amount == kept_amount)


def test_the_structure_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.storage import trail as module

    monkeypatch.setattr(module, "_PLAN_LIMIT", 3)
    trail = Trail({"stripe": {"amount"}}, vocabularies={"stripe": STRIPE})
    for n in range(10):
        payload = {"amount": 1, "data": {"object": {"amount": n}} if n % 2 else [n] * n}
        cold = Trail({"stripe": {"amount"}}, vocabularies={"stripe": STRIPE})
        record = [Record("transaction", {"amount": 1})]
        got = trail.observe("stripe", "charge.succeeded", payload, record, [])
        assert got.paths == cold.observe("stripe", "charge.succeeded", payload, record, []).paths
        assert len(trail._plans) <= 3


# -- deliveries ----------------------------------------------------------------------------


def test_one_count_per_shape_and_day_and_paths_once(client: FlaskClient, engine: Engine) -> None:
    for _ in range(3):
        event = sample("stripe", "charge.succeeded")
        event["data"]["object"]["metadata"] = {PAN: "Jenny Rosen", "order": "6735"}
        event["data"]["object"]["x_extra"] = {"Jenny Rosen": PAN}
        assert signed_post(client, "stripe", event).status_code == 200
    with engine.connect() as conn:
        counts = conn.execute(select(trail_counts)).all()
        shapes = conn.execute(select(trail_shapes)).all()
    assert [(c.provider, c.event_type, c.count) for c in counts] == [
        ("stripe", "charge.succeeded", 3)
    ]
    paths = {s.path: s.kept for s in shapes}
    assert len(shapes) == len(paths), "a shape's paths are stored once"
    assert paths["data.object.amount"] is True
    assert paths["data.object.payment_method_details.card.last4"] is True
    assert paths["data.object.description"] is False
    assert paths["data.object.billing_details.email"] is False
    assert "data.object.metadata.*" in paths
    assert f"data.object.{COLLAPSED_KEY}.{COLLAPSED_KEY}" in paths
    text = repr(all_rows(engine)["trail_shapes"])
    for value in (PAN, "Jenny", "6735", "example.com", "x_extra"):
        assert value not in text


def test_a_name_under_stripe_card_checks_is_not_stored(
    client: FlaskClient, engine: Engine, database_url: str
) -> None:
    event = sample("stripe", "charge.refunded")
    charge = event["data"]["object"]
    charge["payment_method_details"]["card"]["checks"] |= {
        "Priya Raman": "pass",
        "PriyaRaman": "pass",
    }
    # A key that looks like an id, in an object inside an array.
    charge["refunds"]["data"][0]["cus_Qx81LmZtA0bCdE"] = {"priya_raman": True}
    assert signed_post(client, "stripe", event).status_code == 200
    assert_not_stored(
        ["Priya", "Raman", "priya_raman", "cus_Qx81LmZtA0bCdE"],
        [
            f"data.object.payment_method_details.card.checks.{COLLAPSED_KEY}",
            "data.object.payment_method_details.card.checks.cvc_check",
            f"data.object.refunds.data[].{COLLAPSED_KEY}.{COLLAPSED_KEY}",
        ],
        engine,
        database_url,
    )


@pytest.fixture
def razorpay(make_app: Callable[..., Flask]) -> FlaskClient:
    """Return a client of a gateway with one Razorpay endpoint."""
    table = {"provider": "razorpay", "name": "default", "webhook_secrets": [RAZORPAY_SECRET]}
    return make_app(endpoints=[table]).test_client()


def razorpay_post(client: FlaskClient, event: dict[str, Any]) -> Any:
    """Post a signed Razorpay body with a fresh event id (Razorpay sends it as a header)."""
    return signed_post(
        client,
        "razorpay",
        event,
        event_id="evt_" + "".join(secrets.choice(string.ascii_letters) for _ in range(16)),
    )


def test_keys_under_razorpay_notes_and_unknown_maps_are_not_stored(
    razorpay: FlaskClient, engine: Engine, database_url: str
) -> None:
    event = sample("razorpay", "payment.captured")
    payment = event["payload"]["payment"]["entity"]
    payment["notes"] = {"Arjun Mehta": "gold", "arjun_mehta": "9876543210"}
    payment["udf"] = {"arjun_mehta": "x", "cust_Jd8aQ2ZfK1uDxy": {"ArjunMehta": 1}}
    assert razorpay_post(razorpay, event).status_code == 200
    assert_not_stored(
        ["Arjun", "Mehta", "arjun_mehta", "cust_Jd8aQ2ZfK1uDxy", "udf"],
        [
            "payload.payment.entity.notes.*",
            f"payload.payment.entity.{COLLAPSED_KEY}.{COLLAPSED_KEY}",
            f"payload.payment.entity.{COLLAPSED_KEY}.{COLLAPSED_KEY}.{COLLAPSED_KEY}",
            "payload.payment.entity.card.last4",
        ],
        engine,
        database_url,
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Return a test PKI shared by this module."""
    return make_pki(tmp_path_factory.mktemp("trail-pki"))


@pytest.fixture
def paypal(make_app: Callable[..., Flask], pki: Pki) -> Iterator[FlaskClient]:
    """Return a client of a gateway verifying PayPal offline (PayPal's certificate host served)."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as servers:
        servers.get(CERT_URL, body=pki.chain_pem())
        yield make_app(endpoints=[cert_endpoint(pki)]).test_client()


def test_an_unknown_key_in_a_paypal_resource_is_not_stored(
    paypal: FlaskClient, engine: Engine, database_url: str
) -> None:
    event = sample("paypal", "PAYMENT.CAPTURE.COMPLETED")
    resource = event["resource"]
    resource["MartaKowalski"] = "vip"
    resource["loyalty_club"] = {"marta_kowalski": {"tier": "gold"}}
    resource["links"][0]["marta_k"] = "x"
    assert signed_post(paypal, "paypal", event).status_code == 200
    assert_not_stored(
        ["Marta", "marta_k", "Kowalski", "loyalty_club"],
        [
            f"resource.{COLLAPSED_KEY}",
            f"resource.{COLLAPSED_KEY}.{COLLAPSED_KEY}.{COLLAPSED_KEY}",
            f"resource.links[].{COLLAPSED_KEY}",
            "resource.links[].href",
        ],
        engine,
        database_url,
    )


def _plant_card_and_email_keys(provider: str, event: dict[str, Any]) -> str:
    """Plant a card number and an e-mail address as key names; return the object's path."""
    planted = {
        SEPARATED_PAN: "x",
        # Identifier-shaped, as a key name can carry a card number and still look plain.
        f"pan_{SEPARATED_PAN}": "x",
        EMAIL: "x",
        "marta_kowalski_example_org": {SEPARATED_PAN: 1},
    }
    if provider == "stripe":
        event["data"]["object"]["payment_method_details"]["card"] |= planted
        return "data.object.payment_method_details.card"
    if provider == "razorpay":
        event["payload"]["payment"]["entity"]["card"] |= planted
        return "payload.payment.entity.card"
    event["resource"]["amount"] |= planted
    return "resource.amount"


EVENT_TYPES = {
    "stripe": "charge.succeeded",
    "razorpay": "payment.captured",
    "paypal": "PAYMENT.CAPTURE.COMPLETED",
}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_card_number_or_an_email_as_a_key_is_not_stored(
    provider: str,
    request: pytest.FixtureRequest,
    engine: Engine,
    database_url: str,
) -> None:
    client: FlaskClient = request.getfixturevalue(
        {"stripe": "client", "razorpay": "razorpay", "paypal": "paypal"}[provider]
    )
    event = sample(provider, EVENT_TYPES[provider])
    path = _plant_card_and_email_keys(provider, event)
    if provider == "razorpay":
        assert razorpay_post(client, event).status_code == 200
    else:
        assert signed_post(client, provider, event).status_code == 200
    digits = SEPARATED_PAN.replace("_", "")
    assert_not_stored(
        [SEPARATED_PAN, digits, "0566_5566", EMAIL, "marta", "example.org", "example_org"],
        [f"{path}.{COLLAPSED_KEY}", f"{path}.{COLLAPSED_KEY}.{COLLAPSED_KEY}"],
        engine,
        database_url,
    )


def test_guard_hits_are_counted_per_day(client: FlaskClient, engine: Engine) -> None:
    event = sample("stripe", "charge.succeeded")
    event["data"]["object"]["status"] = PAN
    assert signed_post(client, "stripe", event).status_code == 200
    with engine.connect() as conn:
        hits = conn.execute(select(trail_guard_hits)).all()
    assert [(h.provider, h.reason, h.count) for h in hits] == [("stripe", "pan", 1)]


def test_duplicates_are_not_counted_twice(client: FlaskClient, engine: Engine) -> None:
    event = sample("stripe", "refund.created")
    assert signed_post(client, "stripe", event).get_json()["status"] == "stored"
    assert signed_post(client, "stripe", event).get_json()["status"] == "duplicate"
    with engine.connect() as conn:
        assert conn.execute(select(trail_counts.c.count)).scalar_one() == 1
