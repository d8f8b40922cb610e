"""What every command shares: the settings, the development configuration, safe URLs, and
how a database problem is told to an operator."""

from __future__ import annotations

import difflib
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import click
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from adapters.registry import adapter_classes
from gateway.cli import devconfig
from gateway.config.settings import Settings, load_settings, setting_name
from gateway.core.errors import ConfigurationError


@contextmanager
def interruptible(unit: str) -> Iterator[Callable[[], bool]]:
    """Yield a should-stop check: the first Ctrl-C stops after the running unit of work."""
    stop = threading.Event()

    def handler(_signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        click.echo(f"\nStopping after this {unit} (Ctrl-C again to abort it).", err=True)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield stop.is_set
    finally:
        signal.signal(signal.SIGINT, previous)


def cli_settings() -> Settings:
    """Load the settings (a ConfigurationError is the command group's to report)."""
    return load_settings()


class ProviderChoice(click.Choice[str]):
    """A provider name paysieve knows; anything else is one line listing the choices.

    The refused value is not repeated: whatever was typed in its place (a customer id,
    a secret) stays off the terminal and out of shell logs.
    """

    def __init__(self) -> None:
        super().__init__(sorted(adapter_classes()))

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        if value in self.choices:
            return str(value)
        name = _parameter_name(param)
        hint = difflib.get_close_matches(str(value).lower(), list(self.choices), n=1)
        closest = f" (did you mean {hint[0]}?)" if hint else ""
        raise click.ClickException(
            f"{name}: unknown provider{closest}; choose from {', '.join(self.choices)}"
        )


def _parameter_name(param: click.Parameter | None) -> str:
    if isinstance(param, click.Option):
        return param.opts[0]
    return (param.name if param is not None and param.name else "provider").upper()


def ensure_dev_config() -> None:
    """Write the development configuration when it is needed, saying so."""
    done = devconfig.ensure_dev_config()
    if done:
        click.echo(done)


def safe_url(url: str) -> str:
    """Return a database URL with any password hidden."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


# What the driver's message says -> what is wrong and how to fix it. The driver's own text
# is matched, never printed: it is long, and a driver may quote more than it should.
_DIAGNOSES: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("password authentication failed", "no password supplied", "role ", "ident auth"),
        "the server refused the user or password; fix them in the URL",
    ),
    (
        ("no such table", "undefinedtable", "relation "),
        "the schema is missing; run `paysieve db upgrade`",
    ),
    (
        ("connection refused", "could not connect", "timeout expired", "name or service"),
        "nothing answers there; start PostgreSQL or fix the host and port in the URL",
    ),
    (
        ("does not exist",),
        "the database does not exist; create it (createdb) or fix its name in the URL",
    ),
    (
        ("unable to open database file", "readonly database", "disk i/o"),
        "cannot open or write the SQLite file; check the path and its permissions",
    ),
)


def explain_database_error(exc: SQLAlchemyError) -> str:
    """Return one line naming the database setting, what is wrong and how to fix it."""
    try:
        settings: Settings | None = load_settings()
    except ConfigurationError:
        settings = None
    where = setting_name(settings, "database_url") if settings else "PAYSIEVE_DATABASE_URL"
    url = safe_url(settings.database_url) if settings else "the database"
    original = exc.orig if isinstance(exc, DBAPIError) else exc
    text = f"{type(original).__name__} {original}".lower()
    for needles, diagnosis in _DIAGNOSES:
        if any(needle in text for needle in needles):
            return f"database: cannot use {url} ({where}): {diagnosis}"
    return (
        f"database: cannot use {url} ({where}): {type(original).__name__}; "
        "rerun with `paysieve --debug ...` for the details"
    )
