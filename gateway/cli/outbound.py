"""``paysieve subscribers`` and ``paysieve deliver``: outbound webhooks (docs/outbound.md)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from types import FrameType

import click
from sqlalchemy import Connection

from gateway.audit import audit_log
from gateway.cli.common import cli_settings
from gateway.config.settings import Settings, allowed_networks
from gateway.core import crypto
from gateway.outbound import subscribers as subs
from gateway.outbound.addresses import system_resolver
from gateway.outbound.dispatcher import Dispatcher
from gateway.storage.engine import make_engine
from gateway.storage.store import Store


@contextmanager
def _store() -> Iterator[tuple[Settings, Store]]:
    """Yield the configured store; dispose of its engine after."""
    settings = cli_settings()
    cipher = crypto.cipher_from_settings(
        settings.data_keys, settings.data_keys_file, settings.index_key
    )
    store = Store(make_engine(settings.database_url), cipher)
    try:
        yield settings, store
    finally:
        store.engine.dispose()


@contextmanager
def _changing(action: str) -> Iterator[tuple[Settings, Store, Connection]]:
    """Yield a write transaction that ends with an audit entry for the action."""
    with _store() as (settings, store), store.writing() as conn:
        yield settings, store, conn
        audit_log.append(
            conn, actor=audit_log.ACTOR_CLI, action=action, route="cli", outcome="ok", count=1
        )


@click.group()
def subscribers() -> None:
    """Manage outbound webhook endpoints (signing secrets shown once, stored sealed)."""


@subscribers.command("add")
@click.option("--name", required=True, help="What the endpoint is, e.g. billing.")
@click.option("--url", required=True, help="The endpoint: https, a public or allowed address.")
@click.option(
    "--event",
    "event_types",
    multiple=True,
    help="A change-feed event type to send, * wildcards (charge.*); repeatable; default all.",
)
@click.option("--account", "accounts", multiple=True, help="Only this account; repeatable.")
def subscribers_add(
    name: str, url: str, event_types: tuple[str, ...], accounts: tuple[str, ...]
) -> None:
    """Register an endpoint and print its signing secret alone on the last line, this once."""
    with _changing("subscribers.add") as (settings, _, conn):
        secret = subs.add(
            conn,
            _cipher(settings),
            name=name,
            url=url,
            event_types=event_types,
            accounts=accounts,
            networks=allowed_networks(settings),
            resolver=system_resolver,
        )
    click.echo(f"Added subscriber {name}. Its signing secret is shown once: store it now.")
    click.echo(secret)


def _cipher(settings: Settings) -> crypto.Cipher:
    return crypto.cipher_from_settings(
        settings.data_keys, settings.data_keys_file, settings.index_key
    )


@subscribers.command("list")
def subscribers_list() -> None:
    """List endpoints: name, state, event types, accounts, URL (never a secret)."""
    with _store() as (_, store), store.engine.connect() as conn:
        rows = subs.list_all(conn)
    header = ("NAME", "STATE", "EVENTS", "ACCOUNTS", "FAILING SINCE", "ROTATING UNTIL", "URL")
    lines = [
        (
            s.name,
            "enabled" if s.enabled else f"disabled ({s.disabled_reason})",
            ",".join(s.event_types),
            ",".join(s.accounts) if s.accounts is not None else "*",
            _when(s.failing_since),
            _when(s.rotating_until),
            s.url,
        )
        for s in rows
    ]
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    for row in [header, *lines]:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ") if at is not None else "-"


@subscribers.command("rotate-secret")
@click.argument("name")
def subscribers_rotate(name: str) -> None:
    """Print a new signing secret; the old one keeps signing too for 24 hours."""
    with _changing("subscribers.rotate_secret") as (settings, _, conn):
        secret = subs.rotate_secret(conn, _cipher(settings), name)
    click.echo(f"Rotated the secret of {name}; the previous one signs too for 24 hours.")
    click.echo(secret)


@subscribers.command("disable")
@click.argument("name")
def subscribers_disable(name: str) -> None:
    """Stop sending to an endpoint; what it is owed stays queued."""
    with _changing("subscribers.disable") as (_, _store_, conn):
        subs.set_enabled(conn, name, enabled=False)
    click.echo(f"disabled {name}", err=True)


@subscribers.command("enable")
@click.argument("name")
def subscribers_enable(name: str) -> None:
    """Send to an endpoint again, starting with what stayed queued."""
    with _changing("subscribers.enable") as (_, _store_, conn):
        subs.set_enabled(conn, name, enabled=True)
    click.echo(f"enabled {name}", err=True)


@subscribers.command("remove")
@click.argument("name")
def subscribers_remove(name: str) -> None:
    """Remove an endpoint and everything still queued for it."""
    with _changing("subscribers.remove") as (_, _store_, conn):
        dropped = subs.remove(conn, name)
    click.echo(f"removed {name} and {dropped} queued deliveries", err=True)


@click.command()
@click.option(
    "--idle-seconds",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0.05, max=60),
    help="How long to wait when nothing is due.",
)
def deliver(idle_seconds: float) -> None:
    """Send the outbox to subscribers until SIGTERM or Ctrl-C (after the attempt under way)."""
    stop = threading.Event()

    def handler(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        with _store() as (settings, store):
            click.echo("Delivering the outbox; SIGTERM or Ctrl-C stops.", err=True)
            Dispatcher(store, settings).run(stop, idle_seconds=idle_seconds)
    finally:
        for number, handler_before in previous.items():
            signal.signal(number, handler_before)
    click.echo("Stopped.", err=True)
