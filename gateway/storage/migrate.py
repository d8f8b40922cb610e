"""Schema migrations through Alembic, run from code (``paysieve db upgrade``).

On SQLite, Alembic's batch mode rebuilds a table to alter it (create a copy, copy the
rows, drop the original, rename). Two things of the gateway's SQLite setup would turn
that into data loss, so migrations handle both: foreign keys are on for every
connection (gateway.storage.engine), and dropping ``events`` would cascade to every
``event_objects`` row, so they are off while migrations run and checked after; and
``events`` is AUTOINCREMENT so a seq is never reused, which a rebuilt table would
forget (``sqlite_sequence_kept``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from alembic import command, op
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Connection, Engine, MetaData, String, Table, inspect, select

# Alembic's default version table, which env.py does not rename.
VERSION_TABLE = "alembic_version"
_version = Table(VERSION_TABLE, MetaData(), Column("version_num", String(32), primary_key=True))


def alembic_config(url: str | None = None) -> Config:
    """Return an Alembic config pointing at the packaged migrations."""
    config = Config()
    config.set_main_option("script_location", "gateway.storage:migrations")
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database schema up to the given revision."""
    _run(engine, lambda config: command.upgrade(config, revision))


def downgrade(engine: Engine, revision: str) -> None:
    """Take the database schema down to the given revision."""
    _run(engine, lambda config: command.downgrade(config, revision))


def _run(engine: Engine, step: object) -> None:
    config = alembic_config()
    with engine.connect() as conn, foreign_keys_deferred(conn), conn.begin():
        config.attributes["connection"] = conn
        step(config)  # type: ignore[operator]
        if conn.dialect.name == "sqlite":
            broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
            if broken:
                raise RuntimeError(f"a migration left {len(broken)} rows without their parent")


@contextmanager
def foreign_keys_deferred(conn: Connection) -> Iterator[None]:
    """Switch SQLite's foreign keys off around a migration (a no-op elsewhere).

    The pragma only takes effect outside a transaction, so it is sent on the driver's
    connection before SQLAlchemy begins one, and switched back on after.
    """
    if conn.dialect.name != "sqlite":
        yield
        return
    driver = conn.connection.dbapi_connection
    assert driver is not None  # noqa: S101 - a checked-out connection has one
    driver.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
    finally:
        driver.execute("PRAGMA foreign_keys=ON")


@contextmanager
def sqlite_sequence_kept(table: str) -> Iterator[None]:
    """Keep an AUTOINCREMENT table's sequence across a batch rebuild (SQLite; else a no-op).

    A rebuilt table starts its sequence at the largest key it holds, so a seq whose row
    was purged would be handed out again; the old sequence is put back after.
    """
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        yield
        return
    found = bind.exec_driver_sql(
        "SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)
    ).scalar()
    yield
    if found is None:
        return
    bind.exec_driver_sql("DELETE FROM sqlite_sequence WHERE name = ? AND seq < ?", (table, found))
    bind.exec_driver_sql(
        "INSERT INTO sqlite_sequence (name, seq) SELECT ?, ? "
        "WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = ?)",
        (table, found, table),
    )


def head_revision() -> str | None:
    """Return the newest migration's revision id."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """Return the revision the database is at, or None before the first migration."""
    # Read from Alembic's version table directly: MigrationContext.configure logs two INFO
    # lines per call, which /readyz would repeat on every probe.
    with engine.connect() as conn:
        if not inspect(conn).has_table(VERSION_TABLE):
            return None
        versions = conn.execute(select(_version.c.version_num)).scalars().all()
    if len(versions) > 1:
        # One linear history: Alembic refuses a current revision of several heads too.
        raise RuntimeError(f"the database is at {len(versions)} revisions: {sorted(versions)}")
    return versions[0] if versions else None
