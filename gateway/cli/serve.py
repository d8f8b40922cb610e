"""``paysieve serve``: the development server."""

from __future__ import annotations

import socket
import threading

import click

from gateway.cli import devconfig
from gateway.cli.common import cli_settings, ensure_dev_config, safe_url
from gateway.config.settings import Settings, dev_config_path
from gateway.storage import migrate
from gateway.storage.engine import make_engine


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--deliver/--no-deliver",
    default=True,
    show_default=True,
    help="Send outbound webhooks from a thread of this process (else run `paysieve deliver`).",
)
def serve(host: str, port: int, deliver: bool) -> None:
    """Run the development server.

    Production runs gunicorn on gateway:create_app().
    """
    from gateway import create_app

    ensure_dev_config()
    settings = cli_settings()
    click.echo(f"Configuration: {settings.source}")
    click.echo(f"Database: {safe_url(settings.database_url)}")
    _check_schema(settings)
    from werkzeug.serving import make_server

    from gateway.web.http import DevRequestHandler

    app = create_app()
    # The handler logs route templates, never paths or query strings (an ?api_key= would
    # otherwise be in the log), and answers malformed HTTP with JSON.
    try:
        # Bound here, not by werkzeug: it prints its own lines and exits when the port is taken.
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        listener = socket.create_server((host, port), family=family)
    except OSError as exc:
        app.extensions["paysieve.store"].engine.dispose()
        raise click.ClickException(
            f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port or --host"
        ) from None
    with listener:
        # The port bound: the one asked for, or the free one --port 0 got.
        port = listener.getsockname()[1]
        server = make_server(
            host,
            port,
            app,
            threaded=True,
            request_handler=DevRequestHandler,
            fd=listener.fileno(),
        )
    # Said only now: the app is built, the database checked and the port bound.
    click.echo(f"Listening on http://{host}:{port}  (POST /webhooks/<provider>)")
    click.echo("Try it from another terminal: .venv/bin/paysieve simulate stripe charge.succeeded")
    stop = threading.Event()
    sender = None
    if deliver:
        from gateway.outbound.dispatcher import Dispatcher

        sender = Dispatcher(app.extensions["paysieve.store"], settings).start(stop)
        click.echo(
            "Sending outbound webhooks from this process"
            " (--no-deliver leaves them to `paysieve deliver`)"
        )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        stop.set()
        app.extensions["paysieve.store"].outbox.queued()  # wake the sender to see the stop
        if sender is not None:
            # The attempt under way ends within its timeout.
            sender.join(timeout=20)
        app.extensions["paysieve.store"].engine.dispose()


def _check_schema(settings: Settings) -> None:
    """Migrate the trial database; elsewhere refuse to serve an out-of-date schema."""
    engine = make_engine(settings.database_url)
    try:
        current = migrate.current_revision(engine)
        head = migrate.head_revision()
        if current == head:
            return
        # Only the trial's own database: never one the development file was edited to name.
        dev = dev_config_path()
        if dev is not None and settings.source == str(dev) and devconfig.is_dev_database(settings):
            migrate.upgrade(engine)
            click.echo(f"Migrated the development database to {head}")
            return
        raise click.ClickException(
            f"the database schema is at {current or 'nothing'}, not {head}: "
            "run `paysieve db upgrade` first"
        )
    finally:
        engine.dispose()
