"""Smuggling: correctly signed deliveries that carry card numbers where no field is kept.

An attacker who holds a provider's signing secret (or a provider that echoes what a
merchant typed) can put a card number in any id, reference, key name, event type or
header of a delivery, written with any separators. These tests plant Luhn-valid,
brand-shaped numbers in each of those places for Stripe, Razorpay and PayPal (cert
mode) and then look for every form of them (as written, and as bare digits) in the
webhook answer, every table (sealed columns as stored and opened), the SQLite file
and its WAL, the raw log records and the JSON log lines, and every read route's
answer to a key of all scopes. Nothing may be found, and no answer may be a 5xx.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import responses
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import make_url

from adapters.registry import adapter_classes
from gateway.config.settings import Settings
from gateway.storage.engine import make_engine
from gateway.storage.migrate import upgrade
from gateway.storage.tables import events
from tests.support.paypal import CERT_URL, Pki, cert_endpoint, make_pki
from tests.support.smuggling import (
    EVENT_ID_PATH,
    EVENT_ID_PREFIX,
    EVENT_TYPE_PATH,
    ID_SEPARATORS,
    NAMED_CONTAINERS,
    PROVIDERS,
    RAZORPAY_SECRET,
    UNSIGNED_HEADERS,
    Finding,
    Logs,
    Pan,
    Sweep,
    at,
    capture_logs,
    containers,
    disguise,
    empty_tables,
    fixed_pans,
    look_everywhere,
    number_leaves,
    pans,
    post,
    present,
    reference_leaves,
    replaced,
    stored_nothing,
    string_leaves,
    with_key,
)
from tests.support.webhooks import sample, stripe_endpoint

EXAMPLES = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Card numbers that survive every id shape check, and the ones written for people.
ANY_PAN = st.one_of(pans(separators=ID_SEPARATORS), pans())
HOW = st.integers(0, 2)


def event_types(provider: str) -> tuple[str, ...]:
    """Return the event types a provider's adapter turns into records."""
    return adapter_classes()[provider](Settings()).supported_event_types()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Return a test PKI for PayPal's cert mode."""
    return make_pki(tmp_path_factory.mktemp("smuggling-pki"))


@pytest.fixture(scope="module")
def smuggling_url(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Return a database of this module's own: on SQLite a fresh file no other test wrote."""
    if make_url(database_url).get_backend_name() != "sqlite":
        return database_url
    path = tmp_path_factory.mktemp("smuggling-db") / "paysieve.db"
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


@dataclass
class Gateway:
    """A gateway with all three providers, its database and its captured logs."""

    client: FlaskClient
    engine: Engine
    database_url: str
    logs: Logs
    pki: Pki

    def smuggle(self, provider: str, event: dict[str, Any], pan: Pan, **kwargs: Any) -> Any:
        """Post one correctly signed delivery from empty tables; fail on any trace of the number."""
        empty_tables(self.engine)
        self.logs.clear()
        answer = post(self.client, provider, event, pki=self.pki, **kwargs)
        sweep = Sweep([pan])
        sweep.answer("the webhook answer", answer)
        if answer.status_code >= 400:
            left = stored_nothing(self.engine)
            if left:
                sweep.findings.append(
                    _finding(f"a refused delivery ({answer.status_code}) left rows in {left}", pan)
                )
        look_everywhere(
            sweep=sweep,
            client=self.client,
            engine=self.engine,
            database_url=self.database_url,
            captured=self.logs,
        )
        assert not sweep.findings, sweep.report()
        return answer


def _finding(where: str, pan: Pan) -> Finding:
    return Finding(where, "status", pan)


@pytest.fixture
def gateway(
    make_app: Callable[..., Flask], smuggling_url: str, pki: Pki, engine: Engine
) -> Iterator[Gateway]:
    """Return a gateway for Stripe, Razorpay and PayPal (cert mode) behind one trusted proxy."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as servers:
        servers.get(CERT_URL, body=pki.chain_pem())
        app = make_app(
            database_url=smuggling_url,
            endpoints=[
                stripe_endpoint(),
                {"provider": "razorpay", "name": "default", "webhook_secrets": [RAZORPAY_SECRET]},
                cert_endpoint(pki),
            ],
            # X-Forwarded-For then becomes the client address the gateway sees.
            trusted_proxy_hops=1,
        )
        own = make_engine(smuggling_url)
        captured, restore = capture_logs()
        try:
            yield Gateway(app.test_client(), own, smuggling_url, captured, pki)
        finally:
            restore()
            own.dispose()


by_provider = pytest.mark.parametrize("provider", PROVIDERS)


# ------------------------------------------------------------------ the event itself


@by_provider
@EXAMPLES
@given(data=st.data(), pan=ANY_PAN, how=HOW)
def test_card_number_in_the_event_id(
    gateway: Gateway, provider: str, data: st.DataObject, pan: Pan, how: int
) -> None:
    event = sample(provider, data.draw(st.sampled_from(event_types(provider))))
    smuggled = disguise(EVENT_ID_PREFIX[provider] + "x", pan, how)
    path = EVENT_ID_PATH[provider]
    if path is None:
        answer = gateway.smuggle(provider, event, pan, event_id=smuggled)
    else:
        answer = gateway.smuggle(provider, replaced(event, path, smuggled), pan)
    assert answer.status_code == 400


@by_provider
@EXAMPLES
@given(data=st.data(), pan=ANY_PAN, how=HOW)
def test_card_number_in_the_event_type(
    gateway: Gateway, provider: str, data: st.DataObject, pan: Pan, how: int
) -> None:
    event_type = data.draw(st.sampled_from(event_types(provider)))
    event = sample(provider, event_type)
    head = event_type.rsplit(".", 1)[0] + "."
    smuggled = [pan.written, head + pan.written, f"{event_type}_{pan.written}"][how]
    answer = gateway.smuggle(provider, replaced(event, EVENT_TYPE_PATH[provider], smuggled), pan)
    assert answer.status_code == 400


@EXAMPLES
@given(pan=ANY_PAN, how=HOW, event_type=st.sampled_from(event_types("paypal")))
def test_card_number_in_the_paypal_transmission_id(
    gateway: Gateway, pan: Pan, how: int, event_type: str
) -> None:
    # The header is kept only as a digest, so the delivery is stored and no form of
    # the number is anywhere (smuggle looks).
    smuggled = disguise("aaaaaaaa-", pan, how)
    answer = gateway.smuggle("paypal", sample("paypal", event_type), pan, transmission_id=smuggled)
    # The PayPal adapter's own shape for the header (a UUID's alphabet).
    if re.fullmatch(r"[A-Za-z0-9-]{1,64}", smuggled):
        assert answer.status_code == 200, answer.get_json()
    else:
        # A transmission id outside the id shape is refused before anything else.
        assert answer.status_code == 400
        assert answer.get_json()["error"]["code"] == "verification_failed"


# ------------------------------------------------------------------ the payload


@by_provider
@EXAMPLES
@given(data=st.data(), pan=ANY_PAN, how=HOW)
def test_card_number_in_an_id_or_reference(
    gateway: Gateway, provider: str, data: st.DataObject, pan: Pan, how: int
) -> None:
    event = sample(provider, data.draw(st.sampled_from(event_types(provider))))
    path = data.draw(st.sampled_from(reference_leaves(event)))
    smuggled = disguise(at(event, path), pan, how)
    answer = gateway.smuggle(provider, replaced(event, path, smuggled), pan)
    assert answer.status_code in (200, 400), answer.get_data(as_text=True)


@by_provider
@EXAMPLES
@given(data=st.data(), pan=pans(), how=HOW)
def test_card_number_in_any_string_or_number(
    gateway: Gateway, provider: str, data: st.DataObject, pan: Pan, how: int
) -> None:
    event = sample(provider, data.draw(st.sampled_from(event_types(provider))))
    if data.draw(st.booleans()) and number_leaves(event):
        # A number written as a JSON number: no separators, only the digits.
        path = data.draw(st.sampled_from(number_leaves(event)))
        event = replaced(event, path, int(pan.digits))
    else:
        for path in data.draw(
            st.lists(st.sampled_from(string_leaves(event)), min_size=1, max_size=4, unique=True)
        ):
            event = replaced(event, path, disguise(at(event, path), pan, how))
    answer = gateway.smuggle(provider, event, pan)
    assert answer.status_code in (200, 400), answer.get_data(as_text=True)


@by_provider
@EXAMPLES
@given(data=st.data(), pan=ANY_PAN, how=HOW)
def test_card_number_as_a_key_name(
    gateway: Gateway, provider: str, data: st.DataObject, pan: Pan, how: int
) -> None:
    event = sample(provider, data.draw(st.sampled_from(event_types(provider))))
    path = data.draw(st.sampled_from(containers(event)))
    name = [pan.written, f"card_{pan.written}", f"{pan.written}_check"][how]
    value = data.draw(st.sampled_from(["pass", 1, None, {"nested": "x"}, [name]]))
    answer = gateway.smuggle(provider, with_key(event, path, name, value), pan)
    assert answer.status_code in (200, 400), answer.get_data(as_text=True)


@by_provider
@EXAMPLES
@given(data=st.data(), pan=ANY_PAN, how=HOW)
def test_card_number_in_unsigned_headers(
    gateway: Gateway, provider: str, data: st.DataObject, pan: Pan, how: int
) -> None:
    event = sample(provider, data.draw(st.sampled_from(event_types(provider))))
    names = data.draw(st.lists(st.sampled_from(UNSIGNED_HEADERS), min_size=1, unique=True))
    headers = {name: disguise("10.0.0.", pan, how) for name in names}
    answer = gateway.smuggle(provider, event, pan, headers=headers)
    assert answer.status_code == 200, answer.get_data(as_text=True)


# ------------------------------------------------------------------ every place, in turn


def _post_all(
    gateway: Gateway, deliveries: list[tuple[str, dict[str, Any], Pan]]
) -> tuple[Sweep, list[int]]:
    """Post many deliveries into one database, then look for all their numbers at once."""
    empty_tables(gateway.engine)
    gateway.logs.clear()
    sweep = Sweep([pan for _, _, pan in deliveries])
    statuses: list[int] = []
    for provider, event, _ in deliveries:
        with gateway.engine.connect() as conn:
            before = conn.scalar(select(func.count()).select_from(events))
        answer = post(gateway.client, provider, event, pki=gateway.pki)
        sweep.answer(f"the webhook answer ({provider})", answer)
        statuses.append(answer.status_code)
        with gateway.engine.connect() as conn:
            after = conn.scalar(select(func.count()).select_from(events))
        if answer.status_code >= 400 and after != before:
            sweep.findings.append(_finding("a refused delivery left an event row", sweep.pans[0]))
    look_everywhere(
        sweep=sweep,
        client=gateway.client,
        engine=gateway.engine,
        database_url=gateway.database_url,
        captured=gateway.logs,
    )
    return sweep, statuses


@by_provider
def test_every_id_and_reference_of_every_event_type(gateway: Gateway, provider: str) -> None:
    deliveries: list[tuple[str, dict[str, Any], Pan]] = []
    planted = iter(fixed_pans(2000, seed=len(provider)))
    for event_type in event_types(provider):
        template = sample(provider, event_type)
        for index, path in enumerate(reference_leaves(template)):
            pan = next(planted)
            event = sample(provider, event_type)
            if not _same_shape(event, template, path):
                continue
            event = replaced(event, path, disguise(at(event, path), pan, index % 3))
            deliveries.append((provider, event, pan))
    sweep, statuses = _post_all(gateway, deliveries)
    assert not sweep.findings, sweep.report()
    assert set(statuses) <= {200, 400}, sorted(set(statuses))


@by_provider
def test_card_number_keys_at_the_usual_depths(gateway: Gateway, provider: str) -> None:
    deliveries: list[tuple[str, dict[str, Any], Pan]] = []
    planted = iter(fixed_pans(2000, seed=100 + len(provider)))
    for event_type in event_types(provider):
        for path in NAMED_CONTAINERS[provider]:
            event = sample(provider, event_type)
            if not present(event, path):
                continue
            pan = next(planted)
            deliveries.append((provider, with_key(event, path, pan.written, "pass"), pan))
    sweep, statuses = _post_all(gateway, deliveries)
    assert not sweep.findings, sweep.report()
    assert set(statuses) == {200}, sorted(set(statuses))


def _same_shape(event: dict[str, Any], template: dict[str, Any], path: tuple[Any, ...]) -> bool:
    """Return whether a fresh sample has a string at the template's path."""
    try:
        return isinstance(at(event, path), str)
    except (KeyError, IndexError, TypeError):
        return False


# ------------------------------------------------------------------ refused means nothing kept


def _refusals() -> list[tuple[str, str]]:
    return [(p, place) for p in PROVIDERS for place in ("event id", "event type")]


@pytest.mark.parametrize(("provider", "place"), _refusals())
@pytest.mark.parametrize("pan", fixed_pans(6, seed=7), ids=repr)
def test_a_delivery_refused_for_card_data_leaves_nothing(
    gateway: Gateway, provider: str, place: str, pan: Pan
) -> None:
    event_type = event_types(provider)[0]
    event = sample(provider, event_type)
    id_form = EVENT_ID_PREFIX[provider] + pan.digits
    kwargs: dict[str, Any] = {}
    if place == "event id" and EVENT_ID_PATH[provider] is None:
        kwargs["event_id"] = id_form
    elif place == "event id":
        event = replaced(event, ("id",), id_form)
    else:
        head = event_type.rsplit(".", 1)[0]
        event = replaced(event, EVENT_TYPE_PATH[provider], f"{head}.{pan.digits}")
    answer = gateway.smuggle(provider, event, pan, **kwargs)
    assert answer.status_code == 400
    # Razorpay's adapter refuses a card number in its id header as a malformed header.
    codes = {"card_data_refused"} | (
        {"verification_failed"} if provider == "razorpay" and place == "event id" else set()
    )
    assert answer.get_json()["error"]["code"] in codes
