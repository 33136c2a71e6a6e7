"""One clock in the audit log: each account's policy clock, and the wall time beside policy time.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04

Under day scaling (``--day-seconds``, the demo) an account's rules run on its policy clock, which
its workflow fixes at the start (``PolicyClock``), while the service and the CLI only know the wall
clock. Their audit lines were in wall time and the workflow's in policy time, so the log of one
account read out of order. Now:
* ``accounts.clock_epoch`` / ``clock_day_seconds``: the account's policy clock when it is scaled
  (NULL: real time), written when its workflow starts with that very epoch;
* ``audit_log.wall_at``: the wall time a line was written, kept beside ``at`` (policy time) when the
  two differ by a second or more.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("clock_epoch", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("clock_day_seconds", sa.Float(), nullable=True))
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("wall_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("wall_at")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("clock_day_seconds")
        batch.drop_column("clock_epoch")
