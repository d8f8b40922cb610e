"""The HTML report is a page a person opens: headless Chromium renders its tables and charts."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import Engine

from gateway.cli import main
from tests.support.webhooks import sample, signed_post

PAN = "4242424242424242"
DELIVERED = (
    "charge.succeeded",
    "charge.refunded",
    "customer.subscription.created",
    "refund.failed",
    "checkout.session.async_payment_succeeded",
)


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is missing in CI (.ci/run installs it)")
        pytest.skip("chromium is not installed: apt-get install -y chromium")
    return found


def _flags(profile: Path) -> list[str]:
    return [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
    ]


@pytest.fixture
def report(client: FlaskClient, engine: Engine, database_url: str, tmp_path: Path) -> Path:
    """Write the report of a database that saw deliveries and one guard hit."""
    for event_type in DELIVERED:
        event = sample("stripe", event_type)
        event["data"]["object"]["metadata"] = {PAN: "Jenny Rosen"}
        assert signed_post(client, "stripe", event).status_code == 200
    bad = sample("stripe", "charge.succeeded")
    bad["data"]["object"]["status"] = PAN
    assert signed_post(client, "stripe", bad).status_code == 200
    path = tmp_path / "report.html"
    outcome = CliRunner().invoke(
        main,
        ["audit", "--format", "html", "--report", str(path)],
        env={"PAYSIEVE_DATABASE_URL": database_url},
    )
    assert outcome.exit_code == 0, outcome.output
    assert "<svg" in outcome.stdout
    return path


def test_report_has_no_values_and_no_external_assets(report: Path) -> None:
    page = report.read_text(encoding="utf-8")
    assert PAN not in page and "Jenny" not in page
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org", "")
    assert "https://" not in page


def test_report_lists_the_event_types_delivered(report: Path) -> None:
    page = report.read_text(encoding="utf-8")
    assert '<table class="event-types" data-provider="stripe">' in page
    for event_type in DELIVERED[1:]:
        assert f"<tr><td><code>{event_type}</code></td><td class='n'>1</td></tr>" in page
    # charge.succeeded was delivered twice (once with a card number as its status).
    assert "<tr><td><code>charge.succeeded</code></td><td class='n'>2</td></tr>" in page


def test_chromium_renders_tables_and_charts(report: Path, tmp_path: Path) -> None:
    chromium = _chromium()
    flags = _flags(tmp_path / "profile")
    dom = subprocess.run(  # noqa: S603 - fixed arguments
        [chromium, *flags, "--dump-dom", report.as_uri()],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert '<table id="findings"' in dom
    assert 'class="trail" data-provider="stripe"' in dom
    assert 'id="guard-hits"' in dom
    assert dom.count("<svg") >= 2
    assert "data.object.amount" in dom
    shot = tmp_path / "report.png"
    subprocess.run(  # noqa: S603 - fixed arguments
        [chromium, *flags, f"--screenshot={shot}", "--window-size=1100,1600", report.as_uri()],
        capture_output=True,
        timeout=60,
        check=True,
    )
    assert shot.stat().st_size > 10_000
    if os.environ.get("AUDIT_REPORT_SCREENSHOT"):
        shutil.copy(shot, os.environ["AUDIT_REPORT_SCREENSHOT"])
