"""The small interface every provider adapter implements."""

from __future__ import annotations

import re
import sys
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, overload

import orjson
from marshmallow import Schema

from adapters.shapes import load_partial
from gateway.core.errors import MalformedBody
from gateway.core.records import EventMeta, Record, RecordType, Sanitised

if TYPE_CHECKING:
    from gateway.config.settings import EndpointConfig, Settings

MAX_DEPTH = 32


def parse_json(raw_body: bytes, *, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """Parse a strict JSON object with bounded nesting, or raise MalformedBody."""
    if _nesting_exceeds(raw_body, max_depth):
        raise MalformedBody("JSON nesting is too deep")
    try:
        event = orjson.loads(raw_body)
    except orjson.JSONDecodeError as exc:
        # orjson's message can quote the input: never pass it on.
        raise MalformedBody("body is not valid JSON") from exc
    if not isinstance(event, dict):
        raise MalformedBody("body must be a JSON object")
    return event


# A JSON string, escapes included; brackets inside strings do not nest anything.
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
# Every byte but the four brackets, for bytes.translate to delete.
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"{}[]")


def _nesting_exceeds(raw_body: bytes, max_depth: int) -> bool:
    """Return whether brackets nest deeper than max_depth (strings skipped)."""
    # Cheap pre-check: a body with few brackets cannot be deep.
    if raw_body.count(b"{") + raw_body.count(b"[") <= max_depth:
        return False
    # Done in C (regex, translate): a Python loop over every byte cost more than the parse.
    brackets = _JSON_STRING.sub(b"", raw_body).translate(None, _NOT_BRACKETS)
    depth = 0
    for byte in brackets:
        if byte in (0x7B, 0x5B):
            depth += 1
            if depth > max_depth:
                return True
        else:
            depth -= 1
    return False


def nested_deeper(value: object, max_depth: int = MAX_DEPTH) -> bool:
    """Return whether a decoded JSON value nests deeper than max_depth (as parse_json counts).

    For objects read from a provider's API rather than a body: a webhook this deep is
    refused, so the same object read back is too.
    """
    pending: list[tuple[object, int]] = [(value, 1)]
    while pending:
        current, depth = pending.pop()
        if isinstance(current, dict):
            children: Iterable[object] = current.values()
        elif isinstance(current, list):
            children = current
        else:
            continue
        if depth > max_depth:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Return one header's value (case-insensitive lookup), or None."""
    value = headers.get(name)
    return value if value is None or isinstance(value, str) else None


class SanitiseRun:
    """One sanitise call: the records made so far and the paths that failed their shape."""

    def __init__(
        self,
        event_type: str,
        *,
        implied: Mapping[str, str] | None = None,
        overrides: frozenset[str] = frozenset(),
        drop_nulls: bool = False,
    ) -> None:
        self.event_type = event_type
        self.out = Sanitised()
        # The status an event type implies, and the types where it beats the provider's word.
        self._implied = implied or {}
        self._overrides = overrides
        # Whether a null the provider sent means "unknown" (left out) rather than "cleared".
        self._drop_nulls = drop_nulls

    def load(self, schema: Schema, data: Any, prefix: str) -> dict[str, Any]:
        """Load one object through its schema, noting the paths that failed."""
        if data is None:
            # A null nested object is an absent one: nothing to keep, nothing dropped.
            return {}
        values, failed = load_partial(schema, data, prefix)
        self.out.dropped.extend(failed)
        return values

    def emit(
        self,
        record_type: RecordType,
        values: dict[str, Any],
        *,
        fill_only: frozenset[str] = frozenset(),
    ) -> None:
        """Add a record (fill_only fields never overwrite what storage already holds)."""
        if self._drop_nulls:
            values = {name: value for name, value in values.items() if value is not None}
        self.out.records.append(Record(record_type, values, fill_only))

    @overload
    def status(self, word: Any, table: Mapping[str, str], default: str) -> str: ...

    @overload
    def status(self, word: Any, table: Mapping[str, str], default: None = None) -> str | None: ...

    def status(self, word: Any, table: Mapping[str, str], default: str | None = None) -> str | None:
        """Return the normalised status for a provider word and this event type."""
        implied = self._implied.get(self.event_type)
        if implied is not None and self.event_type in self._overrides:
            return implied
        if isinstance(word, str) and word in table:
            return table[word]
        return implied or default


class Adapter(ABC):
    """One provider: how its deliveries verify, parse and sanitise."""

    name: ClassVar[str]
    # Every key name the provider documents in the payloads it sends: the only names the
    # minimisation trail stores (any other becomes a placeholder). Empty: none is stored.
    # Each provider writes its list out (adapters/<provider>/vocabulary.py), not computed,
    # so each word is reviewed: a documented key the list lacks costs the trail some
    # detail, never privacy. Keys inside containers whose keys are chosen by merchants
    # or customers (metadata, notes, custom fields) are data, never vocabulary, whatever
    # their name. Adding a word is a code change with its review.
    vocabulary: ClassVar[frozenset[str]] = frozenset()
    # The settings attribute that enables the provider for an endpoint.
    signature_header: ClassVar[str]
    # The header naming one signed transmission, for a provider whose signature does not
    # bind the body's bytes in full (PayPal signs a CRC32 of the body, which can be forged):
    # the gateway never admits two different bodies under one transmission id.
    transmission_header: ClassVar[str | None] = None

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @abstractmethod
    def enabled(self, endpoint: EndpointConfig) -> bool:
        """Return whether this endpoint has what verification needs."""

    @abstractmethod
    def verify(self, raw_body: bytes, headers: Mapping[str, str], endpoint: EndpointConfig) -> None:
        """Raise VerificationError unless the raw bytes carry a valid signature."""

    def parse(self, raw_body: bytes) -> dict[str, Any]:
        """Parse the verified body into the provider's event."""
        return parse_json(raw_body)

    @abstractmethod
    def meta(self, event: dict[str, Any], headers: Mapping[str, str]) -> EventMeta:
        """Return the event's id, type and occurrence time, or raise MalformedBody."""

    @abstractmethod
    def sanitise(self, event: dict[str, Any]) -> Sanitised:
        """Run the event through the allowlist schemas; unknown types are not handled."""

    @abstractmethod
    def sample_event(self, event_type: str, *, event_id: str | None = None) -> dict[str, Any]:
        """Return a realistic event of this type (personal data included, as providers send)."""

    def sample_event_types(self) -> tuple[str, ...]:
        """Return the event types sample_event builds (what `paysieve simulate --list` shows)."""
        return ()

    def sample_lifecycle(self) -> list[tuple[str, dict[str, Any]]]:
        """Return (event type, event) pairs about one customer, in order, their ids chained."""
        raise ValueError(f"no lifecycle sample for {self.name}")

    @abstractmethod
    def sign(
        self, raw_body: bytes, endpoint: EndpointConfig, *, timestamp: int, event_id: str
    ) -> dict[str, str]:
        """Return the headers the provider would send with this body (for simulate and tests)."""

    @abstractmethod
    def dev_options(self, var_dir: Path) -> dict[str, Any]:
        """Return options for a local development endpoint, with freshly generated secrets."""

    def sample_variants(self, event_type: str) -> tuple[dict[str, str], ...]:
        """Return the sample_event options that give differently shaped samples of a type."""
        return ({},)

    def supported_event_types(self) -> tuple[str, ...]:
        """Return the event types that become records (the module's SUPPORTED_EVENT_TYPES)."""
        found = getattr(sys.modules[type(self).__module__], "SUPPORTED_EVENT_TYPES", ())
        return tuple(str(event_type) for event_type in found)

    def schemas(self) -> Mapping[str, Schema]:
        """Return the inbound schemas by the object path config/allowlist.toml names them by."""
        found = getattr(sys.modules[type(self).__module__], "SCHEMAS", {})
        return dict(found)

    def how_to_enable(self) -> str:
        """Return the one-line hint startup logs for a disabled provider."""
        return f"set the {self.name} webhook secret to enable it"
