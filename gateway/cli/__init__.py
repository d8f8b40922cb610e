"""The ``paysieve`` command line: one click group, one module per command group.

May import every package of the gateway (it is the top layer).
"""

from __future__ import annotations

import click
from sqlalchemy.exc import SQLAlchemyError

from gateway.cli import (
    audit,
    backfill,
    config,
    data_keys,
    db,
    keys,
    outbound,
    privacy,
    serve,
    simulate,
)
from gateway.cli.common import explain_database_error
from gateway.config.settings import debug_requested
from gateway.core.errors import ConfigurationError, GatewayError, StorageUnavailable


class _Commands(click.Group):
    """The command group: every refusal and every configuration or database problem is one
    line on stderr and a non-zero exit, never a traceback (unless --debug asks for it)."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (GatewayError, ConfigurationError, SQLAlchemyError) as exc:
            if ctx.meta.get("paysieve.debug") or debug_requested():
                raise
            if isinstance(exc, StorageUnavailable) and isinstance(exc.__cause__, SQLAlchemyError):
                # The store's 503 for a webhook; a command says what the database's trouble is.
                raise click.ClickException(explain_database_error(exc.__cause__)) from None
            if isinstance(exc, GatewayError):
                # The messages never quote the refused value (CardDataRefused and the rest).
                raise click.ClickException(exc.message) from None
            if isinstance(exc, ConfigurationError):
                raise click.ClickException(f"configuration: {exc}") from None
            raise click.ClickException(explain_database_error(exc)) from None


@click.group(cls=_Commands)
@click.version_option(package_name="paysieve")
@click.option(
    "--debug",
    is_flag=True,
    help="Show the traceback of a configuration or database error (as PAYSIEVE_LOG_LEVEL=DEBUG).",
)
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Minimise payment webhooks to an allowlist.

    Verify payment webhooks, keep an audited allowlist of fields, store nothing else.
    """
    ctx.meta["paysieve.debug"] = debug


for command in (
    serve.serve,
    db.db,
    keys.keys,
    simulate.simulate,
    audit.audit,
    privacy.purge,
    privacy.erase,
    privacy.export,
    privacy.rotate_keys,
    data_keys.data_keys,
    config.config,
    backfill.backfill,
    backfill.reconcile,
    outbound.subscribers,
    outbound.deliver,
    outbound.deliveries,
):
    main.add_command(command)
