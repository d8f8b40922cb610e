"""The minimisation trail: per provider and event type, which field paths arrived and were kept.

Each delivery's payload is reduced to its set of field paths. A key name is
stored only if it is a word of the provider's documented vocabulary (a reviewed
list per adapter); every other name, at any depth, becomes ``<key>``, list
indices become ``[]``, and everything under a free-form container such as
``metadata`` or ``notes`` is one path, since its keys are data. So personal
data or a card number in a key name never reaches storage. The set is hashed
to a *shape*; a delivery costs one upsert of (provider, event_type, shape,
day) += 1, and a shape's paths are written only the first time it is seen.
Guard hits are counted per provider, reason and day. Counts and path names
only: never a value.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final

from sqlalchemy import Table, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite

from gateway.core.guard import GuardHit
from gateway.core.records import Record
from gateway.storage.prepared import PreparedCache
from gateway.storage.tables import trail_counts, trail_guard_hits, trail_shapes

# Containers whose keys are chosen by merchants or customers: their keys are data. Their
# own names are fixed words, stored whatever the provider.
FREE_FORM_KEYS: Final = frozenset({"metadata", "notes", "custom_fields", "custom_data"})
COLLAPSED_KEY: Final = "<key>"
LIST_ITEM: Final = "[]"
FREE_FORM: Final = "*"
MAX_PATH: Final = 512
MAX_DEPTH: Final = 32
# Known shapes kept in memory per process; a shape seen again costs no lookup.
_CACHE_LIMIT: Final = 65_536
# Key structures planned per process, and kept patterns per structure: bounded, since a
# sender chooses the structures (a full cache starts over).
_PLAN_LIMIT: Final = 4096
_SHAPES_PER_PLAN: Final = 64
_SCALARS: Final = frozenset({str, int, float, bool, type(None)})


def collapse_key(key: str, vocabulary: frozenset[str]) -> str:
    """Return a key as it may be stored: itself if the provider documents it, else a placeholder."""
    return key if key in vocabulary else COLLAPSED_KEY


def leaf_paths(payload: Any, vocabulary: frozenset[str]) -> dict[str, list[Any]]:
    """Return every collapsed leaf path of a payload with the scalar values found there."""
    found: dict[str, list[Any]] = {}
    _walk(payload, "", found, 0, vocabulary)
    return found


def _walk(
    node: Any, path: str, found: dict[str, list[Any]], depth: int, vocabulary: frozenset[str]
) -> None:
    # Runs on every delivery, over every node: parsed JSON is str, int, float, bool,
    # None, dict and list, so those are told apart by exact type first (an ABC
    # isinstance check costs several times more), and a path is joined in place.
    if depth > MAX_DEPTH:
        found.setdefault(_joined(path, "<deep>"), [])
        return
    kind = type(node)
    if kind in _SCALARS:
        found.setdefault(path or "<root>", []).append(node)
    elif kind is dict or (kind is not list and isinstance(node, Mapping)):
        if not node and path:
            found.setdefault(path, [])
        prefix = f"{path}." if path else ""
        depth += 1
        for key, child in node.items():
            if key in FREE_FORM_KEYS:
                # Everything under a free-form container is one path: its keys are data.
                found.setdefault(_joined(path, f"{key}.{FREE_FORM}"), [])
                continue
            # A key that is not a string is never a word, so it needs no conversion.
            name = key if key in vocabulary else COLLAPSED_KEY
            joined = prefix + name
            if len(joined) > MAX_PATH:
                joined = _joined(path, name)
            if type(child) in _SCALARS and depth <= MAX_DEPTH:
                # The common case, without a recursive call: a scalar under a key.
                found.setdefault(joined, []).append(child)
            else:
                _walk(child, joined, found, depth, vocabulary)
    elif kind is list or isinstance(node, list):
        item = path + LIST_ITEM
        if not node:
            found.setdefault(item, [])
        for child in node:
            _walk(child, item, found, depth + 1, vocabulary)
    else:
        found.setdefault(path or "<root>", []).append(node)


def _joined(path: str, name: str) -> str:
    joined = f"{path}.{name}" if path else name
    return joined if len(joined) <= MAX_PATH else joined[: MAX_PATH - 7] + ".<long>"


def _comparable(value: Any) -> set[str]:
    """Return the forms a stored value may have had in the payload."""
    if isinstance(value, datetime):
        return {str(int(value.timestamp())), value.isoformat().lower()}
    if isinstance(value, bool):
        return {str(value).lower()}
    return {str(value).lower()}


@dataclass(frozen=True)
class Observation:
    """One delivery's trail entry: computed before the transaction, written in it (write_trail)."""

    trail: Trail
    provider: str
    event_type: str
    shape_hash: str
    paths: tuple[tuple[str, bool], ...]
    hits: tuple[str, ...]
    day: date

    def committed(self) -> None:
        """Remember the shape once its transaction committed, so it is never written again."""
        self.trail.remember(self.shape_hash)


def write_trail(cursor: Any, observations: Sequence[Observation], cache: PreparedCache) -> None:
    """Count one transaction's new deliveries, in that transaction.

    One upsert per shape and day (adding the batch's count), a new shape's paths once,
    and one upsert per guard-hit reason and day.
    """
    if not observations:
        return
    insert = postgresql.insert if cache.dialect.name == "postgresql" else sqlite.insert
    counts = Counter((o.provider, o.event_type, o.shape_hash, o.day) for o in observations)
    count_upsert = cache.get("trail_counts", lambda: _adding_upsert(insert, trail_counts))
    for (provider, event_type, shape_hash, day), n in sorted(counts.items()):
        count_upsert.execute(
            cursor,
            {
                "provider": provider,
                "event_type": event_type,
                "shape_hash": shape_hash,
                "day": day,
                "count": n,
            },
        )
    unknown = {o.shape_hash: o for o in observations if not o.trail.known(o.shape_hash)}
    if unknown:
        exists = cache.get(
            "trail_shape_exists",
            # Only the first row is read (fetchone); a bound LIMIT would not prepare.
            lambda: select(trail_shapes.c.shape_hash).where(
                trail_shapes.c.shape_hash == bindparam("shape_hash")
            ),
        )
        add_paths = cache.get(
            "trail_shapes",
            lambda: (
                insert(trail_shapes)
                .values({c.name: bindparam(c.name, type_=c.type) for c in trail_shapes.c})
                .on_conflict_do_nothing(index_elements=["shape_hash", "path"])
            ),
        )
        now = datetime.now(UTC)
        for shape_hash, o in sorted(unknown.items()):
            if exists.execute(cursor, {"shape_hash": shape_hash}).fetchone() is not None:
                continue
            add_paths.executemany(
                cursor,
                [
                    {
                        "shape_hash": shape_hash,
                        "provider": o.provider,
                        "event_type": o.event_type,
                        "path": path,
                        "kept": kept,
                        "first_seen": now,
                    }
                    for path, kept in o.paths
                ],
            )
    hits = Counter((o.provider, reason, o.day) for o in observations for reason in o.hits)
    if hits:
        hit_upsert = cache.get("trail_guard_hits", lambda: _adding_upsert(insert, trail_guard_hits))
        for (provider, reason, day), n in sorted(hits.items()):
            hit_upsert.execute(
                cursor, {"provider": provider, "reason": reason, "day": day, "count": n}
            )


def _adding_upsert(insert: Any, table: Table) -> Any:
    """Return an insert of a count row that adds to the row already there."""
    stmt = insert(table).values({c.name: bindparam(c.name, type_=c.type) for c in table.c})
    keys = [c.name for c in table.primary_key.columns]
    return stmt.on_conflict_do_update(
        index_elements=keys, set_={"count": table.c.count + stmt.excluded.count}
    )


class Trail:
    """Turn deliveries into trail observations; remembers the shapes this process has written."""

    def __init__(
        self,
        schema_fields: Mapping[str, Iterable[str]],
        *,
        vocabularies: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        # Per provider, every key name some schema declares: only such keys can be kept.
        self.schema_fields = {p: frozenset(names) for p, names in schema_fields.items()}
        # Per provider, the key names it documents: the only names stored. A provider
        # without one has every key name stored as a placeholder.
        self.vocabularies = {p: frozenset(words) for p, words in (vocabularies or {}).items()}
        self._known: set[str] = set()
        self._plans: dict[tuple[str, tuple[str, ...]], _Plan] = {}
        self._lock = threading.Lock()

    def observe(
        self,
        provider: str,
        event_type: str,
        payload: Mapping[str, Any],
        records: Sequence[Record],
        hits: Sequence[GuardHit],
        *,
        now: datetime | None = None,
    ) -> Observation:
        """Return the trail entry for one delivery (pure computation, no I/O)."""
        stored: set[str] = set()
        for record in records:
            for value in record.values.values():
                if value is not None:
                    stored |= _comparable(value)
        found = leaf_paths(payload, self.vocabularies.get(provider, frozenset()))
        plan = self._plan(provider, tuple(found))
        # Only a value under a key some schema declares can have been kept.
        kept = tuple(
            any(not stored.isdisjoint(_comparable(value)) for value in found[path])
            for path in plan.candidates
        )
        paths, shape_hash = plan.shape(event_type, kept)
        moment = now or datetime.now(UTC)
        return Observation(
            trail=self,
            provider=provider,
            event_type=collapse_event_type(event_type),
            shape_hash=shape_hash,
            paths=paths,
            hits=tuple(hit.reason for hit in hits),
            day=moment.astimezone(UTC).date(),
        )

    def _plan(self, provider: str, structure: tuple[str, ...]) -> _Plan:
        """Return the plan of a payload's key structure, made once per structure and provider."""
        key = (provider, structure)
        plan = self._plans.get(key)
        if plan is None:
            plan = _Plan(provider, structure, self.schema_fields.get(provider, frozenset()))
            with self._lock:
                if len(self._plans) >= _PLAN_LIMIT:
                    self._plans.clear()
                self._plans[key] = plan
        return plan

    def known(self, shape_hash: str) -> bool:
        """Return whether this process already wrote a shape."""
        return shape_hash in self._known

    def remember(self, shape_hash: str) -> None:
        """Note a shape as written (bounded: a full cache starts over)."""
        with self._lock:
            if len(self._known) >= _CACHE_LIMIT:
                self._known.clear()
            self._known.add(shape_hash)


class _Plan:
    """What one key structure of one provider's payloads hashes to, whatever its values.

    A structure is a payload's collapsed leaf paths in the order its walk found them, so
    payloads that differ only in their values (every delivery of one event type, mostly)
    share one: the sort, the candidate paths and, per event type and kept pattern, the
    shape's paths and hash are computed once. Only which candidates were kept is per
    delivery, since that compares the delivery's values with what its records hold.
    """

    def __init__(self, provider: str, structure: tuple[str, ...], names: frozenset[str]) -> None:
        self.provider = provider
        self.ordered = tuple(sorted(structure))
        # Only a path ending in a key some schema declares can hold a kept value.
        self.candidates = tuple(p for p in self.ordered if p.rpartition(".")[2] in names)
        self._candidate = frozenset(self.candidates)
        self._shapes: dict[tuple[str, tuple[bool, ...]], tuple[tuple[tuple[str, bool], ...], str]]
        self._shapes = {}

    def shape(
        self, event_type: str, kept: tuple[bool, ...]
    ) -> tuple[tuple[tuple[str, bool], ...], str]:
        """Return the (path, kept) pairs and the shape hash for an event type and kept pattern."""
        key = (event_type, kept)
        known = self._shapes.get(key)
        if known is not None:
            return known
        flags = dict(zip(self.candidates, kept, strict=True))
        paths = tuple((path, flags.get(path, False)) for path in self.ordered)
        # One line per part, each ending in a newline: provider, event type, path\0kept.
        lines = [self.provider, event_type]
        lines += [path + ("\x001" if path_kept else "\x000") for path, path_kept in paths]
        lines.append("")
        digest = hashlib.sha256("\n".join(lines).encode("utf-8", "surrogatepass"))
        made = (paths, digest.hexdigest()[:16])
        if len(self._shapes) >= _SHAPES_PER_PLAN:
            self._shapes.clear()
        self._shapes[key] = made
        return made


_EVENT_TYPE: Final = re.compile(r"[A-Za-z0-9_.:-]{1,128}")


def collapse_event_type(event_type: str) -> str:
    """Return an event type as stored: adapters validate it, this only bounds it."""
    return event_type if _EVENT_TYPE.fullmatch(event_type) else "<invalid>"
