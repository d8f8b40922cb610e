"""The database scan: the live schema against the allowlist, every stored value against the guard.

Findings name a table, a column and a row id, never a value. Rows are read in
keyset batches in primary-key order, so memory stays flat on any size of
database, and each row's values are screened together before any is looked
at alone (almost every row is clean, so one regex search decides it).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from operator import itemgetter
from typing import Any, Final

from sqlalchemy import (
    Column,
    Engine,
    MetaData,
    Table,
    func,
    inspect,
    literal,
    select,
    tuple_,
    type_coerce,
)
from sqlalchemy.types import NullType

from gateway.audit.allowlist import Allowlist
from gateway.core import guard

DEFAULT_BATCH: Final = 5000
# Integers shorter than a card number cannot be one; only longer ones are scanned.
_SMALLEST_PAN: Final = 10**11
# The first screen of a row: its values joined (no card number or track spans the
# joint) with the separators guard allows inside a card number removed, then one
# search for 12 digits in a row. It lets through a superset of what guard.scan_text
# finds (removing separators can only join digit runs), so every value of a row it
# flags is then scanned alone with the guard; most rows never get that far.
_JOIN: Final = "\x00"
# Every character guard.scan_text lets stand between two digits of a card number
# (anything but a letter or a digit), except the joint itself.
_SEPARATORS: Final = re.compile(r"[^\w\x00]|_")
_MAY_HOLD_CARD_DATA: Final = re.compile(r"\d{12}").search

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Finding:
    """One problem: where it is and what kind, never the value."""

    kind: str
    table: str
    column: str | None = None
    row: str | None = None
    detail: str = ""


@dataclass
class ScanResult:
    """What the scan looked at and found."""

    findings: list[Finding] = field(default_factory=list)
    tables: int = 0
    rows: int = 0
    values: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        """Return rows scanned per second."""
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        """Return the result as JSON-ready data."""
        return {
            "ok": not self.findings,
            "tables": self.tables,
            "rows": self.rows,
            "values": self.values,
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rate),
            "findings": [asdict(f) for f in self.findings],
        }


def schema_findings(engine: Engine, allowlist: Allowlist) -> list[Finding]:
    """Compare the live tables and columns with the allowlist."""
    expected = allowlist.expected_columns()
    live = inspect(engine)
    findings: list[Finding] = []
    for table in sorted(live.get_table_names()):
        if table not in expected:
            findings.append(Finding("extra_table", table, detail="table not in the allowlist"))
            continue
        columns = {c["name"] for c in live.get_columns(table)}
        for column in sorted(columns - set(expected[table])):
            findings.append(
                Finding("extra_column", table, column, detail="column not in the allowlist")
            )
        for column in sorted(set(expected[table]) - columns):
            findings.append(
                Finding("missing_column", table, column, detail="allowlisted column is missing")
            )
        for column in sorted(columns):
            if guard.is_sensitive_key(column):
                findings.append(
                    Finding("cvv_key", table, column, detail="column named for security data")
                )
    return findings


def scan(
    engine: Engine,
    allowlist: Allowlist,
    *,
    batch_size: int = DEFAULT_BATCH,
    progress: Progress | None = None,
) -> ScanResult:
    """Scan the schema and every row of every table; return the findings."""
    started = time.perf_counter()
    result = ScanResult(findings=schema_findings(engine, allowlist))
    reflected = MetaData()
    reflected.reflect(bind=engine)
    digests = allowlist.digest_columns()
    for table in sorted(reflected.tables.values(), key=lambda t: t.name):
        result.tables += 1
        shapes = {
            column: re.compile(f"[0-9a-f]{{{length}}}")
            for (name, column), length in digests.items()
            if name == table.name
        }
        for rows in _batches(engine, table, batch_size):
            _scan_rows(table, rows, result, shapes)
            result.rows += len(rows)
            if progress is not None:
                progress(len(rows))
    result.seconds = time.perf_counter() - started
    return result


def count_rows(engine: Engine) -> int:
    """Return how many rows the scan will read (for a progress bar)."""
    reflected = MetaData()
    reflected.reflect(bind=engine)
    total = 0
    with engine.connect() as conn:
        for table in reflected.tables.values():
            total += int(conn.execute(select(func.count()).select_from(table)).scalar_one())
    return total


def _key_columns(table: Table) -> list[Column[Any]]:
    return list(table.primary_key.columns)


def _batches(engine: Engine, table: Table, size: int) -> Iterator[Sequence[Any]]:
    """Yield a table's rows in keyset batches of primary-key order."""
    keys = _key_columns(table)
    with engine.connect() as conn:
        if not keys:
            # No key to page by: stream the table in server-side chunks instead.
            streamed = conn.execution_options(yield_per=size).execute(select(table))
            yield from streamed.partitions(size)
            return
        # Raw values: no type conversion (datetime parsing dominated the scan), and a value
        # SQLite stored under a column's type it does not fit is still seen as stored.
        raw = [type_coerce(c, NullType()).label(c.name) for c in table.columns]
        raw_keys = [type_coerce(k, NullType()) for k in keys]
        last: tuple[Any, ...] | None = None
        while True:
            query = select(*raw).order_by(*keys).limit(size)
            if last is not None:
                bound = [literal(v, NullType()) for v in last]
                if len(keys) == 1:
                    query = query.where(raw_keys[0] > bound[0])
                else:
                    query = query.where(tuple_(*raw_keys) > tuple_(*bound))
            rows = conn.execute(query).all()
            if not rows:
                return
            yield rows
            final = rows[-1]._mapping
            last = tuple(final[k.name] for k in keys)
            if len(rows) < size:
                return


def _scan_rows(
    table: Table, rows: Sequence[Any], result: ScanResult, digests: dict[str, re.Pattern[str]]
) -> None:
    names = [c.name for c in table.columns]
    keys = [c.name for c in _key_columns(table)]
    result.values += len(names) * len(rows)
    for index, name in enumerate(names):
        digest = digests.get(name)
        if digest is None:
            continue
        for row in rows:
            value = row[index]
            if isinstance(value, str) and not digest.fullmatch(value):
                row_id = _row_id(row._mapping, keys)
                detail = "not a hex digest of the allowlisted length"
                result.findings.append(Finding("shape", table.name, name, row_id, detail))
                _scan_value(table.name, name, value, row_id, result)
    plain = [index for index, name in enumerate(names) if name not in digests]
    # One screen per batch first: a clean batch (nearly all of them) costs one search.
    if not _MAY_HOLD_CARD_DATA(_screen(rows, plain)):
        return
    for row in rows:
        if not _MAY_HOLD_CARD_DATA(_screen((row,), plain)):
            continue
        for index in plain:
            text = _text(row[index])
            if text is not None:
                _scan_value(table.name, names[index], text, None, result, row._mapping, keys)


def _text(value: Any) -> str | None:
    """Return the text a stored value could hide card data in, or None."""
    if isinstance(value, str):
        return value if len(value) >= 12 else None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value) if abs(value) >= _SMALLEST_PAN else None
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("latin-1")
    return None


def _screen(rows: Sequence[Any], columns: Sequence[int]) -> str:
    """Return the screening text of rows: their values that could hide card data, joined."""
    if not columns:
        return ""
    pick = itemgetter(*columns)
    if len(columns) == 1:
        values = [pick(row) for row in rows]
    else:
        values = [value for row in rows for value in pick(row)]
    # Short strings are kept too: the joint stops them from forming a run together.
    texts = [v for v in values if v.__class__ is str]
    for value in values:
        if value is not None and value.__class__ is not str:
            text = _text(value)
            if text is not None:
                texts.append(text)
    return _SEPARATORS.sub("", _JOIN.join(texts))


def _scan_value(
    table: str,
    column: str,
    text: str,
    row_id: str | None,
    result: ScanResult,
    mapping: Any = None,
    keys: Sequence[str] = (),
) -> None:
    # Event ids are read as the storage boundary reads them (gateway.storage.tables.EventId).
    event_id = (table, column) == ("events", "id") or column == "last_event_id"
    reason = guard.scan_event_id(text) if event_id else guard.scan_text(text)
    if reason is not None:
        where = row_id if row_id is not None else _row_id(mapping, keys)
        result.findings.append(Finding(reason, table, column, where, "card data"))


def _row_id(mapping: Any, keys: Sequence[str]) -> str:
    """Return a row's id for the report, with any card data in it redacted."""
    if not keys:
        return "(no primary key)"
    return guard.redact("/".join(str(mapping[k]) for k in keys))
