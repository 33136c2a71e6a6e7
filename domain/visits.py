"""Field visits: who gets one, when, and what an agency may report afterwards.

A home visit is the most intrusive contact there is, so it is the last resort of the late stage and
every part of the decision is a pure function here, shared by the workflow (which decides and
schedules), the agency API (which validates a report) and the tests:

* :func:`risk_score` reads the account's own history (no conversation, failed channels, broken
  plans, no payment) so an account that is simply quiet is not treated like one that cannot be reached;
* :func:`eligibility` applies the policy's thresholds (stage, DPD, balance, failed contacts, score) and
  the frequency rule (at most one visit per ``min_days_between`` days per debt, stricter per region);
* :func:`visit_slot` picks a day ``notice_days`` ahead and a window inside the profile's contact
  hours, so a visit keeps quiet hours like every other contact.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from domain.accounts import Carried, Channel, ContactOutcome, Stage
from domain.profiles import Profile


class VisitPolicy(BaseModel):
    """The ``[visits]`` table of a collection policy."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    from_dpd: int = Field(default=91, ge=1, description="No visit before this many days past due")
    stages: list[Stage] = Field(default_factory=lambda: [Stage.LATE])
    min_balance: dict[str, int] = Field(
        default_factory=dict, description="Per currency, minor units; a currency not listed gets no visit"
    )
    min_failed_contacts: int = Field(
        default=2, ge=0, description="Contacts without a conversation before a visit is worth it"
    )
    min_risk_score: int = Field(default=50, ge=0, le=100)
    min_days_between: int = Field(default=30, ge=30, description="At most one visit per this many days")
    stricter_days_between: dict[str, int] = Field(
        default_factory=dict, description="Per region or profile name (e.g. US-MA), only ever stricter"
    )
    notice_days: int = Field(default=3, ge=1, description="The debtor is told this many days ahead")
    window_start: time = time(10, 0)
    window_hours: int = Field(default=3, ge=1, le=8)
    report_days: int = Field(default=2, ge=1, description="The agency reports within this many days")
    max_reschedules: int = Field(default=1, ge=0)
    reschedule_within_days: int = Field(default=14, ge=1)

    @model_validator(mode="after")
    def _stricter(self) -> VisitPolicy:
        for key, days in self.stricter_days_between.items():
            if days < self.min_days_between:
                raise ValueError(f"stricter_days_between.{key} ({days}) is looser than min_days_between")
        return self


class PlacementPolicy(BaseModel):
    """The ``[placement]`` table: when a charged-off account goes to an agency, and for how long."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    at: Stage = Field(default=Stage.CHARGED_OFF, description="The placement point")
    min_balance: dict[str, int] = Field(
        default_factory=dict, description="Per currency, minor units; below it the debt is not placed"
    )
    max_days: int = Field(default=365, ge=30, description="Recalled and written off after this long")

    def places_at_charge_off(self, balance: int, currency: str) -> bool:
        """Whether a debt charged off with ``balance`` goes to an agency (the workflow and the lab)."""
        minimum = self.min_balance.get(currency)
        return self.enabled and self.at == Stage.CHARGED_OFF and minimum is not None and balance >= minimum


class VisitOutcome(StrEnum):
    MET_DEBTOR = "met_debtor"
    NOT_HOME = "not_home"
    REFUSED = "refused"
    PROMISE_TO_PAY = "promise_to_pay"
    PLAN_REQUESTED = "plan_requested"


class VisitReport(BaseModel):
    """What an agency reports after a visit. The recording reference is required: no recording, no report."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    outcome: VisitOutcome
    recording_ref: str = Field(
        min_length=3,
        max_length=300,
        description="Reference of the visit's audio/video recording (required for every visit)",
    )
    notes: str = Field(default="", max_length=2000)
    promise_amount: int | None = Field(default=None, gt=0, description="Minor units")
    promise_date: date | None = None
    agency_id: str = ""

    @field_validator("recording_ref")
    @classmethod
    def _ref(cls, value: str) -> str:
        value = value.strip()
        if len(value) < 3 or any(c.isspace() for c in value):
            raise ValueError("must be the recording's reference (a URI or id, no spaces)")
        return value

    @model_validator(mode="after")
    def _promise(self) -> VisitReport:
        if self.outcome == VisitOutcome.PROMISE_TO_PAY and (
            self.promise_amount is None or self.promise_date is None
        ):
            raise ValueError("promise_to_pay needs promise_amount and promise_date")
        return self


class Eligibility(BaseModel):
    model_config = ConfigDict(frozen=True)

    eligible: bool
    reason: str
    score: int


def failed_contacts(carried: Carried) -> int:
    """Recent contacts that reached nobody: no conversation, undelivered, unanswered, silent."""
    failed = {
        ContactOutcome.UNDELIVERABLE,
        ContactOutcome.NO_ANSWER,
        ContactOutcome.BUSY,
        ContactOutcome.FAILED,
        ContactOutcome.SILENT,
        ContactOutcome.VOICEMAIL,
        ContactOutcome.DELIVERED,  # a text that was delivered and never answered
    }
    return sum(1 for c in carried.last_contacts if c.outcome in failed)


def risk_score(carried: Carried, dpd: int, opening_balance: int) -> int:
    """0-100 from the account's history: higher means the debtor is harder to reach and less likely to pay.

    The parts are additive so an operator can read why: days past due (up to 30), no conversation in
    the recent contacts (25), failed channels (10 each), broken plans (10 each, up to 20), nothing paid
    (15). A debtor who talks to us or pays scores low and is not visited.
    """
    score = min(max(dpd, 0) * 30 // 180, 30)
    if not any(c.outcome == ContactOutcome.CONVERSATION for c in carried.last_contacts):
        score += 25
    score += 10 * len({*carried.unreachable, *carried.opted_out} & set(Channel))
    score += min(carried.broken_plans * 10, 20)
    if carried.paid_total <= 0:
        score += 15
    elif opening_balance > 0 and carried.paid_total * 4 < opening_balance:
        score += 5
    return min(score, 100)


def days_between(policy: VisitPolicy, region: str | None, profile_name: str) -> int:
    """The visit frequency rule for this debtor: the policy's, or a stricter regional one."""
    keys = [k for k in (region, profile_name) if k]
    return max([policy.min_days_between, *(policy.stricter_days_between.get(k, 0) for k in keys)])


def eligibility(
    policy: VisitPolicy,
    *,
    stage: Stage,
    dpd: int,
    balance: int,
    currency: str,
    carried: Carried,
    opening_balance: int,
    last_visit_at: datetime | None,
    now: datetime,
    region: str | None,
    profile_name: str,
) -> Eligibility:
    """May a field visit be arranged now? The first unmet condition is the reason."""
    score = risk_score(carried, dpd, opening_balance)

    def no(reason: str) -> Eligibility:
        return Eligibility(eligible=False, reason=reason, score=score)

    if not policy.enabled:
        return no("visits.disabled")
    if stage not in policy.stages:
        return no("visits.stage")
    if dpd < policy.from_dpd:
        return no("visits.dpd")
    minimum = policy.min_balance.get(currency.upper())
    if minimum is None or balance < minimum:
        return no("visits.balance")
    if carried.holds and any(h.until is None or h.until > now for h in carried.holds):
        return no("visits.hold")
    if failed_contacts(carried) < policy.min_failed_contacts:
        return no("visits.channels_not_failed")
    if score < policy.min_risk_score:
        return no("visits.risk_score")
    if last_visit_at is not None and now < last_visit_at + timedelta(
        days=days_between(policy, region, profile_name)
    ):
        return no("visits.frequency")
    return Eligibility(eligible=True, reason="ok", score=score)


class VisitSlot(BaseModel):
    """When the agency may ring the bell: a local date and a window, as aware instants."""

    model_config = ConfigDict(frozen=True)

    day: date
    start: datetime
    end: datetime


def slot_on(day: date, zone: str, policy: VisitPolicy, profile: Profile) -> VisitSlot:
    """The visit window on ``day``, clipped to the profile's contact hours (quiet hours apply to visits)."""
    tz = ZoneInfo(zone)
    start_t = max(policy.window_start, profile.contact_start)
    start = datetime.combine(day, start_t, tzinfo=tz)
    end = start + timedelta(hours=policy.window_hours)
    latest = datetime.combine(day, profile.contact_end, tzinfo=tz)
    if end > latest:
        end = latest
        start = min(start, end - timedelta(hours=1))
    return VisitSlot(day=day, start=start, end=end)


def visit_slot(now: datetime, zone: str, policy: VisitPolicy, profile: Profile) -> VisitSlot:
    """The first weekday at least ``notice_days`` ahead (in the debtor's calendar)."""
    day = now.astimezone(ZoneInfo(zone)).date() + timedelta(days=policy.notice_days)
    while day.weekday() >= 5:  # no weekend visits
        day += timedelta(days=1)
    return slot_on(day, zone, policy, profile)


def check_reschedule(
    proposed: date, *, now: datetime, zone: str, policy: VisitPolicy, reschedules: int
) -> str | None:
    """Why a debtor's proposed day cannot be taken, or None when it can."""
    today = now.astimezone(ZoneInfo(zone)).date()
    if reschedules >= policy.max_reschedules:
        return "visits.reschedule_limit"
    if proposed <= today:
        return "visits.reschedule_not_in_future"
    if proposed > today + timedelta(days=policy.reschedule_within_days):
        return "visits.reschedule_too_far"
    if proposed.weekday() >= 5:
        return "visits.reschedule_weekend"
    return None


# ---- contracts between the visit workflow and its activities (names and payloads only) ------------
VISIT_ASSIGN = "visit_assign"
VISIT_UPDATE = "visit_update"


class AssignRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    visit_id: str
    account_id: str
    region: str | None
    country: str
    window_start: datetime
    window_end: datetime
    report_due: datetime
    at: datetime


class Assigned(BaseModel):
    model_config = ConfigDict(frozen=True)

    agency_id: str | None
    agency_name: str = ""
    agency_number: str = ""
    rule: str | None = None  # why no agency (visits.no_agency_capacity, agencies.licence_expired)


class VisitUpdate(BaseModel):
    """One write about a visit and its audit line (status change, report, reschedule, escalation)."""

    model_config = ConfigDict(frozen=True)

    visit_id: str
    account_id: str
    at: datetime
    action: str
    detail: str = ""
    rule: str | None = None
    actor: str = "workflow"
    status: str | None = None
    outcome: VisitOutcome | None = None
    recording_ref: str | None = None
    notes: str | None = None
    cancel_reason: str | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None
    report_due: datetime | None = None
    reschedules: int | None = None


class RescheduleRequest(BaseModel):
    """The debtor proposes another day for the visit."""

    model_config = ConfigDict(frozen=True)

    day: date
    actor: str = "debtor"


class VisitCancel(BaseModel):
    model_config = ConfigDict(frozen=True)

    reason: str = Field(min_length=1, max_length=64)


class VisitResult(BaseModel):
    """How a visit ended, for the account workflow: reported (with the report), cancelled, escalated …"""

    model_config = ConfigDict(frozen=True)

    visit_id: str
    status: str
    agency_id: str | None = None
    report: VisitReport | None = None
    reason: str = ""
