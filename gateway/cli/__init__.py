"""The ``paysieve`` command line: one click group, one module per command group.

May import every package of the gateway (it is the top layer).
"""

from __future__ import annotations

import click

from gateway.cli import audit, data_keys, db, keys, privacy, serve, simulate
from gateway.core.errors import GatewayError


class _Commands(click.Group):
    """The command group: a refusal from the gateway is one line on stderr, not a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except GatewayError as exc:
            # The messages never quote the refused value (CardDataRefused and the rest).
            raise click.ClickException(exc.message) from None


@click.group(cls=_Commands)
@click.version_option(package_name="paysieve")
def main() -> None:
    """Verify payment webhooks, keep an audited allowlist of fields, store nothing else."""


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
):
    main.add_command(command)
