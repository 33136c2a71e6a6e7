"""The collector an agency sends to a field visit, so the debtor (and anyone at the door) can check them.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05

``visits.collector_id``: the badge ID of the person the agency sends, set by the agency through its
API before the visit (``PUT /agency/visits/{id}/collector``). NULL until then, and for every visit
stored before this revision. Indexed with ``agency_id``: the public ``/verify`` page asks "is this
collector of this agency on an open visit?".
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("visits", sa.Column("collector_id", sa.String(length=32), nullable=True))
    op.create_index("ix_visits_agency_id_collector_id", "visits", ["agency_id", "collector_id"])


def downgrade() -> None:
    op.drop_index("ix_visits_agency_id_collector_id", table_name="visits")
    with op.batch_alter_table("visits") as batch:  # SQLite: a table rebuild
        batch.drop_column("collector_id")
