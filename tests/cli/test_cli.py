"""The command line: schema checks, simulate against a live gateway."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine
from werkzeug.serving import make_server

from gateway.app import create_app
from gateway.cli import devconfig, main
from gateway.storage.engine import make_engine
from gateway.storage.migrate import upgrade
from tests.support.database import all_rows


@pytest.fixture
def configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str, engine: Engine
) -> Path:
    """Point PAYSIEVE_CONFIG at a full configuration on the test database."""
    config = tmp_path / "paysieve.toml"
    devconfig.write_config(config, database_url=database_url)
    monkeypatch.setenv("PAYSIEVE_CONFIG", str(config))
    monkeypatch.chdir(tmp_path)
    return config


@pytest.fixture
def live(configured: Path) -> Iterator[str]:
    """Serve the configured gateway on a free loopback port."""
    app = create_app({"TESTING": True})
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join()
    app.extensions["paysieve.store"].engine.dispose()


@pytest.mark.parametrize(
    ("provider", "event_type"),
    [
        ("stripe", "charge.succeeded"),
        ("stripe", "payment_method.attached"),
        ("razorpay", "payment.captured"),
        ("paypal", "PAYMENT.CAPTURE.COMPLETED"),
    ],
)
def test_simulate_posts_a_signed_event_that_is_stored(
    live: str, engine: Engine, provider: str, event_type: str
) -> None:
    result = CliRunner().invoke(main, ["simulate", provider, event_type, "--url", live])
    assert result.exit_code == 0, result.output
    assert '"status":"stored"' in result.output.replace(" ", "")
    assert len(all_rows(engine)["events"]) == 1


def test_simulate_unknown_event_type_fails_cleanly(live: str) -> None:
    result = CliRunner().invoke(main, ["simulate", "stripe", "nope.nothing", "--url", live])
    assert result.exit_code != 0
    assert "unsupported Stripe event type" in result.output


def test_simulate_without_a_gateway_says_so(configured: Path) -> None:
    result = CliRunner().invoke(
        main, ["simulate", "stripe", "charge.succeeded", "--url", "http://127.0.0.1:9"]
    )
    assert result.exit_code != 0
    assert "cannot reach the gateway" in result.output


def test_db_upgrade_reports_the_revision(configured: Path) -> None:
    result = CliRunner().invoke(main, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert " at 0" in result.output


def test_serve_refuses_an_unmigrated_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "paysieve.toml"
    devconfig.write_config(config, database_url=f"sqlite:///{tmp_path / 'fresh.db'}")
    monkeypatch.setenv("PAYSIEVE_CONFIG", str(config))
    result = CliRunner().invoke(main, ["serve", "--port", "9"])
    assert result.exit_code != 0
    assert "run `paysieve db upgrade` first" in result.output


def test_fresh_database_migrates_to_head(tmp_path: Path) -> None:
    from gateway.storage.migrate import current_revision, head_revision

    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_trial_serve_does_not_migrate_a_database_it_did_not_create(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAYSIEVE_HOME", str(tmp_path))
    monkeypatch.delenv("PAYSIEVE_CONFIG")
    devconfig.ensure_dev_config()
    dev = tmp_path / "var" / "paysieve.dev.toml"
    other = tmp_path / "other.db"
    text = dev.read_text().replace("sqlite:///var/paysieve.db", f"sqlite:///{other}")
    dev.write_text(text)
    result = CliRunner().invoke(main, ["serve", "--port", "9"])
    assert result.exit_code == 1
    assert "run `paysieve db upgrade` first" in result.output
    assert "Migrated" not in result.output


def test_trial_serve_migrates_its_own_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    monkeypatch.setenv("PAYSIEVE_HOME", str(tmp_path))
    monkeypatch.delenv("PAYSIEVE_CONFIG")
    with socket.socket() as taken:
        # The port is taken so serve stops right after the schema step.
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = CliRunner().invoke(main, ["serve", "--port", port])
    assert "Migrated the development database" in result.output
    assert "cannot listen on" in result.output


def test_serve_says_listening_with_the_port_it_bound(configured: Path) -> None:
    import subprocess
    import sys

    paysieve = str(Path(sys.executable).parent / "paysieve")
    process = subprocess.Popen(
        [paysieve, "serve", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline().decode() for _ in range(3)]
    finally:
        process.terminate()
        process.wait(15)
        if process.stdout is not None:
            process.stdout.close()
    listening = next(line for line in lines if line.startswith("Listening on"))
    assert "Listening on http://127.0.0.1:0 " not in listening
    assert listening.startswith("Listening on http://127.0.0.1:")
