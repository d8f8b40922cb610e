"""Ordered upserts: a record changes only when its event is not older than the last writer's."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, case, func, literal_column, or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement

from gateway.core.crypto import SEALED, Cipher, bidx_column
from gateway.core.records import (
    IDENTITY,
    SUBSCRIPTION_STATUSES,
    TRANSACTION_STATUSES,
    EventMeta,
    Record,
)
from gateway.storage.prepared import Prepared, PreparedCache
from gateway.storage.tables import RECORD_TABLES

# When two events for one record carry the same timestamp (Stripe's are whole
# seconds), the one whose status is further along wins, so a same-second
# "succeeded" never undoes a "refunded".
_STATUS_ORDER: dict[str, tuple[str, ...]] = {
    "transaction": tuple(TRANSACTION_STATUSES),
    "payment_method": ("active", "expired", "detached", "deleted"),
    "subscription": tuple(SUBSCRIPTION_STATUSES),
}

# The rank words are written into the SQL (OrderedUpserts._rank): they must be plain words.
assert all(  # noqa: S101 - checked at import, against this module's own constants
    word.isidentifier() and word.islower() for order in _STATUS_ORDER.values() for word in order
)


# Upserts run in this order so two transactions never lock rows in opposite orders.
APPLY_ORDER = {"payment_method": 0, "subscription": 1, "transaction": 2}


class OrderedUpserts:
    """Build each record's upsert for one dialect, compiled once per shape of record."""

    def __init__(self, dialect: str, cipher: Cipher, prepared: PreparedCache) -> None:
        self.dialect = dialect
        self.cipher = cipher
        self._prepared = prepared
        self._insert = postgresql.insert if dialect == "postgresql" else sqlite.insert

    def upsert(
        self,
        provider: str,
        account: str,
        meta: EventMeta,
        record: Record,
        now: datetime,
    ) -> tuple[Prepared, dict[str, Any]]:
        """Return the ordered upsert for one record and the sealed row it binds."""
        table = RECORD_TABLES[record.type]
        sealed = SEALED[table.name]
        row = self.cipher.seal_row(
            table.name, {**record.values, "provider": provider, "account": account}
        )
        row.update(
            created_at=now,
            updated_at=now,
            last_event_id=meta.id,
            last_event_at=meta.occurred_at,
        )
        identity = IDENTITY[record.type]
        fill_only = set(record.fill_only)
        fields: list[str] = []
        for name in record.values:
            if name == identity:
                continue
            fields.append(name)
            if name in sealed:
                # A blind index follows its column through the same rule, so they stay a pair.
                fields.append(bidx_column(name))
                if name in record.fill_only:
                    fill_only.add(bidx_column(name))
        columns = tuple(row)
        statement = self._prepared.get(
            (record.type, columns, tuple(fields), frozenset(fill_only)),
            lambda: self._statement(record.type, columns, fields, fill_only),
        )
        return statement, row

    def _statement(
        self, record_type: str, columns: tuple[str, ...], fields: list[str], fill_only: set[str]
    ) -> Any:
        """Build the ordered upsert for one shape of record; rows bind to it later."""
        table = RECORD_TABLES[record_type]
        sealed = SEALED[table.name]
        identity = IDENTITY[record_type]
        stmt = self._insert(table).values(
            {name: bindparam(name, type_=table.c[name].type) for name in columns}
        )
        new = stmt.excluded
        wins = or_(
            table.c.last_event_at < new.last_event_at,
            and_(
                table.c.last_event_at == new.last_event_at,
                self._rank(record_type, new.status) >= self._rank(record_type, table.c.status),
            ),
        )
        # A winning event sets what it carries; an older one may only fill gaps.
        changes: dict[str, Any] = {
            name: func.coalesce(table.c[name], new[name])
            if name in fill_only
            else case((wins, new[name]), else_=func.coalesce(table.c[name], new[name]))
            for name in fields
        }
        changes.update(
            updated_at=new.updated_at,
            last_event_id=case((wins, new.last_event_id), else_=table.c.last_event_id),
            last_event_at=case((wins, new.last_event_at), else_=table.c.last_event_at),
        )
        fills = [and_(table.c[name].is_(None), new[name].is_not(None)) for name in fields]
        return stmt.on_conflict_do_update(
            # A sealed identity (a token) is found by its blind index.
            index_elements=[
                "provider",
                "account",
                bidx_column(identity) if identity in sealed else identity,
            ],
            set_=changes,
            where=or_(wins, *fills),
        )

    def _rank(self, record_type: str, status: Any) -> ColumnElement[int]:
        """Return a status's place in its lifecycle: its position in a list of the words.

        Our own constant words, written into the SQL: a bound parameter per word would
        be hundreds of parameters on every upsert, and a CASE per word made the upserts
        twice as long, to be sent and parsed with every delivery. Unknown or NULL is 0.
        """
        words: ColumnElement[str] = literal_column(
            "'," + ",".join(_STATUS_ORDER[record_type]) + ",'"
        )
        comma: ColumnElement[str] = literal_column("','")
        find = func.strpos if self.dialect == "postgresql" else func.instr
        return func.coalesce(find(words, comma + status + comma), literal_column("0"))
