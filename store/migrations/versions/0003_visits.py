"""Field visits and agency placements.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24

Self-contained like 0001: the tables as they are today, not as ``store.models`` may later describe them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def ts(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "visits",
        sa.Column("visit_id", sa.String(length=128), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("agency_id", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        ts("window_start"),
        ts("window_end"),
        ts("report_due"),
        sa.Column("reschedules", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("recording_ref", sa.String(length=300), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("cancel_reason", sa.String(length=64), nullable=True),
        ts("created_at"),
        ts("updated_at"),
        sa.CheckConstraint(
            "status IN ('scheduled', 'announced', 'cancelled', 'reported', 'escalated', 'unassigned')",
            name=op.f("ck_visits_status"),
        ),
        sa.CheckConstraint(
            "outcome IS NULL OR outcome IN "
            "('met_debtor', 'not_home', 'refused', 'promise_to_pay', 'plan_requested')",
            name=op.f("ck_visits_outcome"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.account_id"], name=op.f("fk_visits_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("visit_id", name=op.f("pk_visits")),
    )
    op.create_index(op.f("ix_visits_account_id"), "visits", ["account_id"])
    op.create_index(op.f("ix_visits_agency_id"), "visits", ["agency_id"])
    op.create_table(
        "placements",
        sa.Column("placement_id", sa.String(length=128), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("agency_id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("placed_balance_minor", sa.BigInteger(), nullable=False),
        sa.Column("collected_minor", sa.BigInteger(), nullable=False),
        ts("placed_at"),
        ts("ended_at", nullable=True),
        sa.Column("end_reason", sa.String(length=200), nullable=True),
        sa.CheckConstraint(
            "status IN ('active', 'recalled', 'completed', 'expired')", name=op.f("ck_placements_status")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.account_id"], name=op.f("fk_placements_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("placement_id", name=op.f("pk_placements")),
    )
    op.create_index(op.f("ix_placements_account_id"), "placements", ["account_id"])
    op.create_index(op.f("ix_placements_agency_id"), "placements", ["agency_id"])


def downgrade() -> None:
    op.drop_table("placements")
    op.drop_table("visits")
