"""minimisation trail: counts by payload shape, shape paths, guard hits per day

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gateway.storage import tables

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the trail tables: counts and path names only, never values."""
    op.create_table(
        "trail_counts",
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("event_type", sa.String(length=128), nullable=False),
        sa.Column("shape_hash", sa.String(length=16), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "provider", "event_type", "shape_hash", "day", name=op.f("pk_trail_counts")
        ),
    )
    op.create_table(
        "trail_shapes",
        sa.Column("shape_hash", sa.String(length=16), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("event_type", sa.String(length=128), nullable=False),
        sa.Column("path", sa.String(length=512), nullable=False),
        sa.Column("kept", sa.Boolean(), nullable=False),
        sa.Column("first_seen", tables.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("shape_hash", "path", name=op.f("pk_trail_shapes")),
    )
    op.create_table(
        "trail_guard_hits",
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("provider", "reason", "day", name=op.f("pk_trail_guard_hits")),
    )


def downgrade() -> None:
    """Drop the trail tables."""
    op.drop_table("trail_guard_hits")
    op.drop_table("trail_shapes")
    op.drop_table("trail_counts")
