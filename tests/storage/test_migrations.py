"""Migrations: they build exactly the schema gateway.storage.tables declares, go down and up."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.engine import make_url

from gateway.storage.engine import make_engine
from gateway.storage.migrate import current_revision, downgrade, head_revision, upgrade
from gateway.storage.tables import metadata
from tests.support.database import requested_database_url


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


@pytest.fixture
def scratch_engine(tmp_path: Path) -> Iterator[Engine]:
    """Return an engine on a fresh, empty database of the backend under test."""
    requested = requested_database_url()
    if requested is None or requested.startswith("sqlite"):
        engine = make_engine(f"sqlite:///{tmp_path / 'scratch.db'}")
        yield engine
        engine.dispose()
        return
    server = make_url(requested)
    name = f"paysieve_migrate_{secrets.token_hex(4)}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(server.set(database=name).render_as_string(hide_password=False))
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}"'))
        admin.dispose()


_EVENT = (
    "INSERT INTO events (provider, account, id, type, occurred_at, received_at, outcome,"
    " dropped_fields) VALUES ('stripe', 'default', :id, 'charge.succeeded', :at, :at,"
    " 'stored', 0)"
)
_AT = "2026-03-02 14:00:00"


def _new_event(engine: Engine, event_id: str) -> int:
    with engine.begin() as conn:
        conn.execute(text(_EVENT), {"id": event_id, "at": _AT})
        return int(
            conn.execute(
                text("SELECT seq FROM events WHERE id = :id"), {"id": event_id}
            ).scalar_one()
        )


def _counts(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        found = conn.execute(text("SELECT count(*) FROM events")).scalar_one()
        objects = conn.execute(text("SELECT count(*) FROM event_objects")).scalar_one()
    return int(found), int(objects)


def test_migrating_through_0005_keeps_rows_and_never_reuses_a_seq(scratch_engine: Engine) -> None:
    engine = scratch_engine
    upgrade(engine, "0004")
    seqs = [_new_event(engine, f"evt_{n}") for n in range(3)]
    with engine.begin() as conn:
        for seq in seqs[:2]:
            conn.execute(
                text(
                    "INSERT INTO event_objects (event_seq, record_type, object_id)"
                    " VALUES (:seq, 'transaction', :object)"
                ),
                {"seq": seq, "object": f"ch_{seq}"},
            )
        # The newest event is purged: its seq must never be handed out again.
        conn.execute(text("DELETE FROM events WHERE seq = :seq"), {"seq": seqs[2]})
    assert _counts(engine) == (2, 2)

    upgrade(engine)
    # SQLite rebuilds events to add the digests: the change feed's rows must survive it.
    assert _counts(engine) == (2, 2)
    fourth = _new_event(engine, "evt_after_upgrade")
    assert fourth > seqs[2]

    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO erasures (provider, account, kind, bidx, erased_at)"
                " VALUES ('stripe', 'default', 'customer', :bidx, :at)"
            ),
            {"bidx": "0" * 32, "at": _AT},
        )
    # A tombstone is what keeps an erased customer erased: no downgrade drops it.
    with pytest.raises(RuntimeError, match="tombstones"):
        downgrade(engine, "0004")
    assert current_revision(engine) == head_revision()
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM erasures"))

    downgrade(engine, "0004")
    assert _counts(engine) == (3, 2)
    upgrade(engine)
    assert _counts(engine) == (3, 2)
    assert _new_event(engine, "evt_after_round_trip") > fourth
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            ddl = conn.execute(
                text("SELECT sql FROM sqlite_master WHERE name = 'events'")
            ).scalar_one()
        assert "AUTOINCREMENT" in ddl
