"""Alembic environment: runs migrations on the connection or URL it is given."""

from __future__ import annotations

from alembic import context

from gateway.storage.engine import make_engine
from gateway.storage.migrate import foreign_keys_deferred
from gateway.storage.tables import metadata

config = context.config


def run() -> None:
    """Run migrations online, on a passed connection or a fresh engine."""
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=metadata)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    # A connection passed in comes from gateway.storage.migrate, which defers SQLite's foreign
    # keys itself; here the alembic command line runs without it.
    with engine.connect() as conn, foreign_keys_deferred(conn):
        context.configure(connection=conn, target_metadata=metadata)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run()
