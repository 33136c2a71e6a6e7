"""A new number for a lost debtor, used only once the debtor confirms it with a one-time code.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-09

``contact_changes``: one row per number recorded for a debtor (by an agent, from an emergency
contact's reply, or by the debtor on the page): pending until the code sent to it is keyed in, then
confirmed (and written to the contact points), cancelled or superseded by a newer one; who recorded
it, who keyed the code in and where, and when the account's run was told.

``signin_codes.purpose``: the code machinery of the sign-in (0011) sends these codes too; ``signin``
(every row stored before this revision) or ``contact``. A code of one purpose never answers for the
other; wrong tries and the lock-out count per number across both.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "contact_changes",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("phone", sa.String(32), nullable=False),
        sa.Column("previous_phone", sa.String(32), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("source", sa.String(24), nullable=False),
        sa.Column("recorded_by", sa.String(100), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("code_via", sa.String(8), nullable=False),
        sa.Column("codes_sent", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("confirmed_by", sa.String(100), nullable=True),
        sa.Column("confirmed_via", sa.String(8), nullable=True),
        sa.Column("told_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "source IN ('agent', 'emergency_contact', 'debtor')", name=op.f("ck_contact_changes_source")
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'confirmed', 'cancelled', 'superseded')",
            name=op.f("ck_contact_changes_status"),
        ),
        sa.CheckConstraint("code_via IN ('sms', 'voice')", name=op.f("ck_contact_changes_code_via")),
        sa.CheckConstraint(
            "confirmed_via IS NULL OR confirmed_via IN ('agent', 'page')",
            name=op.f("ck_contact_changes_confirmed_via"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.account_id"],
            name=op.f("fk_contact_changes_account_id_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_changes")),
    )
    op.create_index(op.f("ix_contact_changes_account_id"), "contact_changes", ["account_id"])
    with op.batch_alter_table("signin_codes") as batch:  # SQLite: a table rebuild for the CHECK
        batch.add_column(sa.Column("purpose", sa.String(16), nullable=False, server_default="signin"))
        batch.create_check_constraint(op.f("ck_signin_codes_purpose"), "purpose IN ('signin', 'contact')")


def downgrade() -> None:
    with op.batch_alter_table("signin_codes") as batch:
        batch.drop_constraint(op.f("ck_signin_codes_purpose"), type_="check")
        batch.drop_column("purpose")
    op.drop_index(op.f("ix_contact_changes_account_id"), table_name="contact_changes")
    op.drop_table("contact_changes")
