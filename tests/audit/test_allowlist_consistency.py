"""The shipped allowlist consistency tests, on the suite's database."""

from __future__ import annotations

from pathlib import Path

from gateway.audit.allowlist import default_path
from gateway.audit.selftest.test_allowlist import *  # noqa: F403
from tests.audit.conftest import audit_database_url  # noqa: F401 - overrides the self-test's


def test_shipped_allowlist_is_config_allowlist() -> None:
    config = Path(__file__).resolve().parents[2] / "config" / "allowlist.toml"
    assert default_path().resolve() == config.resolve(), (
        "gateway/audit/allowlist.toml must link to config/allowlist.toml"
    )
