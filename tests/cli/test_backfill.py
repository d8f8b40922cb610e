"""`paysieve backfill` and `paysieve reconcile`: progress, Ctrl-C and resume, one-line errors."""

from __future__ import annotations

import copy
import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import responses
from click.testing import CliRunner, Result
from sqlalchemy import Engine

from gateway.cli import main
from tests.support.backfill import (
    RAZORPAY_KEY_SECRET,
    STRIPE_EVENTS,
    STRIPE_KEY,
    stripe_page,
)
from tests.support.database import TEST_DATA_KEY, TEST_INDEX_KEY, all_rows, assert_nowhere
from tests.support.planting import plant
from tests.support.webhooks import STRIPE_SECRET, sample


@pytest.fixture
def config(tmp_path: Path, database_url: str, engine: Engine) -> Path:
    """Write a configuration with Stripe and Razorpay endpoints on the test database."""
    path = tmp_path / "paysieve.toml"
    path.write_text(
        f'database_url = "{database_url}"\n'
        f'data_keys = ["{TEST_DATA_KEY}"]\n'
        f'index_key = "{TEST_INDEX_KEY}"\n'
        "[[endpoints]]\n"
        'provider = "stripe"\n'
        f'webhook_secrets = ["{STRIPE_SECRET}"]\n'
    )
    return path


@pytest.fixture
def servers() -> Iterator[responses.RequestsMock]:
    """Mock Stripe's API."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mocked:
        yield mocked


def invoke(config: Path, *args: str, **env: str) -> Result:
    return CliRunner().invoke(
        main,
        list(args),
        env={"PAYSIEVE_CONFIG": str(config), "PAYSIEVE_STRIPE_API_KEY": STRIPE_KEY, **env},
    )


def test_backfill_reports_what_it_stored(
    config: Path,
    engine: Engine,
    database_url: str,
    servers: responses.RequestsMock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    events = [sample("stripe", "charge.succeeded"), sample("stripe", "payment_method.attached")]
    planted = [value for event in events for value in plant(event)]
    servers.get(STRIPE_EVENTS, json=stripe_page(events, has_more=False))
    result = invoke(config, "backfill", "stripe", "--since", "1d")
    assert result.exit_code == 0, result.output
    assert "Backfilling stripe/default" in result.output
    assert "  stored: 2" in result.output and "  duplicate: 0" in result.output
    assert len(all_rows(engine)["events"]) == 2
    assert STRIPE_KEY not in result.output and STRIPE_KEY not in caplog.text
    assert_nowhere(planted, engine, database_url, result.output, caplog.text)


def test_dry_run_says_what_it_would_store(
    config: Path, engine: Engine, servers: responses.RequestsMock
) -> None:
    servers.get(
        STRIPE_EVENTS, json=stripe_page([sample("stripe", "charge.succeeded")], has_more=False)
    )
    result = invoke(config, "backfill", "stripe", "--since", "2d", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "nothing was stored" in result.output and "  would store: 1" in result.output
    assert all(rows == [] for rows in all_rows(engine).values())


def test_ctrl_c_stops_after_the_page_and_the_printed_command_resumes(
    config: Path, engine: Engine, servers: responses.RequestsMock
) -> None:
    first = [sample("stripe", "charge.succeeded") for _ in range(2)]
    second = [sample("stripe", "charge.succeeded")]

    def interrupted_page(request: Any) -> tuple[int, dict[str, str], bytes]:
        # The operator presses Ctrl-C while this page is on its way.
        os.kill(os.getpid(), signal.SIGINT)
        return 200, {}, orjson.dumps(stripe_page(first, has_more=True))

    servers.add_callback(responses.GET, STRIPE_EVENTS, callback=interrupted_page)
    result = invoke(config, "backfill", "stripe", "--since", "2026-12-01")
    assert result.exit_code == 130, result.output
    assert "Stopping after this page" in result.output
    found = re.search(r"resume with `paysieve (backfill stripe [^`]+)`", result.output)
    assert found, result.output
    assert len(all_rows(engine)["events"]) == 2
    assert len(all_rows(engine)["backfill_checkpoints"]) == 1

    servers.replace(responses.GET, STRIPE_EVENTS, json=stripe_page(second, has_more=False))
    resumed = invoke(config, *found.group(1).split())
    assert resumed.exit_code == 0, resumed.output
    assert "Resuming from the checkpoint (2 objects read before)" in resumed.output
    assert servers.calls[-1].request.params["starting_after"] == first[-1]["id"]
    assert len(all_rows(engine)["events"]) == 3
    assert all_rows(engine)["backfill_checkpoints"] == []


def test_a_refused_key_is_one_line_naming_the_variable(
    config: Path, servers: responses.RequestsMock
) -> None:
    servers.get(STRIPE_EVENTS, status=401, json={"error": {"message": "Expired API Key"}})
    result = invoke(config, "backfill", "stripe", "--since", "1d")
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[-1] == (
        "Error: stripe API refused the credentials (HTTP 401): check PAYSIEVE_STRIPE_API_KEY"
        " (a restricted key with Events: Read)"
    )
    assert "Traceback" not in result.output and STRIPE_KEY not in result.output


def test_a_missing_key_is_one_line_naming_the_variable(config: Path) -> None:
    result = CliRunner().invoke(
        main, ["backfill", "stripe", "--since", "1d"], env={"PAYSIEVE_CONFIG": str(config)}
    )
    assert result.exit_code == 1
    assert "set PAYSIEVE_STRIPE_API_KEY to a restricted key with Events: Read" in result.output


def test_an_unconfigured_endpoint_is_one_line(config: Path) -> None:
    result = invoke(config, "backfill", "razorpay", "--since", "1d")
    assert result.exit_code == 1
    assert "no razorpay endpoint named 'default' is configured" in result.output


@pytest.mark.parametrize("since", ["yesterday", "2026-13-01", "5w"])
def test_a_bad_time_names_the_option(config: Path, since: str) -> None:
    result = invoke(config, "backfill", "stripe", "--since", since)
    assert result.exit_code == 2
    assert "--since" in result.output and "expected a time such as" in result.output


@pytest.mark.parametrize("command", ["backfill", "reconcile"])
@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--since", "999999d"),
        ("--since", "0001-01-01T00:00:00+01:00"),
        ("--until", "9999-12-31T23:00:00-05:00"),
    ],
)
def test_a_time_out_of_range_is_one_line_naming_the_option(
    config: Path, command: str, option: str, value: str
) -> None:
    args = ["--since", "1d", option, value] if option == "--until" else [option, value]
    result = invoke(config, command, "stripe", *args)
    assert result.exit_code == 2, result.output
    assert not isinstance(result.exception, OverflowError)
    assert option in result.output and "out of range" in result.output
    assert "Traceback" not in result.output


def test_until_before_since_is_refused(config: Path) -> None:
    result = invoke(config, "backfill", "stripe", "--since", "2026-12-02", "--until", "2026-12-01")
    assert result.exit_code == 1
    assert "--until must be later than --since" in result.output


def test_a_plain_http_api_base_is_refused(config: Path) -> None:
    result = invoke(
        config, "backfill", "stripe", "--since", "1d", PAYSIEVE_STRIPE_API_BASE="http://stub"
    )
    assert result.exit_code == 1
    assert "PAYSIEVE_STRIPE_API_BASE must be https (https://api.stripe.com)" in result.output


def test_reconcile_prints_a_table_and_exits_3_on_differences(
    config: Path, engine: Engine, servers: responses.RequestsMock
) -> None:
    event = sample("stripe", "charge.succeeded")
    servers.get(STRIPE_EVENTS, json=stripe_page([event], has_more=False))
    invoke(config, "backfill", "stripe", "--since", "1d")
    before = all_rows(engine)
    changed = copy.deepcopy(event)
    changed["id"], changed["created"] = event["id"] + "x", event["created"] + 5
    changed["data"]["object"]["status"] = "failed"
    lost = sample("stripe", "charge.succeeded")
    servers.replace(responses.GET, STRIPE_EVENTS, json=stripe_page([changed, lost], has_more=False))

    table = invoke(config, "reconcile", "stripe", "--since", "1d")
    assert table.exit_code == 3, table.output
    assert re.search(r"missing\s+transaction\s+" + lost["data"]["object"]["id"], table.output)
    assert re.search(
        r"differs\s+transaction\s+"
        + event["data"]["object"]["id"]
        + r"\s+status\s+failed\s+succeeded",
        table.output,
    )
    as_json = invoke(config, "reconcile", "stripe", "--since", "1d", "--json")
    assert as_json.exit_code == 3
    document = orjson.loads(as_json.output[as_json.output.index("{") :])
    assert document["missing"] >= 1 and document["differing"] == 1
    assert all_rows(engine) == before


def test_reconcile_exits_0_when_everything_matches(
    config: Path, servers: responses.RequestsMock
) -> None:
    event = sample("stripe", "charge.succeeded")
    servers.get(STRIPE_EVENTS, json=stripe_page([event], has_more=False))
    assert invoke(config, "backfill", "stripe", "--since", "1d").exit_code == 0
    result = invoke(config, "reconcile", "stripe", "--since", "1d")
    assert result.exit_code == 0, result.output
    assert "0 differ or are missing" in result.output


def test_config_check_masks_the_api_credentials(config: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["config", "check"],
        env={
            "PAYSIEVE_CONFIG": str(config),
            "PAYSIEVE_STRIPE_API_KEY": STRIPE_KEY,
            "PAYSIEVE_RAZORPAY_KEY_ID": "rzp_test_visible",
            "PAYSIEVE_RAZORPAY_KEY_SECRET": RAZORPAY_KEY_SECRET,
        },
    )
    assert STRIPE_KEY not in result.output and RAZORPAY_KEY_SECRET not in result.output
    assert "stripe.default.api_key" in result.output


def test_another_endpoint_is_named_by_its_table(tmp_path: Path, config: Path) -> None:
    config.write_text(
        config.read_text()
        + '[[endpoints]]\nprovider = "stripe"\nname = "eu"\n'
        + f'webhook_secrets = ["{STRIPE_SECRET}"]\n'
    )
    result = invoke(config, "backfill", "stripe", "--endpoint", "eu", "--since", "1d")
    assert result.exit_code == 1
    assert "set api_key of stripe endpoint 'eu' to a restricted key" in result.output


@pytest.mark.parametrize("command", ["backfill", "reconcile"])
@pytest.mark.parametrize(
    "args",
    [
        ["4111111111111111", "--since", "1d"],
        ["stripe", "--endpoint", "4111111111111111", "--since", "1d"],
        ["razorpay", "--endpoint", "4111111111111111", "--since", "1d"],
    ],
)
def test_a_refused_provider_or_endpoint_is_not_repeated(
    config: Path, command: str, args: list[str]
) -> None:
    result = invoke(config, command, *args)
    assert result.exit_code == 1, result.output
    assert result.output.count("\n") == 1, result.output
    assert "4111" not in result.output
