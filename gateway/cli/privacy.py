"""The privacy commands: ``paysieve purge``, ``erase``, ``export`` and ``rotate-keys``."""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import orjson

from gateway.api import records
from gateway.cli.common import ProviderChoice, cli_settings, interruptible
from gateway.config.settings import Settings
from gateway.core import crypto
from gateway.privacy import batching, data_keys, retention, rotation
from gateway.privacy import erasure as privacy_erasure
from gateway.privacy import export as privacy_export
from gateway.storage.engine import make_engine
from gateway.storage.store import Store


@contextmanager
def _store(*, allow_clear: bool = False) -> Iterator[tuple[Settings, Store]]:
    """Yield the configured store after the key check; dispose of its engine after."""
    # A ConfigurationError (no key, a key the data needs missing) is the group's to report.
    settings = cli_settings()
    cipher = crypto.cipher_from_settings(
        settings.data_keys, settings.data_keys_file, settings.index_key
    )
    store = Store(make_engine(settings.database_url), cipher)
    try:
        data_keys.check_keys(store, allow_clear=allow_clear)
        yield settings, store
    finally:
        store.engine.dispose()


@click.command()
@click.option("--dry-run", is_flag=True, help="Count what has expired; delete nothing.")
@click.option("--batch-size", default=batching.BATCH_SIZE, show_default=True, type=int)
def purge(dry_run: bool, batch_size: int) -> None:
    """Delete records past their retention.

    Works in batches: safe to interrupt and rerun.
    """
    with _store() as (settings, store):
        now = datetime.now(UTC)
        expected = retention.expired_counts(store, settings, now)
        if dry_run:
            result = retention.purge(store, settings, now=now, dry_run=True)
        else:
            with (
                interruptible("batch") as should_stop,
                click.progressbar(
                    length=sum(expected.values()), label="Purging", file=sys.stderr
                ) as bar,
            ):
                result = retention.purge(
                    store,
                    settings,
                    now=now,
                    batch_size=batch_size,
                    progress=bar.update,
                    should_stop=should_stop,
                )
    verb = "would delete" if dry_run else "deleted"
    for name, count in result.counts.items():
        click.echo(f"{name}: {verb} {count}")
    if result.interrupted:
        click.echo("Interrupted: run `paysieve purge` again to continue.", err=True)
        sys.exit(130)


def _accounts(account: str | None) -> list[str] | None:
    return None if account is None else [account]


@click.command()
@click.option("--provider", required=True, type=ProviderChoice(), help="The provider.")
@click.option("--customer", required=True, help="The provider's customer id.")
@click.option("--account", default=None, help="Only this account (endpoint); default: all.")
def erase(provider: str, customer: str, account: str | None) -> None:
    """Erase a customer's data.

    Deletes payment methods and subscriptions and unlinks kept transactions.
    """
    with _store() as (settings, store):
        erasure = privacy_erasure.erase(
            store,
            provider=provider,
            customer=customer,
            accounts=_accounts(account),
            settings=settings,
        )
    click.echo(orjson.dumps(erasure.as_dict(), option=orjson.OPT_INDENT_2).decode())


@click.command()
@click.option("--provider", required=True, type=ProviderChoice(), help="The provider.")
@click.option("--customer", required=True, help="The provider's customer id.")
@click.option("--account", default=None, help="Only this account (endpoint); default: all.")
@click.option("--format", "fmt", type=click.Choice(["json", "csv"]), default="json")
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="CSV: write one file per record type here instead of sections on stdout.",
)
def export(
    provider: str, customer: str, account: str | None, fmt: str, output_dir: Path | None
) -> None:
    """Export everything held about a customer.

    Every record (GDPR art. 15 and 20) and any erasure, as JSON or CSV.
    """
    with _store() as (_settings_, store):
        document = privacy_export.export(
            store,
            provider=provider,
            customer=customer,
            serialize=records.serve_record,
            accounts=_accounts(account),
        )
    if fmt == "json":
        click.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
        return
    columns = privacy_export.export_columns()
    columns["erasures"] = list(privacy_export.ERASURE_COLUMNS)
    if output_dir is not None:
        output_dir.mkdir(parents=True, exist_ok=True)
        for name, header in columns.items():
            (output_dir / f"{name}.csv").write_text(_csv(header, document[name]), encoding="utf-8")
            click.echo(f"wrote {output_dir / f'{name}.csv'} ({len(document[name])} rows)", err=True)
        return
    # One section per record type, then the erasures: a "# name" line, the header, the
    # rows, a blank line.
    for name, header in columns.items():
        click.echo(f"# {name}")
        click.echo(_csv(header, document[name]))


def _csv(header: list[str], rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    # A CSV cell holds one value: a transaction's payment method is written as its token.
    writer.writerows(
        {name: value["token"] if isinstance(value, dict) else value for name, value in row.items()}
        for row in rows
    )
    return buffer.getvalue()


@click.command("rotate-keys")
@click.option("--batch-size", default=1000, show_default=True, type=int)
def rotate_keys(batch_size: int) -> None:
    """Re-encrypt data under the first data key.

    Every sealed value is re-encrypted in batches; resumable.
    """
    with _store(allow_clear=True) as (_settings_, store):
        total = sum(rotation.rotation_counts(store).values())
        with (
            interruptible("batch") as should_stop,
            click.progressbar(length=total, label="Re-encrypting", file=sys.stderr) as bar,
        ):
            counts = rotation.rotate_keys(
                store, batch_size=batch_size, progress=bar.update, should_stop=should_stop
            )
        kid = store.cipher.current_kid
    if counts.pop("interrupted"):
        click.echo("Interrupted: run `paysieve rotate-keys` again to continue.", err=True)
        sys.exit(130)
    for name, count in counts.items():
        click.echo(f"{name}: re-encrypted {count}")
    click.echo(f"Everything is sealed under key {kid}; older keys may now be removed.")
