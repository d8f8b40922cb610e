"""privacy: sealed references with blind indexes, the privacy log

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23

Rows stored before this revision keep their references in clear with no blind
index until ``paysieve rotate-keys`` seals them; the gateway refuses to start
while any remain (gateway.privacy.data_keys.check_keys).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gateway.storage import tables

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# table -> sealed columns (each gains <column>_bidx and room for its ciphertext).
_SEALED = {
    "transactions": ("customer", "payment_method"),
    "payment_methods": ("token", "customer"),
    "subscriptions": ("customer",),
}


def upgrade() -> None:
    """Widen sealed columns, add blind indexes and move lookups onto them; add privacy_log."""
    for table, columns in _SEALED.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.alter_column(
                    column, type_=sa.String(length=256), existing_type=sa.String(length=128)
                )
                batch.add_column(sa.Column(f"{column}_bidx", sa.String(length=32), nullable=True))
            batch.drop_index(op.f(f"ix_{table}_customer_pk"))
            batch.create_index(
                op.f(f"ix_{table}_customer_bidx_pk"), ["customer_bidx", "pk"], unique=False
            )
            if table == "payment_methods":
                batch.drop_constraint(
                    op.f("uq_payment_methods_provider_account_token"), type_="unique"
                )
                batch.create_unique_constraint(
                    op.f("uq_payment_methods_provider_account_token_bidx"),
                    ["provider", "account", "token_bidx"],
                )
    with op.batch_alter_table("event_objects") as batch:
        batch.alter_column(
            "object_id", type_=sa.String(length=256), existing_type=sa.String(length=128)
        )
        batch.add_column(sa.Column("object_bidx", sa.String(length=32), nullable=True))
    op.create_table(
        "privacy_log",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("at", tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=True),
        sa.Column("account", sa.String(length=64), nullable=True),
        sa.Column("subject", sa.String(length=64), nullable=True),
        sa.Column("transactions", sa.Integer(), nullable=False),
        sa.Column("payment_methods", sa.Integer(), nullable=False),
        sa.Column("subscriptions", sa.Integer(), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("audit_entries", sa.Integer(), nullable=False),
        sa.Column("legal_basis", sa.String(length=256), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_privacy_log")),
    )
    op.create_index(op.f("ix_privacy_log_at"), "privacy_log", ["at"], unique=False)
    op.create_index(op.f("ix_privacy_log_subject"), "privacy_log", ["subject"], unique=False)


def downgrade() -> None:
    """Drop the privacy log and blind indexes (sealed values stay sealed: decrypt first)."""
    op.drop_index(op.f("ix_privacy_log_subject"), table_name="privacy_log")
    op.drop_index(op.f("ix_privacy_log_at"), table_name="privacy_log")
    op.drop_table("privacy_log")
    with op.batch_alter_table("event_objects") as batch:
        batch.drop_column("object_bidx")
    for table, columns in _SEALED.items():
        with op.batch_alter_table(table) as batch:
            if table == "payment_methods":
                batch.drop_constraint(
                    op.f("uq_payment_methods_provider_account_token_bidx"), type_="unique"
                )
                batch.create_unique_constraint(
                    op.f("uq_payment_methods_provider_account_token"),
                    ["provider", "account", "token"],
                )
            batch.drop_index(op.f(f"ix_{table}_customer_bidx_pk"))
            batch.create_index(op.f(f"ix_{table}_customer_pk"), ["customer", "pk"], unique=False)
            for column in columns:
                batch.drop_column(f"{column}_bidx")
