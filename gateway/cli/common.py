"""What every command shares: the settings, the development configuration, safe URLs."""

from __future__ import annotations

import click

from gateway.cli import devconfig
from gateway.config.settings import Settings, load_settings
from gateway.core.errors import ConfigurationError


def cli_settings() -> Settings:
    """Load the settings, or exit with the configuration error on one line."""
    try:
        return load_settings()
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from None


def ensure_dev_config() -> None:
    """Write the development configuration when it is needed, saying so."""
    done = devconfig.ensure_dev_config()
    if done:
        click.echo(done)


def safe_url(url: str) -> str:
    """Return a database URL with any password hidden."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
