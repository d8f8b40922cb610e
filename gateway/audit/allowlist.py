"""Load config/allowlist.toml (shipped in the package) and check values against its shapes."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Final

RECORD_SECTIONS: Final = ("transaction", "payment_method", "subscription", "event")
ALLOWLIST_FILE: Final = "allowlist.toml"
# gateway.core.crypto truncates HMAC-SHA256 blind indexes to 128 bits: 32 hex digits.
BLIND_INDEX_HEX: Final = 32


@dataclass(frozen=True)
class Shape:
    """What a stored value may look like: a regex, an integer range, a closed set or a type."""

    name: str
    regex: str | None = None
    range: tuple[int, int] | None = None
    one_of: frozenset[str] | None = None
    type: str | None = None

    def accepts(self, value: Any) -> bool:
        """Return whether a stored value fits this shape (None is always allowed)."""
        if value is None:
            return True
        if self.regex is not None:
            return isinstance(value, str) and re.fullmatch(self.regex, value) is not None
        if self.range is not None:
            low, high = self.range
            return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
        if self.one_of is not None:
            return isinstance(value, str) and value in self.one_of
        if self.type == "boolean":
            return isinstance(value, bool)
        if self.type == "timestamp":
            return isinstance(value, datetime) and value.tzinfo is not None
        return False


@dataclass(frozen=True)
class Field:
    """One stored field: its shape and, per provider, the payload fields it comes from."""

    record: str
    name: str
    shape: Shape
    sources: dict[str, tuple[str, ...]] = field(default_factory=dict)
    derived: str | None = None
    sealed: bool = False

    def columns(self) -> list[str]:
        """Return the columns this field occupies (a sealed field has a blind index too)."""
        return [self.name, f"{self.name}_bidx"] if self.sealed else [self.name]


@dataclass(frozen=True)
class Allowlist:
    """The parsed allowlist."""

    path: str
    shapes: dict[str, Shape]
    records: dict[str, dict[str, Field]]
    tables: dict[str, str]
    record_bookkeeping: tuple[str, ...]
    event_bookkeeping: tuple[str, ...]
    internal_tables: dict[str, tuple[str, ...]]
    consulted: dict[str, dict[str, str]]
    digests: dict[tuple[str, str], int] = field(default_factory=dict)

    def digest_columns(self) -> dict[tuple[str, str], int]:
        """Return (table, column) -> hex length of every column holding a digest."""
        found = dict(self.digests)
        for record, fields in self.records.items():
            for entry in fields.values():
                if entry.sealed:
                    found[(self.tables[record], f"{entry.name}_bidx")] = BLIND_INDEX_HEX
        return found

    def providers(self) -> set[str]:
        """Return every provider the file has a source or consulted entry for."""
        named = {p for fields in self.records.values() for f in fields.values() for p in f.sources}
        return named | set(self.consulted)

    def sources(self, provider: str) -> set[str]:
        """Return every source path of a provider (envelope fields included)."""
        return {
            path
            for fields in self.records.values()
            for f in fields.values()
            for path in f.sources.get(provider, ())
        }

    def expected_columns(self) -> dict[str, list[str]]:
        """Return every table the database may have and the columns each may have."""
        expected: dict[str, list[str]] = {}
        for record, table in self.tables.items():
            bookkeeping = self.event_bookkeeping if record == "event" else self.record_bookkeeping
            fields = self.records[record].values()
            expected[table] = [*bookkeeping, *(c for f in fields for c in f.columns())]
        for table, columns in self.internal_tables.items():
            expected[table] = list(columns)
        return expected


def default_path() -> Path:
    """Return the allowlist shipped with the package (a link to config/allowlist.toml)."""
    return Path(str(resources.files("gateway.audit").joinpath(ALLOWLIST_FILE)))


@lru_cache(maxsize=4)
def load(path: str | None = None) -> Allowlist:
    """Parse an allowlist file (the shipped one by default)."""
    where = Path(path) if path else default_path()
    data = tomllib.loads(where.read_text(encoding="utf-8"))
    shapes = {name: _shape(name, spec) for name, spec in data["shapes"].items()}
    records: dict[str, dict[str, Field]] = {}
    tables: dict[str, str] = {}
    for record in RECORD_SECTIONS:
        section = data[record]
        tables[record] = str(section["table"])
        fields: dict[str, Field] = {}
        for name, spec in section["fields"].items():
            shape_name = spec["shape"]
            if shape_name not in shapes:
                raise ValueError(f"{where}: {record}.{name} names an unknown shape {shape_name!r}")
            sources = {
                key: tuple(str(p) for p in value)
                for key, value in spec.items()
                if key not in ("shape", "derived", "sealed")
            }
            fields[name] = Field(
                record=record,
                name=name,
                shape=shapes[shape_name],
                sources=sources,
                derived=spec.get("derived"),
                sealed=bool(spec.get("sealed", False)),
            )
        records[record] = fields
    bookkeeping = data["bookkeeping"]
    return Allowlist(
        path=str(where),
        shapes=shapes,
        records=records,
        tables=tables,
        record_bookkeeping=tuple(bookkeeping["record_columns"]),
        event_bookkeeping=tuple(bookkeeping["event_columns"]),
        internal_tables={k: tuple(v) for k, v in data["internal_tables"].items()},
        consulted={k: dict(v) for k, v in data.get("consulted", {}).items()},
        digests={
            (table, column): int(length)
            for table, columns in data.get("digest_columns", {}).items()
            for column, length in columns.items()
        },
    )


def _shape(name: str, spec: dict[str, Any]) -> Shape:
    low_high = spec.get("range")
    one_of = spec.get("one_of")
    return Shape(
        name=name,
        regex=spec.get("regex"),
        range=(int(low_high[0]), int(low_high[1])) if low_high else None,
        one_of=frozenset(one_of) if one_of else None,
        type=spec.get("type"),
    )
