"""Settings: defaults, then the file, then the environment, then overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config.settings import CHECKOUT, load_settings
from gateway.core.errors import ConfigurationError


def write(path: Path, text: str) -> dict[str, str]:
    path.write_text(text)
    return {"PAYSIEVE_CONFIG": str(path)}


def test_defaults_have_no_endpoint_and_no_secret(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path / "c.toml", ""))
    # The home of a checkout is the checkout, whatever the working directory.
    assert settings.database_url == f"sqlite:///{CHECKOUT}/var/paysieve.db"
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
    assert settings.database_url == f"sqlite:///{CHECKOUT}/override.db"


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


# -- strict configuration -------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "suggestion"),
    [
        ("PAYSIEVE_STRIPE_WEBHOOK_SECRET", "PAYSIEVE_STRIPE_WEBHOOK_SECRETS"),
        ("PAYSIEVE_DATABASE_UR", "PAYSIEVE_DATABASE_URL"),
        ("PAYSIEVE_TRUSTED_PROXIES_HOPS", "PAYSIEVE_TRUSTED_PROXY_HOPS"),
    ],
)
def test_unknown_variable_names_the_closest_setting_never_its_value(
    tmp_path: Path, variable: str, suggestion: str
) -> None:
    environ = write(tmp_path / "c.toml", "") | {variable: "whsec_value_never_printed"}
    with pytest.raises(ConfigurationError) as caught:
        load_settings(environ)
    message = str(caught.value)
    assert f"{variable} is not a paysieve setting; did you mean {suggestion}?" in message
    assert "never_printed" not in message


def test_unknown_variable_without_a_close_name_is_still_refused(tmp_path: Path) -> None:
    environ = write(tmp_path / "c.toml", "") | {"PAYSIEVE_ZZZ": "1"}
    with pytest.raises(ConfigurationError, match="PAYSIEVE_ZZZ is not a paysieve setting"):
        load_settings(environ)


@pytest.mark.parametrize(
    "variable", ["PAYSIEVE_CONFIG", "PAYSIEVE_TEST_DATABASE_URL", "PAYSIEVE_BENCH_POSTGRES_URL"]
)
def test_variables_of_the_suite_and_bench_are_not_settings_but_allowed(
    tmp_path: Path, variable: str
) -> None:
    environ = write(tmp_path / "c.toml", "")
    environ.setdefault(variable, "sqlite:///x.db")
    load_settings(environ)


def test_unknown_file_key_names_the_closest(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigurationError, match="did you mean 'database_url'|did you mean database_url"
    ):
        load_settings(write(tmp_path / "c.toml", 'databse_url = "secret"\n'))


def test_unknown_provider_names_the_closest(tmp_path: Path) -> None:
    environ = write(tmp_path / "c.toml", '[[endpoints]]\nprovider = "strip"\n')
    with pytest.raises(ConfigurationError, match="unknown provider 'strip'; did you mean stripe"):
        load_settings(environ)


def test_unknown_endpoint_option_names_the_closest_never_its_value(tmp_path: Path) -> None:
    environ = write(
        tmp_path / "c.toml",
        '[[endpoints]]\nprovider = "stripe"\nname = "eu"\nwebhook_secret = ["whsec_hidden"]\n',
    )
    with pytest.raises(ConfigurationError) as caught:
        load_settings(environ)
    message = str(caught.value)
    assert "stripe endpoint 'eu' has an unknown option 'webhook_secret'" in message
    assert "did you mean webhook_secrets?" in message
    assert "hidden" not in message


def test_paypal_only_option_on_stripe_is_refused(tmp_path: Path) -> None:
    environ = write(tmp_path / "c.toml", '[[endpoints]]\nprovider = "stripe"\nwebhook_id = "X"\n')
    with pytest.raises(ConfigurationError, match="unknown option 'webhook_id'"):
        load_settings(environ)


def test_provider_table_matches_the_adapter_registry() -> None:
    from adapters.registry import adapter_classes
    from gateway.config.settings import PROVIDER_OPTIONS

    assert set(PROVIDER_OPTIONS) == set(adapter_classes())


def test_zero_trusted_proxy_hops_is_accepted(tmp_path: Path) -> None:
    environ = write(tmp_path / "c.toml", "") | {"PAYSIEVE_TRUSTED_PROXY_HOPS": "0"}
    assert load_settings(environ).trusted_proxy_hops == 0


def test_negative_trusted_proxy_hops_is_refused(tmp_path: Path) -> None:
    environ = write(tmp_path / "c.toml", "") | {"PAYSIEVE_TRUSTED_PROXY_HOPS": "-1"}
    with pytest.raises(ConfigurationError, match="PAYSIEVE_TRUSTED_PROXY_HOPS: expected 0 or"):
        load_settings(environ)


def test_plain_http_paypal_api_base_is_refused_at_load(tmp_path: Path) -> None:
    environ = write(tmp_path / "c.toml", "") | {
        "PAYSIEVE_PAYPAL_API_BASE": "http://api-m.paypal.com"
    }
    with pytest.raises(ConfigurationError, match="PAYSIEVE_PAYPAL_API_BASE must be https"):
        load_settings(environ)


def test_plain_http_paypal_api_base_in_file_names_the_endpoint(tmp_path: Path) -> None:
    environ = write(
        tmp_path / "c.toml",
        '[[endpoints]]\nprovider = "paypal"\nname = "eu"\napi_base = "http://x"\n',
    )
    with pytest.raises(ConfigurationError, match="api_base of paypal endpoint 'eu' must be https"):
        load_settings(environ)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgres://u:hunter2@db/x", "postgres:// is not supported; write postgresql+psycopg://"),
        ("postgresql://u:hunter2@db/x", "postgresql:// is not supported; write postgresql+psycopg"),
        ("mysql://u:hunter2@db/x", "mysql:// is not supported; use sqlite:////"),
        ("hunter2 not a url", "PAYSIEVE_DATABASE_URL is not a database URL; use"),
    ],
)
def test_unusable_database_urls_name_the_setting_and_the_fix(
    tmp_path: Path, url: str, message: str
) -> None:
    environ = write(tmp_path / "c.toml", "") | {"PAYSIEVE_DATABASE_URL": url}
    with pytest.raises(ConfigurationError) as caught:
        load_settings(environ)
    assert message in str(caught.value)
    assert str(caught.value).startswith("PAYSIEVE_DATABASE_URL")
    assert "hunter2" not in str(caught.value)


def test_database_url_in_file_is_named_by_its_key(tmp_path: Path) -> None:
    environ = write(tmp_path / "c.toml", 'database_url = "mysql://db/x"\n')
    with pytest.raises(ConfigurationError, match="database_url in .*c.toml: mysql://"):
        load_settings(environ)


def test_sqlite_in_a_missing_directory_is_refused(tmp_path: Path) -> None:
    environ = write(tmp_path / "c.toml", "") | {
        "PAYSIEVE_DATABASE_URL": f"sqlite:///{tmp_path}/nowhere/paysieve.db"
    }
    with pytest.raises(ConfigurationError, match="directory .*nowhere does not exist"):
        load_settings(environ)
    assert not (tmp_path / "nowhere").exists()


def test_dev_config_is_never_merged_into_an_environment_configuration(tmp_path: Path) -> None:
    home = {"PAYSIEVE_HOME": str(tmp_path)}
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "paysieve.dev.toml").write_text(
        '[[endpoints]]\nprovider = "stripe"\nwebhook_secrets = ["whsec_dev"]\n'
    )
    assert load_settings(home).source == str(tmp_path / "var" / "paysieve.dev.toml")
    settings = load_settings(home | {"PAYSIEVE_DATABASE_URL": "sqlite:///prod.db"})
    assert settings.source == "defaults"
    assert settings.endpoints == ()


def test_origins_say_where_each_value_came_from(tmp_path: Path) -> None:
    environ = write(
        tmp_path / "c.toml",
        'tolerance_seconds = 60\n[[endpoints]]\nprovider = "stripe"\nwebhook_secrets = ["x"]\n',
    ) | {"PAYSIEVE_MAX_BODY_BYTES": "2048"}
    origins = load_settings(environ).origins
    assert origins["tolerance_seconds"] == "file"
    assert origins["max_body_bytes"] == "environment"
    assert origins["stripe.default.webhook_secrets"] == "file"
    assert "rate_limit" not in origins


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('tolerance_seconds = "60"', "tolerance_seconds must be an integer"),
        ("trusted_proxy_hops = true", "trusted_proxy_hops must be an integer"),
        ('data_keys = "k1,k2"', "data_keys must be a list of strings"),
        ("database_url = 5", "database_url must be a string"),
    ],
)
def test_wrongly_typed_file_values_are_refused(tmp_path: Path, line: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_settings(write(tmp_path / "c.toml", line + "\n"))


def test_the_home_holds_the_default_files_whatever_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    (home / "config").mkdir(parents=True)
    (home / "config" / "paysieve.toml").write_text(
        'database_url = "sqlite:///data/paysieve.db"\ndata_keys_file = "keys/data"\n'
        '[[endpoints]]\nprovider = "paypal"\nwebhook_id = "W"\nverify = "cert"\n'
        'trust_roots = "pki/roots.pem"\n'
    )
    (home / "data").mkdir()
    for cwd in (tmp_path, home / "config"):
        monkeypatch.chdir(cwd)
        settings = load_settings({"PAYSIEVE_HOME": str(home)})
        assert settings.source == str(home / "config" / "paysieve.toml")
        assert settings.home == str(home)
        assert settings.database_url == f"sqlite:///{home}/data/paysieve.db"
        assert settings.data_keys_file == str(home / "keys" / "data")
        paypal = settings.endpoint("paypal", "default")
        assert paypal is not None and paypal.options["trust_roots"] == str(home / "pki/roots.pem")


def test_a_relative_path_from_the_environment_is_read_against_the_home(tmp_path: Path) -> None:
    environ = {"PAYSIEVE_HOME": str(tmp_path), "PAYSIEVE_DATABASE_URL": "sqlite:///var/x.db"}
    assert load_settings(environ).database_url == f"sqlite:///{tmp_path}/var/x.db"
    # The default database's own directory is made on first use; no other is.
    assert not (tmp_path / "var").exists()
    environ["PAYSIEVE_DATABASE_URL"] = "sqlite:///elsewhere/x.db"
    with pytest.raises(ConfigurationError, match="PAYSIEVE_DATABASE_URL: the SQLite database's"):
        load_settings(environ)


@pytest.mark.parametrize(
    ("home", "message"),
    [
        ("relative/home", "PAYSIEVE_HOME must be an absolute path"),
        ("/nonexistent/paysieve-home", "PAYSIEVE_HOME names a missing directory"),
    ],
)
def test_a_bad_home_is_refused(home: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_settings({"PAYSIEVE_HOME": home})


def test_without_a_home_a_relative_path_says_how_to_give_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import gateway.config.settings as module

    # An installed wheel: no checkout around the code, and PAYSIEVE_HOME unset.
    monkeypatch.setattr(module, "CHECKOUT", None)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "paysieve.toml").write_text('tolerance_seconds = "x"\n')
    # The working directory's files are never read...
    with pytest.raises(
        ConfigurationError, match="DATABASE_URL: the relative path var/paysieve.db needs a home"
    ):
        load_settings({})
    # ...and an absolute configuration needs no home at all.
    absolute = {"PAYSIEVE_DATABASE_URL": f"sqlite:///{tmp_path}/x.db"}
    settings = load_settings(absolute)
    assert settings.home == "" and settings.source == "defaults"


def test_a_relative_sqlite_uri_is_read_against_the_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import text

    from gateway.storage.engine import make_engine

    home, cwd = tmp_path / "home", tmp_path / "cwd"
    for directory in (home / "var", cwd / "var"):
        directory.mkdir(parents=True)
    monkeypatch.chdir(cwd)
    environ = {
        "PAYSIEVE_HOME": str(home),
        "PAYSIEVE_DATABASE_URL": "sqlite:///file:var/x.db?mode=rwc&uri=true",
    }
    url = load_settings(environ).database_url
    assert url == f"sqlite:///file:{home}/var/x.db?mode=rwc&uri=true"
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE probe (x INTEGER)"))
    engine.dispose()
    assert (home / "var" / "x.db").is_file()
    assert list((cwd / "var").iterdir()) == []


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///var/x.db?mode=ro",
        "sqlite:///var/x.db?mode=ro&uri=true",
        "sqlite:///file:var/x.db?mode=ro",
        "sqlite:////tmp/x.db?cache=shared&uri=false",
    ],
)
def test_sqlite_uri_parameters_that_would_be_ignored_are_refused(tmp_path: Path, url: str) -> None:
    (tmp_path / "var").mkdir()
    environ = {"PAYSIEVE_HOME": str(tmp_path), "PAYSIEVE_DATABASE_URL": url}
    with pytest.raises(ConfigurationError) as refused:
        load_settings(environ)
    message = str(refused.value)
    assert message.startswith("PAYSIEVE_DATABASE_URL: SQLite URI parameters (")
    assert "file:" in message and "uri=true" in message and "\n" not in message


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite://", "sqlite://"),
        ("sqlite:///:memory:", "sqlite:///:memory:"),
        ("sqlite:///file::memory:?cache=shared&uri=true", None),
        ("sqlite:///var/x.db?timeout=5", "sqlite:///{home}/var/x.db?timeout=5"),
    ],
)
def test_in_memory_and_driver_arguments_are_kept(
    tmp_path: Path, url: str, expected: str | None
) -> None:
    (tmp_path / "var").mkdir()
    environ = {"PAYSIEVE_HOME": str(tmp_path), "PAYSIEVE_DATABASE_URL": url}
    wanted = url if expected is None else expected.format(home=tmp_path)
    assert load_settings(environ).database_url == wanted


def test_a_home_that_is_a_file_says_so(tmp_path: Path) -> None:
    home = tmp_path / "paysieve.toml"
    home.write_text("")
    with pytest.raises(ConfigurationError, match="PAYSIEVE_HOME names a file, not a directory"):
        load_settings({"PAYSIEVE_HOME": str(home)})


def test_a_home_reached_through_a_symlink_or_tilde_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = tmp_path / "real"
    (real / "var").mkdir(parents=True)
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    environ = {"PAYSIEVE_HOME": str(link), "PAYSIEVE_DATABASE_URL": "sqlite:///var/x.db"}
    assert load_settings(environ).database_url == f"sqlite:///{link}/var/x.db"
    monkeypatch.setenv("HOME", str(tmp_path))
    environ["PAYSIEVE_HOME"] = "~/real"
    assert load_settings(environ).database_url == f"sqlite:///{real}/var/x.db"


def test_a_tilde_path_is_the_users_home_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    environ = {"PAYSIEVE_HOME": str(tmp_path), "PAYSIEVE_DATA_KEYS_FILE": "~/keys"}
    assert load_settings(environ).data_keys_file == str(tmp_path / "user" / "keys")
