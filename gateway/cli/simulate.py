"""``paysieve simulate``: post a signed sample event to a running gateway."""

from __future__ import annotations

import secrets
import sys
import time

import click
import orjson
import requests

from gateway.cli.common import cli_settings


@click.command()
@click.argument("provider")
@click.argument("event_type")
@click.option("--url", default=None, help="Gateway base URL or full webhook URL.")
@click.option("--endpoint", default="default", show_default=True, help="Endpoint (account) name.")
def simulate(provider: str, event_type: str, url: str | None, endpoint: str) -> None:
    """Post a realistic, correctly signed sample event to a running gateway."""
    from gateway.app import build_adapters

    settings = cli_settings()
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
