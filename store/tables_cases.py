"""Cases: every request of a debtor gets an owner and a deadline (issue 14). Split from
``store/models.py`` by concern; the schema is the same one Alembic builds."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from store.models import Base, one_of

# ---- cases: every request gets an owner and a deadline (issue 14) -----------------------------------
CASE_KINDS = ("complaint", "dispute", "plan_request", "inbound_text", "emergency_reply")
CASE_STATUSES = ("open", "escalated", "answered")


class CaseRow(Base):
    """A request from a debtor (or for them) that a person must answer by ``due_at`` (0013).

    ``id`` is the case number's sequence (``C-<id>``); ``source_key`` makes opening idempotent (the
    provider's message id, a form post's token …); ``account_id`` is empty for a text from a number we
    cannot match. ``owner`` is a person once claimed; ``team`` who works it otherwise.
    """

    __tablename__ = "cases"
    __table_args__ = (
        CheckConstraint(one_of("kind", CASE_KINDS), name="kind"),
        CheckConstraint(one_of("status", CASE_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source_key: Mapped[str] = mapped_column(String(128), unique=True)
    account_id: Mapped[str | None] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)
    channel: Mapped[str] = mapped_column(String(16))  # sms, page, call, api, console
    summary: Mapped[str] = mapped_column(Text)
    owner: Mapped[str | None] = mapped_column(String(100), index=True)
    team: Mapped[str] = mapped_column(String(16))
    opened_at: Mapped[datetime]
    remind_at: Mapped[datetime]
    escalate_at: Mapped[datetime]
    due_at: Mapped[datetime] = mapped_column(index=True)
    reminded_at: Mapped[datetime | None]
    escalated_at: Mapped[datetime | None]
    overdue_at: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]
    answer: Mapped[str | None] = mapped_column(Text)


class CaseEventRow(Base):
    """A case's history: opened, claimed, noted, reminded, escalated, answered (0013)."""

    __tablename__ = "case_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(32))
    note: Mapped[str] = mapped_column(Text, default="")
