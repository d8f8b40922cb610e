"""What `paysieve keys create|list|revoke` do, kept out of the click wiring."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

import click
from sqlalchemy import Connection

from gateway.api import keys
from gateway.audit import audit_log
from gateway.config.settings import Settings
from gateway.storage.engine import make_engine


@contextmanager
def _transaction(settings: Settings) -> Iterator[Connection]:
    engine = make_engine(settings.database_url)
    # A database error is the command group's to explain (gateway.cli.common).
    try:
        with engine.connect().execution_options(write=True) as conn, conn.begin():
            yield conn
    finally:
        engine.dispose()


def create(settings: Settings, *, name: str, scopes: Sequence[str], accounts: Sequence[str]) -> str:
    """Create a key, audit it, and return the key itself."""
    with _transaction(settings) as conn:
        try:
            key, record = keys.create(conn, name=name, scopes=scopes, accounts=accounts)
        except keys.InvalidKeyRequest as exc:
            raise click.ClickException(str(exc)) from None
        audit_log.append(
            conn, actor="cli", action="keys.create", route="cli", outcome="ok", count=1
        )
    click.echo(f"Created key {record.prefix} ({name}). It is shown once: store it now.", err=True)
    return key


def revoke(settings: Settings, prefix: str) -> None:
    """Revoke a key by prefix; fail loudly when no live key has it."""
    if prefix.startswith("psk_"):
        prefix = prefix.removeprefix("psk_").split("_", 1)[0]
    with _transaction(settings) as conn:
        if not keys.revoke(conn, prefix):
            raise click.ClickException("no live key has this prefix (see `paysieve keys list`)")
        audit_log.append(
            conn, actor="cli", action="keys.revoke", route="cli", outcome="ok", count=1
        )


def table(settings: Settings) -> Iterator[str]:
    """Yield the lines of `keys list`: never a key, only what identifies one."""
    with _transaction(settings) as conn:
        rows = keys.list_keys(conn)
    header = ("NAME", "PREFIX", "SCOPES", "ACCOUNTS", "CREATED", "LAST USED", "REVOKED")
    lines = [
        (
            key.name,
            key.prefix,
            ",".join(sorted(key.scopes)),
            ",".join(sorted(key.accounts)) if key.accounts is not None else "*",
            _when(key.created_at),
            _when(key.last_used_at),
            _when(key.revoked_at),
        )
        for key in rows
    ]
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    for row in [header, *lines]:
        yield "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ") if at is not None else "-"
