"""api keys, audit log, event transaction ids, keyset indexes

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gateway.storage import tables
from gateway.storage.migrate import sqlite_sequence_kept

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_RECORD_TABLES = ("payment_methods", "subscriptions", "transactions")


def upgrade() -> None:
    """Add the key and audit tables, the feed's txid column and the keyset indexes."""
    op.create_table(
        "api_keys",
        sa.Column(
            "pk",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.String(length=128), nullable=False),
        sa.Column("accounts", sa.String(length=1024), nullable=True),
        sa.Column("created_at", tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", tables.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", tables.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_keys_prefix")),
    )
    op.create_table(
        "audit_log",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("at", tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("route", sa.String(length=128), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_at"), "audit_log", ["at"], unique=False)
    op.add_column("events", sa.Column("txid", sa.BigInteger(), nullable=True))
    for table in _RECORD_TABLES:
        # (customer, pk) serves customer lookups too, so the single-column index goes.
        op.drop_index(op.f(f"ix_{table}_customer"), table_name=table)
        op.create_index(op.f(f"ix_{table}_customer_pk"), table, ["customer", "pk"], unique=False)
        op.create_index(op.f(f"ix_{table}_account_pk"), table, ["account", "pk"], unique=False)


def downgrade() -> None:
    """Drop what upgrade added and restore the single-column customer indexes."""
    for table in _RECORD_TABLES:
        op.drop_index(op.f(f"ix_{table}_account_pk"), table_name=table)
        op.drop_index(op.f(f"ix_{table}_customer_pk"), table_name=table)
        op.create_index(op.f(f"ix_{table}_customer"), table, ["customer"], unique=False)
    # events is AUTOINCREMENT on SQLite: the rebuilt copy keeps that and its sequence.
    with (
        sqlite_sequence_kept("events"),
        op.batch_alter_table("events", table_kwargs={"sqlite_autoincrement": True}) as batch,
    ):
        batch.drop_column("txid")
    op.drop_index(op.f("ix_audit_log_at"), table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_table("api_keys")
