"""Who is signed in, and how: console and debtor sessions, revoked links, one-time codes and the new
numbers they confirm. Split from ``store/models.py`` by concern; the schema is the same one Alembic builds."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from store.models import CHANNELS, Base, BigId, one_of


class ConsoleSessionRow(Base):
    """A console sign-in (0008). The cookie carries only an opaque id; the row keeps its digest, so a
    copy of the database signs nobody in, and deleting rows signs an operator out everywhere."""

    __tablename__ = "console_sessions"

    id_digest: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the cookie's id
    token_digest: Mapped[str] = mapped_column(String(64))  # SHA-256 of the API token that signed in
    principal: Mapped[str] = mapped_column(String(200), index=True)
    # the role an identity provider stated at sign-in (OIDC); NULL: the role of the token that signed in
    role: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime]
    seen_at: Mapped[datetime]


class DebtorSessionRow(Base):
    """A debtor's visit to their own pages (0009), opened by the signed link of a text. The cookie holds
    an opaque id; nothing about the debt is shown until ``verified_at`` (right-party verification)."""

    __tablename__ = "debtor_sessions"

    id_digest: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the cookie's id
    account_id: Mapped[str] = mapped_column(String(64), index=True)
    csrf: Mapped[str] = mapped_column(String(64))  # the forms' token, compared on every post
    created_at: Mapped[datetime]
    seen_at: Mapped[datetime]
    verified_at: Mapped[datetime | None]
    failures: Mapped[int] = mapped_column(default=0)


class LinkRevocationRow(Base):
    """Self-service links of an account issued before ``revoked_at`` open nothing any more (0009)."""

    __tablename__ = "link_revocations"

    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    revoked_at: Mapped[datetime]


# ---- sign-in with a one-time code (0011) ------------------------------------------------------------
CODE_PURPOSES = ("signin", "contact")


class SigninCodeRow(Base):
    """A one-time code a debtor asked for at ``/me`` (0011). Only its scrypt digest is kept, with the
    digest of the browser's challenge cookie (the code works only in the browser that asked) and of the
    number. ``account_id`` is NULL when no account has the number: such a row is never sent and never
    opens anything, but it is written, checked and locked like any other, so the answers, the tries
    left and the time taken are the same whether or not a number is on file."""

    __tablename__ = "signin_codes"
    __table_args__ = (
        CheckConstraint(one_of("channel", CHANNELS), name="channel"),
        CheckConstraint(one_of("purpose", CODE_PURPOSES), name="purpose"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    challenge_digest: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 of the cookie's id
    phone_digest: Mapped[str] = mapped_column(String(64), index=True)  # SHA-256 of the E.164 number
    account_id: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(8))  # what the debtor asked for (a text may become a call)
    salt: Mapped[str] = mapped_column(String(32))
    code_digest: Mapped[str] = mapped_column(String(64))  # scrypt(code, salt)
    created_at: Mapped[datetime] = mapped_column(index=True)
    expires_at: Mapped[datetime]
    failures: Mapped[int] = mapped_column(Integer)
    used_at: Mapped[datetime | None]
    locked_until: Mapped[datetime | None]
    # What the code is for (0017): signing in at /me, or confirming a new number of the account
    # (``contact_changes``). A code of one purpose never answers for the other; wrong tries and the
    # lock-out count per number across both.
    purpose: Mapped[str] = mapped_column(String(16), default="signin", server_default="signin")


# ---- a new number for a lost debtor, confirmed by code (0017) ---------------------------------------
NUMBER_SOURCES = ("agent", "emergency_contact", "debtor")
NUMBER_STATUSES = ("pending", "confirmed", "cancelled", "superseded")
CONFIRMED_VIA = ("agent", "page")


class ContactChangeRow(Base):
    """A number recorded for a debtor (0017): ``pending`` until the debtor keys in the code sent to it,
    and only then written to the contact points (``confirmed``). Never used for collection before.

    ``source`` says who gave it (an agent, the emergency contact's reply ``case_id``, the debtor on the
    page) and ``recorded_by`` which person recorded it; ``confirmed_by`` who keyed the code in (the agent
    the debtor read it to, or "debtor") and ``confirmed_via`` where. ``codes_sent`` numbers the codes, so
    each code's challenge is ``contact-change|<id>|<n>``. ``told_at``: the account's run heard of it.
    """

    __tablename__ = "contact_changes"
    __table_args__ = (
        CheckConstraint(one_of("source", NUMBER_SOURCES), name="source"),
        CheckConstraint(one_of("status", NUMBER_STATUSES), name="status"),
        CheckConstraint(one_of("code_via", CHANNELS), name="code_via"),
        CheckConstraint(one_of("confirmed_via", CONFIRMED_VIA, nullable=True), name="confirmed_via"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    phone: Mapped[str] = mapped_column(String(32), doc="E.164")
    previous_phone: Mapped[str | None] = mapped_column(String(32), doc="E.164, set once confirmed")
    status: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(24))
    recorded_by: Mapped[str] = mapped_column(String(100))
    case_id: Mapped[int | None] = mapped_column(Integer)
    code_via: Mapped[str] = mapped_column(String(8))
    codes_sent: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    confirmed_at: Mapped[datetime | None]
    confirmed_by: Mapped[str | None] = mapped_column(String(100))
    confirmed_via: Mapped[str | None] = mapped_column(String(8))
    told_at: Mapped[datetime | None]
