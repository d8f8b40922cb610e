"""The allowlist file, the schemas, the database and the vocabularies say the same thing."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import pytest
from marshmallow import EXCLUDE, Schema, fields, validate
from sqlalchemy import Boolean, Integer, String
from sqlalchemy import inspect as sa_inspect

from adapters.base import Adapter
from adapters.registry import adapter_classes
from adapters.shapes import ID_PATTERN
from gateway.audit.allowlist import Allowlist, load
from gateway.audit.selftest.fixtures import audit_database_url  # noqa: F401 - a fixture
from gateway.config.settings import Settings
from gateway.core import records
from gateway.storage.engine import make_engine
from gateway.storage.tables import RECORD_TABLES, events, field_columns, metadata

ENVELOPE = "envelope."


@pytest.fixture(scope="module")
def allowlist() -> Allowlist:
    """Return the shipped allowlist."""
    return load()


def _adapters() -> Iterator[Adapter]:
    for _name, cls in sorted(adapter_classes().items()):
        yield cls(Settings())


def _where(schema: Schema) -> str:
    source = inspect.getsourcefile(type(schema)) or type(schema).__module__
    return f"{type(schema).__name__} in {source}"


def declared_paths(adapter: Adapter) -> dict[str, tuple[Schema, str, fields.Field[Any]]]:
    """Return every field the adapter's schemas declare, by allowlist source path."""
    out: dict[str, tuple[Schema, str, fields.Field[Any]]] = {}
    for obj, schema in adapter.schemas().items():
        for name, declared in schema.fields.items():
            out[f"{obj}.{declared.data_key or name}"] = (schema, name, declared)
    return out


def is_free_text(declared: fields.Field[Any]) -> bool:
    """Return whether a schema field accepts free text (a String with no regex or closed set)."""
    if not isinstance(declared, fields.String):
        return False
    if any(isinstance(v, validate.Regexp | validate.OneOf) for v in declared.validators):
        return False
    # A subclass that parses the string itself (Currency, Brand, an expiry) bounds it there.
    return type(declared)._deserialize is fields.String._deserialize


def test_every_registered_provider_has_a_section(allowlist: Allowlist) -> None:
    registered = set(adapter_classes())
    missing = sorted(registered - allowlist.providers())
    assert not missing, f"{allowlist.path}: no sources for registered provider(s) {missing}"
    stale = sorted(allowlist.providers() - registered)
    assert not stale, f"{allowlist.path}: sources for unregistered provider(s) {stale}"


@pytest.mark.parametrize("record", records.RECORD_TYPES)
def test_record_fields_equal_table_columns(allowlist: Allowlist, record: str) -> None:
    listed = set(allowlist.records[record])
    companions = {c for f in allowlist.records[record].values() for c in f.columns()} - listed
    columns = set(field_columns(record)) - companions
    assert not columns - listed, (
        f"column(s) {sorted(columns - listed)} of table {RECORD_TABLES[record].name} "
        f"(gateway/storage/tables.py) are not in [{record}.fields] of {allowlist.path}"
    )
    assert not listed - columns, (
        f"field(s) {sorted(listed - columns)} in [{record}.fields] of {allowlist.path} "
        f"have no column in table {RECORD_TABLES[record].name} (gateway/storage/tables.py)"
    )
    bookkeeping = {c.name for c in RECORD_TABLES[record].columns} - columns - companions
    assert bookkeeping == set(allowlist.record_bookkeeping), (
        f"bookkeeping columns of {RECORD_TABLES[record].name} (gateway/storage/tables.py) "
        f"differ from [bookkeeping] record_columns of {allowlist.path}"
    )


def test_event_fields_equal_events_columns(allowlist: Allowlist) -> None:
    columns = {c.name for c in events.columns} - set(allowlist.event_bookkeeping)
    listed = set(allowlist.records["event"])
    assert columns == listed, (
        f"events table (gateway/storage/tables.py) columns {sorted(columns ^ listed)} differ from "
        f"[event.fields] of {allowlist.path}"
    )


def test_every_table_is_named(allowlist: Allowlist) -> None:
    expected = allowlist.expected_columns()
    for table in metadata.sorted_tables:
        assert table.name in expected, (
            f"table {table.name} (gateway/storage/tables.py) is not in {allowlist.path}"
        )
        assert sorted(c.name for c in table.columns) == sorted(expected[table.name]), (
            f"columns of table {table.name} (gateway/storage/tables.py) differ from "
            f"{allowlist.path}"
        )


def test_migrated_schema_equals_allowlist(allowlist: Allowlist, audit_database_url: str) -> None:
    engine = make_engine(audit_database_url)
    try:
        live = sa_inspect(engine)
        expected = allowlist.expected_columns()
        for table in live.get_table_names():
            assert table in expected, f"migrated table {table} is not in {allowlist.path}"
            columns = {c["name"] for c in live.get_columns(table)}
            extra = columns - set(expected[table])
            assert not extra, (
                f"migrated table {table} has column(s) {sorted(extra)} not allowlisted"
            )
    finally:
        engine.dispose()


_COLUMN_KINDS = {"regex": String, "one_of": String, "range": Integer, "boolean": Boolean}


@pytest.mark.parametrize("record", [*records.RECORD_TYPES, "event"])
def test_shapes_fit_column_types(allowlist: Allowlist, record: str) -> None:
    table = RECORD_TABLES.get(record, events)
    for name, entry in allowlist.records[record].items():
        column = table.c[name]
        shape = entry.shape
        kind = "regex" if shape.regex else "one_of" if shape.one_of else "range"
        kind = shape.type or kind if not (shape.regex or shape.one_of or shape.range) else kind
        if kind == "timestamp":
            assert "DateTime" in type(column.type).__name__, f"{record}.{name}: not a timestamp"
            continue
        # The storage boundary's types (gateway.storage.tables) wrap the SQL type they store as.
        stored_as = getattr(column.type, "impl_instance", column.type)
        assert isinstance(stored_as, _COLUMN_KINDS[kind]), (
            f"{record}.{name}: shape {shape.name} does not fit column type {column.type}"
        )
        if shape.one_of and isinstance(stored_as, String) and stored_as.length:
            longest = max(len(word) for word in shape.one_of)
            assert longest <= stored_as.length, f"{record}.{name}: column too short"


def test_vocabularies_equal_records_module(allowlist: Allowlist) -> None:
    pairs = {
        "brand": records.BRANDS,
        "transaction_kind": records.TRANSACTION_KINDS,
        "transaction_status": frozenset(records.TRANSACTION_STATUSES),
        "payment_method_status": records.PAYMENT_METHOD_STATUSES,
        "subscription_status": frozenset(records.SUBSCRIPTION_STATUSES),
        "event_outcome": records.EVENT_OUTCOMES,
    }
    for shape, words in pairs.items():
        listed = allowlist.shapes[shape].one_of
        assert listed == words, (
            f"shape {shape} in {allowlist.path} differs from gateway/core/records.py: "
            f"{sorted((listed or frozenset()) ^ words)}"
        )
    assert allowlist.shapes["id"].regex == ID_PATTERN, "shape id differs from adapters/shapes.py"


@pytest.mark.parametrize("provider", sorted(adapter_classes()))
def test_schema_fields_equal_allowlist_sources(allowlist: Allowlist, provider: str) -> None:
    adapter = adapter_classes()[provider](Settings())
    assert adapter.schemas(), (
        f"adapter {provider} has no SCHEMAS registry (adapters/{provider}/adapter.py)"
    )
    declared = declared_paths(adapter)
    listed = {p for p in allowlist.sources(provider) if not p.startswith(ENVELOPE)}
    consulted = set(allowlist.consulted.get(provider, {}))
    problems = [
        f"{path}: declared by {_where(declared[path][0])} but not in {allowlist.path}"
        for path in sorted(set(declared) - listed - consulted)
    ]
    problems += [
        f"{path}: listed in {allowlist.path} but no {provider} schema declares it"
        for path in sorted((listed | consulted) - set(declared))
    ]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("provider", sorted(adapter_classes()))
def test_no_free_text_field_is_stored(allowlist: Allowlist, provider: str) -> None:
    adapter = adapter_classes()[provider](Settings())
    consulted = allowlist.consulted.get(provider, {})
    problems = [
        f"{path}: {_where(schema)} declares {name} as free text; "
        f"give it a shape, or list it under [consulted.{provider}] in {allowlist.path}"
        for path, (schema, name, declared) in sorted(declared_paths(adapter).items())
        if is_free_text(declared) and path not in consulted
    ]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("provider", sorted(adapter_classes()))
def test_schemas_exclude_unknown_and_nest_nothing(provider: str) -> None:
    adapter = adapter_classes()[provider](Settings())
    for obj, schema in adapter.schemas().items():
        assert schema.unknown == EXCLUDE, f"{obj}: {_where(schema)} does not exclude unknown keys"
        for name, declared in schema.fields.items():
            assert not isinstance(declared, fields.Raw) or isinstance(
                declared, fields.String | fields.Number | fields.Boolean | fields.DateTime
            ), f"{obj}.{name}: {_where(schema)} declares a Raw field"
            assert not isinstance(declared, fields.Dict | fields.Nested | fields.List), (
                f"{obj}.{name}: {_where(schema)} declares a container field"
            )


@pytest.mark.parametrize("provider", sorted(adapter_classes()))
def test_every_schema_class_is_registered(provider: str) -> None:
    adapter = adapter_classes()[provider](Settings())
    registered = {type(schema) for schema in adapter.schemas().values()}
    module = inspect.getmodule(type(adapter))
    package = module.__name__.rsplit(".", 1)[0] if module else ""
    schemas_module = __import__(f"{package}.schemas", fromlist=["_"])
    defined = {
        cls
        for cls in vars(schemas_module).values()
        if inspect.isclass(cls)
        and issubclass(cls, Schema)
        and cls.__module__ == schemas_module.__name__
    }
    unregistered = sorted(cls.__name__ for cls in defined - registered)
    assert not unregistered, (
        f"{schemas_module.__file__} defines schema(s) {unregistered} missing from SCHEMAS "
        f"in adapters/{provider}/adapter.py"
    )


@pytest.mark.parametrize("provider", sorted(adapter_classes()))
def test_every_supported_event_type_is_known(provider: str) -> None:
    adapter = adapter_classes()[provider](Settings())
    assert adapter.supported_event_types(), f"adapter {provider} names no supported event types"
