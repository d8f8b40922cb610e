"""records, events and event objects

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gateway.storage import tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "events",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("type", sa.String(length=128), nullable=False),
        sa.Column("occurred_at", tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("received_at", tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("dropped_fields", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_events")),
        sa.UniqueConstraint(
            "provider", "account", "id", name=op.f("uq_events_provider_account_id")
        ),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_events_received_at"), "events", ["received_at"], unique=False)
    op.create_table(
        "payment_methods",
        sa.Column(
            "pk",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("created_at", tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_event_id", sa.String(length=128), nullable=False),
        sa.Column("last_event_at", tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("token", sa.String(length=128), nullable=False),
        sa.Column("customer", sa.String(length=128), nullable=True),
        sa.Column("brand", sa.String(length=16), nullable=True),
        sa.Column("last4", sa.String(length=4), nullable=True),
        sa.Column("exp_month", sa.SmallInteger(), nullable=True),
        sa.Column("exp_year", sa.SmallInteger(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_payment_methods")),
        sa.UniqueConstraint(
            "provider", "account", "token", name=op.f("uq_payment_methods_provider_account_token")
        ),
    )
    op.create_index(
        op.f("ix_payment_methods_customer"), "payment_methods", ["customer"], unique=False
    )
    op.create_index(
        op.f("ix_payment_methods_updated_at"), "payment_methods", ["updated_at"], unique=False
    )
    op.create_table(
        "subscriptions",
        sa.Column(
            "pk",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("created_at", tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_event_id", sa.String(length=128), nullable=False),
        sa.Column("last_event_at", tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("customer", sa.String(length=128), nullable=True),
        sa.Column("plan", sa.String(length=128), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("provider_status", sa.String(length=64), nullable=True),
        sa.Column("current_period_end", tables.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancel_at_period_end", sa.Boolean(), nullable=True),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_subscriptions")),
        sa.UniqueConstraint(
            "provider", "account", "id", name=op.f("uq_subscriptions_provider_account_id")
        ),
    )
    op.create_index(op.f("ix_subscriptions_customer"), "subscriptions", ["customer"], unique=False)
    op.create_index(
        op.f("ix_subscriptions_updated_at"), "subscriptions", ["updated_at"], unique=False
    )
    op.create_table(
        "transactions",
        sa.Column(
            "pk",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("created_at", tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_event_id", sa.String(length=128), nullable=False),
        sa.Column("last_event_at", tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=True),
        sa.Column("provider_status", sa.String(length=64), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("customer", sa.String(length=128), nullable=True),
        sa.Column("payment_intent", sa.String(length=128), nullable=True),
        sa.Column("charge", sa.String(length=128), nullable=True),
        sa.Column("order", sa.String(length=128), nullable=True),
        sa.Column("invoice", sa.String(length=128), nullable=True),
        sa.Column("subscription", sa.String(length=128), nullable=True),
        sa.Column("refund_of", sa.String(length=128), nullable=True),
        sa.Column("payment_method", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_transactions")),
        sa.UniqueConstraint(
            "provider", "account", "id", name=op.f("uq_transactions_provider_account_id")
        ),
    )
    op.create_index(op.f("ix_transactions_customer"), "transactions", ["customer"], unique=False)
    op.create_index(
        op.f("ix_transactions_updated_at"), "transactions", ["updated_at"], unique=False
    )
    op.create_table(
        "event_objects",
        sa.Column(
            "event_seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("record_type", sa.String(length=32), nullable=False),
        sa.Column("object_id", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_seq"],
            ["events.seq"],
            name=op.f("fk_event_objects_event_seq_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "event_seq", "record_type", "object_id", name=op.f("pk_event_objects")
        ),
    )


def downgrade() -> None:

    op.drop_table("event_objects")
    op.drop_index(op.f("ix_transactions_updated_at"), table_name="transactions")
    op.drop_index(op.f("ix_transactions_customer"), table_name="transactions")
    op.drop_table("transactions")
    op.drop_index(op.f("ix_subscriptions_updated_at"), table_name="subscriptions")
    op.drop_index(op.f("ix_subscriptions_customer"), table_name="subscriptions")
    op.drop_table("subscriptions")
    op.drop_index(op.f("ix_payment_methods_updated_at"), table_name="payment_methods")
    op.drop_index(op.f("ix_payment_methods_customer"), table_name="payment_methods")
    op.drop_table("payment_methods")
    op.drop_index(op.f("ix_events_received_at"), table_name="events")
    op.drop_table("events")
