"""The database scan: clean databases pass, planted card data and extra columns are findings."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import Engine, column, select, table, text, update

from gateway.audit import allowlist, scan
from gateway.audit.report import render_text
from gateway.cli import main
from gateway.storage.tables import audit_log, transactions
from tests.support.webhooks import sample, signed_post

PAN = "4000 0566 5566 5556"
PAN_DIGITS = PAN.replace(" ", "")


def plant(conn: Any, pk: int, name: str, value: object) -> None:
    """Write a value behind the gateway's back: untyped columns skip the storage boundary."""
    raw = table("transactions", column("pk"), column(name))
    conn.execute(update(raw).where(raw.c.pk == pk).values({name: value}))


@pytest.fixture
def stored(client: FlaskClient, engine: Engine) -> Engine:
    """Return the engine after a few real deliveries."""
    for event_type in ("charge.succeeded", "customer.subscription.created", "refund.created"):
        assert signed_post(client, "stripe", sample("stripe", event_type)).status_code == 200
    return engine


def _run(database_url: str, *args: str) -> Any:
    runner = CliRunner()
    return runner.invoke(main, ["audit", *args], env={"PAYSIEVE_DATABASE_URL": database_url})


def test_clean_database_has_no_finding(stored: Engine, database_url: str) -> None:
    result = scan.scan(stored, allowlist.load(), batch_size=100)
    assert result.findings == []
    assert result.rows > 0
    outcome = _run(database_url)
    assert outcome.exit_code == 0, outcome.output
    assert "no findings" in outcome.output


def test_pan_planted_by_hand_is_found_without_printing_it(
    stored: Engine, database_url: str
) -> None:
    with stored.begin() as conn:
        pk = conn.execute(select(transactions.c.pk).limit(1)).scalar_one()
        plant(conn, pk, "provider_status", PAN)
    result = scan.scan(stored, allowlist.load(), batch_size=100)
    assert [(f.kind, f.table, f.column, f.row) for f in result.findings] == [
        ("pan", "transactions", "provider_status", str(pk))
    ]
    outcome = _run(database_url, "--format", "json")
    assert outcome.exit_code == 1
    assert PAN not in outcome.output and PAN_DIGITS not in outcome.output
    report = orjson.loads(outcome.stdout)
    assert report["ok"] is False and report["findings"][0]["column"] == "provider_status"
    with stored.connect() as conn:
        entry = conn.execute(select(audit_log).order_by(audit_log.c.seq.desc())).first()
    assert entry is not None and (entry.action, entry.outcome) == ("audit.scan", "findings")


def test_track_data_and_numeric_pan_are_found(stored: Engine) -> None:
    with stored.begin() as conn:
        first, second = conn.execute(select(transactions.c.pk).limit(2)).scalars().all()[:2]
        plant(conn, first, "provider_status", ";4111111111111111=2512101")
        plant(conn, second, "amount", 4111111111111111)
    kinds = {(f.kind, f.column) for f in scan.scan(stored, allowlist.load()).findings}
    assert kinds == {("track", "provider_status"), ("pan", "amount")}


def test_extra_column_is_a_finding(stored: Engine, database_url: str) -> None:
    with stored.begin() as conn:
        conn.execute(text("ALTER TABLE transactions ADD COLUMN card_cvv VARCHAR(8)"))
    try:
        findings = scan.scan(stored, allowlist.load()).findings
        assert ("extra_column", "transactions", "card_cvv") in {
            (f.kind, f.table, f.column) for f in findings
        }
        assert ("cvv_key", "transactions", "card_cvv") in {
            (f.kind, f.table, f.column) for f in findings
        }
        assert _run(database_url).exit_code == 1
    finally:
        with stored.begin() as conn:
            conn.execute(text("ALTER TABLE transactions DROP COLUMN card_cvv"))


def test_batches_cover_every_row(stored: Engine) -> None:
    with stored.connect() as conn:
        total = sum(
            conn.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one()  # noqa: S608
            for name in allowlist.load().expected_columns()
            if name != "alembic_version"
        )
    result = scan.scan(stored, allowlist.load(), batch_size=100)
    # alembic_version has one row.
    assert result.rows == total + 1
    assert "no findings" in render_text(result)


@pytest.mark.parametrize(
    "written",
    ["4000_0566_5566_5556", "5555:5555:5555:4444", "3782--822463--10005", "4111|1111/1111\\1111"],
)
def test_scan_reads_through_every_separator_the_gateway_refuses(
    stored: Engine, written: str
) -> None:
    # What the storage boundary would refuse, the scan finds when it got in another way.
    with stored.begin() as conn:
        pk = conn.execute(select(transactions.c.pk).limit(1)).scalar_one()
        plant(conn, pk, "provider_status", written)
    findings = scan.scan(stored, allowlist.load()).findings
    assert [(f.kind, f.column, f.row) for f in findings] == [("pan", "provider_status", str(pk))]
