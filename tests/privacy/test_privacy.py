"""Privacy lifecycle: encryption at rest, erasure, export, retention purge, key rotation."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, select, update

from gateway.cli import main
from gateway.config.settings import Settings
from gateway.core.crypto import UndecryptableValue, generate_key, key_id
from gateway.core.errors import ConfigurationError
from gateway.privacy.erasure import erase
from gateway.privacy.retention import purge
from gateway.privacy.rotation import rotate_keys
from gateway.storage.store import Store
from gateway.storage.tables import (
    audit_log,
    event_objects,
    events,
    payment_methods,
    privacy_log,
    transactions,
)
from tests.support.api import apply, bearer, make_key, pm, store_of, sub, txn
from tests.support.database import (
    TEST_DATA_KEY,
    TEST_INDEX_KEY,
    all_rows,
    database_bytes,
    make_cipher,
    plain_rows,
)
from tests.support.webhooks import sample, signed_post

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)


def seed_customer(store: Store, customer: str = "cus_alice", card: str = "pm_alice") -> None:
    """Store a customer with a card, a subscription, a payment and a guest charge by the card."""
    apply(store, pm(card, customer=customer, brand="visa", last4="4242", status="active"))
    name = customer.removeprefix("cus_")
    apply(store, sub(f"sub_{name}", customer=customer, plan="plan_gold", status="active"))
    apply(
        store,
        txn(
            f"ch_{name}",
            kind="payment",
            status="succeeded",
            amount=1500,
            currency="EUR",
            customer=customer,
            payment_method=card,
        ),
    )
    apply(store, txn(f"ch_guest_{name}", kind="payment", status="succeeded", payment_method=card))


# ------------------------------------------------------------------ encryption at rest


def test_raw_dump_holds_no_token_or_customer_in_clear(
    client: FlaskClient, engine: Engine, database_url: str
) -> None:
    event = sample("stripe", "charge.succeeded")
    charge = event["data"]["object"]
    assert signed_post(client, "stripe", event).status_code == 200
    seed_customer(store_of(client.application))
    secrets_ = [charge["customer"], charge["payment_method"], "cus_alice", "pm_alice"]
    raw = repr(all_rows(engine))
    blob = database_bytes(database_url)
    for value in secrets_:
        assert value not in raw
        assert value.encode() not in blob
    # ...while the decrypting view holds them all.
    plain = repr(plain_rows(engine))
    assert all(value in plain for value in secrets_)


def test_lookups_by_token_and_customer_use_the_blind_index(
    client: FlaskClient, app: Flask, engine: Engine
) -> None:
    seed_customer(store_of(app))
    seed_customer(store_of(app), customer="cus_bob", card="pm_bob")
    key = bearer(make_key(engine))
    method = client.get("/v1/payment-methods/stripe/pm_alice", headers=key).get_json()
    assert (method["token"], method["customer"]) == ("pm_alice", "cus_alice")
    listed = client.get("/v1/transactions?customer=cus_bob", headers=key).get_json()["data"]
    assert [t["payment_method"]["token"] for t in listed] == ["pm_bob"]
    cipher = make_cipher()
    with engine.connect() as conn:
        found = conn.execute(
            select(payment_methods.c.pk).where(
                payment_methods.c.token_bidx == cipher.bidx("token", "pm_bob")
            )
        ).all()
    assert len(found) == 1


def test_ciphertext_moved_to_another_row_fails_to_decrypt(app: Flask, engine: Engine) -> None:
    store = store_of(app)
    apply(store, txn("ch_a", customer="cus_a"), txn("ch_b", customer="cus_b"))
    with engine.begin() as conn:
        sealed = dict(conn.execute(select(transactions.c.id, transactions.c.customer)).all())
        conn.execute(
            update(transactions)
            .where(transactions.c.id == "ch_a")
            .values(customer=sealed["ch_b"], customer_bidx=None)
        )
    with pytest.raises(UndecryptableValue):
        plain_rows(engine)
    # Another column of the same row fails too.
    with engine.begin() as conn:
        conn.execute(
            update(transactions)
            .where(transactions.c.id == "ch_b")
            .values(payment_method=sealed["ch_b"])
        )
    with engine.connect() as conn:
        row = dict(
            conn.execute(select(transactions).where(transactions.c.id == "ch_b")).one()._mapping
        )
    with pytest.raises(UndecryptableValue):
        make_cipher().open_row("transactions", row)


def test_startup_without_keys_names_the_variable_and_the_command(
    make_app: Callable[..., Flask],
) -> None:
    with pytest.raises(ConfigurationError, match="PAYSIEVE_DATA_KEYS.*data-keys generate"):
        make_app(data_keys=())
    with pytest.raises(ConfigurationError, match="PAYSIEVE_INDEX_KEY"):
        make_app(index_key="")


def test_rotation_from_key_a_to_key_b_then_a_removed(
    make_app: Callable[..., Flask], engine: Engine
) -> None:
    key_b = generate_key()
    seed_customer(store_of(make_app()))
    # Without key A the gateway refuses to start, and says which key is missing.
    with pytest.raises(ConfigurationError, match=key_id_of(TEST_DATA_KEY)):
        make_app(data_keys=(key_b,))
    store = store_of(make_app(data_keys=(key_b, TEST_DATA_KEY)))
    stops = iter([False, True])
    first = rotate_keys(store, batch_size=1, should_stop=lambda: next(stops, False))
    assert first["interrupted"] == 1
    # Half rotated: dropping key A now is still refused.
    with pytest.raises(ConfigurationError, match="rotate-keys"):
        make_app(data_keys=(key_b,))
    second = rotate_keys(store, batch_size=1)
    assert second["interrupted"] == 0
    assert first["transactions"] + second["transactions"] == 2
    assert second["event_objects"] == 1
    app_b = make_app(data_keys=(key_b,))
    client = app_b.test_client()
    key = bearer(make_key(engine))
    method = client.get("/v1/payment-methods/stripe/pm_alice", headers=key).get_json()
    assert method["customer"] == "cus_alice"
    feed = client.get("/v1/events?after=0", headers=key).get_json()["data"]
    assert ["pm_alice"] in [e["object_ids"]["payment_method"] for e in feed]
    assert plain_rows(engine, make_cipher(key_b))["payment_methods"][0]["token"] == "pm_alice"
    with engine.connect() as conn:
        actions = [r.outcome for r in conn.execute(select(privacy_log).order_by(privacy_log.c.seq))]
    assert actions == ["interrupted", "ok"]


def key_id_of(key: str) -> str:
    """Return a base64url key's id."""
    import base64

    return key_id(base64.urlsafe_b64decode(key + "=" * (-len(key) % 4)))


# ------------------------------------------------------------------ erasure


def test_erasure_keeps_the_billing_core_and_unlinks_the_customer(
    client: FlaskClient, app: Flask, engine: Engine, database_url: str
) -> None:
    store = store_of(app)
    seed_customer(store)
    seed_customer(store, customer="cus_bob", card="pm_bob")
    with engine.connect() as conn:
        sealed = [
            *conn.execute(
                select(payment_methods.c.token, payment_methods.c.customer).where(
                    payment_methods.c.token_bidx == make_cipher().bidx("token", "pm_alice")
                )
            ).one()
        ]
    erase_key = bearer(make_key(engine, "customers:erase"))
    assert (
        client.delete(
            "/v1/customers/stripe/cus_alice", headers=bearer(make_key(engine))
        ).status_code
        == 403
    )
    response = client.delete("/v1/customers/stripe/cus_alice", headers=erase_key)
    assert response.status_code == 200
    body = response.get_json()
    assert body["deleted"] == {"payment_methods": 1, "subscriptions": 1}
    assert body["unlinked"] == {"transactions": 2}
    assert "17(3)(b)" in body["legal_basis"]
    rows = plain_rows(engine)
    assert [r["token"] for r in rows["payment_methods"]] == ["pm_bob"]
    assert [r["customer"] for r in rows["subscriptions"]] == ["cus_bob"]
    kept = {r["id"]: r for r in rows["transactions"]}
    assert (kept["ch_alice"]["amount"], kept["ch_alice"]["currency"]) == (1500, "EUR")
    assert kept["ch_alice"]["status"] == "succeeded"
    assert kept["ch_alice"]["customer"] is None and kept["ch_alice"]["payment_method"] is None
    assert kept["ch_guest_alice"]["payment_method"] is None
    assert ("payment_method", "pm_alice") not in {
        (o["record_type"], o["object_id"]) for o in rows["event_objects"]
    }
    # The trail names the request by pseudonym and counts, never by value.
    raw = repr(all_rows(engine))
    assert "cus_alice" not in raw and "pm_alice" not in raw
    log = rows["privacy_log"][-1]
    assert log["subject"] == make_cipher().pseudonym("stripe", "cus_alice")
    assert (log["payment_methods"], log["subscriptions"], log["transactions"]) == (1, 1, 2)
    assert any(r["action"] == "customers.erase" for r in rows["audit_log"])
    # Deleted cells are overwritten, not left in free pages or the WAL.
    blob = database_bytes(database_url)
    for value in sealed:
        assert value.encode() not in blob


def test_later_webhook_for_an_erased_customer_is_a_new_relationship(
    client: FlaskClient, app: Flask
) -> None:
    store = store_of(app)
    seed_customer(store)
    erasure = erase(store, provider="stripe", customer="cus_alice")
    # Created before the erasure (a late delivery): not linked again.
    apply(store, pm("pm_late", customer="cus_alice", status="active"), at=erasure.erased_at)
    apply(
        store,
        pm("pm_new", customer="cus_alice", status="active"),
        at=erasure.erased_at + timedelta(seconds=1),
    )
    rows = plain_rows(store.engine)
    assert [(r["token"], r["customer"]) for r in rows["payment_methods"]] == [
        ("pm_new", "cus_alice")
    ]


# ------------------------------------------------------------------ export


def test_export_holds_every_record_of_the_customer_and_nothing_else(
    client: FlaskClient, app: Flask, engine: Engine
) -> None:
    store = store_of(app)
    seed_customer(store)
    seed_customer(store, customer="cus_bob", card="pm_bob")
    apply(store, txn("ch_eu", customer="cus_alice", amount=9), account="eu")
    assert client.get("/v1/customers/stripe/cus_alice/export").status_code == 401
    response = client.get("/v1/customers/stripe/cus_alice/export", headers=bearer(make_key(engine)))
    assert response.status_code == 200
    document = response.get_json()
    # A guest payment with her card is about her too.
    assert sorted(t["id"] for t in document["transactions"]) == [
        "ch_alice",
        "ch_eu",
        "ch_guest_alice",
    ]
    assert [m["token"] for m in document["payment_methods"]] == ["pm_alice"]
    assert [s["id"] for s in document["subscriptions"]] == ["sub_alice"]
    assert document["payment_methods"][0]["last4"] == "4242"
    assert "cus_bob" not in repr(document) and "pm_bob" not in repr(document)
    bound = bearer(make_key(engine, accounts=["eu"]))
    narrowed = client.get("/v1/customers/stripe/cus_alice/export", headers=bound).get_json()
    assert [t["id"] for t in narrowed["transactions"]] == ["ch_eu"]


# ------------------------------------------------------------------ retention


def _age(engine: Engine, table: Any, column: str, at: datetime, **where: Any) -> None:
    with engine.begin() as conn:
        conn.execute(update(table).filter_by(**where).values({column: at}))


def test_purge_boundaries_keep_a_record_one_second_inside_its_retention(
    app: Flask, engine: Engine
) -> None:
    store = store_of(app)
    settings: Settings = app.extensions["paysieve.settings"]
    day = timedelta(days=1)
    second = timedelta(seconds=1)
    apply(store, txn("ch_old"), txn("ch_new"), event_id="evt_old")
    apply(store, pm("pm_old", status="detached"), pm("pm_new", status="detached"))
    apply(store, pm("pm_active", status="active"))
    tx_limit = NOW - settings.retention_transactions_days * day
    pm_limit = NOW - settings.retention_payment_methods_days * day
    ev_limit = NOW - settings.retention_events_days * day
    _age(engine, transactions, "updated_at", tx_limit - second, id="ch_old")
    _age(engine, transactions, "updated_at", tx_limit + second, id="ch_new")
    cipher = make_cipher()
    for token, at in (("pm_old", pm_limit - second), ("pm_new", pm_limit + second)):
        _age(engine, payment_methods, "updated_at", at, token_bidx=cipher.bidx("token", token))
    _age(engine, payment_methods, "updated_at", NOW - 999 * day, status="active")
    _age(engine, events, "received_at", ev_limit + second)
    _age(engine, events, "received_at", ev_limit - second, id="evt_old")
    result = purge(store, settings, now=NOW)
    assert result.counts["transactions"] == 1 and result.counts["payment_methods"] == 1
    assert result.counts["events"] == 1
    rows = plain_rows(engine)
    assert [r["id"] for r in rows["transactions"]] == ["ch_new"]
    assert sorted(r["token"] for r in rows["payment_methods"]) == ["pm_active", "pm_new"]
    assert "evt_old" not in [e["id"] for e in rows["events"]]
    # The deleted event's change-feed rows went with it.
    assert {o["event_seq"] for o in rows["event_objects"]} <= {e["seq"] for e in rows["events"]}


def test_interrupted_purge_resumes_and_each_run_is_audited(app: Flask, engine: Engine) -> None:
    store = store_of(app)
    settings: Settings = app.extensions["paysieve.settings"]
    for n in range(25):
        apply(store, event_id=f"evt_{n}")
    _age(engine, events, "received_at", NOW - timedelta(days=365))
    dry = purge(store, settings, now=NOW, dry_run=True)
    assert dry.counts["events"] == 25 and len(all_rows(engine)["events"]) == 25
    calls = iter([False, True])
    first = purge(store, settings, now=NOW, batch_size=10, should_stop=lambda: next(calls, False))
    assert first.interrupted and first.counts["events"] == 10
    second = purge(store, settings, now=NOW, batch_size=10)
    assert not second.interrupted and second.counts["events"] == 15
    assert all_rows(engine)["events"] == []
    with engine.connect() as conn:
        entries = conn.execute(
            select(audit_log.c.actor, audit_log.c.outcome, audit_log.c.count)
            .where(audit_log.c.action == "purge")
            .order_by(audit_log.c.seq)
        ).all()
    assert [tuple(e) for e in entries] == [
        ("cli", "dry_run", 25),
        ("cli", "interrupted", 10),
        ("cli", "ok", 15),
    ]


# ------------------------------------------------------------------ command line


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str, engine: Engine) -> CliRunner:
    monkeypatch.setenv("PAYSIEVE_DATABASE_URL", database_url)
    monkeypatch.setenv("PAYSIEVE_DATA_KEYS", TEST_DATA_KEY)
    monkeypatch.setenv("PAYSIEVE_INDEX_KEY", TEST_INDEX_KEY)
    return CliRunner()


def test_cli_export_erase_purge(cli_env: CliRunner, app: Flask, engine: Engine) -> None:
    seed_customer(store_of(app))
    args = ["--provider", "stripe", "--customer", "cus_alice"]
    exported = cli_env.invoke(main, ["export", *args])
    assert exported.exit_code == 0, exported.output
    assert orjson.loads(exported.stdout)["payment_methods"][0]["token"] == "pm_alice"
    as_csv = cli_env.invoke(main, ["export", *args, "--format", "csv"])
    sections = as_csv.stdout.split("# ")[1:]
    assert [s.split("\n", 1)[0] for s in sections] == [
        "transactions",
        "payment_methods",
        "subscriptions",
        "erasures",
    ]
    payments = list(csv.DictReader(io.StringIO(sections[0].split("\n", 1)[1].strip())))
    assert sorted(p["id"] for p in payments) == ["ch_alice", "ch_guest_alice"]
    erased = cli_env.invoke(main, ["erase", *args])
    assert erased.exit_code == 0 and orjson.loads(erased.stdout)["deleted"]["payment_methods"] == 1
    dry = cli_env.invoke(main, ["purge", "--dry-run"])
    assert dry.exit_code == 0 and "transactions: would delete 0" in dry.stdout
    assert cli_env.invoke(main, ["purge"]).exit_code == 0
    rotated = cli_env.invoke(main, ["rotate-keys"])
    assert rotated.exit_code == 0 and "sealed under key" in rotated.stdout
    assert len(cli_env.invoke(main, ["data-keys", "generate"]).stdout.strip()) == 43
    with engine.connect() as conn:
        assert conn.execute(select(event_objects)).all()


def test_export_serves_each_record_as_the_records_api_does(
    cli_env: CliRunner, app: Flask, engine: Engine, client: FlaskClient
) -> None:
    seed_customer(store_of(app))
    # A payment naming a card whose own event has not arrived: the token, other fields null.
    apply(store_of(app), txn("ch_early", customer="cus_alice", payment_method="pm_later"))
    apply(store_of(app), txn("ch_cash", customer="cus_alice"))
    key = bearer(make_key(engine))
    document = client.get("/v1/customers/stripe/cus_alice/export", headers=key).get_json()
    exported = orjson.loads(
        cli_env.invoke(main, ["export", "--provider", "stripe", "--customer", "cus_alice"]).stdout
    )
    for source in (document, exported):
        for name, path, ident in (
            ("transactions", "transactions", "id"),
            ("payment_methods", "payment-methods", "token"),
            ("subscriptions", "subscriptions", "id"),
        ):
            for record in source[name]:
                served = client.get(f"/v1/{path}/stripe/{record[ident]}", headers=key)
                assert record == served.get_json()
        methods = {t["id"]: t["payment_method"] for t in source["transactions"]}
        assert methods["ch_alice"]["last4"] == "4242"
        assert methods["ch_early"]["token"] == "pm_later"
        assert methods["ch_early"]["last4"] is None
        assert methods["ch_cash"] is None
    as_csv = cli_env.invoke(
        main, ["export", "--provider", "stripe", "--customer", "cus_alice", "--format", "csv"]
    )
    payments = as_csv.stdout.split("# ")[1].split("\n", 1)[1].strip()
    cells = {row["id"]: row["payment_method"] for row in csv.DictReader(io.StringIO(payments))}
    # One value per CSV cell: the payment method's token.
    assert cells == {
        "ch_alice": "pm_alice",
        "ch_guest_alice": "pm_alice",
        "ch_early": "pm_later",
        "ch_cash": "",
    }


def test_dev_config_carries_fresh_keys(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.cli import devconfig
    from gateway.config.settings import load_settings
    from gateway.core.crypto import cipher_from_settings

    monkeypatch.delenv("PAYSIEVE_CONFIG", raising=False)
    home = {"PAYSIEVE_HOME": str(tmp_path)}
    path = tmp_path / "var" / "paysieve.dev.toml"
    path.parent.mkdir()
    # A development configuration written before encryption at rest gains keys.
    path.write_text('[[endpoints]]\nprovider = "stripe"\nwebhook_secrets = ["whsec_kept"]\n')
    devconfig.ensure_dev_config(home)
    settings = load_settings(home)
    cipher = cipher_from_settings(settings.data_keys, "", settings.index_key)
    assert cipher.open(cipher.seal("cus_x", b"ad"), b"ad") == "cus_x"
    stripe = settings.endpoint("stripe", "default")
    assert stripe is not None and stripe.webhook_secrets == ("whsec_kept",)


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_an_unknown_provider_has_no_customers(
    client: FlaskClient, engine: Engine, method: str
) -> None:
    key = make_key(engine, "records:read", "customers:erase")
    path = "/v1/customers/nope/cus_1" + ("/export" if method == "GET" else "")
    answer = client.open(path, method=method, headers=bearer(key))
    assert answer.status_code == 404
    assert answer.get_json()["error"]["code"] == "not_found"
