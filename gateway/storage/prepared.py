"""Statements compiled once per dialect and run on the driver with only their parameters bound.

SQLAlchemy caches compiled SQL, but finds the cache entry by walking the statement
to build its cache key on every execution; for the ordered upserts (a CASE per
field) that walk cost more than the database's own work, and its per-execution
bookkeeping (events, result objects) about as much again. The webhook path runs a
handful of fixed statements many times, so it compiles each one once with
SQLAlchemy and hands the driver's cursor the SQL string and the parameters,
processed by the same type processors SQLAlchemy would use. The cursor belongs to
a connection SQLAlchemy checked out and began a transaction on, so pooling,
BEGIN IMMEDIATE, commit and rollback stay SQLAlchemy's. On PostgreSQL, where each
round trip costs more than the statements, StatementBatch sends them together and
BEGIN and COMMIT with them; rollback on failure is still SQLAlchemy's.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler


class Prepared:
    """One statement compiled for one dialect; binds rows the way SQLAlchemy would."""

    __slots__ = ("_names", "_positional", "_processors", "sql")

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        if not isinstance(compiled, SQLCompiler):
            raise TypeError("only SQL statements can be prepared")
        self.sql = compiled.string
        binds = compiled.binds
        self._processors: dict[str, Callable[[Any], Any]] = {}
        for key, bind in binds.items():
            # Every parameter comes from the row: a value baked into the statement
            # (literal(), a constant) would need the anonymous names SQLAlchemy makes up.
            if not bind.required or bind.key != key or key.startswith("%("):
                raise ValueError(f"prepared statements take named parameters only, not {key!r}")
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                self._processors[key] = process
        positional = compiled.positiontup
        self._positional = positional is not None
        self._names: tuple[str, ...] = tuple(positional if positional is not None else binds)

    def parameters(self, row: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        """Return the driver's parameters for one row: ordered for ?, named for %(name)s."""
        values = {name: row[name] for name in self._names}
        for key, process in self._processors.items():
            value = values[key]
            if value is not None:
                values[key] = process(value)
        if self._positional:
            return tuple(values[name] for name in self._names)
        return values

    def execute(self, cursor: Any, row: Mapping[str, Any]) -> Any:
        """Run the statement for one row on a driver cursor; return the cursor."""
        cursor.execute(self.sql, self.parameters(row))
        return cursor

    def executemany(self, cursor: Any, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run the statement once per row, as one driver call."""
        if rows:
            cursor.executemany(self.sql, [self.parameters(r) for r in rows])


class PreparedCache:
    """Prepared statements by key, built on first use (a race builds one twice, harmlessly)."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._built: dict[Hashable, Prepared] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, build: Callable[[], ClauseElement]) -> Prepared:
        """Return the statement for key, compiling build() the first time."""
        prepared = self._built.get(key)
        if prepared is None:
            prepared = Prepared(build(), self.dialect)
            with self._lock:
                self._built.setdefault(key, prepared)
        return prepared


class StatementBatch:
    """A cursor stand-in for psycopg that sends the statements it is given together.

    Each round trip to PostgreSQL costs more than the statements the webhook path
    sends, so their parameters are bound on this side (psycopg's ClientCursor quotes
    them) and the statements queue until a result is needed, then go out as one
    multi-statement query: one round trip however many there are. The connection is
    in autocommit mode and the caller sends BEGIN and COMMIT as statements of its own.
    """

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor
        self._pending: list[str] = []

    def execute(self, sql: str, params: Any = None) -> StatementBatch:
        """Queue one statement."""
        if params is None:
            self._pending.append(sql)
        else:
            self._pending.append(self._cursor.mogrify(sql, params))
        return self

    def executemany(self, sql: str, params: Sequence[Any]) -> None:
        """Queue one statement per parameter set."""
        for each in params:
            self.execute(sql, each)

    def results(self) -> list[list[tuple[Any, ...]] | None]:
        """Send what is queued; return each statement's rows (None where it returns none)."""
        if not self._pending:
            return []
        self._cursor.execute("; ".join(self._pending))
        self._pending.clear()
        found: list[list[tuple[Any, ...]] | None] = []
        while True:
            found.append(self._cursor.fetchall() if self._cursor.description else None)
            if not self._cursor.nextset():
                return found

    def fetchone(self) -> tuple[Any, ...] | None:
        """Send what is queued; return the first row of the last statement."""
        rows = self.results()[-1]
        return rows[0] if rows else None

    def close(self) -> None:
        """Close the driver's cursor; statements still queued are dropped."""
        self._pending.clear()
        self._cursor.close()
