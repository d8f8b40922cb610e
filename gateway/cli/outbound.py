"""``paysieve subscribers`` and ``paysieve deliver``: outbound webhooks (docs/outbound.md)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from types import FrameType

import click
from sqlalchemy import Connection

from gateway.audit import audit_log
from gateway.cli.common import cli_settings
from gateway.config.settings import Settings, allowed_networks
from gateway.core import crypto
from gateway.outbound import queue
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
    """Manage outbound webhook endpoints.

    Signing secrets are shown once and stored sealed.
    """


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
    """Register an endpoint, print its secret.

    The signing secret is printed alone on the last line, this once.
    """
    settings = cli_settings()
    # The host is resolved before the write transaction: no lock is held on the DNS.
    new = subs.checked(
        name=name,
        url=url,
        event_types=event_types,
        accounts=accounts,
        networks=allowed_networks(settings),
        resolver=system_resolver,
    )
    with _changing("subscribers.add") as (_, _store_, conn):
        secret = subs.insert(conn, _cipher(settings), new)
    click.echo(f"Added subscriber {name}. Its signing secret is shown once: store it now.")
    click.echo(secret)


def _cipher(settings: Settings) -> crypto.Cipher:
    return crypto.cipher_from_settings(
        settings.data_keys, settings.data_keys_file, settings.index_key
    )


@subscribers.command("list")
def subscribers_list() -> None:
    """List endpoints, never their secrets.

    Shows each name, state, event types, accounts and URL.
    """
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
    """Give an endpoint a new signing secret.

    The old one keeps signing too for 24 hours.
    """
    with _changing("subscribers.rotate_secret") as (settings, _, conn):
        secret = subs.rotate_secret(conn, _cipher(settings), name)
    click.echo(f"Rotated the secret of {name}; the previous one signs too for 24 hours.")
    click.echo(secret)


@subscribers.command("disable")
@click.argument("name")
def subscribers_disable(name: str) -> None:
    """Stop sending to an endpoint.

    What it is owed stays queued.
    """
    with _changing("subscribers.disable") as (_, _store_, conn):
        subs.set_enabled(conn, name, enabled=False)
    click.echo(f"disabled {name}", err=True)


@subscribers.command("enable")
@click.argument("name")
def subscribers_enable(name: str) -> None:
    """Send to an endpoint again.

    Starts with what stayed queued.
    """
    with _changing("subscribers.enable") as (_, _store_, conn):
        subs.set_enabled(conn, name, enabled=True)
    click.echo(f"enabled {name}", err=True)


@subscribers.command("remove")
@click.argument("name")
def subscribers_remove(name: str) -> None:
    """Remove an endpoint and its queue.

    Everything still queued for it goes too.
    """
    with _changing("subscribers.remove") as (_, _store_, conn):
        dropped = subs.remove(conn, name)
    click.echo(f"removed {name} and {dropped} queued deliveries", err=True)


class _Instant(click.ParamType[datetime]):
    """An RFC 3339 time (2026-12-04T10:00:00Z) or a date (UTC midnight)."""

    name = "TIME"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        if isinstance(value, datetime):
            return value
        text = str(value).strip()
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            self.fail("expected a time such as 2026-12-04T10:00:00Z or a date such as 2026-12-04")
        return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


@subscribers.command("replay")
@click.argument("name")
@click.option("--since", required=True, type=_Instant(), help="From this time (RFC 3339, UTC).")
@click.option("--until", type=_Instant(), help="Up to this time (exclusive); default now.")
def subscribers_replay(name: str, since: datetime, until: datetime | None) -> None:
    """Queue a window's deliveries again.

    Re-queues what was sent or failed for changes committed in a window.
    """
    if until is not None and until <= since:
        raise click.UsageError("--until must be later than --since")
    with _changing("subscribers.replay") as (_, _store_, conn):
        count = queue.replay(conn, name, since=since, until=until, now=datetime.now(UTC))
    click.echo(f"queued {count} deliveries for {name} again (same webhook-ids)")


@click.group()
def deliveries() -> None:
    """Inspect the outbox of deliveries.

    Shows attempts, status codes and durations, never a body.
    """


@deliveries.command("list")
@click.option("--failed", is_flag=True, help="Only failed (being retried) and dead deliveries.")
@click.option("--subscriber", help="Only this subscriber's deliveries.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10000))
def deliveries_list(failed: bool, subscriber: str | None, limit: int) -> None:
    """List the newest deliveries.

    Each with its last attempt.
    """
    with _store() as (_, store), store.engine.connect() as conn:
        rows = queue.list_deliveries(conn, failed=failed, subscriber=subscriber, limit=limit)
    header = (
        "ID", "SUBSCRIBER", "SEQ", "RECORD", "STATE", "ATTEMPTS", "STATUS", "ERROR",
        "DURATION", "LAST ATTEMPT", "NEXT ATTEMPT",
    )  # fmt: skip
    lines = [
        (
            str(r.id),
            r.subscriber,
            str(r.event_seq),
            r.record_type,
            r.state,
            str(r.attempts),
            str(r.last_status) if r.last_status is not None else "-",
            r.last_error or "-",
            f"{r.last_duration_ms} ms" if r.last_duration_ms is not None else "-",
            _when(r.last_attempt_at),
            _when(r.next_attempt_at) if r.state in ("pending", "failed") else "-",
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    for row in [header, *lines]:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


@click.command()
@click.option(
    "--idle-seconds",
    default=0.5,
    show_default=True,
    type=click.FloatRange(min=0.05, max=60),
    help="How long to wait when nothing is due.",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    help="Serve this process's Prometheus metrics on 127.0.0.1:PORT/metrics.",
)
def deliver(idle_seconds: float, metrics_port: int | None) -> None:
    """Send outbound webhooks until stopped.

    Sends the outbox to subscribers until SIGTERM or Ctrl-C (after the attempt under way).
    """
    stop = threading.Event()
    if metrics_port is not None:
        from prometheus_client import start_http_server

        try:
            start_http_server(metrics_port, addr="127.0.0.1")
        except OSError as exc:
            raise click.ClickException(
                f"--metrics-port: cannot listen on 127.0.0.1:{metrics_port} ({exc.strerror})"
            ) from None

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
