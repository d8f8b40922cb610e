"""``paysieve keys``: read-API keys."""

from __future__ import annotations

import click

from gateway.api.keys import SCOPES
from gateway.cli.common import cli_settings


@click.group()
def keys() -> None:
    """Manage read-API keys.

    A key is shown once, at creation, and stored only as a hash.
    """


@keys.command("create")
@click.option("--name", required=True, help="Who the key is for, e.g. billing-service.")
@click.option(
    "--scope",
    "scopes",
    required=True,
    multiple=True,
    type=click.Choice(SCOPES),
    help="A scope; repeat for several.",
)
@click.option("--account", "accounts", multiple=True, help="Bind to an account; repeatable.")
def keys_create(name: str, scopes: tuple[str, ...], accounts: tuple[str, ...]) -> None:
    """Create a key and print it, this once.

    The key alone goes to standard output; the note about it goes to standard error.
    """
    from gateway.cli import api_keys

    click.echo(api_keys.create(cli_settings(), name=name, scopes=scopes, accounts=accounts))


@keys.command("list")
def keys_list() -> None:
    """List keys, never showing a key.

    Columns: name, prefix, scopes, accounts, created, last used, revoked.
    """
    from gateway.cli import api_keys

    for line in api_keys.table(cli_settings()):
        click.echo(line)


@keys.command("revoke")
@click.argument("prefix")
def keys_revoke(prefix: str) -> None:
    """Revoke the key with a prefix.

    PREFIX is the part after psk_ (a whole key is accepted too).
    """
    from gateway.cli import api_keys

    api_keys.revoke(cli_settings(), prefix)
    click.echo("revoked", err=True)
