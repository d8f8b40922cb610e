"""backfill checkpoints: where each endpoint's `paysieve backfill` stopped

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gateway.storage import tables

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add backfill_checkpoints: one row per (provider, account) being backfilled."""
    op.create_table(
        "backfill_checkpoints",
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("since", tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("until", tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("resource", sa.String(length=32), nullable=False),
        sa.Column("cursor", sa.String(length=2048), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("objects", sa.Integer(), nullable=False),
        sa.Column("updated_at", tables.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("provider", "account", name=op.f("pk_backfill_checkpoints")),
    )


def downgrade() -> None:
    """Drop backfill_checkpoints: an interrupted backfill then starts over (it is idempotent)."""
    op.drop_table("backfill_checkpoints")
