"""Migrations: they build exactly the schema gateway.storage.tables declares, go down and up."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

from gateway.storage.engine import make_engine
from gateway.storage.migrate import current_revision, head_revision, upgrade
from gateway.storage.tables import metadata


def test_migrated_database_matches_the_metadata(engine: Engine) -> None:
    """Autogenerate finds nothing to do: no table, column, index or type only on one side."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, metadata)
    assert diff == []
    assert current_revision(engine) == head_revision()


def test_downgrade_to_0001_and_up_again(tmp_path: Path) -> None:
    from alembic import command

    from gateway.storage.migrate import alembic_config

    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    try:
        upgrade(engine)
        config = alembic_config()
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "0001")
        names = set(inspect(engine).get_table_names())
        assert "api_keys" not in names and "audit_log" not in names
        upgrade(engine)
        assert {"api_keys", "audit_log"} <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
