"""``paysieve data-keys``: keys for encryption at rest."""

from __future__ import annotations

import click

from gateway.core import crypto


@click.group("data-keys")
def data_keys() -> None:
    """Manage keys for encryption at rest."""


@data_keys.command("generate")
def data_keys_generate() -> None:
    """Print a fresh random 256-bit key.

    For PAYSIEVE_DATA_KEYS or PAYSIEVE_INDEX_KEY.
    """
    click.echo(crypto.generate_key())
