"""The command line: schema checks, simulate against a live gateway."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import orjson
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
    assert "EVENT_TYPE: not a stripe sample event type" in result.output
    assert "nope.nothing" not in result.output


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


@pytest.mark.parametrize("provider", ["stripe", "razorpay", "paypal"])
def test_simulate_lifecycle_posts_a_chained_sequence_and_shows_its_records(
    live: str, engine: Engine, provider: str
) -> None:
    result = CliRunner().invoke(main, ["simulate", provider, "--lifecycle", "--url", live])
    assert result.exit_code == 0, result.output
    posts, _, shown = result.stdout.partition("Records in ")
    assert [line.rsplit(" ", 1)[1] for line in posts.splitlines()] == ["stored"] * 4
    records = orjson.loads(shown.split("\n", 1)[1])
    assert len(all_rows(engine)["events"]) == 4
    # One customer and one card throughout; a payment paid with it, and its refund.
    (card,) = records["payment_methods"]
    customers = {t["customer"] for t in records["transactions"]} - {None}
    assert customers == {card["customer"]}
    paid = [t for t in records["transactions"] if t["payment_method"] is not None]
    assert paid and all(t["payment_method"] == card for t in paid)
    assert {t["status"] for t in records["transactions"]} & {"refunded", "partially_refunded"} or [
        t for t in records["transactions"] if t["kind"] == "refund"
    ]


def test_simulate_lifecycle_says_when_the_records_are_elsewhere(
    live: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, configured: Path
) -> None:
    other = tmp_path / "other.db"
    engine = make_engine(f"sqlite:///{other}")
    upgrade(engine)
    engine.dispose()
    monkeypatch.setenv("PAYSIEVE_DATABASE_URL", f"sqlite:///{other}")
    result = CliRunner().invoke(main, ["simulate", "stripe", "--lifecycle", "--url", live])
    assert result.exit_code == 0, result.output
    assert "No records of these events in sqlite:///" in result.stderr
    assert "may use another database" in result.stderr


def test_simulate_list_groups_sample_types_by_provider(
    configured: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from adapters.paypal import samples as paypal_samples
    from adapters.razorpay import samples as razorpay_samples
    from adapters.stripe import samples as stripe_samples

    monkeypatch.setenv("PAYSIEVE_RAZORPAY_WEBHOOK_SECRETS", "")
    result = CliRunner().invoke(main, ["simulate", "--list"])
    assert result.exit_code == 0, result.output
    heads = [line for line in result.stdout.splitlines() if line and not line.startswith(" ")]
    assert [head.split(":", 1)[0] for head in heads[:3]] == ["paypal", "razorpay", "stripe"]
    assert heads[2] == "stripe: configured (endpoints: default)"
    listed = result.stdout.split("\n", 1)[1]
    for module in (stripe_samples, razorpay_samples, paypal_samples):
        for event_type in module.LIFECYCLE:
            assert f"  {event_type}\n" in listed
    assert "  charge.refunded\n" in result.stdout
    assert "refund.speed_changed  (acknowledged as ignored" in result.stdout
    assert CliRunner().invoke(main, ["simulate", "stripe", "--list"]).stdout.startswith("stripe:")


def test_simulate_list_marks_a_provider_that_is_not_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    config = tmp_path / "paysieve.toml"
    config.write_text(f'database_url = "{database_url}"\n')
    monkeypatch.setenv("PAYSIEVE_CONFIG", str(config))
    monkeypatch.setenv("PAYSIEVE_STRIPE_WEBHOOK_SECRETS", "whsec_test")
    result = CliRunner().invoke(main, ["simulate", "--list"])
    assert result.exit_code == 0, result.output
    assert "razorpay: not configured: set PAYSIEVE_RAZORPAY_WEBHOOK_SECRETS" in result.stdout
    assert "stripe: configured (endpoints: default)" in result.stdout
    refused = CliRunner().invoke(main, ["simulate", "razorpay", "--lifecycle"])
    assert refused.exit_code == 1
    assert refused.output.count("\n") == 1
    assert "not configured: set PAYSIEVE_RAZORPAY_WEBHOOK_SECRETS" in refused.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["simulate"], "Error: name a PROVIDER (paypal, razorpay, stripe), or pass --list"),
        (["simulate", "stripe"], "Error: name an EVENT_TYPE or pass --lifecycle;"),
        (
            ["simulate", "stripe", "charge.succeeded", "--lifecycle"],
            "Error: --lifecycle posts its own sequence: drop EVENT_TYPE",
        ),
        (["simulate", "--list", "--lifecycle"], "Error: --list takes no EVENT_TYPE"),
        (
            ["simulate", "strip", "charge.succeeded"],
            "Error: PROVIDER: unknown provider (did you mean stripe?); "
            "choose from paypal, razorpay, stripe",
        ),
        (
            ["simulate", "stripe", "charge.succeeded", "--endpoint", "eu"],
            "Error: --endpoint: stripe has no such endpoint; choose from default",
        ),
        (
            ["erase", "--provider", "Stripe", "--customer", "cus_1"],
            "Error: --provider: unknown provider (did you mean stripe?); "
            "choose from paypal, razorpay, stripe",
        ),
        (
            ["export", "--provider", "adyen", "--customer", "cus_1"],
            "Error: --provider: unknown provider; choose from paypal, razorpay, stripe",
        ),
    ],
)
def test_simulate_and_provider_mistakes_are_one_line(
    configured: Path, args: list[str], message: str
) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert result.output.count("\n") == 1, result.output
    assert result.output.startswith(message), result.output
    # The refused value is not repeated.
    assert "adyen" not in result.output and "Stripe" not in result.output


def test_simulate_lifecycle_against_a_served_gateway_process(configured: Path) -> None:
    import subprocess
    import sys

    paysieve = str(Path(sys.executable).parent / "paysieve")
    server = subprocess.Popen(
        [paysieve, "serve", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        assert server.stdout is not None
        listening = ""
        while not listening.startswith("Listening on"):
            listening = server.stdout.readline().decode()
            assert listening, "serve exited before listening"
        base = listening.split()[2]
        done = subprocess.run(
            [paysieve, "simulate", "stripe", "--lifecycle", "--url", base],
            capture_output=True,
            timeout=60,
            check=False,
        )
    finally:
        server.terminate()
        server.wait(15)
        if server.stdout is not None:
            server.stdout.close()
    out = done.stdout.decode()
    assert done.returncode == 0, done.stderr.decode()
    assert out.count("-> 200 stored") == 4
    records = orjson.loads(out.split("Records in ", 1)[1].split("\n", 1)[1])
    assert {t["status"] for t in records["transactions"]} >= {"refunded"}
    assert done.stderr.decode() == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["stripe", "4111111111111111"], "Error: EVENT_TYPE: not a stripe sample event type;"),
        (
            ["stripe", "charge.succeded"],
            "Error: EVENT_TYPE: not a stripe sample event type (did you mean charge.succeeded?)",
        ),
        (
            ["razorpay", "payment.captured", "--endpoint", "4111111111111111"],
            "Error: razorpay endpoint is not configured",
        ),
        (
            ["stripe", "charge.succeeded", "--url", "http://ops:s3cret-pw@127.0.0.1:9"],
            "Error: cannot reach the gateway at http://ops:***@127.0.0.1:9/webhooks/stripe",
        ),
        (
            ["stripe", "--lifecycle", "--url", "http://ops:s3cret-pw@127.0.0.1:9"],
            "Error: cannot reach the gateway at http://ops:***@127.0.0.1:9/webhooks/stripe",
        ),
        (
            ["stripe", "charge.succeeded", "--url", "http://[::1"],
            "Error: cannot reach the gateway at the --url given",
        ),
    ],
)
def test_simulate_never_repeats_a_refused_value_or_a_password(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    args: list[str],
    message: str,
) -> None:
    # Stripe alone is configured.
    config = tmp_path / "paysieve.toml"
    config.write_text(
        f'database_url = "{database_url}"\n[[endpoints]]\nprovider = "stripe"\n'
        f'webhook_secrets = ["whsec_{"k" * 32}"]\n'
    )
    monkeypatch.setenv("PAYSIEVE_CONFIG", str(config))
    result = CliRunner().invoke(main, ["simulate", *args])
    assert result.exit_code == 1, result.output
    assert result.output.count("\n") == 1, result.output
    assert result.output.startswith(message), result.output
    assert "4111" not in result.output and "s3cret-pw" not in result.output
