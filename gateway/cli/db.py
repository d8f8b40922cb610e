"""``paysieve db``: the database schema."""

from __future__ import annotations

import click

from gateway.cli.common import cli_settings, ensure_dev_config, safe_url
from gateway.storage import migrate
from gateway.storage.engine import make_engine


@click.group()
def db() -> None:
    """Manage the database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply schema migrations up to a revision."""
    ensure_dev_config()
    settings = cli_settings()
    engine = make_engine(settings.database_url)
    try:
        migrate.upgrade(engine, revision)
        click.echo(
            f"Database {safe_url(settings.database_url)} at {migrate.current_revision(engine)}"
        )
    finally:
        engine.dispose()
