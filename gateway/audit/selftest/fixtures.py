"""Fixtures of the shipped self-test; the source checkout's suite overrides the database ones."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway.storage.engine import make_engine
from gateway.storage.migrate import upgrade

DEFAULT_EXAMPLES = 10


@pytest.fixture(scope="session")
def audit_database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Return a freshly migrated temporary SQLite database."""
    path = tmp_path_factory.mktemp("paysieve-audit") / "paysieve.db"
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url


@pytest.fixture
def audit_examples(request: pytest.FixtureRequest) -> int:
    """Return how many payloads to generate per event type."""
    chosen = request.config.getoption("--paysieve-examples", default=None)
    return int(chosen) if chosen else DEFAULT_EXAMPLES
