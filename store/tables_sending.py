"""The sender's own tables: its pacing (one send per slot, across workers) and the numbers that
replied STOP to it. Split from ``store/models.py`` by concern; the schema is the same one Alembic builds."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Index,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from store.models import Base, BigId


# ---- sender pacing (0005) ------------------------------------------------------------------------
class SenderPacingRow(Base):
    """The next free send slot of one sender number, shared by every worker (see ``store.pacing``).

    Integer microseconds since the epoch rather than a float or a timestamp: the compare-and-set
    that reserves a slot compares the value it read for exact equality, which must hold on every
    backend and driver.
    """

    __tablename__ = "sender_pacing"

    sender: Mapped[str] = mapped_column(String(64), primary_key=True)
    next_at_us: Mapped[int] = mapped_column(BigInteger)


class SenderSendRow(Base):
    """One provider request of a sender that may still count in the carrier's rate window.

    ``ends_us`` is when the request certainly reached the carrier: its answer's arrival, or, while
    it is in flight, the start plus the client's timeout (so a worker that died mid-call blocks one
    place in the window for a while, never forever). Rows older than the window are deleted.
    """

    __tablename__ = "sender_sends"
    __table_args__ = (Index("ix_sender_sends_sender_ends_us", "sender", "ends_us"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    sender: Mapped[str] = mapped_column(String(64))
    started_us: Mapped[int] = mapped_column(BigInteger)
    ends_us: Mapped[int] = mapped_column(BigInteger)


class SmsOptOutRow(Base):
    """Whether a number may get texts from our sender at all (0011): STOP (or the carrier's 21610)
    blocks it until the number replies START, as Twilio's own opt-out handling does. Kept per number,
    apart from the accounts' contact points: it holds for numbers that are on no account too, and START
    here only lifts the carrier's block (a sign-in code may be texted again), not a debtor's opt-out
    from collection texts."""

    __tablename__ = "sms_opt_outs"

    phone: Mapped[str] = mapped_column(String(32), primary_key=True, doc="E.164")
    opted_out: Mapped[bool]
    changed_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(16))  # the keyword or error that set it: STOP, START, 21610
