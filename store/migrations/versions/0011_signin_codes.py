"""Sign-in with a one-time code, and the numbers our sender may not text until they reply START.

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-08

``signin_codes``: one row per code a debtor asked for at ``/me``: the SHA-256 of the browser's
challenge cookie and of the number, the account (NULL when no account has the number: nothing is
sent, but the row answers like any other), the scrypt digest of the code and its salt, expiry, wrong
tries, when it was used, and until when the number is locked out after too many wrong tries.

``sms_opt_outs``: per number, whether it replied STOP (or the carrier answered 21610) more recently
than START: such a number gets no text from our sender, and a sign-in code goes by voice instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
# The integrator chains this on "0010" (visits.collector_id); the branch that wrote it had no 0010.
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "signin_codes",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("challenge_digest", sa.String(64), nullable=False),
        sa.Column("phone_digest", sa.String(64), nullable=False),
        sa.Column("account_id", sa.String(64), nullable=True),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("salt", sa.String(32), nullable=False),
        sa.Column("code_digest", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("channel IN ('sms', 'voice')", name=op.f("ck_signin_codes_channel")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signin_codes")),
        sa.UniqueConstraint("challenge_digest", name=op.f("uq_signin_codes_challenge_digest")),
    )
    op.create_index(op.f("ix_signin_codes_phone_digest"), "signin_codes", ["phone_digest"])
    op.create_index(op.f("ix_signin_codes_created_at"), "signin_codes", ["created_at"])
    op.create_table(
        "sms_opt_outs",
        sa.Column("phone", sa.String(32), nullable=False),
        sa.Column("opted_out", sa.Boolean(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("phone", name=op.f("pk_sms_opt_outs")),
    )


def downgrade() -> None:
    op.drop_table("sms_opt_outs")
    op.drop_index(op.f("ix_signin_codes_created_at"), table_name="signin_codes")
    op.drop_index(op.f("ix_signin_codes_phone_digest"), table_name="signin_codes")
    op.drop_table("signin_codes")
