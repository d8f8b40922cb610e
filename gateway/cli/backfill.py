"""``paysieve backfill`` and ``paysieve reconcile``: catch up from a provider's API, or compare."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import click
import orjson

from adapters.registry import adapter_classes
from gateway.cli.common import ProviderChoice, cli_settings, interruptible
from gateway.core import crypto
from gateway.ingest.backfill import Backfill, Report, endpoint_for, source_for
from gateway.ingest.pipeline import Pipeline
from gateway.ingest.reconcile import Reconcile, ReconcileReport
from gateway.privacy import data_keys
from gateway.storage.engine import make_engine
from gateway.storage.store import Store

# Exit codes (docs/backfill.md): 1 an error, 2 a usage error (click's), 3 reconcile found
# differences, 130 interrupted with the checkpoint saved.
EXIT_DIFFERENCES = 3
EXIT_INTERRUPTED = 130

_RELATIVE = re.compile(r"^(\d{1,6})([dhm])$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


class _Time(click.ParamType[datetime, object]):
    """A time: RFC 3339 / ISO 8601 (UTC unless it says), a date, or an age such as 7d, 12h, 30m."""

    name = "time"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        if isinstance(value, datetime):
            return value
        text = str(value).strip()
        try:
            return self._moment(text, param, ctx)
        except OverflowError:
            # An age or offset that reaches past year 1 or 9999.
            self.fail("that time is out of range (years 1 to 9999, in UTC)", param, ctx)

    def _moment(
        self, text: str, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        found = _RELATIVE.fullmatch(text)
        if found:
            delta = timedelta(**{_UNITS[found.group(2)]: int(found.group(1))})
            return (datetime.now(UTC) - delta).replace(microsecond=0)
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            self.fail(
                "expected a time such as 2026-12-01T00:00:00Z, a date such as 2026-12-01,"
                " or an age such as 7d, 12h or 30m",
                param,
                ctx,
            )
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC).replace(microsecond=0)


TIME = _Time()
PROVIDERS = ProviderChoice()


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _resume_command(report: Report) -> str:
    endpoint = "" if report.account == "default" else f" --endpoint {report.account}"
    return (
        f"paysieve backfill {report.provider}{endpoint} --since {_stamp(report.since)}"
        f" --until {_stamp(report.until)}"
    )


@contextmanager
def _store() -> Iterator[tuple[Pipeline, Store]]:
    """Yield a pipeline on the configured store (after the data-key check), disposed after."""
    settings = cli_settings()
    cipher = crypto.cipher_from_settings(
        settings.data_keys, settings.data_keys_file, settings.index_key
    )
    store = Store(make_engine(settings.database_url), cipher)
    try:
        data_keys.check_keys(store)
        adapters = {name: cls(settings) for name, cls in adapter_classes().items()}
        yield Pipeline(settings, store, adapters), store
    finally:
        store.engine.dispose()


@click.command()
@click.argument("provider", type=PROVIDERS)
@click.option("--endpoint", "endpoint_name", default="default", show_default=True)
@click.option("--since", required=True, type=TIME, help="Start of the window (time or age).")
@click.option(
    "--until",
    default=None,
    type=TIME,
    help="End of the window (default: now, or the checkpoint's).",
)
@click.option("--dry-run", is_flag=True, help="Store nothing; report what would be stored.")
def backfill(
    provider: str, endpoint_name: str, since: datetime, until: datetime | None, dry_run: bool
) -> None:
    """Fetch missed events and store them.

    Stores what a provider sent in a window, through the webhook pipeline; resumable.
    """
    with _store() as (pipeline, _store_), interruptible("page") as should_stop:
        settings = pipeline.settings
        endpoint = endpoint_for(settings, provider, endpoint_name)
        adapter = pipeline.adapters[provider]
        run = Backfill(
            pipeline,
            adapter,
            endpoint,
            source_for(settings, endpoint, adapter),
            since=since,
            until=until,
            dry_run=dry_run,
            should_stop=should_stop,
        )
        report = run.report
        if report.resumed:
            click.echo(
                f"Resuming from the checkpoint ({report.earlier} objects read before).", err=True
            )
        with click.progressbar(
            run.pages(),
            label=f"Backfilling {provider}/{endpoint_name}",
            show_pos=True,
            item_show_func=lambda page: f"{report.objects} objects" if page else None,
            file=sys.stderr,
        ) as pages:
            for _ in pages:
                pass
    _print_backfill(report)
    if report.interrupted:
        if report.dry_run:
            click.echo("Interrupted (a dry run saves no checkpoint).", err=True)
        else:
            click.echo(
                f"Interrupted; the checkpoint is saved: resume with `{_resume_command(report)}`",
                err=True,
            )
        sys.exit(EXIT_INTERRUPTED)


def _print_backfill(report: Report) -> None:
    counts = report.counts
    window = f"{_stamp(report.since)} to {_stamp(report.until)}"
    if report.dry_run:
        click.echo(f"Dry run of {report.provider}/{report.account}, {window}: nothing was stored.")
        shown = ("would_store", "duplicate", "ignored", "refused", "skipped")
    else:
        click.echo(f"Backfill of {report.provider}/{report.account}, {window}:")
        shown = ("stored", "duplicate", "ignored", "refused", "skipped")
    for name in shown:
        click.echo(f"  {name.replace('_', ' ')}: {counts[name]}")
    if counts["refused"]:
        click.echo(
            f"  {counts['refused']} malformed objects were refused and not stored"
            " (the log names each one's reason)."
        )


@click.command()
@click.argument("provider", type=PROVIDERS)
@click.option("--endpoint", "endpoint_name", default="default", show_default=True)
@click.option("--since", required=True, type=TIME, help="Start of the window (time or age).")
@click.option("--until", default=None, type=TIME, help="End of the window (default: now).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def reconcile(
    provider: str, endpoint_name: str, since: datetime, until: datetime | None, as_json: bool
) -> None:
    """Compare provider objects with stored records.

    Compares a provider's objects in a window with the stored records and writes nothing.
    Exits 3 when some are missing or differ.
    """
    until = until or datetime.now(UTC).replace(microsecond=0)
    with _store() as (pipeline, _store_):
        settings = pipeline.settings
        endpoint = endpoint_for(settings, provider, endpoint_name)
        adapter = pipeline.adapters[provider]
        run = Reconcile(
            pipeline,
            adapter,
            endpoint,
            source_for(settings, endpoint, adapter),
            since=since,
            until=until,
        )
        with click.progressbar(
            run.pages(),
            label=f"Reading {provider}/{endpoint_name}",
            show_pos=True,
            item_show_func=lambda read: f"{read} objects" if read is not None else None,
            file=sys.stderr,
        ) as pages:
            for _ in pages:
                pass
    report = run.report
    if as_json:
        click.echo(orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        _print_reconcile(report)
    if report.differences:
        sys.exit(EXIT_DIFFERENCES)


def _print_reconcile(report: ReconcileReport) -> None:
    click.echo(
        f"Reconcile of {report.provider}/{report.account},"
        f" {_stamp(report.since)} to {_stamp(report.until)}: {report.objects} objects read,"
        f" {report.compared} records compared, {report.matching} match,"
        f" {len(report.differences)} differ or are missing"
        + (f", {report.refused} refused" if report.refused else "")
        + (f", {report.erased} of erased customers not compared" if report.erased else "")
    )
    if not report.differences:
        return
    rows = [("STATE", "RECORD", "ID", "FIELD", "PROVIDER", "STORED")]
    for difference in report.differences:
        if not difference.fields:
            rows.append((difference.kind, difference.record_type, difference.id, "", "", ""))
        for each in difference.fields:
            rows.append(
                (
                    difference.kind,
                    difference.record_type,
                    difference.id,
                    each.name,
                    _cell(each.provider),
                    _cell(each.stored),
                )
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return _stamp(value)
    return str(value)
