"""One account state: payment references per account, the refund queue, pinned rule versions, fenced sends.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04

Self-contained like 0001. What changes, and why:
* ``payments``: a reference is unique per account, not across all of them (a lender's invoice number
  used for two debtors froze the second account for ever: its record could never be written).
* ``plans.status`` may be ``cancelled`` (a plan ended by a close order; the check refused it, and the
  write was retried for ever).
* ``refunds``: money received beyond what was owed, or after the account closed, waiting for an
  operator to refund it or apply it.
* ``rule_versions`` and ``accounts.policy_version`` / ``profile_version``: the policy and profile text
  each account runs, so the live gate and the API use the same rules as the account's workflow.
* ``contact_attempts.cleared_by`` (which try of a send holds its clearance, so a stalled earlier try
  cannot send after a later one took over) and ``body_digest`` (what the message said, so a crashed
  send is matched to the provider's record of that very message and nothing else).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def ts(name: str, *, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("payments") as batch:  # SQLite: a table rebuild
        batch.drop_constraint(op.f("uq_payments_reference"), type_="unique")
        batch.create_unique_constraint(op.f("uq_payments_account_id_reference"), ["account_id", "reference"])
    with op.batch_alter_table("plans") as batch:
        batch.drop_constraint(op.f("ck_plans_status"), type_="check")
        batch.create_check_constraint(
            op.f("ck_plans_status"), "status IN ('active', 'completed', 'broken', 'cancelled')"
        )
    op.create_table(
        "refunds",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("reference", sa.String(length=128), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        ts("created_at"),
        ts("resolved_at", nullable=True),
        sa.Column("resolved_by", sa.String(length=100), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_refunds_amount_positive")),
        sa.CheckConstraint("status IN ('open', 'refunded', 'applied')", name=op.f("ck_refunds_status")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.account_id"], name=op.f("fk_refunds_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refunds")),
        sa.UniqueConstraint("account_id", "reference", name=op.f("uq_refunds_account_id_reference")),
    )
    op.create_index(op.f("ix_refunds_status"), "refunds", ["status"])
    op.create_table(
        "rule_versions",
        sa.Column("version", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        ts("created_at"),
        sa.CheckConstraint("kind IN ('policy', 'profile')", name=op.f("ck_rule_versions_kind")),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_rule_versions")),
    )
    op.add_column("accounts", sa.Column("policy_version", sa.String(length=100), nullable=True))
    op.add_column("accounts", sa.Column("profile_version", sa.String(length=100), nullable=True))
    op.add_column("contact_attempts", sa.Column("cleared_by", sa.Integer(), nullable=True))
    op.add_column("contact_attempts", sa.Column("body_digest", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("contact_attempts") as batch:
        batch.drop_column("body_digest")
        batch.drop_column("cleared_by")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("profile_version")
        batch.drop_column("policy_version")
    op.drop_table("rule_versions")
    op.drop_index(op.f("ix_refunds_status"), table_name="refunds")
    op.drop_table("refunds")
    with op.batch_alter_table("plans") as batch:
        batch.drop_constraint(op.f("ck_plans_status"), type_="check")
        batch.create_check_constraint(op.f("ck_plans_status"), "status IN ('active', 'completed', 'broken')")
    with op.batch_alter_table("payments") as batch:
        batch.drop_constraint(op.f("uq_payments_account_id_reference"), type_="unique")
        batch.create_unique_constraint(op.f("uq_payments_reference"), ["reference"])
