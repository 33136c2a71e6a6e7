"""The debtor's own sessions: a link from a text opens one, and shows nothing until the debtor is verified.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05

``debtor_sessions``: one row per visit opened by a signed link, keyed by the SHA-256 of the cookie's
random id, with the account, the forms' CSRF token, when it was opened and last used (idle and
absolute expiry), when the debtor confirmed their date of birth (right-party verification) and how
many tries failed.

``link_revocations``: per account, the moment before which its self-service links are void (the
debtor signed out everywhere, or an operator revoked them).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "debtor_sessions",
        sa.Column("id_digest", sa.String(64), nullable=False),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id_digest", name=op.f("pk_debtor_sessions")),
    )
    op.create_index(op.f("ix_debtor_sessions_account_id"), "debtor_sessions", ["account_id"])
    op.create_table(
        "link_revocations",
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_link_revocations")),
    )


def downgrade() -> None:
    op.drop_table("link_revocations")
    op.drop_index(op.f("ix_debtor_sessions_account_id"), table_name="debtor_sessions")
    op.drop_table("debtor_sessions")
