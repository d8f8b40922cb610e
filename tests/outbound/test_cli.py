"""`paysieve subscribers` and `paysieve deliver` as an operator runs them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, select, update
from standardwebhooks import Webhook

from gateway.cli import main
from gateway.storage.store import Store
from gateway.storage.tables import audit_log, outbound_deliveries, subscribers
from tests.outbound.conftest import deliveries
from tests.support.api import apply, txn
from tests.support.database import TEST_DATA_KEY, TEST_INDEX_KEY
from tests.support.receiver import Receiver

PAYSIEVE = Path(sys.executable).with_name("paysieve")


@pytest.fixture
def environment(
    monkeypatch: pytest.MonkeyPatch, database_url: str, engine: Engine
) -> dict[str, str]:
    """Configure the command line for the test database, loopback allowed."""
    env = {
        "PAYSIEVE_DATABASE_URL": database_url,
        "PAYSIEVE_DATA_KEYS": TEST_DATA_KEY,
        "PAYSIEVE_INDEX_KEY": TEST_INDEX_KEY,
        "PAYSIEVE_OUTBOUND_ALLOW_NETWORKS": "127.0.0.0/8",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_add_prints_the_secret_alone_on_the_last_line_once(
    environment: dict[str, str], engine: Engine
) -> None:
    code, out, _ = run(
        "subscribers", "add", "--name", "billing", "--url", "https://127.0.0.1:8443/hook",
        "--event", "charge.*", "--account", "default",
    )  # fmt: skip
    assert code == 0, out
    secret = out.splitlines()[-1]
    assert secret.startswith("whsec_") and len(secret) == 50
    Webhook(secret)
    with engine.connect() as conn:
        row = conn.execute(select(subscribers)).one()
        actions = [e.action for e in conn.execute(select(audit_log))]
    assert secret not in repr(row) and secret[6:] not in repr(row)
    assert row.event_types == "charge.*" and row.accounts == "default"
    assert actions == ["subscribers.add"]
    code, out, _ = run("subscribers", "list")
    assert code == 0 and "billing" in out and "charge.*" in out and "whsec_" not in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--url", "http://127.0.0.1/hook"], "--url: the URL must be https://"),
        (["--url", "https://10.0.0.1/hook"], "PAYSIEVE_OUTBOUND_ALLOW_NETWORKS"),
        (["--url", "https://127.0.0.1/x", "--event", "charge succeeded"], "--event: must be"),
        (["--url", "https://127.0.0.1/x", "--account", "Bad Name"], "--account: must be"),
    ],
)
def test_add_refuses_in_one_line(
    environment: dict[str, str], args: list[str], message: str
) -> None:
    code, out, err = run("subscribers", "add", "--name", "billing", *args)
    assert code == 1 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_a_bad_allow_network_names_the_setting(
    environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAYSIEVE_OUTBOUND_ALLOW_NETWORKS", "10.0.0.0/33")
    code, _, err = run("subscribers", "list")
    assert code == 1 and "PAYSIEVE_OUTBOUND_ALLOW_NETWORKS" in err
    monkeypatch.setenv("PAYSIEVE_OUTBOUND_ALLOW_NETWORKS", "")
    monkeypatch.setenv("PAYSIEVE_OUTBOUND_RETRY_SCHEDULE", "0,5,soon")
    code, _, err = run("subscribers", "list")
    assert code == 1 and "PAYSIEVE_OUTBOUND_RETRY_SCHEDULE" in err


def test_rotate_disable_enable_remove(environment: dict[str, str], engine: Engine) -> None:
    _, out, _ = run("subscribers", "add", "--name", "billing", "--url", "https://127.0.0.1/h")
    first = out.splitlines()[-1]
    code, out, _ = run("subscribers", "rotate-secret", "billing")
    assert code == 0 and out.splitlines()[-1].startswith("whsec_")
    assert out.splitlines()[-1] != first
    _, listing, _ = run("subscribers", "list")
    assert "billing" in listing and "-  " in listing
    assert run("subscribers", "disable", "billing")[0] == 0
    assert "disabled (operator)" in run("subscribers", "list")[1]
    assert run("subscribers", "enable", "billing")[0] == 0
    assert run("subscribers", "remove", "billing")[0] == 0
    code, _, err = run("subscribers", "remove", "billing")
    assert code == 1 and "no subscriber has this name" in err
    with engine.connect() as conn:
        assert conn.execute(select(subscribers)).all() == []


def test_deliver_sends_what_was_committed_before_it_started_and_stops_on_sigterm(
    environment: dict[str, str],
    engine: Engine,
    store: Store,
    receiver: Receiver,
) -> None:
    """A change committed while no sender runs (a gateway killed before sending) goes out
    when `paysieve deliver` starts; SIGTERM stops it cleanly."""
    _, out, _ = run("subscribers", "add", "--name", "billing", "--url", receiver.url())
    secret = out.splitlines()[-1]
    store.outbox.invalidate()
    apply(store, txn("ch_1", status="succeeded"))
    env = os.environ | environment | {"PAYSIEVE_OUTBOUND_CA_BUNDLE": receiver.ca_bundle}
    process = subprocess.Popen(  # noqa: S603 - our own console script
        [str(PAYSIEVE), "deliver", "--idle-seconds", "0.1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while not receiver.received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert receiver.received, "nothing delivered"
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert b"Stopped." in err and b"Traceback" not in err
    Webhook(secret).verify(receiver.received[0].body, receiver.received[0].headers)
    assert [r["state"] for r in deliveries(engine)] == ["delivered"]


def test_a_sender_killed_in_the_middle_of_an_attempt_is_taken_over_with_the_same_id(
    environment: dict[str, str],
    engine: Engine,
    store: Store,
    receiver: Receiver,
) -> None:
    """SIGKILL while the receiver holds the request: the delivery stays owed (leased, not
    delivered), and once the lease has lapsed the next sender sends it, same webhook-id."""
    _, out, _ = run("subscribers", "add", "--name", "billing", "--url", receiver.url())
    secret = out.splitlines()[-1]
    store.outbox.invalidate()
    apply(store, txn("ch_1", status="succeeded"))
    env = os.environ | environment | {"PAYSIEVE_OUTBOUND_CA_BUNDLE": receiver.ca_bundle}
    command = [str(PAYSIEVE), "deliver", "--idle-seconds", "0.1"]
    receiver.answering.clear()
    first = subprocess.Popen(command, env=env, stderr=subprocess.PIPE)  # noqa: S603
    try:
        deadline = time.monotonic() + 20
        while not receiver.received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert receiver.received, "the first sender sent nothing"
    finally:
        first.kill()
        first.communicate(timeout=20)
    [owed] = deliveries(engine)
    assert owed["state"] == "pending" and owed["lease_until"] is not None
    # The dead sender's lease (60 s) lapses; it is moved back rather than waited for.
    with engine.begin() as conn:
        conn.execute(
            update(outbound_deliveries).values(lease_until=datetime.now(UTC) - timedelta(seconds=1))
        )
    receiver.answering.set()
    second = subprocess.Popen(command, env=env, stderr=subprocess.PIPE)  # noqa: S603
    try:
        deadline = time.monotonic() + 20
        while len(receiver.received) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        second.send_signal(signal.SIGTERM)
        _, err = second.communicate(timeout=20)
    assert second.returncode == 0, err
    assert len(receiver.received) == 2, "the second sender did not take the delivery over"
    killed, sent = receiver.received
    assert killed.headers["webhook-id"] == sent.headers["webhook-id"]
    assert Webhook(secret).verify(sent.body, sent.headers)["record"]["id"] == "ch_1"
    assert [r["state"] for r in deliveries(engine)] == ["delivered"]


def test_deliveries_list_and_replay(
    environment: dict[str, str],
    engine: Engine,
    store: Store,
    receiver: Receiver,
) -> None:
    from gateway.outbound.dispatcher import Dispatcher
    from tests.outbound.conftest import outbound_settings

    _, out, _ = run("subscribers", "add", "--name", "billing", "--url", receiver.url())
    store.outbox.invalidate()
    receiver.answers.append((500, {}))
    apply(store, txn("ch_1"))
    apply(store, txn("ch_2"))
    sender = Dispatcher(store, outbound_settings(receiver))
    assert sender.run_once() == 2
    code, out, _ = run("deliveries", "list", "--failed")
    lines = out.splitlines()
    assert code == 0 and lines[0].split()[:5] == ["ID", "SUBSCRIBER", "SEQ", "RECORD", "STATE"]
    assert len(lines) == 2 and " failed " in lines[1] and " 500 " in lines[1]
    assert len(run("deliveries", "list")[1].splitlines()) == 3
    code, _, err = run("subscribers", "replay", "billing", "--since", "yesterday")
    assert code == 2 and "--since" in err and "2026-12-04T10:00:00Z" in err
    code, out, _ = run("subscribers", "replay", "billing", "--since", "2020-01-01T00:00:00Z")
    assert code == 0 and "queued 2 deliveries" in out
    assert {(r["state"], r["attempts"]) for r in deliveries(engine)} == {("pending", 0)}
    assert sender.run_once() == 2
    assert len(receiver.received) == 4
    ids = [got.headers["webhook-id"] for got in receiver.received]
    assert sorted(ids[:2]) == sorted(ids[2:]), "a replay keeps the webhook-ids"
    code, out, _ = run(
        "subscribers", "replay", "billing", "--since", "2020-01-01", "--until", "2020-02-01"
    )
    assert code == 0 and "queued 0 deliveries" in out


def test_serve_sends_from_its_own_thread(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    engine: Engine,
    receiver: Receiver,
) -> None:
    from gateway.cli import devconfig

    config = tmp_path / "paysieve.toml"
    devconfig.write_config(config, database_url=database_url)
    env = {
        "PAYSIEVE_CONFIG": str(config),
        "PAYSIEVE_OUTBOUND_ALLOW_NETWORKS": "127.0.0.0/8",
        "PAYSIEVE_OUTBOUND_CA_BUNDLE": receiver.ca_bundle,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    _, out, _ = run("subscribers", "add", "--name", "billing", "--url", receiver.url())
    secret = out.splitlines()[-1]
    process = subprocess.Popen(  # noqa: S603 - our own console script
        [str(PAYSIEVE), "serve", "--port", "0"],
        env=os.environ | env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        listening = ""
        while not listening.startswith("Listening on"):
            listening = process.stdout.readline().decode()
            assert listening, "serve exited"
        base = listening.split()[2]
        code, out, err = run("simulate", "stripe", "charge.succeeded", "--url", base)
        assert code == 0, err
        deadline = time.monotonic() + 20
        while not receiver.received and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        process.terminate()
        process.wait(20)
        if process.stdout is not None:
            process.stdout.close()
    assert receiver.received, "the embedded sender sent nothing"
    payload = Webhook(secret).verify(receiver.received[0].body, receiver.received[0].headers)
    assert payload["event"]["type"] == "charge.succeeded"
