"""Run the shipped self-test modules on the suite's database (SQLite or PostgreSQL)."""

from __future__ import annotations

import pytest

from gateway.audit.selftest.evidence import EVIDENCE
from gateway.storage.engine import make_engine
from tests.support.database import empty_tables


@pytest.fixture(scope="session")
def audit_database_url(database_url: str) -> str:
    """Use the suite's session database, emptied, instead of the self-test's temporary SQLite.

    Emptied of what earlier tests left: the audit app checks at startup that every stored
    value opens under its own data key.
    """
    engine = make_engine(database_url)
    empty_tables(engine)
    engine.dispose()
    return database_url


@pytest.fixture
def audit_examples(request: pytest.FixtureRequest) -> int:
    """Return payloads per event type: 3 here (the suite runs twice in CI), 10 in --self-test."""
    chosen = request.config.getoption("--paysieve-examples", default=None)
    return int(chosen) if chosen else 3


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the field-allowlist evidence when its tests ran."""
    if EVIDENCE.cases:
        terminalreporter.write_line(EVIDENCE.summary())
