"""`paysieve config check`: the effective configuration, masked, with where each value came from."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine

from gateway.cli import devconfig, main


def row(output: str, setting: str) -> list[str]:
    """Return the cells of the table row for one setting."""
    for line in output.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if cells[0] == setting:
            return cells
    raise AssertionError(f"no row for {setting}:\n{output}")


@pytest.fixture
def configured(tmp_path: Path, database_url: str, engine: Engine) -> Path:
    """A full configuration, every provider and both keys, on the migrated test database."""
    config = tmp_path / "paysieve.toml"
    devconfig.write_config(config, database_url=database_url)
    return config


def test_a_good_configuration_passes_with_every_secret_masked(configured: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["config", "check"],
        env={"PAYSIEVE_CONFIG": str(configured), "PAYSIEVE_MAX_BODY_BYTES": "2048"},
    )
    assert result.exit_code == 0, result.output
    assert "OK: the configuration is valid and the database is reachable and migrated" in (
        result.output
    )
    assert row(result.output, "max_body_bytes") == ["max_body_bytes", "2048", "environment"]
    assert row(result.output, "tolerance_seconds") == ["tolerance_seconds", "300", "default"]
    assert row(result.output, "data_keys") == ["data_keys", "*** (1 set)", "file"]
    assert row(result.output, "index_key") == ["index_key", "*** (set)", "file"]
    assert row(result.output, "stripe.default.webhook_secrets")[1:] == ["*** (1 set)", "file"]
    assert row(result.output, "paypal.default.verify")[1:] == ["cert", "file"]
    data = tomllib.loads(configured.read_text())
    secrets = [*data["data_keys"], data["index_key"]]
    for endpoint in data["endpoints"]:
        secrets += endpoint.get("webhook_secrets", [])
    for secret in secrets:
        assert secret not in result.output


def test_the_database_password_is_masked(configured: Path) -> None:
    url = "postgresql+psycopg://paysieve:s3cret-pw@127.0.0.1:9/paysieve"
    result = CliRunner().invoke(
        main,
        ["config", "check"],
        env={"PAYSIEVE_CONFIG": str(configured), "PAYSIEVE_DATABASE_URL": url},
    )
    assert result.exit_code == 1
    assert "s3cret-pw" not in result.output
    assert row(result.output, "database_url")[1:] == [
        "postgresql+psycopg://paysieve:***@127.0.0.1:9/paysieve",
        "environment",
    ]


def test_an_unmigrated_database_fails_the_check(tmp_path: Path, configured: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["config", "check"],
        env={
            "PAYSIEVE_CONFIG": str(configured),
            "PAYSIEVE_DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}",
        },
    )
    assert result.exit_code == 1
    assert "fresh.db does not exist yet: run `paysieve db upgrade`" in result.stderr
    assert not (tmp_path / "fresh.db").exists()


def test_an_empty_database_fails_the_check(tmp_path: Path, configured: Path) -> None:
    (tmp_path / "empty.db").touch()
    result = CliRunner().invoke(
        main,
        ["config", "check"],
        env={
            "PAYSIEVE_CONFIG": str(configured),
            "PAYSIEVE_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}",
        },
    )
    assert result.exit_code == 1
    assert "is at no schema, not 0" in result.stderr


def test_missing_keys_fail_the_check(tmp_path: Path, database_url: str) -> None:
    result = CliRunner().invoke(
        main, ["config", "check"], env={"PAYSIEVE_DATABASE_URL": database_url}
    )
    assert result.exit_code == 1
    assert "FAIL configuration: no data encryption key" in result.stderr


def test_every_working_directory_finds_the_same_configuration(
    tmp_path: Path, database_url: str, engine: Engine
) -> None:
    import os
    import subprocess
    import sys

    home = tmp_path / "home"
    devconfig.write_config(home / "config" / "paysieve.toml", database_url=database_url)
    env = {k: v for k, v in os.environ.items() if k != "PAYSIEVE_CONFIG"}
    env["PAYSIEVE_HOME"] = str(home)
    outputs = []
    for cwd in (tmp_path, home / "config", Path("/")):
        done = subprocess.run(
            [str(Path(sys.executable).parent / "paysieve"), "config", "check"],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
    assert f"Configuration: {home / 'config' / 'paysieve.toml'}" in outputs[0]
    assert f"Home: {home} (from PAYSIEVE_HOME)" in outputs[0]
    assert outputs[0] == outputs[1] == outputs[2]
