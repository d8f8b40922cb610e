"""docs/event-types.md says what the adapters do: its tables are held to the dispatch tables."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from adapters.base import Adapter
from adapters.registry import adapter_classes
from gateway.config.settings import Settings

PAGE = Path(__file__).resolve().parents[2] / "docs" / "event-types.md"
SECTIONS = {"Stripe": "stripe", "Razorpay": "razorpay", "PayPal": "paypal"}
TYPE_FIELD = {"stripe": "type", "razorpay": "event", "paypal": "event_type"}
_ROW = re.compile(r"^\| (?P<types>`[^|]+`) \| (?P<second>[^|]+) \|", re.MULTILINE)
_CODE = re.compile(r"`([^`]+)`")


def tables() -> dict[str, dict[str, dict[str, str]]]:
    """Return, per provider, the Handled and Ignored rows: event type -> second column."""
    text = PAGE.read_text(encoding="utf-8")
    found: dict[str, dict[str, dict[str, str]]] = {}
    for section in re.split(r"^## ", text, flags=re.MULTILINE)[1:]:
        title, _, body = section.partition("\n")
        provider = SECTIONS[title.strip()]
        for part in re.split(r"^### ", body, flags=re.MULTILINE)[1:]:
            heading, _, rows = part.partition("\n")
            table = found.setdefault(provider, {}).setdefault(heading.strip(), {})
            for row in _ROW.finditer(rows):
                for event_type in _CODE.findall(row["types"]):
                    table[event_type] = row["second"].strip()
    return found


def adapter(provider: str) -> Adapter:
    return adapter_classes()[provider](Settings())


def test_every_provider_has_a_handled_and_an_ignored_table() -> None:
    found = tables()
    assert set(found) == set(adapter_classes())
    for provider, parts in found.items():
        assert set(parts) == {"Handled", "Ignored"}, provider


@pytest.mark.parametrize("provider", sorted(adapter_classes()))
def test_the_handled_table_is_the_dispatch_table(provider: str) -> None:
    handled = set(tables()[provider]["Handled"])
    supported = set(adapter(provider).supported_event_types())
    assert supported - handled == set(), "handled but missing from docs/event-types.md"
    assert handled - supported == set(), "listed as handled but not in SUPPORTED_EVENT_TYPES"


@pytest.mark.parametrize("provider", sorted(adapter_classes()))
def test_each_handled_type_makes_the_records_it_names(provider: str) -> None:
    found = adapter(provider)
    for event_type, records in tables()[provider]["Handled"].items():
        made: set[str] = set()
        for variant in found.sample_variants(event_type):
            sanitised = found.sanitise(found.sample_event(event_type, **variant))
            made |= {record.type for record in sanitised.records}
        assert set(_CODE.findall(records)) == made, event_type


@pytest.mark.parametrize("provider", sorted(adapter_classes()))
def test_each_ignored_type_is_ignored(provider: str) -> None:
    found = adapter(provider)
    base: dict[str, Any] = found.sample_event(found.supported_event_types()[0])
    ignored = [t for t in tables()[provider]["Ignored"] if "*" not in t]
    assert ignored
    for event_type in ignored:
        event = dict(base) | {TYPE_FIELD[provider]: event_type}
        assert event_type not in found.supported_event_types(), event_type
        assert not found.sanitise(event).handled, event_type
