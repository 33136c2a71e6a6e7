"""Champion/challenger: the variant intake put each account in.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-10

``accounts.variant``: the name of the strategy's variant (``domain.strategy``) the account was
assigned to when intake took it in, kept so the dashboard can compare the variants' results. NULL for
accounts taken in without a strategy, whose file row named a policy, and every account stored before
this revision. Indexed: the dashboard and ``strategy promote --upgrade-running`` select by it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("accounts", sa.Column("variant", sa.String(length=64), nullable=True))
    op.create_index(op.f("ix_accounts_variant"), "accounts", ["variant"])


def downgrade() -> None:
    op.drop_index(op.f("ix_accounts_variant"), table_name="accounts")
    with op.batch_alter_table("accounts") as batch:  # SQLite: a table rebuild
        batch.drop_column("variant")
