"""Outbound fixtures: a real HTTPS receiver, a store, subscribers and a sender on them."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from gateway.config.settings import Settings, allowed_networks
from gateway.outbound import subscribers as subs
from gateway.outbound.addresses import Resolver, system_resolver
from gateway.outbound.dispatcher import Dispatcher
from gateway.storage.store import Store
from gateway.storage.tables import outbound_deliveries
from tests.support.database import make_cipher
from tests.support.receiver import Receiver, https_receiver

# The receiver listens on loopback: these tests allow it explicitly, as an operator
# allows an internal billing service's network. Without it the address is refused.
LOOPBACK = ("127.0.0.0/8",)


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    """Return a running HTTPS receiver with its own test CA."""
    with https_receiver(tmp_path) as running:
        yield running


@pytest.fixture
def store(engine: Engine) -> Store:
    """Return a store on the test database."""
    return Store(engine, make_cipher())


def outbound_settings(receiver: Receiver | None, **changes: Any) -> Settings:
    """Return settings allowing loopback and trusting the receiver's CA."""
    values: dict[str, Any] = {
        "outbound_allow_networks": LOOPBACK,
        "outbound_retry_schedule": "0,5,300",
        "outbound_ca_bundle": receiver.ca_bundle if receiver is not None else "",
    }
    values.update(changes)
    return dataclasses.replace(Settings(), **values)


@pytest.fixture
def add_subscriber(store: Store) -> Callable[..., str]:
    """Return a function registering a subscriber (loopback allowed); it returns the secret."""

    def add(
        name: str,
        url: str,
        *,
        events: Sequence[str] = (),
        accounts: Sequence[str] = (),
        resolver: Resolver = system_resolver,
    ) -> str:
        with store.writing() as conn:
            secret = subs.add(
                conn,
                store.cipher,
                name=name,
                url=url,
                event_types=events,
                accounts=accounts,
                networks=allowed_networks(outbound_settings(None)),
                resolver=resolver,
            )
        store.outbox.invalidate()
        return secret

    return add


@pytest.fixture
def sender(store: Store, receiver: Receiver) -> Dispatcher:
    """Return a sender on the store, trusting the receiver."""
    return Dispatcher(store, outbound_settings(receiver))


def deliveries(engine: Engine) -> list[dict[str, Any]]:
    """Return every outbox row, in id order."""
    with engine.connect() as conn:
        rows = conn.execute(select(outbound_deliveries).order_by(outbound_deliveries.c.id))
        return [dict(r._mapping) for r in rows]
