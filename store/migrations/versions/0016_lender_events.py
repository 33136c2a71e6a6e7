"""Events out to the lender's systems: the transactional outbox, subscriptions and their deliveries.

Revision ID: 0016
Revises: 0014
Create Date: 2026-12-08

``event_outbox``: one row per event (plan agreed, payment applied, line frozen …), written by the
``record`` activity in the same transaction as the state change it tells; ``event_streams``: each
account's last sequence number and whether its line is frozen. ``event_subscriptions``: the lender's
endpoints (URL, event types, the Standard Webhooks secret); ``event_deliveries``: one row per event and
subscription, pending until the endpoint answers 2xx, dead after the last try; ``event_attempts``: every
try with its answer. Nothing is written for accounts stored before this revision until they change.

(Chained on 0014 in its own branch; the integrator puts it after 0015.)
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TYPES = (
    "type IN ('plan_agreed', 'plan_broken', 'plan_completed', 'payment_applied', 'charged_off', 'placed', "
    "'closed', 'complaint_filed', 'dispute_filed', 'hold_added', 'hold_lifted', 'opted_out', "
    "'line_frozen', 'line_restored')"
)
TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "event_outbox",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("occurred_at", TZ, nullable=False),
        sa.Column("recorded_at", TZ, nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("change_key", sa.String(64), nullable=False),
        sa.Column("routed", sa.Boolean(), nullable=False),
        sa.CheckConstraint(TYPES, name=op.f("ck_event_outbox_type")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_outbox")),
        sa.UniqueConstraint("event_id", name=op.f("uq_event_outbox_event_id")),
        sa.UniqueConstraint("account_id", "seq", name=op.f("uq_event_outbox_account_id_seq")),
    )
    op.create_index("ix_event_outbox_account_id_change_key", "event_outbox", ["account_id", "change_key"])
    op.create_index("ix_event_outbox_routed_id", "event_outbox", ["routed", "id"])
    op.create_table(
        "event_streams",
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("line_frozen", sa.Boolean(), nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_event_streams")),
    )
    op.create_table(
        "event_subscriptions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("description", sa.String(200), nullable=False),
        sa.Column("event_types", sa.JSON(), nullable=True),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.Column("previous_secret", sa.String(128), nullable=True),
        sa.Column("previous_until", TZ, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("rotated_at", TZ, nullable=True),
        sa.Column("rotated_by", sa.String(100), nullable=True),
        sa.Column("disabled_at", TZ, nullable=True),
        sa.Column("disabled_by", sa.String(200), nullable=True),
        sa.CheckConstraint("status IN ('active', 'disabled')", name=op.f("ck_event_subscriptions_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_subscriptions")),
    )
    op.create_table(
        "event_deliveries",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("outbox_id", BIG_ID, nullable=False),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TZ, nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", TZ, nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_attempt_at", TZ, nullable=True),
        sa.Column("delivered_at", TZ, nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'dead')", name=op.f("ck_event_deliveries_status")
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["event_subscriptions.id"],
            name=op.f("fk_event_deliveries_subscription_id_event_subscriptions"),
        ),
        sa.ForeignKeyConstraint(
            ["outbox_id"], ["event_outbox.id"], name=op.f("fk_event_deliveries_outbox_id_event_outbox")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_deliveries")),
        sa.UniqueConstraint(
            "subscription_id", "outbox_id", name=op.f("uq_event_deliveries_subscription_id_outbox_id")
        ),
    )
    op.create_index(
        "ix_event_deliveries_subscription_id_account_id_seq",
        "event_deliveries",
        ["subscription_id", "account_id", "seq"],
    )
    op.create_index(
        "ix_event_deliveries_status_next_attempt_at", "event_deliveries", ["status", "next_attempt_at"]
    )
    op.create_table(
        "event_attempts",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("delivery_id", BIG_ID, nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["event_deliveries.id"],
            name=op.f("fk_event_attempts_delivery_id_event_deliveries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_attempts")),
    )
    op.create_index(op.f("ix_event_attempts_delivery_id"), "event_attempts", ["delivery_id"])
    op.create_index("ix_event_attempts_subscription_id_at", "event_attempts", ["subscription_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_event_attempts_subscription_id_at", table_name="event_attempts")
    op.drop_index(op.f("ix_event_attempts_delivery_id"), table_name="event_attempts")
    op.drop_table("event_attempts")
    op.drop_index("ix_event_deliveries_status_next_attempt_at", table_name="event_deliveries")
    op.drop_index("ix_event_deliveries_subscription_id_account_id_seq", table_name="event_deliveries")
    op.drop_table("event_deliveries")
    op.drop_table("event_subscriptions")
    op.drop_table("event_streams")
    op.drop_index("ix_event_outbox_routed_id", table_name="event_outbox")
    op.drop_index("ix_event_outbox_account_id_change_key", table_name="event_outbox")
    op.drop_table("event_outbox")
