"""Cases: every request a debtor (or someone for them) makes becomes a case with an owner and a deadline.

Seed complaints 001, 003 and 004 are about requests that went nowhere. A case is the unit a person owns:
a complaint, a dispute, a plan request, a free-text reply to one of our texts, a reply from an emergency
contact. Its deadline comes from the jurisdiction's response tiers (profile data, each with its source),
and before the deadline it is first a reminder to its owner, then an escalation to a supervisor.

Pure: the service, the case workflow, the console and the tests compute the same dates.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator


class CaseKind(StrEnum):
    COMPLAINT = "complaint"
    DISPUTE = "dispute"
    PLAN_REQUEST = "plan_request"
    INBOUND_TEXT = "inbound_text"  # a reply to our texts that is not a keyword
    EMERGENCY_REPLY = (
        "emergency_reply"  # a reply from the debtor's emergency contact: a lead, never used as is
    )


class CaseStatus(StrEnum):
    OPEN = "open"
    ESCALATED = "escalated"  # passed to a supervisor before its deadline
    ANSWERED = "answered"  # decided or replied to; the debtor was told


#: Who works a case when nobody has claimed it, and who gets it on escalation.
AGENTS, SUPERVISORS = "agents", "supervisors"
OPEN_STATUSES = (CaseStatus.OPEN, CaseStatus.ESCALATED)


class ResponseTier(BaseModel):
    """How long a kind of case may wait for its answer: calendar days or business days (Monday to
    Friday in the debtor's calendar; public holidays are not modelled), and when its owner is reminded
    and a supervisor takes over, as fractions of that time."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    days: int | None = Field(default=None, ge=1, description="Calendar days")
    business_days: int | None = Field(default=None, ge=1, description="Monday to Friday")
    remind_at: float = Field(
        default=0.5, gt=0, lt=1, description="Share of the time after which the owner is reminded"
    )
    escalate_at: float = Field(default=0.8, gt=0, lt=1, description="Share after which a supervisor takes it")
    source: str = ""

    @model_validator(mode="after")
    def _one_measure(self) -> ResponseTier:
        if (self.days is None) == (self.business_days is None):
            raise ValueError("days or business_days: give exactly one")
        if self.escalate_at <= self.remind_at:
            raise ValueError("escalate_at: must come after remind_at")
        return self


class ResponseTiers(BaseModel):
    """Per kind of case, the profile's tier (``[response_tiers.<kind>]``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    complaint: ResponseTier = ResponseTier(days=15, source="CFPB: companies respond within 15 days")
    dispute: ResponseTier = ResponseTier(
        days=30, source="internal: collection waits until the findings are sent"
    )
    plan_request: ResponseTier = ResponseTier(
        business_days=2, source="internal: a plan request is answered within 2 business days"
    )
    inbound_text: ResponseTier = ResponseTier(
        business_days=1, source="internal: a reply is answered the next business day"
    )
    emergency_reply: ResponseTier = ResponseTier(
        business_days=1, source="internal: a lead is checked the next business day"
    )

    def of(self, kind: CaseKind) -> ResponseTier:
        return getattr(self, kind.value)  # type: ignore[no-any-return]


class Deadlines(BaseModel):
    model_config = ConfigDict(frozen=True)

    remind_at: datetime
    escalate_at: datetime
    due_at: datetime


def add_business_days(start: date, n: int) -> date:
    """``n`` business days after ``start`` (Saturday and Sunday skipped)."""
    day = start
    while n > 0:
        day += timedelta(days=1)
        if day.weekday() < 5:
            n -= 1
    return day


def deadlines(kind: CaseKind, opened_at: datetime, tiers: ResponseTiers, zone: str) -> Deadlines:
    """When the owner is reminded, when a supervisor takes over, and when the answer is due.

    A calendar-day tier is due that many days later at the same moment; a business-day tier at the end
    (17:00 local) of the n-th business day after the one it was opened on, so a request made on a
    Friday evening is not due on Sunday.
    """
    tier = tiers.of(kind)
    if tier.days is not None:
        due = opened_at + timedelta(days=tier.days)
    else:
        assert tier.business_days is not None
        local = opened_at.astimezone(ZoneInfo(zone))
        due_day = add_business_days(local.date(), tier.business_days)
        due = datetime.combine(due_day, time(17, 0), tzinfo=ZoneInfo(zone))
    span = due - opened_at
    return Deadlines(
        remind_at=opened_at + span * tier.remind_at,
        escalate_at=opened_at + span * tier.escalate_at,
        due_at=due,
    )


def case_number(sequence: int) -> str:
    """What the debtor is told and an agent searches for: ``C-1042``."""
    return f"C-{sequence}"


# ---- the case workflow's messages (workflows/case.py, activities/cases.py) -------------------------
CASE_STEP = "case_step"


class CaseInput(BaseModel):
    """What a case's workflow needs: which case, its kind, the tiers and the calendar its deadlines use."""

    model_config = ConfigDict(frozen=True)

    case_id: int
    kind: CaseKind
    account_id: str | None = None
    zone: str = "UTC"
    tiers: ResponseTiers = ResponseTiers()


class CaseStep(BaseModel):
    """One step of a case's life, done once by the activity: its deadlines, a reminder, an escalation,
    the deadline passing."""

    model_config = ConfigDict(frozen=True)

    case_id: int
    step: str  # deadlines | remind | escalate | overdue
    at: datetime
    deadlines: Deadlines | None = None


def case_workflow_id(number: str) -> str:
    return f"case-{number}"
