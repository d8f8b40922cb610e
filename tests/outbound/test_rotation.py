"""Data-key rotation re-seals signing secrets: delivery signs after the old key is gone."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select
from standardwebhooks import Webhook

from gateway.config.settings import allowed_networks
from gateway.core.crypto import PREFIX, generate_key
from gateway.core.errors import ConfigurationError
from gateway.outbound import subscribers as subs
from gateway.outbound.addresses import system_resolver
from gateway.outbound.dispatcher import Dispatcher
from gateway.privacy.data_keys import check_keys
from gateway.privacy.rotation import rotate_keys, rotation_counts
from gateway.storage.store import Store
from gateway.storage.tables import subscribers
from tests.outbound.conftest import deliveries, outbound_settings
from tests.support.api import apply, txn
from tests.support.database import TEST_DATA_KEY, make_cipher
from tests.support.receiver import Receiver


def test_rotation_reseals_secrets_and_delivery_verifies_without_the_old_key(
    engine: Engine, receiver: Receiver
) -> None:
    old_store = Store(engine, make_cipher())
    settings = outbound_settings(receiver)
    with old_store.writing() as conn:
        first = subs.add(
            conn,
            old_store.cipher,
            name="billing",
            url=receiver.url(),
            event_types=(),
            accounts=(),
            networks=allowed_networks(settings),
            resolver=system_resolver,
        )
        current = subs.rotate_secret(conn, old_store.cipher, "billing")
    key_b = generate_key()
    both = Store(engine, make_cipher(key_b, TEST_DATA_KEY))
    assert rotation_counts(both)["subscribers"] == 1
    counts = rotate_keys(both)
    assert counts["subscribers"] == 1 and counts["interrupted"] == 0
    assert rotation_counts(both)["subscribers"] == 0
    prefix = f"{PREFIX}{both.cipher.current_kid}."
    with engine.connect() as conn:
        row = conn.execute(select(subscribers)).one()
    assert row.secret.startswith(prefix) and row.previous_secret.startswith(prefix)
    # Only the new key now: the sender opens both secrets and signs with them.
    only_b = Store(engine, make_cipher(key_b))
    apply(only_b, txn("ch_1", status="succeeded"))
    assert Dispatcher(only_b, settings).run_once() == 1
    [got] = receiver.received
    assert Webhook(current).verify(got.body, got.headers)["record"]["id"] == "ch_1"
    assert Webhook(first).verify(got.body, got.headers)["record"]["id"] == "ch_1"
    assert [r["state"] for r in deliveries(engine)] == ["delivered"]


def test_the_old_key_is_still_needed_while_a_secret_is_sealed_under_it(
    engine: Engine, receiver: Receiver
) -> None:
    store = Store(engine, make_cipher())
    with store.writing() as conn:
        subs.add(
            conn,
            store.cipher,
            name="billing",
            url=receiver.url(),
            event_types=(),
            accounts=(),
            networks=allowed_networks(outbound_settings(receiver)),
            resolver=system_resolver,
        )
    key_b = generate_key()
    # Only a subscriber secret is sealed under the old key: dropping it is refused.
    with pytest.raises(ConfigurationError, match="rotate-keys"):
        check_keys(Store(engine, make_cipher(key_b)))
    rotate_keys(Store(engine, make_cipher(key_b, TEST_DATA_KEY)))
    check_keys(Store(engine, make_cipher(key_b)))
