"""Payments the debtor starts from their own page: the checkout, and the provider's payment ID once paid.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05

``checkouts``: one row per checkout the debtor opened (the balance, the next instalment or an amount
they chose), at Stripe or at the local checkout simulator. The provider's signed webhook completes it
once: ``payment_id`` is the provider's, and it is the payment's reference in the account's workflow, so
a replayed webhook pays nothing twice.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "checkouts",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("provider_session_id", sa.String(255), nullable=True),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("payment_id", sa.String(255), nullable=True),
        sa.Column("paid_minor", sa.BigInteger(), nullable=True),
        sa.CheckConstraint("provider IN ('stripe', 'simulator')", name=op.f("ck_checkouts_provider")),
        sa.CheckConstraint(
            "purpose IN ('balance', 'instalment', 'amount')", name=op.f("ck_checkouts_purpose")
        ),
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_checkouts_amount_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkouts")),
        sa.UniqueConstraint("provider_session_id", name=op.f("uq_checkouts_provider_session_id")),
    )
    op.create_index(op.f("ix_checkouts_account_id"), "checkouts", ["account_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_checkouts_account_id"), table_name="checkouts")
    op.drop_table("checkouts")
