"""``paysieve audit``: the database scan, its report, and the shipped self-test."""

from __future__ import annotations

import sys

import click

from gateway.cli.common import cli_settings
from gateway.storage.engine import make_engine


@click.command()
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
    """Scan the database for card data.

    Reports card data and columns outside the allowlist; exits 1 on findings.
    """
    if self_test:
        _self_test(examples)
        return
    from gateway.audit import allowlist, audit_log, scan
    from gateway.audit import report as reports

    settings = cli_settings()
    engine = make_engine(settings.database_url)
    try:
        rows = scan.count_rows(engine)
        with click.progressbar(
            length=rows, label="scanning", file=sys.stderr, show_pos=True
        ) as bar:
            result = scan.scan(engine, allowlist.load(), batch_size=batch_size, progress=bar.update)
        trail = reports.read_trail(engine) if output == "html" or report else None
        with engine.begin() as conn:
            audit_log.append(
                conn,
                actor=audit_log.ACTOR_CLI,
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
