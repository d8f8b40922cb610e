"""outbound: webhook subscribers and the transactional outbox of their deliveries

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gateway.storage import tables

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Add subscribers and outbound_deliveries."""
    op.create_table(
        "subscribers",
        sa.Column("id", _SERIAL, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("secret", sa.String(length=256), nullable=False),
        sa.Column("previous_secret", sa.String(length=256), nullable=True),
        sa.Column("previous_secret_expires_at", tables.UTCDateTime(timezone=True), nullable=True),
        sa.Column("event_types", sa.String(length=1024), nullable=False),
        sa.Column("accounts", sa.String(length=1024), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", sa.String(length=32), nullable=True),
        sa.Column("created_at", tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("failing_since", tables.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscribers")),
        sa.UniqueConstraint("name", name=op.f("uq_subscribers_name")),
    )
    op.create_table(
        "outbound_deliveries",
        sa.Column("id", _SERIAL, autoincrement=True, nullable=False),
        sa.Column("subscriber_id", _SERIAL, nullable=False),
        sa.Column("event_seq", _SERIAL, nullable=False),
        sa.Column("record_type", sa.String(length=32), nullable=False),
        sa.Column("object_id", sa.String(length=256), nullable=False),
        sa.Column("record_ref", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("lease_until", tables.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_status", sa.SmallInteger(), nullable=True),
        sa.Column("last_duration_ms", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=32), nullable=True),
        sa.Column("created_at", tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_attempt_at", tables.UTCDateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", tables.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name=op.f("fk_outbound_deliveries_subscriber_id_subscribers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["event_seq"],
            ["events.seq"],
            name=op.f("fk_outbound_deliveries_event_seq_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbound_deliveries")),
        sa.UniqueConstraint(
            "subscriber_id",
            "event_seq",
            "record_ref",
            name=op.f("uq_outbound_deliveries_subscriber_id_event_seq_record_ref"),
        ),
    )
    op.create_index(
        op.f("ix_outbound_deliveries_state_next_attempt_at"),
        "outbound_deliveries",
        ["state", "next_attempt_at"],
    )
    op.create_index(
        op.f("ix_outbound_deliveries_subscriber_id_record_ref_event_seq"),
        "outbound_deliveries",
        ["subscriber_id", "record_ref", "event_seq"],
    )
    op.create_index(op.f("ix_outbound_deliveries_event_seq"), "outbound_deliveries", ["event_seq"])


def downgrade() -> None:
    """Drop the outbox and the subscribers (undelivered deliveries are lost)."""
    op.drop_table("outbound_deliveries")
    op.drop_table("subscribers")
