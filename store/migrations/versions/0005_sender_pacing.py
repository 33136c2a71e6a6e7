"""Sender pacing: each sender number's next send slot, and its requests still in the rate window.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25

Self-contained like 0001: the table as it is today, not as ``store.models`` may later describe it.
``sender_pacing``: one row per sender, created on first use; ``sender_sends``: a few rows per
sender, deleted once older than the window. Nothing to backfill.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sender_pacing",
        sa.Column("sender", sa.String(length=64), nullable=False),
        sa.Column("next_at_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("sender", name=op.f("pk_sender_pacing")),
    )
    op.create_table(
        "sender_sends",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("sender", sa.String(length=64), nullable=False),
        sa.Column("started_us", sa.BigInteger(), nullable=False),
        sa.Column("ends_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sender_sends")),
    )
    op.create_index("ix_sender_sends_sender_ends_us", "sender_sends", ["sender", "ends_us"])


def downgrade() -> None:
    op.drop_index("ix_sender_sends_sender_ends_us", table_name="sender_sends")
    op.drop_table("sender_sends")
    op.drop_table("sender_pacing")
