"""The ``paysieve`` command line."""

from __future__ import annotations

import secrets
import sys
import time

import click
import orjson
import requests

from gateway import devconfig, migrate
from gateway.errors import ConfigurationError
from gateway.settings import Settings, load_settings
from gateway.store import make_engine


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from None


def _ensure_dev_config() -> None:
    done = devconfig.ensure_dev_config()
    if done:
        click.echo(done)


@click.group()
@click.version_option(package_name="paysieve")
def main() -> None:
    """Verify payment webhooks, keep an audited allowlist of fields, store nothing else."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
def serve(host: str, port: int) -> None:
    """Run the development server (production runs gunicorn on gateway:create_app())."""
    from gateway import create_app

    _ensure_dev_config()
    settings = _settings()
    click.echo(f"Configuration: {settings.source}")
    click.echo(f"Database: {_safe_url(settings.database_url)}")
    click.echo(f"Listening on http://{host}:{port}  (POST /webhooks/<provider>)")
    click.echo("Try it from another terminal: paysieve simulate stripe charge.succeeded")
    app = create_app()
    app.run(host=host, port=port, threaded=True, use_reloader=False)


@main.group()
def db() -> None:
    """Manage the database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply schema migrations up to a revision."""
    _ensure_dev_config()
    settings = _settings()
    engine = make_engine(settings.database_url)
    try:
        migrate.upgrade(engine, revision)
        click.echo(
            f"Database {_safe_url(settings.database_url)} at {migrate.current_revision(engine)}"
        )
    finally:
        engine.dispose()


@main.command()
@click.argument("provider")
@click.argument("event_type")
@click.option("--url", default=None, help="Gateway base URL or full webhook URL.")
@click.option("--endpoint", default="default", show_default=True, help="Endpoint (account) name.")
def simulate(provider: str, event_type: str, url: str | None, endpoint: str) -> None:
    """Post a realistic, correctly signed sample event to a running gateway."""
    from gateway.app import build_adapters

    settings = _settings()
    adapters = build_adapters(settings)
    adapter = adapters.get(provider)
    if adapter is None:
        raise click.ClickException(f"unknown provider; choose from {', '.join(sorted(adapters))}")
    config = settings.endpoint(provider, endpoint)
    if config is None or not adapter.enabled(config):
        raise click.ClickException(
            f"{provider} endpoint {endpoint!r} is not configured: {adapter.how_to_enable()}"
        )
    try:
        event = adapter.sample_event(event_type)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    event_id = str(event.get("id") or f"evt_{secrets.token_hex(8)}")
    raw_body = orjson.dumps(event)
    headers = adapter.sign(raw_body, config, timestamp=int(time.time()), event_id=event_id)
    headers["Content-Type"] = "application/json"
    target = _webhook_url(url, provider, endpoint)
    try:
        response = requests.post(target, data=raw_body, headers=headers, timeout=10)
    except requests.RequestException as exc:
        raise click.ClickException(
            f"cannot reach the gateway at {target}: {type(exc).__name__}"
        ) from None
    click.echo(f"POST {target} -> {response.status_code}")
    click.echo(response.text.strip())
    if not response.ok:
        sys.exit(1)


def _webhook_url(url: str | None, provider: str, endpoint: str) -> str:
    path = f"/webhooks/{provider}" + ("" if endpoint == "default" else f"/{endpoint}")
    if url is None:
        return f"http://127.0.0.1:8000{path}"
    if "/webhooks/" in url:
        return url
    return url.rstrip("/") + path


def _safe_url(url: str) -> str:
    """Return a database URL with any password hidden."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
