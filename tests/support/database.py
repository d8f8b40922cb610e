"""Rows and bytes of the test database, the test data keys, and the check a value is nowhere."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select, text
from sqlalchemy.engine import make_url

from gateway.core.crypto import SEALED, Cipher, cipher_from_settings
from gateway.privacy.rotation import open_object_id
from gateway.storage.tables import metadata

# Fixed test keys for encryption at rest (32 bytes, base64url): never used outside tests.
TEST_DATA_KEY = "dGVzdC1kYXRhLWtleS0wMDAwMDAwMDAwMDAwMDAwMDA"
TEST_INDEX_KEY = "dGVzdC1pbmRleC1rZXktMDAwMDAwMDAwMDAwMDAwMDA"


def all_rows(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Return every row of every table, as dicts."""
    with engine.connect() as conn:
        return {
            table.name: [dict(row._mapping) for row in conn.execute(select(table))]
            for table in metadata.sorted_tables
        }


def make_cipher(*data_keys: str) -> Cipher:
    """Return the cipher test apps use (or one with other data keys)."""
    return cipher_from_settings(data_keys or (TEST_DATA_KEY,), "", TEST_INDEX_KEY)


def plain_rows(engine: Engine, cipher: Cipher | None = None) -> dict[str, list[dict[str, Any]]]:
    """Return every row of every table with sealed columns decrypted and blind indexes dropped."""
    cipher = cipher or make_cipher()
    rows = all_rows(engine)
    for table in SEALED:
        rows[table] = [cipher.open_row(table, row) for row in rows[table]]
    for row in rows["event_objects"]:
        row["object_id"] = open_object_id(
            cipher, row["event_seq"], row["record_type"], row["object_id"]
        )
        row.pop("object_bidx", None)
    return rows


def database_bytes(database_url: str) -> bytes:
    """Return the SQLite file's bytes with its WAL and shared memory (empty on PostgreSQL)."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database:
        return b""
    chunks = []
    for suffix in ("", "-wal", "-shm", "-journal"):
        path = Path(url.database + suffix)
        if path.exists():
            chunks.append(path.read_bytes())
    return b"".join(chunks)


def assert_nowhere(planted: list[str], engine: Engine, database_url: str, *texts: str) -> None:
    """Assert that no planted value is in any row, column, database byte or given text."""
    rows = repr(all_rows(engine))
    blob = database_bytes(database_url)
    for value in planted:
        assert value not in rows, f"planted value found in a database row: {value[:4]}..."
        assert value.encode() not in blob, f"planted value found in database bytes: {value[:4]}..."
        for chunk in texts:
            assert value not in chunk, f"planted value found in output: {value[:4]}..."


def empty_tables(engine: Engine) -> None:
    """Delete every row of every table (on PostgreSQL, and restart its sequences)."""
    tables = [t.name for t in reversed(metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            quoted = ", ".join(f'"{t}"' for t in tables)
            conn.execute(text(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(text(f'DELETE FROM "{table}"'))  # noqa: S608 - our table names
    if engine.dialect.name == "sqlite":
        # secure_delete zeroed the rows in the file, but the WAL still holds the pages as
        # they were: copy it back and truncate it, so a value an earlier test planted with
        # a raw client is not found in this test's database bytes.
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def requested_database_url() -> str | None:
    """Return the database the run was asked to use (PAYSIEVE_TEST_DATABASE_URL), if any."""
    return os.environ.get("PAYSIEVE_TEST_DATABASE_URL") or None
