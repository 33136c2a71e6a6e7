"""Settlement plans: the options of the seed documents, their maths and their policy checks.

Every amount is integer minor units and every schedule sums exactly to the agreed total, so a
debtor who pays each instalment to the cent always finishes with zero, never with a stray cent.
"""

from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from domain.policy import Policy


class PlanKind(StrEnum):
    DEFERRAL = "deferral"  # 延期还款: pay the whole amount later, at most 13 months after becoming overdue
    REINSTALMENT = "reinstalment"  # 二次分期: the overdue amount re-split into several instalments
    FEE_WAIVER = "fee_waiver"  # 减免: penalty fees waived on hardship evidence, with an approver
    PROMISE_TO_PAY = "promise_to_pay"  # a date and an amount


class Instalment(BaseModel):
    model_config = ConfigDict(frozen=True)

    seq: int = Field(ge=1)
    due_date: date
    amount: int = Field(description="Minor units")


class PlanProposal(BaseModel):
    """What an agent, the debtor's page or the CLI proposes; validated before anything stops."""

    model_config = ConfigDict(frozen=True)

    kind: PlanKind
    first_due: date
    periods: int = Field(default=1, ge=1)
    period_days: int = Field(default=30, ge=1)
    amount: int | None = Field(
        default=None, description="Total to pay (minor units); default: balance less waiver"
    )
    waiver: int = Field(default=0, ge=0, description="Penalty fees waived (minor units)")
    hardship_evidence: str | None = None
    approver: str | None = None
    instalments: list[Instalment] | None = Field(
        default=None, description="An explicit schedule, if not even"
    )
    proposed_by: str = "agent"


class Violation(BaseModel):
    model_config = ConfigDict(frozen=True)

    rule: str
    message: str


class AgreedPlan(BaseModel):
    model_config = ConfigDict(frozen=True)

    plan_id: str
    kind: PlanKind
    currency: str
    total: int
    waived: int = 0
    instalments: list[Instalment]
    agreed_at: datetime
    proposed_by: str
    approver: str | None = None
    hardship_evidence: str | None = None

    @property
    def end_date(self) -> date:
        return self.instalments[-1].due_date


def add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def split_evenly(total: int, periods: int) -> list[int]:
    """Split ``total`` into ``periods`` amounts that differ by at most one minor unit and sum exactly."""
    if periods < 1:
        raise ValueError("periods must be at least 1")
    if total < 0:
        raise ValueError("total must not be negative")
    base, remainder = divmod(total, periods)
    return [base + (1 if i < remainder else 0) for i in range(periods)]


def schedule(proposal: PlanProposal, total: int) -> list[Instalment]:
    if proposal.instalments is not None:
        return list(proposal.instalments)
    amounts = split_evenly(total, proposal.periods)
    return [
        Instalment(
            seq=i + 1, due_date=proposal.first_due + timedelta(days=i * proposal.period_days), amount=a
        )
        for i, a in enumerate(amounts)
    ]


def plan_total(proposal: PlanProposal, balance: int) -> int:
    return proposal.amount if proposal.amount is not None else balance - proposal.waiver


def validate_proposal(
    proposal: PlanProposal,
    *,
    balance: int,
    fees: int,
    overdue_since: date,
    today: date,
    policy: Policy,
) -> list[Violation]:
    """Every policy rule the proposal breaks (empty when it may be agreed)."""
    rules = policy.settlement
    out: list[Violation] = []

    def bad(rule: str, message: str) -> None:
        out.append(Violation(rule=rule, message=message))

    total = plan_total(proposal, balance)
    if proposal.waiver > fees * rules.max_waiver_share:
        bad("waiver.exceeds_fees", f"waiver {proposal.waiver} is more than the waivable fees {fees}")
    if proposal.waiver and proposal.kind != PlanKind.FEE_WAIVER:
        bad("waiver.kind", "only a fee_waiver plan may waive fees")
    if total <= 0:
        bad("plan.total_not_positive", "the plan must collect a positive amount")
    if proposal.kind != PlanKind.PROMISE_TO_PAY and total != balance - proposal.waiver:
        bad(
            "plan.total_mismatch",
            f"plan total {total} must equal the balance {balance} less the waiver {proposal.waiver}",
        )
    if proposal.kind == PlanKind.PROMISE_TO_PAY and total > balance:
        bad("promise.exceeds_balance", f"promised {total} is more than the balance {balance}")

    items = schedule(proposal, max(total, 0)) if total > 0 else []
    if proposal.instalments is not None:
        if sum(i.amount for i in items) != total:
            bad(
                "plan.sum_mismatch",
                f"instalments sum to {sum(i.amount for i in items)}, not the total {total}",
            )
        if any(i.amount <= 0 for i in items):
            bad("plan.non_positive_instalment", "every instalment must be a positive amount")
        dates = [i.due_date for i in items]
        if dates != sorted(dates) or len(set(dates)) != len(dates):
            bad("plan.dates_not_ascending", "instalment due dates must be strictly ascending")
        if [i.seq for i in items] != list(range(1, len(items) + 1)):
            bad("plan.sequence", "instalments must be numbered 1, 2, 3 …")
    if not items:
        return out
    if items[0].due_date < today:
        bad("plan.first_due_in_past", f"first due date {items[0].due_date} is before today {today}")
    if len(items) > rules.max_periods:
        bad("plan.max_periods", f"{len(items)} instalments exceed the policy maximum {rules.max_periods}")
    if (
        proposal.instalments is None
        and proposal.periods > 1
        and not (rules.min_period_days <= proposal.period_days <= rules.max_period_days)
    ):
        bad(
            "plan.period_days",
            f"period of {proposal.period_days} days is outside {rules.min_period_days}-{rules.max_period_days}",
        )
    last = items[-1].due_date
    if last > add_months(overdue_since, 60):
        bad("plan.max_length", "a plan may not run more than 5 years (60 periods) from the overdue date")

    if proposal.kind == PlanKind.DEFERRAL:
        limit = add_months(overdue_since, rules.max_deferral_months)
        if len(items) != 1:
            bad("deferral.single_payment", "a deferral is one payment of the whole amount")
        if last > limit:
            bad(
                "deferral.max_months",
                f"deferral to {last} is beyond {rules.max_deferral_months} months after becoming overdue ({limit})",
            )
    elif proposal.kind == PlanKind.REINSTALMENT:
        if len(items) < 2:
            bad("reinstalment.min_periods", "a re-instalment needs at least 2 instalments")
    elif proposal.kind == PlanKind.FEE_WAIVER:
        if proposal.waiver <= 0:
            bad("waiver.amount", "a fee waiver must waive a positive amount")
        if rules.waiver_requires_evidence and not (proposal.hardship_evidence or "").strip():
            bad(
                "waiver.requires_evidence",
                "a fee waiver needs hardship evidence (unemployment, medical certificate)",
            )
        if rules.waiver_requires_approver and not (proposal.approver or "").strip():
            bad("waiver.requires_approver", "a fee waiver needs a supervisor's approval")
    elif proposal.kind == PlanKind.PROMISE_TO_PAY:
        if len(items) != 1:
            bad("promise.single_payment", "a promise to pay is one amount on one date")
        if last > today + timedelta(days=rules.promise_max_days):
            bad("promise.too_far", f"a promise may be at most {rules.promise_max_days} days ahead")
    return out


class PlanRejected(ValueError):
    """Raised with every broken rule; the API turns it into 422 naming the rules."""

    def __init__(self, violations: list[Violation]):
        self.violations = violations
        super().__init__("; ".join(f"{v.rule}: {v.message}" for v in violations))


def agree(
    proposal: PlanProposal,
    *,
    plan_id: str,
    currency: str,
    balance: int,
    fees: int,
    overdue_since: date,
    agreed_at: datetime,
    today: date,
    policy: Policy,
) -> AgreedPlan:
    violations = validate_proposal(
        proposal, balance=balance, fees=fees, overdue_since=overdue_since, today=today, policy=policy
    )
    if violations:
        raise PlanRejected(violations)
    total = plan_total(proposal, balance)
    return AgreedPlan(
        plan_id=plan_id,
        kind=proposal.kind,
        currency=currency,
        total=total,
        waived=proposal.waiver,
        instalments=schedule(proposal, total),
        agreed_at=agreed_at,
        proposed_by=proposal.proposed_by,
        approver=proposal.approver,
        hardship_evidence=proposal.hardship_evidence,
    )


def next_instalment(plan: AgreedPlan, paid: int) -> tuple[Instalment, int] | None:
    """The first instalment not yet covered by ``paid`` and what is still due on it (minor units).

    Payments count towards the schedule in order, as the settlement run counts them, so a part payment
    leaves the rest of the same instalment due; None once the whole plan is paid.
    """
    covered = 0
    for instalment in plan.instalments:
        covered += instalment.amount
        if covered > paid:
            return instalment, min(instalment.amount, covered - paid)
    return None
