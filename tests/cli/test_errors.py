"""Every command answers a configuration or database problem with one line, never a traceback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from sqlalchemy.engine import make_url

from gateway.cli import main
from tests.support.database import TEST_DATA_KEY, TEST_INDEX_KEY, requested_database_url
from tests.support.processes import free_port
from tests.support.webhooks import sample, signed_post

ROOT = Path(__file__).resolve().parents[2]
OTHER_DATA_KEY = "b3RoZXItZGF0YS1rZXktMDAwMDAwMDAwMDAwMDAwMDA"
PASSWORD = "hunter2-never-printed"

# Every command that reads the configuration, with arguments enough to run.
COMMANDS = {
    "serve": ["serve", "--port", "9"],
    "db upgrade": ["db", "upgrade"],
    "keys create": ["keys", "create", "--name", "x", "--scope", "records:read"],
    "keys list": ["keys", "list"],
    "keys revoke": ["keys", "revoke", "abcdef"],
    "erase": ["erase", "--provider", "stripe", "--customer", "cus_1"],
    "export": ["export", "--provider", "stripe", "--customer", "cus_1"],
    "purge": ["purge", "--dry-run"],
    "audit": ["audit"],
    "rotate-keys": ["rotate-keys"],
    "simulate": ["simulate", "stripe", "charge.succeeded", "--url", "http://127.0.0.1:9"],
    "config check": ["config", "check"],
}
DATABASE_COMMANDS = {name: args for name, args in COMMANDS.items() if name != "simulate"}


def keyed(**extra: str) -> dict[str, str]:
    return {"PAYSIEVE_DATA_KEYS": TEST_DATA_KEY, "PAYSIEVE_INDEX_KEY": TEST_INDEX_KEY, **extra}


def run(args: list[str], env: dict[str, str]) -> Result:
    return CliRunner().invoke(main, args, env=env)


def assert_one_line(result: Result, *expected: str) -> str:
    """The command failed with one or two lines on stderr, no traceback, no password."""
    assert result.exit_code == 1, result.output
    # Anything but SystemExit is an exception click let through: a traceback.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    # JSON lines are the gateway's logs (serve builds the app), not the error.
    lines = [line for line in result.stderr.splitlines() if line and not line.startswith("{")]
    stderr = "\n".join(lines)
    # `config check` lists each problem as FAIL; every other command has click's Error.
    assert stderr.startswith(("Error: ", "FAIL ")), result.output
    assert 1 <= len(stderr.splitlines()) <= 2, stderr
    assert "Traceback" not in result.output
    assert PASSWORD not in result.output
    for text in expected:
        assert text in stderr
    return stderr


@pytest.mark.parametrize("command", COMMANDS)
def test_unknown_variable_is_one_line_in_every_command(command: str) -> None:
    result = run(COMMANDS[command], keyed(PAYSIEVE_STRIPE_WEBHOOK_SECRET=PASSWORD))
    assert_one_line(
        result,
        "PAYSIEVE_STRIPE_WEBHOOK_SECRET is not a paysieve setting",
        "did you mean PAYSIEVE_STRIPE_WEBHOOK_SECRETS?",
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"postgres://u:{PASSWORD}@db/x", "write postgresql+psycopg://"),
        (f"mysql://u:{PASSWORD}@db/x", "mysql:// is not supported"),
        (f"{PASSWORD} is no url", "PAYSIEVE_DATABASE_URL is not a database URL"),
    ],
    ids=["postgres-scheme", "mysql", "malformed"],
)
@pytest.mark.parametrize("command", COMMANDS)
def test_unusable_database_url_is_one_line(command: str, url: str, expected: str) -> None:
    result = run(COMMANDS[command], keyed(PAYSIEVE_DATABASE_URL=url))
    assert_one_line(result, "PAYSIEVE_DATABASE_URL", expected)


@pytest.mark.parametrize("command", DATABASE_COMMANDS)
def test_postgresql_that_is_down_is_one_line(command: str) -> None:
    url = f"postgresql+psycopg://paysieve:{PASSWORD}@127.0.0.1:{free_port()}/paysieve"
    result = run(COMMANDS[command], keyed(PAYSIEVE_DATABASE_URL=url))
    assert_one_line(
        result, "PAYSIEVE_DATABASE_URL", "nothing answers there; start PostgreSQL", ":***@"
    )


def postgresql_server() -> Any:
    requested = requested_database_url()
    if requested is None or not requested.startswith("postgresql"):
        pytest.skip("needs the PostgreSQL server of PAYSIEVE_TEST_DATABASE_URL")
    return make_url(requested)


@pytest.mark.parametrize("command", ["db upgrade", "keys list", "audit", "config check"])
def test_postgresql_refusing_the_password_is_one_line(command: str) -> None:
    server = postgresql_server()
    url = server.set(username="paysieve_no_such_user", password=PASSWORD)
    result = run(
        COMMANDS[command],
        keyed(PAYSIEVE_DATABASE_URL=url.render_as_string(hide_password=False)),
    )
    assert_one_line(result, "the server refused the user or password")


def test_sqlite_in_a_missing_directory_is_one_line(tmp_path: Path) -> None:
    result = run(["db", "upgrade"], keyed(PAYSIEVE_DATABASE_URL=f"sqlite:///{tmp_path}/no/x.db"))
    assert_one_line(result, "PAYSIEVE_DATABASE_URL", "does not exist")
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("command", ["serve", "erase", "export", "purge", "rotate-keys"])
def test_missing_data_keys_are_one_line(command: str, database_url: str) -> None:
    result = run(COMMANDS[command], {"PAYSIEVE_DATABASE_URL": database_url})
    assert_one_line(result, "no data encryption key: set PAYSIEVE_DATA_KEYS")


@pytest.mark.parametrize("command", ["serve", "erase", "export", "purge", "config check"])
def test_key_id_the_database_has_but_the_configuration_lacks_is_one_line(
    command: str, make_app: Callable[..., Flask], database_url: str
) -> None:
    client = make_app().test_client()
    assert signed_post(client, "stripe", sample("stripe", "payment_method.attached")).status_code
    env = {
        "PAYSIEVE_DATABASE_URL": database_url,
        "PAYSIEVE_DATA_KEYS": OTHER_DATA_KEY,
        "PAYSIEVE_INDEX_KEY": TEST_INDEX_KEY,
    }
    result = CliRunner().invoke(main, COMMANDS[command], env=env)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "which no configured data key has" in result.stderr
    assert "Listening on" not in result.output


def test_the_shipped_example_config_is_one_line(
    tmp_path: Path,
) -> None:
    example = str(ROOT / "config" / "paysieve.example.toml")
    env = {"PAYSIEVE_CONFIG": example, "PAYSIEVE_HOME": str(tmp_path)}
    upgraded = CliRunner().invoke(main, ["db", "upgrade"], env=env)
    assert upgraded.exit_code == 0, upgraded.output
    assert (tmp_path / "var" / "paysieve.db").is_file()
    result = CliRunner().invoke(main, ["serve", "--port", "9"], env=env)
    assert_one_line(result, "no data encryption key")
    assert "Listening on" not in result.output


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--debug", "keys", "list"], {}),
        (["keys", "list"], {"PAYSIEVE_LOG_LEVEL": "DEBUG"}),
    ],
    ids=["--debug", "PAYSIEVE_LOG_LEVEL"],
)
def test_debug_shows_the_traceback(args: list[str], env: dict[str, str]) -> None:
    result = run(args, keyed(PAYSIEVE_DATABASE_URL="mysql://db/x", **env))
    from gateway.core.errors import ConfigurationError

    assert isinstance(result.exception, ConfigurationError)


def test_serve_says_listening_only_once_it_can_serve(tmp_path: Path, database_url: str) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = run(["serve", "--port", port], keyed(PAYSIEVE_DATABASE_URL=database_url))
    assert_one_line(result, f"cannot listen on 127.0.0.1:{port}", "choose another --port")
    assert "Listening on" not in result.output


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        (
            {"PAYSIEVE_DATA_KEYS": PASSWORD, "PAYSIEVE_INDEX_KEY": TEST_INDEX_KEY},
            "each key must be 32 bytes, base64url encoded",
        ),
        (
            {"PAYSIEVE_DATA_KEYS": TEST_DATA_KEY, "PAYSIEVE_INDEX_KEY": TEST_DATA_KEY},
            "PAYSIEVE_INDEX_KEY must differ from every data key",
        ),
        ({"PAYSIEVE_DATA_KEYS": TEST_DATA_KEY}, "no blind index key: set PAYSIEVE_INDEX_KEY"),
    ],
    ids=["malformed", "index-is-a-data-key", "no-index-key"],
)
@pytest.mark.parametrize("command", ["serve", "erase", "rotate-keys", "config check"])
def test_mismatched_data_keys_are_one_line(
    command: str, keys: dict[str, str], expected: str, database_url: str
) -> None:
    result = run(COMMANDS[command], {"PAYSIEVE_DATABASE_URL": database_url, **keys})
    assert_one_line(result, expected)


@pytest.mark.parametrize("command", COMMANDS)
def test_a_missing_home_is_one_line_in_every_command(command: str, tmp_path: Path) -> None:
    result = run(COMMANDS[command], keyed(PAYSIEVE_HOME=str(tmp_path / "gone")))
    assert_one_line(result, "PAYSIEVE_HOME names a missing directory", "create it or fix the path")
