"""guarantee: body digests and transmission digests on events, erasure tombstones

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04

Events stored before this revision have no body digest or transmission digest
(NULL, which no unique constraint compares equal), so they dedupe on their
event id alone, as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gateway.storage import tables
from gateway.storage.migrate import sqlite_sequence_kept

# events is AUTOINCREMENT on SQLite (gateway.storage.tables): a rebuilt copy must be too.
_EVENTS_KWARGS = {"sqlite_autoincrement": True}

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the events' body digest and transmission digest (each unique); add erasures."""
    with (
        sqlite_sequence_kept("events"),
        op.batch_alter_table("events", table_kwargs=_EVENTS_KWARGS) as batch,
    ):
        batch.add_column(sa.Column("body_digest", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("transmission_digest", sa.String(length=64), nullable=True))
        batch.create_unique_constraint(
            op.f("uq_events_provider_account_body_digest"),
            ["provider", "account", "body_digest"],
        )
        batch.create_unique_constraint(
            op.f("uq_events_provider_account_transmission_digest"),
            ["provider", "account", "transmission_digest"],
        )
    op.create_table(
        "erasures",
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("bidx", sa.String(length=32), nullable=False),
        sa.Column("erased_at", tables.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("provider", "account", "kind", "bidx", name=op.f("pk_erasures")),
    )


def downgrade() -> None:
    """Drop the erasure tombstones and the events' body and transmission digests.

    Refused while a tombstone exists: without it, a late or replayed event would link
    an erased customer again.
    """
    held = op.get_bind().execute(sa.text("SELECT count(*) FROM erasures")).scalar_one()
    if held:
        raise RuntimeError(
            f"erasures holds {held} tombstones: below revision 0005 erased customers could be"
            " linked again by late events; downgrade refused"
        )
    op.drop_table("erasures")
    with (
        sqlite_sequence_kept("events"),
        op.batch_alter_table("events", table_kwargs=_EVENTS_KWARGS) as batch,
    ):
        batch.drop_constraint(
            op.f("uq_events_provider_account_transmission_digest"), type_="unique"
        )
        batch.drop_constraint(op.f("uq_events_provider_account_body_digest"), type_="unique")
        batch.drop_column("transmission_digest")
        batch.drop_column("body_digest")
