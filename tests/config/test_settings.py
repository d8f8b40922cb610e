"""Settings: defaults, then the file, then the environment, then overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config.settings import load_settings
from gateway.core.errors import ConfigurationError


def write(path: Path, text: str) -> dict[str, str]:
    path.write_text(text)
    return {"PAYSIEVE_CONFIG": str(path)}


def test_defaults_have_no_endpoint_and_no_secret(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path / "c.toml", ""))
    assert settings.database_url == "sqlite:///var/paysieve.db"
    assert settings.tolerance_seconds == 300
    assert settings.max_body_bytes == 1_048_576
    assert settings.endpoints == ()


def test_file_then_environment(tmp_path: Path) -> None:
    environ = write(
        tmp_path / "c.toml",
        'tolerance_seconds = 60\n[[endpoints]]\nprovider = "stripe"\n'
        'webhook_secrets = ["whsec_file"]\n'
        '[[endpoints]]\nprovider = "stripe"\nname = "eu"\nwebhook_secrets = ["whsec_eu"]\n',
    )
    environ |= {
        "PAYSIEVE_STRIPE_WEBHOOK_SECRETS": "whsec_new, whsec_old",
        "PAYSIEVE_MAX_BODY_BYTES": "2048",
    }
    settings = load_settings(environ)
    assert settings.tolerance_seconds == 60
    assert settings.max_body_bytes == 2048
    default = settings.endpoint("stripe", "default")
    assert default is not None and default.webhook_secrets == ("whsec_new", "whsec_old")
    eu = settings.endpoint("stripe", "eu")
    assert eu is not None and eu.webhook_secrets == ("whsec_eu",)


def test_overrides_win(tmp_path: Path) -> None:
    environ = write(tmp_path / "c.toml", "") | {"PAYSIEVE_DATABASE_URL": "sqlite:///env.db"}
    settings = load_settings(environ, {"database_url": "sqlite:///override.db"})
    assert settings.database_url == "sqlite:///override.db"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("PAYSIEVE_TOLERANCE_SECONDS", "soon", "PAYSIEVE_TOLERANCE_SECONDS: expected an integer"),
        ("PAYSIEVE_MAX_BODY_BYTES", "-1", "PAYSIEVE_MAX_BODY_BYTES: expected a positive integer"),
        ("PAYSIEVE_PAYPAL_VERIFY", "maybe", "PAYSIEVE_PAYPAL_VERIFY: expected one of api, cert"),
    ],
)
def test_bad_environment_values_are_loud(
    tmp_path: Path, variable: str, value: str, message: str
) -> None:
    environ = write(tmp_path / "c.toml", "") | {variable: value}
    with pytest.raises(ConfigurationError, match=message):
        load_settings(environ)


def test_unknown_setting_in_file_is_loud(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="unknown setting 'databse_url'"):
        load_settings(write(tmp_path / "c.toml", 'databse_url = "x"\n'))


def test_missing_named_config_is_loud(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="PAYSIEVE_CONFIG names a missing file"):
        load_settings({"PAYSIEVE_CONFIG": str(tmp_path / "absent.toml")})


def test_bad_endpoint_name_is_loud(tmp_path: Path) -> None:
    environ = write(tmp_path / "c.toml", '[[endpoints]]\nprovider = "stripe"\nname = "EU West"\n')
    with pytest.raises(ConfigurationError, match="endpoint name"):
        load_settings(environ)


def test_repr_never_shows_secrets(tmp_path: Path) -> None:
    environ = write(tmp_path / "c.toml", "") | {
        "PAYSIEVE_STRIPE_WEBHOOK_SECRETS": "whsec_topsecret"
    }
    settings = load_settings(environ)
    assert "topsecret" not in repr(settings)
    assert "topsecret" not in repr(settings.endpoints)


def test_example_config_parses_and_enables_nothing(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "config" / "paysieve.example.toml"
    settings = load_settings({"PAYSIEVE_CONFIG": str(example)})
    assert all(not e.webhook_secrets for e in settings.endpoints)
