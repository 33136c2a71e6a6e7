"""SQLAlchemy 2 typed ORM tables of the application database.

Personal data (names, numbers) lives here and nowhere in Temporal. Money is ``BigInteger`` minor units
next to a currency column; every timestamp is timezone-aware UTC on every backend (see
:class:`UTCDateTime`). Enumerated text columns carry CHECK constraints so a typo in code cannot write a
state the rest of the system does not know. The Alembic migrations in ``store/migrations`` create
exactly this schema (a test compares them); production never calls ``create_all``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

# Deterministic constraint names: Alembic can drop/alter them later, identically on SQLite and PostgreSQL.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Allowed values of the enumerated text columns (kept here, as text, so migrations can freeze them).
CHANNELS = ("sms", "voice")
CONTACT_STATUSES = ("active", "unreachable", "opted_out")
MODES = ("dunning", "settlement", "closed")
HOLD_KINDS = (
    "pause",
    "dispute",
    "complaint",
    "cease",
    "attorney",
    "bankruptcy",
    "deceased",
    "negotiation",
)
AUDIENCES = ("debtor", "third_party")
ATTEMPT_STATES = ("reserved", "accepted", "rejected", "retryable", "indeterminate", "denied")
PLAN_STATUSES = ("active", "completed", "broken", "cancelled")
INSTALMENT_STATUSES = ("due", "paid", "missed")


def one_of(column: str, values: tuple[str, ...], *, nullable: bool = False) -> str:
    """SQL text of a CHECK that ``column`` holds one of ``values``."""
    listed = ", ".join(f"'{v}'" for v in values)
    check = f"{column} IN ({listed})"
    return f"{column} IS NULL OR {check}" if nullable else check


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC and always returns an aware UTC ``datetime``, on SQLite too.

    SQLite has no time zone type: SQLAlchemy would hand back naive values, and comparing a naive with
    an aware datetime raises at the worst moment (inside the contact gate). Naive input is refused
    rather than guessed, because a naive "now" is almost always a bug.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: the store only accepts timezone-aware datetimes")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# 64-bit surrogate keys on PostgreSQL; SQLite only auto-increments a column declared exactly INTEGER.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}  # noqa: RUF012


class Debtor(Base):
    """The person. Contact details are in :class:`ContactPoint`, one per channel."""

    __tablename__ = "debtors"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(16))
    timezone: Mapped[str | None] = mapped_column(String(64))
    region: Mapped[str | None] = mapped_column(String(16))
    # right-party verification on calls (0008); compared, never shown
    date_of_birth: Mapped[date | None] = mapped_column(Date)

    contact_points: Mapped[list[ContactPoint]] = relationship(back_populates="debtor", lazy="selectin")


class ContactPoint(Base):
    """How a debtor is reached on one channel, and whether that channel may still be used."""

    __tablename__ = "contact_points"
    __table_args__ = (
        UniqueConstraint("debtor_id", "channel"),
        CheckConstraint(one_of("channel", CHANNELS), name="channel"),
        CheckConstraint(one_of("status", CONTACT_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtors.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(8))
    address: Mapped[str] = mapped_column(String(32), doc="E.164")
    status: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime]

    debtor: Mapped[Debtor] = relationship(back_populates="contact_points")


class AccountRow(Base):
    """The live account. ``opening_balance_minor`` is what intake delivered; ``balance_minor`` moves."""

    __tablename__ = "accounts"
    __table_args__ = (
        CheckConstraint(one_of("mode", MODES), name="mode"),
        CheckConstraint("fees_minor >= 0", name="fees_not_negative"),
    )

    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtors.id"), index=True)
    product: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))
    opening_balance_minor: Mapped[int] = mapped_column(BigInteger)
    balance_minor: Mapped[int] = mapped_column(BigInteger)
    fees_minor: Mapped[int] = mapped_column(BigInteger)
    paid_minor: Mapped[int] = mapped_column(BigInteger)
    due_date: Mapped[date] = mapped_column(Date)
    profile: Mapped[str] = mapped_column(String(32))
    policy: Mapped[str] = mapped_column(String(64))
    mode: Mapped[str] = mapped_column(String(16))
    close_reason: Mapped[str | None] = mapped_column(String(16))
    stage: Mapped[str | None] = mapped_column(String(16))
    dpd: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # The policy and profile versions the account's workflow runs (0006); see ``rule_versions``.
    policy_version: Mapped[str | None] = mapped_column(String(100))
    profile_version: Mapped[str | None] = mapped_column(String(100))
    # The account's policy clock when it runs scaled (0007; NULL: real time), for lines the service
    # and the CLI write: they know only the wall clock, and the audit log speaks policy time.
    clock_epoch: Mapped[datetime | None]
    clock_day_seconds: Mapped[float | None] = mapped_column(Float)
    # The champion/challenger variant intake put the account in (0018; NULL: in none, because no
    # strategy was on or its file row named its policy); see ``domain.strategy``.
    variant: Mapped[str | None] = mapped_column(String(64), index=True)

    debtor: Mapped[Debtor] = relationship(lazy="joined", innerjoin=True)
    holds: Mapped[list[HoldRow]] = relationship(lazy="selectin", order_by="HoldRow.id")


class HoldRow(Base):
    """A hold on contact; lifting sets ``lifted_at`` so the history stays (who paused what, when)."""

    __tablename__ = "holds"
    __table_args__ = (
        CheckConstraint(one_of("kind", HOLD_KINDS), name="kind"),
        CheckConstraint(one_of("channel", CHANNELS, nullable=True), name="channel"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    channel: Mapped[str | None] = mapped_column(String(8))
    since: Mapped[datetime]
    until: Mapped[datetime | None]
    lifted_at: Mapped[datetime | None]


class ContactAttempt(Base):
    """One SMS or call, reserved under its dedupe key *before* the provider is called (exactly-once)."""

    __tablename__ = "contact_attempts"
    __table_args__ = (
        CheckConstraint(one_of("channel", CHANNELS), name="channel"),
        CheckConstraint(one_of("state", ATTEMPT_STATES), name="state"),
        CheckConstraint(one_of("audience", AUDIENCES), name="audience"),
        Index("ix_contact_attempts_account_id_created_at", "account_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"))
    channel: Mapped[str] = mapped_column(String(8))
    purpose: Mapped[str] = mapped_column(String(32))
    template: Mapped[str] = mapped_column(String(64))
    to_address: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    provider_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    provider_status: Mapped[str | None] = mapped_column(String(32))
    outcome: Mapped[str | None] = mapped_column(String(16))
    error_code: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # When it went (or may have gone) out: what the frequency caps count, not when it was first planned,
    # which for a deferred-then-retried attempt can be days earlier.
    sent_at: Mapped[datetime | None]
    # Whom it went to: the debtor, or their emergency contact (0004). Caps count each separately.
    audience: Mapped[str] = mapped_column(String(16), default="debtor", server_default="debtor")
    # Which try of the send activity holds the clearance (0006): a stalled earlier try that lost it
    # to a later one must not call the provider.
    cleared_by: Mapped[int | None] = mapped_column(Integer)
    # SHA-256 of the text sent (0006): a crashed send adopts only the provider's record of this text.
    body_digest: Mapped[str | None] = mapped_column(String(64))


class PlanRow(Base):
    """An agreed settlement plan; its schedule is in :class:`InstalmentRow`."""

    __tablename__ = "plans"
    __table_args__ = (CheckConstraint(one_of("status", PLAN_STATUSES), name="status"),)

    plan_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))
    total_minor: Mapped[int] = mapped_column(BigInteger)
    waived_minor: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    agreed_at: Mapped[datetime]
    proposed_by: Mapped[str] = mapped_column(String(64))
    approver: Mapped[str | None] = mapped_column(String(64))
    hardship_evidence: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]

    instalments: Mapped[list[InstalmentRow]] = relationship(lazy="selectin", order_by="InstalmentRow.seq")


class InstalmentRow(Base):
    __tablename__ = "instalments"
    __table_args__ = (
        CheckConstraint(one_of("status", INSTALMENT_STATUSES), name="status"),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
    )

    plan_id: Mapped[str] = mapped_column(ForeignKey("plans.plan_id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    due_date: Mapped[date] = mapped_column(Date)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    paid_minor: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))


class PaymentRow(Base):
    """A payment as the lender reported it; ``reference`` makes a re-delivered payment count once.

    Unique per account (0006): lenders reuse invoice numbers across debtors.
    """

    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        UniqueConstraint("account_id", "reference"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reference: Mapped[str] = mapped_column(String(128))
    received_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(32))


REFUND_STATUSES = ("open", "refunded", "applied")


class RefundRow(Base):
    """Money received beyond what was owed, or after the account closed (0006): an operator refunds
    it to the debtor or applies it. At most one per payment (account and reference)."""

    __tablename__ = "refunds"
    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint(one_of("status", REFUND_STATUSES), name="status"),
        UniqueConstraint("account_id", "reference"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"))
    reference: Mapped[str] = mapped_column(String(128))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(Text)


class RuleVersionRow(Base):
    """The text of one version of a policy or profile file (0006), by ``name@digest``."""

    __tablename__ = "rule_versions"
    __table_args__ = (CheckConstraint(one_of("kind", ("policy", "profile")), name="kind"),)

    version: Mapped[str] = mapped_column(String(100), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class AuditRow(Base):
    """Append-only decision log. No foreign key: the record must outlive the account (retention)."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_account_id_at", "account_id", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    account_id: Mapped[str | None] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    decision: Mapped[str] = mapped_column(String(64))
    rule: Mapped[str | None] = mapped_column(String(128))
    details: Mapped[dict[str, Any]]
    # ``at`` is policy time; the wall time of writing, when it differs (0007: one clock per log).
    wall_at: Mapped[datetime | None]


# ---- negotiation API (issue 5): fee waivers wait here for a supervisor -----------------------------
WAIVER_STATUSES = ("pending", "approved", "rejected")


class WaiverRequestRow(Base):
    """A fee-waiver plan an agent proposed; only a supervisor's approval sends it to the workflow.

    The proposal is kept as JSON (a ``PlanProposal``) so the supervisor approves exactly what the
    agent asked for; the approver's name then goes into the plan itself.
    """

    __tablename__ = "waiver_requests"
    __table_args__ = (CheckConstraint(one_of("status", WAIVER_STATUSES), name="status"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(String(64), index=True)
    proposal: Mapped[dict[str, Any]]
    requested_by: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None]
    plan_id: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)


# ---- field visits and agency placement (issue 7) -------------------------------------------------
VISIT_STATUSES = ("scheduled", "announced", "cancelled", "reported", "escalated", "unassigned")
VISIT_OUTCOMES = ("met_debtor", "not_home", "refused", "promise_to_pay", "plan_requested")
PLACEMENT_STATUSES = ("active", "recalled", "completed", "expired")


class VisitRow(Base):
    """A field visit: the agency it went to, the announced window, and the agency's report.

    ``visit_id`` is the child workflow's own id, so every write about a visit is idempotent on it.
    """

    __tablename__ = "visits"
    __table_args__ = (
        CheckConstraint(one_of("status", VISIT_STATUSES), name="status"),
        CheckConstraint(one_of("outcome", VISIT_OUTCOMES, nullable=True), name="outcome"),
        Index("ix_visits_agency_id_collector_id", "agency_id", "collector_id"),  # /verify looks up by both
    )

    visit_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    agency_id: Mapped[str | None] = mapped_column(String(32), index=True)
    status: Mapped[str] = mapped_column(String(16))
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    report_due: Mapped[datetime]
    reschedules: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str | None] = mapped_column(String(16))
    recording_ref: Mapped[str | None] = mapped_column(String(300))
    notes: Mapped[str | None] = mapped_column(Text)
    cancel_reason: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # The collector the agency sends (0014): its badge ID, set by the agency before the visit; shown to
    # the debtor and answered for on the public /verify page while the visit is open.
    collector_id: Mapped[str | None] = mapped_column(String(32))


class PlacementRow(Base):
    """An account placed with an agency; ``collected_minor`` is what the agency's payments brought in."""

    __tablename__ = "placements"
    __table_args__ = (CheckConstraint(one_of("status", PLACEMENT_STATUSES), name="status"),)

    placement_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    agency_id: Mapped[str] = mapped_column(String(32), index=True)
    status: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))
    placed_balance_minor: Mapped[int] = mapped_column(BigInteger)
    collected_minor: Mapped[int] = mapped_column(BigInteger)
    placed_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(200))


# ---- emergency contact (0004) -------------------------------------------------------------------
class EmergencyContactRow(Base):
    """The third party a debtor named, one per account: asked only how to reach the debtor.

    Kept apart from :class:`ContactPoint` on purpose: nothing that looks up "the debtor's number"
    (dunning, webhooks, inbound STOP) can ever pick this number up by mistake.
    """

    __tablename__ = "emergency_contacts"
    __table_args__ = (CheckConstraint(one_of("status", CONTACT_STATUSES), name="status"),)

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str] = mapped_column(String(32), doc="E.164")
    status: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime]


CHECKOUT_PROVIDERS = ("stripe", "simulator")
CHECKOUT_PURPOSES = ("balance", "instalment", "amount")


class CheckoutRow(Base):
    """A payment the debtor started from their page (0012): what they chose to pay, at which provider,
    and, once the provider's signed webhook said it was paid, the provider's payment ID."""

    __tablename__ = "checkouts"
    __table_args__ = (
        CheckConstraint(one_of("provider", CHECKOUT_PROVIDERS), name="provider"),
        CheckConstraint(one_of("purpose", CHECKOUT_PURPOSES), name="purpose"),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # ours, in the return address
    account_id: Mapped[str] = mapped_column(String(64), index=True)
    provider: Mapped[str] = mapped_column(String(16))  # stripe | simulator
    provider_session_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    purpose: Mapped[str] = mapped_column(String(16))  # balance | instalment | amount
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    payment_id: Mapped[str | None] = mapped_column(String(255))
    paid_minor: Mapped[int | None] = mapped_column(BigInteger)  # what the provider says was taken


# The tables split out by concern, re-exported: ``from store.models import CaseRow`` still works, and
# importing this module registers every table on ``Base.metadata`` (what Alembic and the tests compare).
# They come last because those modules build on ``Base``.
from store.tables_cases import CASE_KINDS, CASE_STATUSES, CaseEventRow, CaseRow  # noqa: E402, F401
from store.tables_events import (  # noqa: E402, F401
    DELIVERY_STATUSES,
    EVENT_TYPES,
    SUBSCRIPTION_STATUSES,
    EventAttemptRow,
    EventDeliveryRow,
    EventOutboxRow,
    EventStreamRow,
    EventSubscriptionRow,
)
from store.tables_sending import SenderPacingRow, SenderSendRow, SmsOptOutRow  # noqa: E402, F401
from store.tables_sessions import (  # noqa: E402, F401
    CODE_PURPOSES,
    CONFIRMED_VIA,
    NUMBER_SOURCES,
    NUMBER_STATUSES,
    ConsoleSessionRow,
    ContactChangeRow,
    DebtorSessionRow,
    LinkRevocationRow,
    SigninCodeRow,
)
