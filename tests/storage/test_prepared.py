"""Prepared statements: compiled once, bound by the column types' own processors, on the driver."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Column, Engine, MetaData, Table, bindparam, literal, select

from gateway.core.errors import CardDataRefused
from gateway.storage.prepared import Prepared, PreparedCache, StatementBatch
from gateway.storage.tables import Number, Text, UTCDateTime

PAN = "4242424242424242"

probe = Table(
    "prepared_probe",
    MetaData(),
    Column("name", Text(64), primary_key=True),
    Column("amount", Number()),
    Column("at", UTCDateTime()),
)


@pytest.fixture
def table(engine: Engine) -> Iterator[Table]:
    """Create a table of guarded columns for the test; drop it after."""
    probe.create(engine, checkfirst=True)
    yield probe
    probe.drop(engine)


def insert(engine: Engine) -> Prepared:
    return Prepared(
        probe.insert().values({c.name: bindparam(c.name, type_=c.type) for c in probe.c}),
        engine.dialect,
    )


def run(engine: Engine, prepared: Prepared, *rows: dict[str, Any]) -> None:
    """Run a prepared statement on the driver's cursor inside one SQLAlchemy transaction."""
    with engine.begin() as conn:
        cursor = conn.connection.cursor()
        try:
            for row in rows:
                prepared.execute(cursor, row)
        finally:
            cursor.close()


def stored(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(select(probe).order_by(probe.c.name))]


def test_a_row_is_written_as_sqlalchemy_would_write_it(engine: Engine, table: Table) -> None:
    # +02:00 in, the same instant in UTC out: UTCDateTime's bind processor ran.
    at = datetime(2026, 3, 2, 16, 0, tzinfo=timezone(timedelta(hours=2)))
    run(engine, insert(engine), {"name": "a", "amount": 1250, "at": at})
    assert stored(engine) == [("a", 1250, datetime(2026, 3, 2, 14, 0, tzinfo=UTC))]


@pytest.mark.parametrize(
    "row",
    [
        {"name": f"card {PAN}", "amount": 1, "at": None},
        {"name": "a", "amount": int(PAN), "at": None},
    ],
    ids=["text", "number"],
)
def test_a_card_number_is_refused_by_the_column_type(
    engine: Engine, table: Table, row: dict[str, Any]
) -> None:
    with pytest.raises(CardDataRefused) as refused:
        run(engine, insert(engine), {"name": "first", "amount": 2, "at": None}, row)
    assert PAN not in str(refused.value)
    # The refusal rolled back the whole transaction, the row before it too.
    assert stored(engine) == []


def test_a_naive_timestamp_is_refused(engine: Engine, table: Table) -> None:
    with pytest.raises(ValueError, match="naive"):
        run(engine, insert(engine), {"name": "a", "amount": 1, "at": datetime(2026, 3, 2)})
    assert stored(engine) == []


def test_parameters_follow_the_drivers_style(engine: Engine) -> None:
    parameters = insert(engine).parameters({"name": "a", "amount": 7, "at": None})
    if engine.dialect.positional:
        assert parameters == ("a", 7, None)
    else:
        assert parameters == {"name": "a", "amount": 7, "at": None}


def test_only_named_parameters_are_taken(engine: Engine) -> None:
    with pytest.raises(ValueError, match="named parameters only"):
        Prepared(select(probe.c.name).where(probe.c.amount == literal(5)), engine.dialect)


def test_a_statement_is_compiled_once_per_key(engine: Engine) -> None:
    cache = PreparedCache(engine.dialect)
    built: list[str] = []

    def build() -> Any:
        built.append("once")
        return probe.insert().values({c.name: bindparam(c.name, type_=c.type) for c in probe.c})

    first = cache.get("probe", build)
    assert cache.get("probe", build) is first
    assert built == ["once"]


class _Cursor:
    """A psycopg ClientCursor stand-in: mogrify quotes, execute records, result sets in turn."""

    def __init__(self, results: list[list[tuple[Any, ...]] | None]) -> None:
        self.sent: list[str] = []
        self._results = results
        self._at = 0
        self.closed = False

    def mogrify(self, sql: str, params: dict[str, Any]) -> str:
        return sql % {k: repr(v) for k, v in params.items()}

    def execute(self, sql: str) -> None:
        self.sent.append(sql)
        self._at = 0

    @property
    def description(self) -> object:
        return self._results[self._at] is not None or None

    def fetchall(self) -> list[tuple[Any, ...]]:
        rows = self._results[self._at]
        assert rows is not None
        return rows

    def nextset(self) -> bool | None:
        self._at += 1
        return self._at < len(self._results) or None

    def close(self) -> None:
        self.closed = True


def test_a_batch_sends_its_statements_in_one_round_trip() -> None:
    cursor = _Cursor([None, None, None, [(1,), (2,)]])
    batch = StatementBatch(cursor)
    batch.execute("BEGIN")
    batch.executemany("INSERT INTO t VALUES (%(n)s)", [{"n": 1}, {"n": 2}])
    batch.execute("SELECT n FROM t")
    assert cursor.sent == []
    assert batch.results() == [None, None, None, [(1,), (2,)]]
    assert cursor.sent == [
        "BEGIN; INSERT INTO t VALUES (1); INSERT INTO t VALUES (2); SELECT n FROM t"
    ]
    assert batch.results() == []


def test_a_batch_binds_on_the_client_and_reads_each_result_on_postgresql(
    engine: Engine, dialect: str
) -> None:
    if dialect != "postgresql":
        pytest.skip("StatementBatch is PostgreSQL's: SQLite runs statements one by one")
    from psycopg import ClientCursor

    with engine.connect() as conn:
        batch = StatementBatch(ClientCursor(conn.connection.dbapi_connection))
        batch.execute("SELECT %(a)s::int", {"a": 1})
        batch.execute("SELECT %(b)s::text", {"b": "it's"})
        assert batch.results() == [[(1,)], [("it's",)]]
        batch.close()


def test_a_closed_batch_drops_what_it_queued() -> None:
    cursor = _Cursor([None])
    batch = StatementBatch(cursor)
    batch.execute("BEGIN")
    batch.close()
    assert cursor.closed
    assert batch.results() == []
    assert cursor.sent == []
