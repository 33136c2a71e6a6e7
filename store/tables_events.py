"""Events out to the lender's systems (0016): the outbox, its streams, the subscriptions and each
delivery and attempt. Split from ``store/models.py`` by concern; the schema is the same one Alembic builds."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from store.models import Base, BigId, one_of

# ---- events out to the lender's systems (0016) ------------------------------------------------------
EVENT_TYPES = (
    "plan_agreed",
    "plan_broken",
    "plan_completed",
    "payment_applied",
    "charged_off",
    "placed",
    "closed",
    "complaint_filed",
    "dispute_filed",
    "hold_added",
    "hold_lifted",
    "opted_out",
    "line_frozen",
    "line_restored",
)
SUBSCRIPTION_STATUSES = ("active", "disabled")
DELIVERY_STATUSES = ("pending", "delivered", "dead")


class EventOutboxRow(Base):
    """An event for the lender's systems, written in the same transaction as the state change it tells
    (the transactional outbox, ``store/outbox.py``). ``id`` orders the whole outbox, ``seq`` the account's
    own events; ``change_key`` makes a retried change write nothing twice. ``routed``: handed to the
    subscriptions (a delivery row per subscription that wants it) by a deliverer."""

    __tablename__ = "event_outbox"
    __table_args__ = (
        CheckConstraint(one_of("type", EVENT_TYPES), name="type"),
        UniqueConstraint("account_id", "seq"),
        Index("ix_event_outbox_account_id_change_key", "account_id", "change_key"),
        Index("ix_event_outbox_routed_id", "routed", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)  # a UUID: the receiver's dedupe key
    account_id: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[datetime]  # policy time of the change (the audit log's clock)
    recorded_at: Mapped[datetime]  # wall time of the write
    data: Mapped[dict[str, Any]]
    change_key: Mapped[str] = mapped_column(String(64))
    routed: Mapped[bool] = mapped_column(default=False)


class EventStreamRow(Base):
    """An account's event stream: the last sequence number given, and whether its line is frozen."""

    __tablename__ = "event_streams"

    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_seq: Mapped[int] = mapped_column(Integer)
    line_frozen: Mapped[bool]
    updated_at: Mapped[datetime]


class EventSubscriptionRow(Base):
    """A lender's endpoint: where its events go, which types, signed with which secret (Standard
    Webhooks). ``previous_secret`` also signs until ``previous_until`` after a rotation."""

    __tablename__ = "event_subscriptions"
    __table_args__ = (CheckConstraint(one_of("status", SUBSCRIPTION_STATUSES), name="status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(String(200), default="")
    event_types: Mapped[list[str] | None] = mapped_column(JSON)  # None: every type
    secret: Mapped[str] = mapped_column(String(128))
    previous_secret: Mapped[str | None] = mapped_column(String(128))
    previous_until: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(100))
    rotated_at: Mapped[datetime | None]
    rotated_by: Mapped[str | None] = mapped_column(String(100))
    disabled_at: Mapped[datetime | None]
    disabled_by: Mapped[str | None] = mapped_column(String(200))


class EventDeliveryRow(Base):
    """One event for one subscription: pending until the endpoint answers 2xx, dead after the last
    try (which stops that account's stream for that subscription until an operator retries it).
    ``lease_owner``/``lease_until``: the deliverer working on it now (two deliverers never send the
    same account's events at once, and a killed one's lease runs out)."""

    __tablename__ = "event_deliveries"
    __table_args__ = (
        CheckConstraint(one_of("status", DELIVERY_STATUSES), name="status"),
        UniqueConstraint("subscription_id", "outbox_id"),
        Index("ix_event_deliveries_subscription_id_account_id_seq", "subscription_id", "account_id", "seq"),
        Index("ix_event_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("event_subscriptions.id"))
    outbox_id: Mapped[int] = mapped_column(ForeignKey("event_outbox.id"))
    account_id: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime]
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_attempt_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class EventAttemptRow(Base):
    """One try to deliver: when, what the endpoint answered (or why there was no answer), how long."""

    __tablename__ = "event_attempts"
    __table_args__ = (Index("ix_event_attempts_subscription_id_at", "subscription_id", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("event_deliveries.id"), index=True)
    subscription_id: Mapped[int] = mapped_column(Integer)
    attempt: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime]
    status_code: Mapped[int | None] = mapped_column(Integer)
    ok: Mapped[bool]
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer)
