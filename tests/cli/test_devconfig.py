"""The zero-configuration trial writes, and later completes, a private dev config."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from adapters.registry import adapter_classes
from gateway.cli import devconfig
from gateway.config.settings import load_settings


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Return the paysieve home; the working directory is elsewhere, and never read."""
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    monkeypatch.delenv("PAYSIEVE_CONFIG", raising=False)
    return home


def env(home: Path) -> dict[str, str]:
    return {"PAYSIEVE_HOME": str(home)}


def test_nothing_configured_writes_every_provider(workdir: Path) -> None:
    message = devconfig.ensure_dev_config(env(workdir))
    assert message is not None and "never deploy" in message
    path = workdir / "var" / "paysieve.dev.toml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    settings = load_settings(env(workdir))
    assert settings.source == str(path)
    assert settings.database_url == f"sqlite:///{workdir}/var/paysieve.db"
    assert not any(Path.cwd().iterdir())
    adapters = {name: cls(settings) for name, cls in adapter_classes().items()}
    for name, adapter in adapters.items():
        endpoint = settings.endpoint(name, "default")
        assert endpoint is not None and adapter.enabled(endpoint), name


def test_secrets_are_fresh_each_time(tmp_path: Path) -> None:
    seen = []
    for n in range(2):
        (tmp_path / str(n)).mkdir()
        devconfig.ensure_dev_config(env(tmp_path / str(n)))
        seen.append(load_settings(env(tmp_path / str(n))).endpoint("stripe", "default"))
    assert seen[0] is not None and seen[1] is not None
    assert seen[0].webhook_secrets != seen[1].webhook_secrets


def test_existing_dev_config_gains_missing_providers(workdir: Path) -> None:
    path = workdir / "var" / "paysieve.dev.toml"
    path.parent.mkdir()
    path.write_text('[[endpoints]]\nprovider = "stripe"\nwebhook_secrets = ["whsec_kept"]\n')
    devconfig.ensure_dev_config(env(workdir))
    settings = load_settings(env(workdir))
    stripe = settings.endpoint("stripe", "default")
    assert stripe is not None and stripe.webhook_secrets == ("whsec_kept",)
    assert {e.provider for e in settings.endpoints} == set(adapter_classes())


def test_configured_environment_writes_nothing(workdir: Path) -> None:
    environ = env(workdir) | {"PAYSIEVE_STRIPE_WEBHOOK_SECRETS": "whsec_x"}
    assert devconfig.ensure_dev_config(environ) is None
    assert not (workdir / "var").exists()
