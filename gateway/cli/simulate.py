"""``paysieve simulate``: post signed sample events to a running gateway."""

from __future__ import annotations

import difflib
import secrets
import sys
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import click
import orjson
import requests
from sqlalchemy import select

from adapters.base import Adapter
from adapters.registry import adapter_classes
from gateway.cli.common import ProviderChoice, cli_settings, safe_url
from gateway.config.settings import EndpointConfig, Settings
from gateway.core import crypto
from gateway.core.records import RECORD_TYPES
from gateway.storage.engine import make_engine
from gateway.storage.joined import transactions_with_methods
from gateway.storage.store import Store
from gateway.storage.tables import (
    event_objects,
    events,
    payment_methods,
    subscriptions,
    transactions,
)

_LIST_HINT = "`paysieve simulate --list` shows every provider's sample event types"


@click.command()
@click.argument("provider", required=False, type=ProviderChoice(), metavar="[PROVIDER]")
@click.argument("event_type", required=False)
@click.option(
    "--list", "list_types", is_flag=True, help="List every provider's sample event types."
)
@click.option(
    "--lifecycle",
    is_flag=True,
    help="Post one customer's sequence of events (card saved, paid, refunded), then show "
    "the records.",
)
@click.option("--url", default=None, help="Gateway base URL or full webhook URL.")
@click.option("--endpoint", default="default", show_default=True, help="Endpoint (account) name.")
def simulate(
    provider: str | None,
    event_type: str | None,
    list_types: bool,
    lifecycle: bool,
    url: str | None,
    endpoint: str,
) -> None:
    """Post signed sample events to a gateway.

    PROVIDER (paypal, razorpay or stripe) EVENT_TYPE posts one realistic, correctly
    signed sample event. With
    --lifecycle, PROVIDER alone posts one customer's realistic sequence of events, their
    ids chained (same customer, card and payment), then prints the records they left in
    the database this configuration names, as the read API serves them. --list shows
    the event types, by provider.
    """
    if list_types:
        if event_type is not None or lifecycle:
            raise click.ClickException("--list takes no EVENT_TYPE and no --lifecycle")
    elif provider is None:
        raise click.ClickException(
            f"name a PROVIDER ({', '.join(ProviderChoice().choices)}), or pass --list"
        )
    elif lifecycle and event_type is not None:
        raise click.ClickException("--lifecycle posts its own sequence: drop EVENT_TYPE")
    elif not lifecycle and event_type is None:
        raise click.ClickException(f"name an EVENT_TYPE or pass --lifecycle; {_LIST_HINT}")
    settings = cli_settings()
    # Built quietly: whether a provider is configured is this command's to say.
    adapters = {name: cls(settings) for name, cls in adapter_classes().items()}
    if list_types:
        _list(settings, adapters, provider)
        return
    assert provider is not None  # noqa: S101 - refused above
    adapter = adapters[provider]
    config = _endpoint(settings, adapter, endpoint)
    target = _webhook_url(url, provider, endpoint)
    if not lifecycle:
        assert event_type is not None  # noqa: S101 - refused above
        if event_type not in adapter.sample_event_types():
            # The refused value is not repeated (it could be anything typed in its place).
            hint = difflib.get_close_matches(event_type, adapter.sample_event_types(), n=1)
            closest = f" (did you mean {hint[0]}?)" if hint else ""
            raise click.ClickException(
                f"EVENT_TYPE: not a {provider} sample event type{closest}; {_LIST_HINT}"
            )
        try:
            event = adapter.sample_event(event_type)
        except ValueError as exc:
            raise click.ClickException(f"{exc}; {_LIST_HINT}") from None
        response = _post(adapter, config, target, event, event_id=_event_id(event))
        click.echo(f"POST {_shown(target)} -> {response.status_code}")
        click.echo(response.text.strip())
        if not response.ok:
            sys.exit(1)
        return
    try:
        sequence = adapter.sample_lifecycle()
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    posted: list[str] = []
    for step_type, event in sequence:
        event_id = _event_id(event)
        response = _post(adapter, config, target, event, event_id=event_id)
        click.echo(
            f"POST {_shown(target)} {step_type} -> {response.status_code} {_outcome(response)}"
        )
        if not response.ok:
            sys.exit(1)
        posted.append(event_id)
    _show_records(settings, provider, endpoint, posted)


def _event_id(event: dict[str, Any]) -> str:
    """Return the event's id; a body without one (Razorpay's) gets one for its header."""
    return str(event.get("id") or f"evt_{secrets.token_hex(8)}")


def _list(settings: Settings, adapters: dict[str, Adapter], only: str | None) -> None:
    for name, adapter in sorted(adapters.items()):
        if only is not None and name != only:
            continue
        enabled = [e.name for e in settings.endpoints if e.provider == name and adapter.enabled(e)]
        state = (
            f"configured (endpoints: {', '.join(enabled)})"
            if enabled
            else f"not configured: {adapter.how_to_enable()}"
        )
        click.echo(f"{name}: {state}")
        stored = set(adapter.supported_event_types())
        for event_type in adapter.sample_event_types():
            note = "" if event_type in stored else "  (acknowledged as ignored: stores no record)"
            click.echo(f"  {event_type}{note}")
    click.echo(
        "Post one with `paysieve simulate PROVIDER EVENT_TYPE`, or a customer's whole "
        "sequence with `paysieve simulate PROVIDER --lifecycle`."
    )


def _endpoint(settings: Settings, adapter: Adapter, endpoint: str) -> EndpointConfig:
    """Return the configured, enabled endpoint, or refuse naming the valid ones."""
    names = sorted(e.name for e in settings.endpoints if e.provider == adapter.name)
    config = settings.endpoint(adapter.name, endpoint)
    if config is None and names:
        raise click.ClickException(
            f"--endpoint: {adapter.name} has no such endpoint; choose from {', '.join(names)}"
        )
    if config is None or not adapter.enabled(config):
        # A name no endpoint has is not repeated; "default" is the one to configure.
        named = f" {endpoint!r}" if config is not None or endpoint == "default" else ""
        raise click.ClickException(
            f"{adapter.name} endpoint{named} is not configured: {adapter.how_to_enable()}"
        )
    return config


def _post(
    adapter: Adapter,
    config: EndpointConfig,
    target: str,
    event: dict[str, Any],
    *,
    event_id: str,
) -> requests.Response:
    raw_body = orjson.dumps(event)
    headers = adapter.sign(raw_body, config, timestamp=int(time.time()), event_id=event_id)
    headers["Content-Type"] = "application/json"
    try:
        return requests.post(target, data=raw_body, headers=headers, timeout=10)
    except requests.RequestException as exc:
        raise click.ClickException(
            f"cannot reach the gateway at {_shown(target)}: {type(exc).__name__}"
        ) from None


def _outcome(response: requests.Response) -> str:
    """Return the gateway's status word (stored, duplicate, ignored) or its error code."""
    try:
        body = response.json()
    except ValueError:
        return "(no JSON answer)"
    if isinstance(body, dict) and isinstance(body.get("status"), str):
        return str(body["status"])
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return f"{error.get('code')}: {error.get('message')}"
    return "(unexpected answer)"


def _show_records(settings: Settings, provider: str, account: str, event_ids: list[str]) -> None:
    """Print the records the posted events touched, read from the configured database."""
    from gateway.api.records import serve_record

    cipher = crypto.cipher_from_settings(
        settings.data_keys, settings.data_keys_file, settings.index_key
    )
    store = Store(make_engine(settings.database_url), cipher)
    try:
        found = _touched_records(store, provider, account, event_ids)
    finally:
        store.engine.dispose()
    served = {
        name: [serve_record(record_type, values) for values in rows]
        for name, record_type, rows in found
    }
    if not any(served.values()):
        click.echo(
            f"No records of these events in {safe_url(settings.database_url)}: the gateway "
            "posted to may use another database.",
            err=True,
        )
        return
    click.echo(f"Records in {safe_url(settings.database_url)}, as GET /v1/... serves them:")
    click.echo(orjson.dumps(served, option=orjson.OPT_INDENT_2).decode())


def _touched_records(
    store: Store, provider: str, account: str, event_ids: list[str]
) -> list[tuple[str, str, list[dict[str, Any]]]]:
    """Return (section, record type, opened rows) of the records some events touched."""
    from gateway.storage.joined import open_transaction

    with store.engine.connect() as conn:
        seqs = (
            conn.execute(
                select(events.c.seq).where(
                    events.c.provider == provider,
                    events.c.account == account,
                    events.c.id.in_(event_ids),
                )
            )
            .scalars()
            .all()
        )
        touched: dict[str, set[str]] = {name: set() for name in RECORD_TYPES}
        for obj in conn.execute(select(event_objects).where(event_objects.c.event_seq.in_(seqs))):
            # A payment method's token is sealed here: it is found by its blind index.
            ident = obj.object_bidx if obj.record_type == "payment_method" else obj.object_id
            touched.setdefault(obj.record_type, set()).add(ident)
        own = [transactions.c.provider == provider, transactions.c.account == account]
        txns = conn.execute(
            transactions_with_methods()
            .where(*own, transactions.c.id.in_(sorted(touched["transaction"])))
            .order_by(transactions.c.pk)
        ).mappings()
        opened_txns = [open_transaction(store.cipher, dict(row)) for row in txns]
        pms = conn.execute(
            select(payment_methods)
            .where(
                payment_methods.c.provider == provider,
                payment_methods.c.account == account,
                payment_methods.c.token_bidx.in_(sorted(touched["payment_method"])),
            )
            .order_by(payment_methods.c.pk)
        ).mappings()
        opened_pms = [store.cipher.open_row(payment_methods.name, dict(row)) for row in pms]
        subs = conn.execute(
            select(subscriptions)
            .where(
                subscriptions.c.provider == provider,
                subscriptions.c.account == account,
                subscriptions.c.id.in_(sorted(touched["subscription"])),
            )
            .order_by(subscriptions.c.pk)
        ).mappings()
        opened_subs = [store.cipher.open_row(subscriptions.name, dict(row)) for row in subs]
    return [
        ("transactions", "transaction", opened_txns),
        ("payment_methods", "payment_method", opened_pms),
        ("subscriptions", "subscription", opened_subs),
    ]


def _webhook_url(url: str | None, provider: str, endpoint: str) -> str:
    path = f"/webhooks/{provider}" + ("" if endpoint == "default" else f"/{endpoint}")
    if url is None:
        return f"http://127.0.0.1:8000{path}"
    if "/webhooks/" in url:
        return url
    return url.rstrip("/") + path


def _shown(url: str) -> str:
    """Return a URL as printed: a password in it is masked."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        # Unparseable (an unclosed [IPv6 bracket]): nothing of it is shown.
        return "the --url given"
    if password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))
