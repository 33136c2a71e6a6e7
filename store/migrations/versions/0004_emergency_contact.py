"""Emergency contacts: the third party a debtor named, and whom each contact attempt went to.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24

Self-contained like 0001: the table as it is today, not as ``store.models`` may later describe it.
``contact_attempts.audience`` is added in place (existing rows were all to the debtor), with its
CHECK as a column constraint, which SQLite accepts in ``ALTER TABLE ADD COLUMN`` (no table rebuild).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "emergency_contacts",
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('active', 'unreachable', 'opted_out')", name=op.f("ck_emergency_contacts_status")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.account_id"],
            name=op.f("fk_emergency_contacts_account_id_accounts"),
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_emergency_contacts")),
    )
    op.add_column(
        "contact_attempts",
        sa.Column(
            "audience",
            sa.String(length=16),
            sa.CheckConstraint(
                "audience IN ('debtor', 'third_party')", name=op.f("ck_contact_attempts_audience")
            ),
            nullable=False,
            server_default="debtor",
        ),
    )


def downgrade() -> None:
    with op.batch_alter_table("contact_attempts") as batch:  # SQLite: a table rebuild
        batch.drop_constraint(op.f("ck_contact_attempts_audience"), type_="check")
        batch.drop_column("audience")
    op.drop_table("emergency_contacts")
