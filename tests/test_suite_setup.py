"""The suite itself: asked for a database it cannot reach, it fails instead of skipping."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_an_unreachable_postgresql_fails_the_run() -> None:
    env = {**os.environ, "PAYSIEVE_TEST_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/x"}
    env.pop("CI", None)  # outside CI too: a green run must mean the suite ran
    done = subprocess.run(  # noqa: S603 - the suite's own runner
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/api/test_keys.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 3, done.stdout[-2000:]
    assert "PAYSIEVE_TEST_DATABASE_URL names a PostgreSQL that is unreachable" in done.stdout
    assert "passed" not in done.stdout.splitlines()[-1]
