"""Under gunicorn a configuration error stops the master with one line, before any worker."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from tests.support.database import TEST_INDEX_KEY
from tests.support.processes import GUNICORN, REPO, free_port
from tests.support.webhooks import sample, signed_post

OTHER_DATA_KEY = "b3RoZXItZGF0YS1rZXktMDAwMDAwMDAwMDAwMDAwMDA"
PASSWORD = "hunter2-never-printed"


def start_gunicorn(tmp_path: Path, settings: dict[str, str]) -> tuple[int, str]:
    """Run gunicorn with these settings until it exits; return its code and output."""
    empty = tmp_path / "empty.toml"
    empty.write_text("# configured through the environment\n")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PAYSIEVE_", "PROMETHEUS_", "GUNICORN_", "WEB_CONCURRENCY"))
    }
    env |= {"PAYSIEVE_CONFIG": str(empty), "PORT": str(free_port()), "GUNICORN_WORKERS": "2"}
    env |= settings
    try:
        done = subprocess.run(
            [str(GUNICORN), "-c", str(REPO / "gunicorn.conf.py"), "gateway:create_app()"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            timeout=30,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"gunicorn kept running on a bad configuration: {exc.output!r}")
    return done.returncode, (done.stdout + done.stderr).decode(errors="replace")


def keyed(data_key: str, **extra: str) -> dict[str, str]:
    return {"PAYSIEVE_DATA_KEYS": data_key, "PAYSIEVE_INDEX_KEY": TEST_INDEX_KEY, **extra}


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"PAYSIEVE_STRIPE_WEBHOOK_SECRET": PASSWORD},
            "paysieve: configuration: PAYSIEVE_STRIPE_WEBHOOK_SECRET is not a paysieve setting;"
            " did you mean PAYSIEVE_STRIPE_WEBHOOK_SECRETS?",
        ),
        (
            {"PAYSIEVE_DATABASE_URL": f"mysql://u:{PASSWORD}@db/x"},
            "paysieve: configuration: PAYSIEVE_DATABASE_URL: mysql:// is not supported",
        ),
        ({}, "paysieve: configuration: no data encryption key: set PAYSIEVE_DATA_KEYS"),
        (
            {"PAYSIEVE_PAYPAL_API_BASE": "http://api-m.paypal.com"},
            "paysieve: configuration: PAYSIEVE_PAYPAL_API_BASE must be https",
        ),
    ],
    ids=["unknown-variable", "mysql", "no-data-keys", "paypal-http"],
)
def test_configuration_error_stops_the_master_with_one_line(
    tmp_path: Path, settings: dict[str, str], message: str
) -> None:
    if settings:
        settings = keyed(OTHER_DATA_KEY, **settings)
    settings.setdefault("PAYSIEVE_DATABASE_URL", f"sqlite:///{tmp_path / 'paysieve.db'}")
    code, output = start_gunicorn(tmp_path, settings)
    assert code != 0
    assert message in output
    assert output.count("paysieve: ") == 1
    assert "Traceback" not in output
    assert "Booting worker" not in output
    assert PASSWORD not in output


def test_a_key_id_the_database_has_but_the_configuration_lacks_stops_the_master(
    tmp_path: Path, make_app: Callable[..., Flask], database_url: str
) -> None:
    client = make_app().test_client()
    assert signed_post(client, "stripe", sample("stripe", "payment_method.attached")).status_code
    code, output = start_gunicorn(
        tmp_path, keyed(OTHER_DATA_KEY, PAYSIEVE_DATABASE_URL=database_url)
    )
    assert code != 0
    assert "which no configured data key has" in output
    assert "Traceback" not in output
    assert "Booting worker" not in output
