"""Console sessions kept on the server: the cookie no longer carries the operator's API token.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05

``console_sessions``: one row per sign-in, keyed by the SHA-256 of the cookie's random id, with the
digest of the token that signed in (removing the token from ``COLLECT_API_TOKENS`` ends its
sessions), the operator's name (sign out everywhere), the role an identity provider stated for an
OIDC sign-in, and when it was made and last used (the absolute and idle expiry).

``debtors.date_of_birth``: from intake (optional column), keyed in by the debtor on a call before
the balance is spoken (right-party verification); compared, never shown.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "console_sessions",
        sa.Column("id_digest", sa.String(64), nullable=False),
        sa.Column("token_digest", sa.String(64), nullable=False),
        sa.Column("principal", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id_digest", name=op.f("pk_console_sessions")),
    )
    op.create_index(op.f("ix_console_sessions_principal"), "console_sessions", ["principal"])
    with op.batch_alter_table("debtors") as batch:
        batch.add_column(sa.Column("date_of_birth", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("debtors") as batch:
        batch.drop_column("date_of_birth")
    op.drop_index(op.f("ix_console_sessions_principal"), table_name="console_sessions")
    op.drop_table("console_sessions")
