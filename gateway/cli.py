"""The ``paysieve`` command line."""

from __future__ import annotations

import secrets
import sys
import time

import click
import orjson
import requests

from gateway import devconfig, migrate, privacy_cli
from gateway.errors import ConfigurationError, GatewayError
from gateway.settings import DEV_CONFIG_PATH, Settings, load_settings
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
    _check_schema(settings)
    click.echo(f"Listening on http://{host}:{port}  (POST /webhooks/<provider>)")
    click.echo("Try it from another terminal: paysieve simulate stripe charge.succeeded")
    from gateway.http import DevRequestHandler

    app = create_app()
    # The handler logs route templates, never paths or query strings (an ?api_key= would
    # otherwise be in the log), and answers malformed HTTP with JSON.
    app.run(
        host=host,
        port=port,
        threaded=True,
        use_reloader=False,
        request_handler=DevRequestHandler,
    )


def _check_schema(settings: Settings) -> None:
    """Migrate the trial database; elsewhere refuse to serve an out-of-date schema."""
    engine = make_engine(settings.database_url)
    try:
        current = migrate.current_revision(engine)
        head = migrate.head_revision()
        if current == head:
            return
        if settings.source == str(DEV_CONFIG_PATH):
            migrate.upgrade(engine)
            click.echo(f"Migrated the development database to {head}")
            return
        raise click.ClickException(
            f"the database schema is at {current or 'nothing'}, not {head}: "
            "run `paysieve db upgrade` first"
        )
    finally:
        engine.dispose()


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


@main.group()
def keys() -> None:
    """Manage read-API keys (shown once at creation, stored only as hashes)."""


@keys.command("create")
@click.option("--name", required=True, help="Who the key is for, e.g. billing-service.")
@click.option(
    "--scope",
    "scopes",
    required=True,
    multiple=True,
    type=click.Choice(["records:read", "customers:erase", "audit:read"]),
    help="A scope; repeat for several.",
)
@click.option("--account", "accounts", multiple=True, help="Bind to an account; repeatable.")
def keys_create(name: str, scopes: tuple[str, ...], accounts: tuple[str, ...]) -> None:
    """Create a key and print it alone on standard output, this once."""
    from gateway import api_keys_cli

    click.echo(api_keys_cli.create(_settings(), name=name, scopes=scopes, accounts=accounts))


@keys.command("list")
def keys_list() -> None:
    """List keys: name, prefix, scopes, accounts, created, last used, revoked."""
    from gateway import api_keys_cli

    for line in api_keys_cli.table(_settings()):
        click.echo(line)


@keys.command("revoke")
@click.argument("prefix")
def keys_revoke(prefix: str) -> None:
    """Revoke the key with a prefix (the part after psk_)."""
    from gateway import api_keys_cli

    api_keys_cli.revoke(_settings(), prefix)
    click.echo("revoked", err=True)


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


@main.command()
@click.option(
    "--format",
    "output",
    type=click.Choice(["text", "json", "html"]),
    default="text",
    show_default=True,
    help="How to print the result on standard output.",
)
@click.option("--report", type=click.Path(dir_okay=False), help="Also write the HTML report here.")
@click.option("--batch-size", default=5000, show_default=True, type=click.IntRange(100, 100_000))
@click.option("--self-test", is_flag=True, help="Run the shipped field-allowlist tests instead.")
@click.option("--examples", default=10, show_default=True, type=click.IntRange(1, 1000))
def audit(output: str, report: str | None, batch_size: int, self_test: bool, examples: int) -> None:
    """Scan the database for card data and columns outside the allowlist (exit 1 on findings)."""
    if self_test:
        _self_test(examples)
        return
    from gateway import audit_trail
    from gateway.audit import allowlist, scan
    from gateway.audit import report as reports

    settings = _settings()
    engine = make_engine(settings.database_url)
    try:
        rows = scan.count_rows(engine)
        with click.progressbar(
            length=rows, label="scanning", file=sys.stderr, show_pos=True
        ) as bar:
            result = scan.scan(engine, allowlist.load(), batch_size=batch_size, progress=bar.update)
        trail = reports.read_trail(engine) if output == "html" or report else None
        with engine.begin() as conn:
            audit_trail.append(
                conn,
                actor=audit_trail.ACTOR_CLI,
                action="audit.scan",
                route="cli",
                outcome="findings" if result.findings else "ok",
                count=len(result.findings),
            )
    finally:
        engine.dispose()
    if report and trail is not None:
        with open(report, "w", encoding="utf-8") as handle:
            handle.write(reports.render_html(result, trail))
        click.echo(f"report written to {report}", err=True)
    if output == "json":
        click.echo(reports.render_json(result))
    elif output == "html" and trail is not None:
        click.echo(reports.render_html(result, trail))
    else:
        click.echo(reports.render_text(result))
    if result.findings:
        sys.exit(1)


def _self_test(examples: int) -> None:
    from importlib.util import find_spec

    # Looked up, not imported: pytest must import hypothesis itself to rewrite its asserts.
    if find_spec("pytest") is None or find_spec("hypothesis") is None:
        raise click.ClickException(
            "the self-test needs pytest and hypothesis: pip install 'paysieve[audit]'"
        )
    from gateway.audit.selftest import runner

    code, summary = runner.run(examples=examples)
    click.echo(summary)
    click.echo("self-test " + ("passed" if code == 0 else f"FAILED (pytest exit code {code})"))
    if code != 0:
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


privacy_cli.register(main)
