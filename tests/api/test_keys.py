"""API keys: format, hash-only storage, authentication, revocation, and the keys commands."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, select

from gateway.api import keys
from gateway.cli import main
from gateway.storage.tables import api_keys, audit_log
from tests.support.database import all_rows

KEY_SHAPE = re.compile(r"psk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")


def test_key_is_high_entropy_and_stored_only_as_its_hash(engine: Engine) -> None:
    with engine.begin() as conn:
        key, record = keys.create(conn, name="billing", scopes=["records:read"])
        other, _ = keys.create(conn, name="billing", scopes=["records:read"])
    assert KEY_SHAPE.fullmatch(key) and key != other
    assert key.split("_")[1] == record.prefix
    with engine.connect() as conn:
        row = conn.execute(select(api_keys).where(api_keys.c.prefix == record.prefix)).one()
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    secret = key.split("_", 2)[2]
    assert secret not in repr(all_rows(engine))


def test_authenticate(engine: Engine) -> None:
    with engine.begin() as conn:
        key, record = keys.create(
            conn, name="eu billing", scopes=["records:read", "audit:read"], accounts=["eu"]
        )
    with engine.connect() as conn:
        found = keys.authenticate(conn, key)
        assert found is not None
        assert found.prefix == record.prefix
        assert found.scopes == {"records:read", "audit:read"}
        assert found.allows("audit:read") and not found.allows("customers:erase")
        assert found.sees("eu") and not found.sees("default")
        wrong = key[:-1] + ("A" if key[-1] != "A" else "B")
        for presented in (wrong, key + "x", key.upper(), "", "psk_", record.prefix):
            assert keys.authenticate(conn, presented) is None
        unknown = "psk_000000000000_" + key.split("_", 2)[2]
        assert keys.authenticate(conn, unknown) is None


def test_unbound_key_sees_every_account(engine: Engine) -> None:
    with engine.begin() as conn:
        key, _ = keys.create(conn, name="all", scopes=["records:read"])
        found = keys.authenticate(conn, key)
    assert found is not None and found.accounts is None and found.sees("anything")


def test_revoked_key_no_longer_authenticates(engine: Engine) -> None:
    with engine.begin() as conn:
        key, record = keys.create(conn, name="old", scopes=["records:read"])
        assert keys.revoke(conn, record.prefix)
        assert not keys.revoke(conn, record.prefix)
        assert not keys.revoke(conn, "not-a-prefix")
        assert keys.authenticate(conn, key) is None
        (listed,) = keys.list_keys(conn)
    assert listed.revoked_at is not None


@pytest.mark.parametrize(
    ("name", "scopes", "accounts"),
    [
        ("ok", [], []),
        ("ok", ["records:write"], []),
        ("", ["records:read"], []),
        ("bad\nname", ["records:read"], []),
        ("ok", ["records:read"], ["Bad Account"]),
    ],
)
def test_invalid_requests_are_refused(
    engine: Engine, name: str, scopes: list[str], accounts: list[str]
) -> None:
    with engine.begin() as conn, pytest.raises(keys.InvalidKeyRequest):
        keys.create(conn, name=name, scopes=scopes, accounts=accounts)


def test_touch_records_last_use_at_most_once_a_minute(engine: Engine) -> None:
    now = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
    with engine.begin() as conn:
        _, record = keys.create(conn, name="t", scopes=["records:read"])
        keys.touch(conn, record.prefix, now=now)
        keys.touch(conn, record.prefix, now=now + timedelta(seconds=30))
        assert keys.list_keys(conn)[0].last_used_at == now
        keys.touch(conn, record.prefix, now=now + timedelta(minutes=2))
        assert keys.list_keys(conn)[0].last_used_at == now + timedelta(minutes=2)


# ------------------------------------------------------------------ command line


@pytest.fixture
def run(database_url: str, engine: Engine) -> CliRunner:
    """Return a runner whose commands use the test database."""
    return CliRunner(env={"PAYSIEVE_DATABASE_URL": database_url})


def test_create_prints_the_key_alone_on_stdout(run: CliRunner, engine: Engine) -> None:
    result = run.invoke(
        main,
        [
            "keys",
            "create",
            "--name",
            "billing",
            "--scope",
            "records:read",
            "--scope",
            "audit:read",
            "--account",
            "eu",
            "--account",
            "default",
        ],
    )
    assert result.exit_code == 0, result.output
    assert KEY_SHAPE.fullmatch(result.stdout.strip())
    assert result.stdout.count("\n") == 1
    key = result.stdout.strip()
    with engine.connect() as conn:
        found = keys.authenticate(conn, key)
        audited = [(r.actor, r.action) for r in conn.execute(select(audit_log))]
    assert found is not None and found.accounts == {"eu", "default"}
    assert audited == [("cli", "keys.create")]


def test_list_shows_keys_but_never_a_key(run: CliRunner) -> None:
    created = run.invoke(main, ["keys", "create", "--name", "billing", "--scope", "records:read"])
    key = created.stdout.strip()
    prefix = key.split("_")[1]
    listed = run.invoke(main, ["keys", "list"])
    assert listed.exit_code == 0
    assert prefix in listed.stdout and "billing" in listed.stdout
    assert "records:read" in listed.stdout
    assert key not in listed.output and key.split("_", 2)[2] not in listed.output
    header = listed.stdout.splitlines()[0].split()
    assert header[:4] == ["NAME", "PREFIX", "SCOPES", "ACCOUNTS"]


def test_revoke_by_prefix(run: CliRunner, engine: Engine) -> None:
    key = run.invoke(
        main, ["keys", "create", "--name", "b", "--scope", "records:read"]
    ).stdout.strip()
    prefix = key.split("_")[1]
    assert run.invoke(main, ["keys", "revoke", prefix]).exit_code == 0
    with engine.connect() as conn:
        assert keys.authenticate(conn, key) is None
    again = run.invoke(main, ["keys", "revoke", prefix])
    assert again.exit_code == 1 and "no live key" in again.output


def test_unknown_scope_is_refused(run: CliRunner) -> None:
    result = run.invoke(main, ["keys", "create", "--name", "b", "--scope", "records:write"])
    assert result.exit_code == 2
    assert result.stdout == ""


def test_a_key_name_holding_a_card_number_is_refused_in_one_line(
    run: CliRunner, engine: Engine
) -> None:
    # The storage boundary refuses the name; the command says so without a traceback.
    result = run.invoke(
        main, ["keys", "create", "--name", "4111 1111 1111 1111", "--scope", "records:read"]
    )
    assert result.exit_code == 1
    assert "looks like card data" in result.output
    assert "Traceback" not in result.output and "4111" not in result.output
    assert result.output.count("\n") == 1
    with engine.connect() as conn:
        assert conn.execute(select(api_keys)).all() == []
