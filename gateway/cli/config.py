"""``paysieve config check``: the effective configuration, masked, and whether it can run."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import click
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from gateway.cli.common import explain_database_error, safe_url
from gateway.config.settings import (
    SECRET_OPTIONS,
    SECRET_SETTINGS,
    Settings,
    load_settings,
)
from gateway.core.errors import ConfigurationError

# Settings fields that are not settings an operator sets.
_NOT_SHOWN = frozenset({"endpoints", "source", "home", "origins"})


@click.group()
def config() -> None:
    """Inspect the configuration."""


@config.command("check")
def config_check() -> None:
    """Validate and print the configuration.

    Every secret is masked; the database is checked too.
    """
    # A configuration that does not load is the group's one-line error (exit 1).
    settings = load_settings()
    click.echo(f"Configuration: {settings.source}")
    click.echo(f"Home: {_home(settings)}")
    for line in _table(list(_rows(settings))):
        click.echo(line)
    problems = list(_problems(settings))
    click.echo("")
    if problems:
        for problem in problems:
            click.echo(f"FAIL {problem}", err=True)
        sys.exit(1)
    click.echo("OK: the configuration is valid and the database is reachable and migrated.")


def _home(settings: Settings) -> str:
    """Say where relative paths are read against, and why there."""
    if not settings.home:
        return "none (set PAYSIEVE_HOME, or give every path absolute)"
    origin = "PAYSIEVE_HOME" if settings.origins.get("home") else "the checkout"
    return f"{settings.home} (from {origin})"


def _rows(settings: Settings) -> Iterator[tuple[str, str, str]]:
    for item in fields(Settings):
        if item.name in _NOT_SHOWN:
            continue
        value = getattr(settings, item.name)
        yield item.name, _shown(item.name, value), settings.origins.get(item.name, "default")
    for endpoint in settings.endpoints:
        prefix = f"{endpoint.provider}.{endpoint.name}"
        options: dict[str, Any] = {"webhook_secrets": endpoint.webhook_secrets}
        options |= dict(endpoint.options)
        for option, value in options.items():
            if option == "webhook_secrets" and endpoint.provider == "paypal" and not value:
                continue
            origin = settings.origins.get(f"{prefix}.{option}", "default")
            yield f"{prefix}.{option}", _shown(option, value), origin


def _shown(name: str, value: Any) -> str:
    """Return a value as the table shows it: secrets masked, only whether and how many."""
    if name in SECRET_SETTINGS or name in SECRET_OPTIONS:
        if isinstance(value, tuple | list):
            return f"*** ({len(value)} set)" if value else "(not set)"
        return "*** (set)" if value else "(not set)"
    if name == "database_url":
        try:
            return safe_url(str(value))
        except Exception:  # noqa: BLE001 - load_settings refused it already; never print it
            return "***"
    if isinstance(value, tuple | list):
        return ", ".join(str(v) for v in value) or "(none)"
    if value == "":
        return "(not set)"
    return str(value)


def _table(rows: list[tuple[str, str, str]]) -> Iterator[str]:
    header = ("SETTING", "VALUE", "FROM")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(3)]
    for row in [header, *rows]:
        yield "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()


def _problems(settings: Settings) -> Iterator[str]:
    """Yield each reason the gateway could not serve with these settings."""
    from adapters.registry import adapter_classes
    from gateway.core import crypto
    from gateway.privacy import data_keys
    from gateway.storage import migrate
    from gateway.storage.engine import make_engine
    from gateway.storage.store import Store

    for endpoint in settings.endpoints:
        adapter = adapter_classes()[endpoint.provider](settings)
        try:
            if not adapter.enabled(endpoint):
                click.echo(
                    f"note: {endpoint.provider} endpoint {endpoint.name!r} is disabled: "
                    f"{adapter.how_to_enable()}"
                )
        except ConfigurationError as exc:
            yield f"configuration: {exc}"
    try:
        cipher = crypto.cipher_from_settings(
            settings.data_keys, settings.data_keys_file, settings.index_key
        )
    except ConfigurationError as exc:
        yield f"configuration: {exc}"
        cipher = None
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        if not Path(url.database).exists():
            # Checked, not connected: a check never leaves an empty database behind.
            yield f"database: {url.database} does not exist yet: run `paysieve db upgrade`"
            return
    try:
        engine = make_engine(settings.database_url)
    except ConfigurationError as exc:
        yield f"configuration: {exc}"
        return
    try:
        current = migrate.current_revision(engine)
        head = migrate.head_revision()
        if current != head:
            yield (
                f"database: {safe_url(settings.database_url)} is at {current or 'no schema'},"
                f" not {head}: run `paysieve db upgrade`"
            )
        elif cipher is not None:
            data_keys.check_keys(Store(engine, cipher))
    except ConfigurationError as exc:
        yield f"configuration: {exc}"
    except SQLAlchemyError as exc:
        yield explain_database_error(exc)
    finally:
        engine.dispose()
