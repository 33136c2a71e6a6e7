"""Initial schema: debtors, contact points, accounts, holds, contact attempts, plans, payments, audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-22

Self-contained on purpose (no import of ``store.models``): a migration must keep creating the schema
of its day even after the models move on.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def ts(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "debtors",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column("region", sa.String(length=16), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_debtors")),
    )
    op.create_table(
        "accounts",
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("debtor_id", BIG_ID, nullable=False),
        sa.Column("product", sa.String(length=16), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("opening_balance_minor", sa.BigInteger(), nullable=False),
        sa.Column("balance_minor", sa.BigInteger(), nullable=False),
        sa.Column("fees_minor", sa.BigInteger(), nullable=False),
        sa.Column("paid_minor", sa.BigInteger(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("profile", sa.String(length=32), nullable=False),
        sa.Column("policy", sa.String(length=64), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("close_reason", sa.String(length=16), nullable=True),
        sa.Column("stage", sa.String(length=16), nullable=True),
        sa.Column("dpd", sa.Integer(), nullable=True),
        ts("created_at"),
        ts("updated_at"),
        sa.CheckConstraint("mode IN ('dunning', 'settlement', 'closed')", name=op.f("ck_accounts_mode")),
        sa.CheckConstraint("fees_minor >= 0", name=op.f("ck_accounts_fees_not_negative")),
        sa.ForeignKeyConstraint(["debtor_id"], ["debtors.id"], name=op.f("fk_accounts_debtor_id_debtors")),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_accounts")),
    )
    op.create_index(op.f("ix_accounts_debtor_id"), "accounts", ["debtor_id"])
    op.create_table(
        "contact_points",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("debtor_id", BIG_ID, nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("address", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        ts("updated_at"),
        sa.CheckConstraint("channel IN ('sms', 'voice')", name=op.f("ck_contact_points_channel")),
        sa.CheckConstraint(
            "status IN ('active', 'unreachable', 'opted_out')", name=op.f("ck_contact_points_status")
        ),
        sa.ForeignKeyConstraint(
            ["debtor_id"],
            ["debtors.id"],
            name=op.f("fk_contact_points_debtor_id_debtors"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_points")),
        sa.UniqueConstraint("debtor_id", "channel", name=op.f("uq_contact_points_debtor_id_channel")),
    )
    op.create_table(
        "holds",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=True),
        ts("since"),
        ts("until", nullable=True),
        ts("lifted_at", nullable=True),
        sa.CheckConstraint("channel IS NULL OR channel IN ('sms', 'voice')", name=op.f("ck_holds_channel")),
        sa.CheckConstraint(
            "kind IN ('pause', 'dispute', 'complaint', 'cease', 'attorney', 'bankruptcy', 'deceased', "
            "'negotiation')",
            name=op.f("ck_holds_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.account_id"], name=op.f("fk_holds_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_holds")),
    )
    op.create_index(op.f("ix_holds_account_id"), "holds", ["account_id"])
    op.create_table(
        "contact_attempts",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("template", sa.String(length=64), nullable=False),
        sa.Column("to_address", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("provider_sid", sa.String(length=64), nullable=True),
        sa.Column("provider_status", sa.String(length=32), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("error_code", sa.Integer(), nullable=True),
        ts("created_at"),
        ts("updated_at"),
        ts("sent_at", nullable=True),
        sa.CheckConstraint("channel IN ('sms', 'voice')", name=op.f("ck_contact_attempts_channel")),
        sa.CheckConstraint(
            "state IN ('reserved', 'accepted', 'rejected', 'retryable', 'indeterminate', 'denied')",
            name=op.f("ck_contact_attempts_state"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.account_id"], name=op.f("fk_contact_attempts_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_attempts")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_contact_attempts_dedupe_key")),
        sa.UniqueConstraint("provider_sid", name=op.f("uq_contact_attempts_provider_sid")),
    )
    op.create_index(
        "ix_contact_attempts_account_id_created_at", "contact_attempts", ["account_id", "created_at"]
    )
    op.create_table(
        "plans",
        sa.Column("plan_id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("total_minor", sa.BigInteger(), nullable=False),
        sa.Column("waived_minor", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        ts("agreed_at"),
        sa.Column("proposed_by", sa.String(length=64), nullable=False),
        sa.Column("approver", sa.String(length=64), nullable=True),
        sa.Column("hardship_evidence", sa.Text(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        ts("updated_at"),
        sa.CheckConstraint("status IN ('active', 'completed', 'broken')", name=op.f("ck_plans_status")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.account_id"], name=op.f("fk_plans_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("plan_id", name=op.f("pk_plans")),
    )
    op.create_index(op.f("ix_plans_account_id"), "plans", ["account_id"])
    op.create_table(
        "instalments",
        sa.Column("plan_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("paid_minor", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.CheckConstraint("status IN ('due', 'paid', 'missed')", name=op.f("ck_instalments_status")),
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_instalments_amount_positive")),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["plans.plan_id"], name=op.f("fk_instalments_plan_id_plans"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("plan_id", "seq", name=op.f("pk_instalments")),
    )
    op.create_table(
        "payments",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("reference", sa.String(length=128), nullable=False),
        ts("received_at"),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_payments_amount_positive")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.account_id"], name=op.f("fk_payments_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
        sa.UniqueConstraint("reference", name=op.f("uq_payments_reference")),
    )
    op.create_index(op.f("ix_payments_account_id"), "payments", ["account_id"])
    op.create_table(
        "audit_log",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        ts("at"),
        sa.Column("account_id", sa.String(length=64), nullable=True),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("decision", sa.String(length=64), nullable=False),
        sa.Column("rule", sa.String(length=128), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_account_id_at", "audit_log", ["account_id", "at"])


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_table("payments")
    op.drop_table("instalments")
    op.drop_table("plans")
    op.drop_table("contact_attempts")
    op.drop_table("holds")
    op.drop_table("contact_points")
    op.drop_table("accounts")
    op.drop_table("debtors")
