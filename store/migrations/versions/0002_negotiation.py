"""Negotiation API: the fee-waiver approval queue.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24

Self-contained like 0001: the table as it is today, not as ``store.models`` may later describe it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "waiver_requests",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("proposal", sa.JSON(), nullable=False),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("plan_id", sa.String(length=64), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'rejected')", name=op.f("ck_waiver_requests_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_waiver_requests")),
    )
    op.create_index(op.f("ix_waiver_requests_account_id"), "waiver_requests", ["account_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_waiver_requests_account_id"), table_name="waiver_requests")
    op.drop_table("waiver_requests")
