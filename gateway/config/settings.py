"""Settings: defaults, then the TOML file, then ``PAYSIEVE_*`` variables, then test overrides.

This is the only module that reads ``os.environ``; every variable it reads is
listed in ``ENVIRONMENT`` with its coercer.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qsl

from gateway.core.errors import ConfigurationError

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Relative to the paysieve home (``home_dir``), never to the working directory.
DEFAULT_CONFIG_PATH = Path("config/paysieve.toml")
DEV_CONFIG_PATH = Path("var/paysieve.dev.toml")
# The default SQLite database's directory, made on first use (gateway.storage.engine), as
# `make run` and the zero-configuration trial expect.
DEFAULT_SQLITE_DIR = Path("var")

# The source checkout this code runs from (an editable install or `make` in a clone): the
# home when PAYSIEVE_HOME is unset. An installed wheel has none.
_ROOT = Path(__file__).resolve().parents[2]
CHECKOUT = _ROOT if (_ROOT / "pyproject.toml").is_file() and (_ROOT / "gateway").is_dir() else None


@dataclass(frozen=True)
class EndpointConfig:
    """One provider endpoint (one merchant account): its name and its secrets."""

    provider: str
    name: str = "default"
    webhook_secrets: tuple[str, ...] = ()
    # Provider-specific options (PayPal's webhook id, verification mode, ...).
    options: Mapping[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        # Secrets never reach a log line through a repr.
        return f"EndpointConfig(provider={self.provider!r}, name={self.name!r})"


@dataclass(frozen=True)
class Settings:
    """Everything a gateway process needs to run."""

    database_url: str = "sqlite:///var/paysieve.db"
    tolerance_seconds: int = 300
    max_body_bytes: int = 1_048_576
    data_keys: tuple[str, ...] = ()
    # A file of data keys, one per line, read after data_keys (gateway.core.crypto).
    data_keys_file: str = ""
    # The blind index key (equality lookups on sealed columns); never a data key.
    index_key: str = ""
    # Retention, in days, enforced by `paysieve purge` (gateway.privacy.retention).
    retention_events_days: int = 90
    retention_transactions_days: int = 2557
    retention_payment_methods_days: int = 30
    retention_subscriptions_days: int = 730
    retention_audit_days: int = 365
    # Delivered or dead outbound deliveries, from their delivery or last attempt.
    retention_outbound_days: int = 7
    log_level: str = "INFO"
    # Per API key (per client address without a valid key), in flask-limiter's notation.
    rate_limit: str = "600 per minute"
    # memory:// (per process) or a shared store such as redis://host:6379.
    rate_limit_storage: str = "memory://"
    # Load balancers in front that append X-Forwarded-For/-Proto (0: trust no forwarded header).
    trusted_proxy_hops: int = 0
    # Set by gunicorn.conf.py: /metrics then sums every worker's counters.
    metrics_multiproc_dir: str = ""
    # Outbound webhooks (gateway.outbound): networks a subscriber's address may be in besides
    # the public internet (internal billing services are usually private), the seconds
    # before each attempt, and a CA bundle to verify endpoints with instead of the system's.
    outbound_allow_networks: tuple[str, ...] = ()
    outbound_retry_schedule: str = "0,5,300,1800,7200,18000,36000,36000"
    outbound_ca_bundle: str = ""
    endpoints: tuple[EndpointConfig, ...] = ()
    source: str = "defaults"
    # The directory relative paths are read against (home_dir); empty when there is none.
    home: str = ""
    # Where each top-level setting and endpoint option came from: "file", "environment" or
    # "override" (absent: the default). Endpoint options are keyed "provider.name.option".
    origins: Mapping[str, str] = field(default_factory=dict)

    def endpoint(self, provider: str, name: str) -> EndpointConfig | None:
        """Return the named endpoint of a provider, if configured."""
        for endpoint in self.endpoints:
            if endpoint.provider == provider and endpoint.name == name:
                return endpoint
        return None

    def __repr__(self) -> str:
        return f"Settings(source={self.source!r}, endpoints={len(self.endpoints)})"


def _csv(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _int(value: str) -> int:
    try:
        number = int(value)
    except ValueError as exc:
        raise ConfigurationError("expected an integer") from exc
    if number <= 0:
        raise ConfigurationError("expected a positive integer")
    return number


def _count(value: str) -> int:
    try:
        number = int(value)
    except ValueError as exc:
        raise ConfigurationError("expected an integer") from exc
    if number < 0:
        raise ConfigurationError("expected 0 or a positive integer")
    return number


def _choice(*choices: str) -> Callable[[str], str]:
    def coerce(value: str) -> str:
        if value not in choices:
            raise ConfigurationError(f"expected one of {', '.join(choices)}")
        return value

    return coerce


def _str(value: str) -> str:
    return value


# variable -> (where it goes, coercer). "endpoint:P:key" sets an option of
# provider P's "default" endpoint; anything else is a top-level setting.
ENVIRONMENT: dict[str, tuple[str, Callable[[str], Any]]] = {
    "PAYSIEVE_DATABASE_URL": ("database_url", _str),
    "PAYSIEVE_TOLERANCE_SECONDS": ("tolerance_seconds", _int),
    "PAYSIEVE_MAX_BODY_BYTES": ("max_body_bytes", _int),
    "PAYSIEVE_DATA_KEYS": ("data_keys", _csv),
    "PAYSIEVE_DATA_KEYS_FILE": ("data_keys_file", _str),
    "PAYSIEVE_INDEX_KEY": ("index_key", _str),
    "PAYSIEVE_RETENTION_EVENTS_DAYS": ("retention_events_days", _int),
    "PAYSIEVE_RETENTION_TRANSACTIONS_DAYS": ("retention_transactions_days", _int),
    "PAYSIEVE_RETENTION_PAYMENT_METHODS_DAYS": ("retention_payment_methods_days", _int),
    "PAYSIEVE_RETENTION_SUBSCRIPTIONS_DAYS": ("retention_subscriptions_days", _int),
    "PAYSIEVE_RETENTION_AUDIT_DAYS": ("retention_audit_days", _int),
    "PAYSIEVE_RETENTION_OUTBOUND_DAYS": ("retention_outbound_days", _int),
    "PAYSIEVE_LOG_LEVEL": ("log_level", _choice("DEBUG", "INFO", "WARNING", "ERROR")),
    "PAYSIEVE_RATE_LIMIT": ("rate_limit", _str),
    "PAYSIEVE_RATE_LIMIT_STORAGE": ("rate_limit_storage", _str),
    "PAYSIEVE_TRUSTED_PROXY_HOPS": ("trusted_proxy_hops", _count),
    "PROMETHEUS_MULTIPROC_DIR": ("metrics_multiproc_dir", _str),
    "PAYSIEVE_OUTBOUND_ALLOW_NETWORKS": ("outbound_allow_networks", _csv),
    "PAYSIEVE_OUTBOUND_RETRY_SCHEDULE": ("outbound_retry_schedule", _str),
    "PAYSIEVE_OUTBOUND_CA_BUNDLE": ("outbound_ca_bundle", _str),
    "PAYSIEVE_STRIPE_WEBHOOK_SECRETS": ("endpoint:stripe:webhook_secrets", _csv),
    "PAYSIEVE_STRIPE_SOURCE_NETWORKS": ("endpoint:stripe:source_networks", _csv),
    "PAYSIEVE_RAZORPAY_SOURCE_NETWORKS": ("endpoint:razorpay:source_networks", _csv),
    "PAYSIEVE_PAYPAL_SOURCE_NETWORKS": ("endpoint:paypal:source_networks", _csv),
    "PAYSIEVE_RAZORPAY_WEBHOOK_SECRETS": ("endpoint:razorpay:webhook_secrets", _csv),
    "PAYSIEVE_PAYPAL_WEBHOOK_ID": ("endpoint:paypal:webhook_id", _str),
    "PAYSIEVE_PAYPAL_VERIFY": ("endpoint:paypal:verify", _choice("api", "cert")),
    "PAYSIEVE_PAYPAL_API_BASE": ("endpoint:paypal:api_base", _str),
    "PAYSIEVE_PAYPAL_CLIENT_ID": ("endpoint:paypal:client_id", _str),
    "PAYSIEVE_PAYPAL_CLIENT_SECRET": ("endpoint:paypal:client_secret", _str),
    "PAYSIEVE_PAYPAL_TRUST_ROOTS": ("endpoint:paypal:trust_roots", _str),
    "PAYSIEVE_PAYPAL_CERT_CACHE_DIR": ("endpoint:paypal:cert_cache_dir", _str),
    # Read-only API credentials for `paysieve backfill` and `paysieve reconcile`.
    "PAYSIEVE_STRIPE_API_KEY": ("endpoint:stripe:api_key", _str),
    "PAYSIEVE_STRIPE_API_BASE": ("endpoint:stripe:api_base", _str),
    "PAYSIEVE_RAZORPAY_KEY_ID": ("endpoint:razorpay:key_id", _str),
    "PAYSIEVE_RAZORPAY_KEY_SECRET": ("endpoint:razorpay:key_secret", _str),
    "PAYSIEVE_RAZORPAY_API_BASE": ("endpoint:razorpay:api_base", _str),
}

# PAYSIEVE_* variables that are not settings: PAYSIEVE_CONFIG names the file; the test
# suite (tests/conftest.py) and the benchmark (bench/run.py) read their own database URL.
NOT_SETTINGS = frozenset(
    {
        "PAYSIEVE_CONFIG",
        "PAYSIEVE_HOME",
        "PAYSIEVE_TEST_DATABASE_URL",
        "PAYSIEVE_BENCH_POSTGRES_URL",
    }
)
# Endpoint options that name files: a relative one is read against the home.
PATH_OPTIONS = frozenset({"trust_roots", "cert_cache_dir", "dev_signing_key"})

# The built-in providers and the options each endpoint table may set. The adapters read
# them (adapters/<provider>); tests/config/test_settings.py holds this table to the registry.
_COMMON_OPTIONS = frozenset({"webhook_secrets", "source_networks"})
PROVIDER_OPTIONS: dict[str, frozenset[str]] = {
    "stripe": _COMMON_OPTIONS | {"api_key", "api_base"},
    "razorpay": _COMMON_OPTIONS | {"key_id", "key_secret", "api_base"},
    "paypal": frozenset(
        {
            "source_networks",
            "webhook_id",
            "verify",
            "api_base",
            "client_id",
            "client_secret",
            "trust_roots",
            "cert_cache_dir",
            "fetch_certs",
            # Written by the development configuration only (gateway.cli.devconfig).
            "dev_signing_key",
            "dev_cert_url",
        }
    ),
}

# Values never printed, not even by `paysieve config check`: it masks these.
SECRET_SETTINGS = frozenset({"data_keys", "index_key"})
SECRET_OPTIONS = frozenset({"webhook_secrets", "client_secret", "api_key", "key_secret"})

# Each provider's API base for `api_base`: the production host, and what the refusal suggests.
API_BASES: dict[str, tuple[str, str]] = {
    "stripe": ("https://api.stripe.com", "https://api.stripe.com"),
    "razorpay": ("https://api.razorpay.com", "https://api.razorpay.com"),
    "paypal": (
        "https://api-m.paypal.com",
        "https://api-m.paypal.com, or https://api-m.sandbox.paypal.com for the sandbox",
    ),
}

_TOP_LEVEL = {
    "database_url": str,
    "tolerance_seconds": int,
    "max_body_bytes": int,
    "data_keys": tuple,
    "data_keys_file": str,
    "index_key": str,
    "retention_events_days": int,
    "retention_transactions_days": int,
    "retention_payment_methods_days": int,
    "retention_subscriptions_days": int,
    "retention_audit_days": int,
    "retention_outbound_days": int,
    "log_level": str,
    "rate_limit": str,
    "rate_limit_storage": str,
    "trusted_proxy_hops": int,
    "metrics_multiproc_dir": str,
    "outbound_allow_networks": tuple,
    "outbound_retry_schedule": str,
    "outbound_ca_bundle": str,
}


def _closest(name: str, candidates: Iterable[str]) -> str:
    """Return ", did you mean X?" for the closest valid name, or nothing."""
    found = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=0.6)
    return f"; did you mean {found[0]}?" if found else ""


def _unknown_variables(environ: Mapping[str, str]) -> None:
    """Refuse a PAYSIEVE_* variable that is no setting: a typo must not pass silently."""
    known = set(ENVIRONMENT) | NOT_SETTINGS
    for name in sorted(environ):
        if name.startswith("PAYSIEVE_") and name not in known:
            # The name only: the value may be a secret.
            raise ConfigurationError(
                f"{name} is not a paysieve setting{_closest(name, known - NOT_SETTINGS)}"
                " (every setting: docs/operators/settings-reference.md)"
            )


def _configured_by_environment(environ: Mapping[str, str]) -> bool:
    return any(environ.get(name) for name in ENVIRONMENT if name.startswith("PAYSIEVE_"))


def home_dir(environ: Mapping[str, str] | None = None) -> Path | None:
    """Return the paysieve home: PAYSIEVE_HOME, else the checkout the code runs from.

    The default files (config/paysieve.toml, var/paysieve.dev.toml, var/paysieve.db) and
    every relative path in the settings are found there, whatever the working directory.
    """
    environ = os.environ if environ is None else environ
    named = environ.get("PAYSIEVE_HOME")
    if not named:
        return CHECKOUT
    path = Path(named).expanduser()
    if not path.is_absolute():
        raise ConfigurationError(
            f"PAYSIEVE_HOME must be an absolute path, not {named!r}; write it as /path/to/home"
        )
    if path.exists() and not path.is_dir():
        raise ConfigurationError(
            f"PAYSIEVE_HOME names a file, not a directory: {path}; point it at the directory"
            " holding config/ and var/"
        )
    if not path.is_dir():
        raise ConfigurationError(
            f"PAYSIEVE_HOME names a missing directory: {path}; create it or fix the path"
        )
    return path


def dev_config_path(environ: Mapping[str, str] | None = None) -> Path | None:
    """Return where the zero-configuration trial keeps its file, if there is a home."""
    home = home_dir(environ)
    return None if home is None else home / DEV_CONFIG_PATH


def default_sqlite_dir(environ: Mapping[str, str] | None = None) -> Path | None:
    """Return the default database's directory, the only one paysieve creates itself."""
    home = home_dir(environ)
    return None if home is None else home / DEFAULT_SQLITE_DIR


def config_path(environ: Mapping[str, str]) -> Path | None:
    """Return the configuration file to read, if any exists."""
    named = environ.get("PAYSIEVE_CONFIG")
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise ConfigurationError(
                f"PAYSIEVE_CONFIG names a missing file: {path}; fix the path or unset it"
            )
        return path.absolute()
    home = home_dir(environ)
    if home is None:
        return None
    if (home / DEFAULT_CONFIG_PATH).is_file():
        return home / DEFAULT_CONFIG_PATH
    # Made by `paysieve serve` for a zero-configuration trial (gateway.cli.devconfig). Never
    # merged into a configuration given by PAYSIEVE_* variables: its generated secrets and
    # its database would otherwise mix silently with the operator's.
    dev = home / DEV_CONFIG_PATH
    if dev.is_file() and not _configured_by_environment(environ):
        return dev
    return None


def load_settings(
    environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> Settings:
    """Build settings from defaults, the TOML file, the environment and overrides."""
    environ = os.environ if environ is None else environ
    _unknown_variables(environ)
    top: dict[str, Any] = {}
    endpoints: dict[tuple[str, str], dict[str, Any]] = {}
    origins: dict[str, str] = {}
    source = "defaults"

    path = config_path(environ)
    if path is not None:
        _read_toml(path, top, endpoints, origins)
        source = str(path)

    for variable, (target, coerce) in ENVIRONMENT.items():
        raw = environ.get(variable)
        if raw is None or raw == "":
            continue
        try:
            value = coerce(raw)
        except ConfigurationError as exc:
            raise ConfigurationError(f"{variable}: {exc}") from None
        if target.startswith("endpoint:"):
            _, provider, key = target.split(":")
            endpoints.setdefault((provider, "default"), {})[key] = value
            origins[f"{provider}.default.{key}"] = "environment"
        else:
            top[target] = value
            origins[target] = "environment"

    for key, value in (overrides or {}).items():
        if key == "endpoints":
            for entry in value:
                _add_endpoint(entry, endpoints, origins, origin="override", where="override")
        else:
            top[key] = value
            origins[key] = "override"

    home = home_dir(environ)
    if environ.get("PAYSIEVE_HOME"):
        origins["home"] = "environment"
    settings = Settings(
        **{k: top[k] for k in top if k in _TOP_LEVEL},
        endpoints=tuple(_endpoint(p, n, opts) for (p, n), opts in sorted(endpoints.items())),
        source=source,
        home="" if home is None else str(home),
        origins=origins,
    )
    return _validated(_anchored(settings, home))


def _anchored(settings: Settings, home: Path | None) -> Settings:
    """Return the settings with every relative path read against the home, never the cwd."""

    def anchor(path: str, where: str) -> str:
        if path.startswith("~"):
            # A home-directory path (~/keys, ~paysieve/keys) means what it means in a shell.
            path = str(Path(path).expanduser())
        if Path(path).is_absolute():
            return path
        if home is None:
            raise ConfigurationError(
                f"{where}: the relative path {path} needs a home to be read against; set"
                " PAYSIEVE_HOME to an absolute directory, or give an absolute path"
            )
        return str(home / path)

    changes: dict[str, Any] = {}
    url = settings.database_url
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        database, _, query = url.removeprefix("sqlite:///").partition("?")
        where = setting_name(settings, "database_url")
        if _sqlite_uri(query) and database.startswith("file:"):
            # A SQLite URI (file:var/x.db?mode=ro&uri=true): its relative path is the cwd's
            # to SQLite, so it is anchored inside the URI.
            path = database.removeprefix("file:")
            if path and not path.startswith("/") and path != ":memory:":
                database = "file:" + anchor(path, where)
        elif database and database != ":memory:":
            # Without uri=true, file:... is a file name like any other.
            database = anchor(database, where)
        changes["database_url"] = "sqlite:///" + database + (f"?{query}" if query else "")
    for name in ("data_keys_file", "outbound_ca_bundle"):
        if getattr(settings, name):
            changes[name] = anchor(getattr(settings, name), setting_name(settings, name))
    endpoints = []
    for endpoint in settings.endpoints:
        options = dict(endpoint.options)
        for option in PATH_OPTIONS & options.keys():
            value = options[option]
            if isinstance(value, str) and value and value != "certifi":
                where = f"{option} of {endpoint.provider} endpoint {endpoint.name!r}"
                options[option] = anchor(value, where)
        endpoints.append(replace(endpoint, options=options))
    return replace(settings, **changes, endpoints=tuple(endpoints))


def _read_toml(
    path: Path,
    top: dict[str, Any],
    endpoints: dict[tuple[str, str], dict[str, Any]],
    origins: dict[str, str],
) -> None:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}") from None
    for key, value in data.items():
        if key == "endpoints":
            if not isinstance(value, list):
                raise ConfigurationError(f"{path}: endpoints must be [[endpoints]] tables")
            for entry in value:
                _add_endpoint(entry, endpoints, origins, origin="file", where=str(path))
        elif key in _TOP_LEVEL:
            top[key] = _typed(path, key, value)
            origins[key] = "file"
        else:
            raise ConfigurationError(
                f"{path}: unknown setting {key!r}{_closest(key, [*_TOP_LEVEL, 'endpoints'])}"
            )


_KINDS = {str: "a string", int: "an integer", tuple: "a list of strings"}


def _typed(path: Path, key: str, value: Any) -> Any:
    """Return a file value as its setting's type, or refuse it (naming the key, not the value)."""
    kind = _TOP_LEVEL[key]
    if kind is tuple:
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return tuple(value)
    elif isinstance(value, kind) and not isinstance(value, bool):
        return value
    raise ConfigurationError(f"{path}: {key} must be {_KINDS[kind]}")


def _add_endpoint(
    entry: Mapping[str, Any],
    endpoints: dict[tuple[str, str], dict[str, Any]],
    origins: dict[str, str],
    *,
    origin: str,
    where: str,
) -> None:
    if not isinstance(entry, Mapping) or "provider" not in entry:
        raise ConfigurationError(f"{where}: each [[endpoints]] table needs a provider")
    provider = str(entry["provider"])
    if provider not in PROVIDER_OPTIONS:
        raise ConfigurationError(
            f"{where}: unknown provider {provider!r}{_closest(provider, PROVIDER_OPTIONS)}"
            f" (one of {', '.join(sorted(PROVIDER_OPTIONS))})"
        )
    name = str(entry.get("name", "default"))
    options = {k: v for k, v in entry.items() if k not in ("provider", "name")}
    allowed = PROVIDER_OPTIONS[provider]
    for option in options:
        if option not in allowed:
            raise ConfigurationError(
                f"{where}: {provider} endpoint {name!r} has an unknown option {option!r}"
                f"{_closest(option, allowed)}"
            )
        origins[f"{provider}.{name}.{option}"] = origin
    endpoints.setdefault((provider, name), {}).update(options)


def _endpoint(provider: str, name: str, options: dict[str, Any]) -> EndpointConfig:
    options = dict(options)
    secrets = options.pop("webhook_secrets", ())
    if isinstance(secrets, str):
        secrets = _csv(secrets)
    return EndpointConfig(
        provider=provider, name=name, webhook_secrets=tuple(secrets), options=options
    )


def setting_name(settings: Settings, key: str) -> str:
    """Return how an operator set a top-level setting: its variable or its file key."""
    variable = next((v for v, (target, _) in ENVIRONMENT.items() if target == key), None)
    origin = settings.origins.get(key)
    if origin == "file":
        return f"{key} in {settings.source}"
    if origin == "override" or variable is None:
        return key
    return variable


def option_name(settings: Settings, endpoint: EndpointConfig, option: str) -> str:
    """Return how an operator sets an endpoint option: its variable or its file key."""
    variable = next(
        (v for v, (t, _) in ENVIRONMENT.items() if t == f"endpoint:{endpoint.provider}:{option}"),
        None,
    )
    origin = settings.origins.get(f"{endpoint.provider}.{endpoint.name}.{option}")
    if variable is not None and endpoint.name == "default" and origin in (None, "environment"):
        return variable
    return f"{option} of {endpoint.provider} endpoint {endpoint.name!r}"


def _validated(settings: Settings) -> Settings:
    for endpoint in settings.endpoints:
        if not re.fullmatch(r"[a-z0-9_-]{1,64}", endpoint.name):
            raise ConfigurationError(
                f"endpoint name {endpoint.name!r} must be 1-64 of a-z, 0-9, _ and -"
            )
        api_base = endpoint.options.get("api_base")
        if api_base is not None and not (
            isinstance(api_base, str) and api_base.startswith("https://")
        ):
            # Credentials go to this host: never in clear text, wherever it points.
            where = option_name(settings, endpoint, "api_base")
            raise ConfigurationError(f"{where} must be https ({API_BASES[endpoint.provider][1]})")
    if settings.tolerance_seconds <= 0 or settings.max_body_bytes <= 0:
        raise ConfigurationError("tolerance_seconds and max_body_bytes must be positive")
    if not isinstance(settings.trusted_proxy_hops, int) or settings.trusted_proxy_hops < 0:
        raise ConfigurationError(
            f"{setting_name(settings, 'trusted_proxy_hops')} must be 0 or a positive integer"
        )
    _check_database_url(settings)
    retry_schedule(settings)
    allowed_networks(settings)
    import limits

    try:
        limits.parse_many(settings.rate_limit)
    except ValueError:
        raise ConfigurationError("rate_limit: expected a limit such as '600 per minute'") from None
    return replace(settings)


def _check_database_url(settings: Settings) -> None:
    """Refuse a database URL paysieve cannot use, before anything connects."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    where = setting_name(settings, "database_url")
    fix = "use sqlite:////absolute/path.db or postgresql+psycopg://user@host:5432/dbname"
    try:
        url = make_url(settings.database_url)
    except (ArgumentError, ValueError):
        # Never the value itself: it may hold a password.
        raise ConfigurationError(f"{where} is not a database URL; {fix}") from None
    scheme = url.drivername
    if scheme in ("postgres", "postgresql", "postgresql+psycopg2"):
        raise ConfigurationError(
            f"{where}: {scheme}:// is not supported; write postgresql+psycopg:// instead"
            " (the psycopg 3 driver paysieve ships with)"
        )
    if scheme == "sqlite":
        database = url.database or ""
        _check_sqlite_query(where, database, dict(url.query))
        if database and database != ":memory:" and not database.startswith("file:"):
            directory = Path(database).parent
            default = Path(settings.home) / DEFAULT_SQLITE_DIR if settings.home else None
            if directory != default and not directory.is_dir():
                raise ConfigurationError(
                    f"{where}: the SQLite database's directory {directory} does not exist;"
                    " create it (or fix the path): paysieve never starts an empty database"
                    " in a place it had to invent"
                )
        return
    if scheme != "postgresql+psycopg":
        raise ConfigurationError(f"{where}: {scheme}:// is not supported; {fix}")


def retry_schedule(settings: Settings) -> tuple[int, ...]:
    """Return the outbound retry schedule in seconds, or refuse it naming the setting."""
    where = setting_name(settings, "outbound_retry_schedule")
    parts = [part.strip() for part in settings.outbound_retry_schedule.split(",")]
    if not all(part.isdigit() for part in parts):
        raise ConfigurationError(
            f"{where} must be comma-separated whole seconds, such as 0,5,300,1800"
        )
    return tuple(int(part) for part in parts)


def allowed_networks(settings: Settings) -> tuple[IPNetwork, ...]:
    """Return the networks outbound endpoints may be in, or refuse one naming the setting."""
    where = setting_name(settings, "outbound_allow_networks")
    networks: list[IPNetwork] = []
    for text in settings.outbound_allow_networks:
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ConfigurationError(
                f"{where}: {text!r} is not a network; write it as 10.0.0.0/8 or fd00::/8"
            ) from None
    return tuple(networks)


# The query parameters SQLAlchemy hands the sqlite3 driver; any other is a SQLite URI's.
_SQLITE_DRIVER_ARGUMENTS: Final = frozenset(
    {"uri", "timeout", "isolation_level", "detect_types", "check_same_thread", "cached_statements"}
)


def _sqlite_uri(query: str) -> bool:
    """Return whether a sqlite:/// URL's query asks for a SQLite URI (uri=true)."""
    values = [v.lower() for k, v in parse_qsl(query, keep_blank_values=True) if k == "uri"]
    return bool(values) and values[-1] in ("true", "1", "yes", "on")


def _check_sqlite_query(where: str, database: str, query: Mapping[str, Any]) -> None:
    """Refuse SQLite URI parameters (mode=ro, cache=...) that would be silently ignored.

    Without uri=true SQLAlchemy drops them (the database opens read-write); with it, a
    database that is not a file: URI takes them into its file name.
    """
    extra = sorted(set(query) - _SQLITE_DRIVER_ARGUMENTS)
    if not extra:
        return
    named = ", ".join(extra)
    given = query.get("uri", "")
    last = given[-1] if isinstance(given, tuple) and given else given
    uri = str(last).lower() in ("true", "1", "yes", "on")
    if not uri or not database.startswith("file:"):
        raise ConfigurationError(
            f"{where}: SQLite URI parameters ({named}) need the file: form with uri=true,"
            f" such as sqlite:///file:var/paysieve.db?{extra[0]}=...&uri=true"
        )


def debug_requested(environ: Mapping[str, str] | None = None) -> bool:
    """Return whether PAYSIEVE_LOG_LEVEL asks for DEBUG (the CLI then shows tracebacks)."""
    environ = os.environ if environ is None else environ
    return environ.get("PAYSIEVE_LOG_LEVEL", "").strip().upper() == "DEBUG"
