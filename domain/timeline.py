"""The answer to "how long will they chase me?": what happens when, if nothing changes.

Built by running the very planning functions the workflows run, forward on a copy of the state,
so the timeline cannot drift from the behaviour.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from domain.accounts import AccountTerms, Carried, Channel, ContactOutcome, LedgerEntry, Mode, Stage
from domain.cadence import day_start, dpd_at, gate_state, next_action
from domain.charge_view import ChargesSummary
from domain.gate import Allow, Defer, PlannedContact, Purpose, decide
from domain.money import format_minor
from domain.numbers import NumberStatus
from domain.plans import AgreedPlan
from domain.policy import Policy
from domain.profiles import Profile

MAX_ENTRIES = 400


class TimelineEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    at: datetime
    dpd: int
    kind: str  # contact / stage / chargeoff / reminder / instalment_due / grace_ends / plan_ends /
    # grace_period_ends / line_freeze / report_possible (issue 15)
    description: str
    channel: str | None = None
    rule: str | None = None
    template: str | None = None  # for a contact: what it is about (the debtor's page says it in words)


class Timeline(BaseModel):
    mode: Mode
    entries: list[TimelineEntry]
    chargeoff_date: date | None = None
    grace_until: date | None = Field(
        default=None, description="The last day of the grace period (nothing counts as late before)"
    )
    plan_end_date: date | None = None
    contact_stops_when: list[str] = Field(default_factory=list)
    if_instalment_missed: str | None = None


STOPS_CONTACT = [
    "paying the balance in full (one receipt, then nothing)",
    "agreeing a plan: dunning stops before the agreement is confirmed; only reminders before a due date follow",
    "replying STOP to a text (texts stop until you reply START)",
    "filing a dispute or complaint (contact pauses until it is resolved)",
    "asking us to cease contact, or naming an attorney",
]


def project_dunning(
    terms: AccountTerms, carried: Carried, policy: Policy, profile: Profile, now: datetime
) -> Timeline:
    sim = carried.model_copy(deep=True)
    ledger = list(sim.ledger)
    entries: list[TimelineEntry] = []
    cursor = now
    for _ in range(MAX_ENTRIES):
        action = next_action(terms, sim, policy, profile, cursor, ledger=ledger)
        sim.done_steps.extend(action.skipped)
        if action.kind == "chargeoff":
            entries.append(
                TimelineEntry(
                    at=max(action.at, cursor),
                    dpd=action.dpd,
                    kind="chargeoff",
                    description=f"Charge-off at {action.dpd} days past due; the account is placed and collection by us ends",
                )
            )
            break
        if action.kind == "stage":
            entries.append(
                TimelineEntry(
                    at=action.at,
                    dpd=action.dpd,
                    kind="stage",
                    description=f"Stage becomes {action.stage.value}",
                )
            )
            cursor = action.at
            continue
        if action.kind == "hold_ends":
            entries.append(
                TimelineEntry(at=action.at, dpd=action.dpd, kind="hold_ends", description="Pause ends")
            )
            sim.holds = [h for h in sim.holds if h.until is None or h.until > action.at]
            cursor = action.at
            continue
        assert action.step is not None
        step = action.step
        entries.append(
            TimelineEntry(
                at=action.at,
                dpd=dpd_at(action.at, terms),
                kind="contact",
                channel=step.channel.value,
                description=f"{step.channel.value.upper()} {step.template.replace('_', ' ')}",
                rule=action.rule,
                template=step.template,
            )
        )
        sim.done_steps.append(step.key)
        ledger.append(LedgerEntry(at=action.at, channel=step.channel, outcome=ContactOutcome.SENT))
        cursor = action.at
    chargeoff_dpd = policy.chargeoff_for(terms.product)
    grace = policy.grace_for(terms.product)
    grace_ends = day_start(terms, grace + 1)
    entries.extend(_consequences(terms, carried, policy, profile, now))
    if grace and now < grace_ends:
        entries.append(
            TimelineEntry(
                at=grace_ends,
                dpd=grace + 1,
                kind="grace_period_ends",
                description=(
                    f"Grace period ends: {grace} days after the due date nothing counts as late; "
                    "from this day it does"
                ),
            )
        )
        entries.sort(key=lambda e: e.at)
    return Timeline(
        mode=Mode.DUNNING,
        entries=entries,
        chargeoff_date=day_start(terms, chargeoff_dpd).date(),
        grace_until=(terms.due_date + timedelta(days=grace)) if grace else None,
        contact_stops_when=STOPS_CONTACT,
        if_instalment_missed=None,
    )


def _consequences(
    terms: AccountTerms, carried: Carried, policy: Policy, profile: Profile, now: datetime
) -> list[TimelineEntry]:
    """The credit consequences still ahead (issue 15): the line frozen when the early stage begins,
    and the first day the account may be reported once its notice has gone."""
    out = []
    freeze = policy.early_start(terms.product)
    freeze_at = day_start(terms, freeze)
    if freeze_at > now and carried.stage in (None, Stage.PRE_DUE):
        out.append(
            TimelineEntry(
                at=freeze_at,
                dpd=freeze,
                kind="line_freeze",
                description="The credit line is frozen if the payment is still late",
            )
        )
    law, furnishing = profile.credit_reporting, policy.credit_reporting
    if law is not None and furnishing is not None:
        notice_key = f"{furnishing.notice_dpd}:sms:{law.notice_template}"
        if notice_key not in carried.done_steps:
            notice_day = max(terms.due_date + timedelta(days=furnishing.notice_dpd), now.date())
            first = max(
                notice_day + timedelta(days=law.waiting_days),
                terms.due_date + timedelta(days=law.min_days_past_due),
            )
            at = datetime.combine(first, time(0), tzinfo=ZoneInfo(terms.zones[0]))
            out.append(
                TimelineEntry(
                    at=at,
                    dpd=(first - terms.due_date).days,
                    kind="report_possible",
                    description="The account may be reported to a credit bureau if still unpaid",
                )
            )
    return out


def instalment_deadline(terms: AccountTerms, due: date, grace_days: int) -> datetime:
    """End of the grace period: local midnight after ``due + grace_days``."""
    return datetime.combine(due + timedelta(days=grace_days + 1), time(0), tzinfo=ZoneInfo(terms.zones[0]))


def reminder_times(terms: AccountTerms, due: date, policy: Policy) -> list[tuple[int, datetime]]:
    """Courtesy reminders strictly before a due date, at the policy's send time."""
    zone = ZoneInfo(terms.zones[0])
    out = []
    for days_before in sorted(set(policy.settlement.reminder_days_before), reverse=True):
        if days_before <= 0:
            continue
        out.append(
            (days_before, datetime.combine(due - timedelta(days=days_before), policy.send_time, tzinfo=zone))
        )
    return out


def lawful_time(
    terms: AccountTerms, carried: Carried, profile: Profile, at: datetime, now: datetime
) -> datetime | None:
    """When a plan reminder planned for ``at`` may go out (None: it may not)."""
    contact = PlannedContact(
        channel=Channel.SMS, purpose=Purpose.PLAN_REMINDER, template="plan_reminder", at=at
    )
    verdict = decide(contact, gate_state(terms, carried, Mode.SETTLEMENT), carried.ledger, now, profile)
    if isinstance(verdict, Allow):
        return now
    if isinstance(verdict, Defer):
        return verdict.until
    return None


def project_plan(
    terms: AccountTerms,
    carried: Carried,
    plan: AgreedPlan,
    paid_in_plan: int,
    policy: Policy,
    profile: Profile,
    now: datetime,
) -> Timeline:
    entries: list[TimelineEntry] = []
    cumulative = 0
    for inst in plan.instalments:
        cumulative += inst.amount
        if paid_in_plan >= cumulative:
            continue
        amount = format_minor(inst.amount, plan.currency)
        for days_before, at in reminder_times(terms, inst.due_date, policy):
            if at <= now:
                continue
            when = lawful_time(terms, carried, profile, at, at)
            if when is not None and when.date() < inst.due_date:
                entries.append(
                    TimelineEntry(
                        at=when,
                        dpd=dpd_at(when, terms),
                        kind="reminder",
                        channel="sms",
                        template="plan_reminder",
                        description=f"Reminder: instalment {inst.seq} of {amount} due in {days_before} day(s)",
                    )
                )
        due_at = datetime.combine(inst.due_date, time(0), tzinfo=ZoneInfo(terms.zones[0]))
        entries.append(
            TimelineEntry(
                at=due_at,
                dpd=dpd_at(due_at, terms),
                kind="instalment_due",
                description=f"Instalment {inst.seq}/{len(plan.instalments)} of {amount} due",
            )
        )
        deadline = instalment_deadline(terms, inst.due_date, policy.settlement.grace_days)
        entries.append(
            TimelineEntry(
                at=deadline,
                dpd=dpd_at(deadline, terms),
                kind="grace_ends",
                description=f"Grace period for instalment {inst.seq} ends; unpaid by then, the plan breaks",
            )
        )
    end = plan.end_date
    end_at = instalment_deadline(terms, end, policy.settlement.grace_days)
    entries.append(
        TimelineEntry(
            at=end_at,
            dpd=dpd_at(end_at, terms),
            kind="plan_ends",
            description="Plan complete if every instalment is paid: the account closes with one confirmation",
        )
    )
    grace = policy.settlement.grace_days
    return Timeline(
        mode=Mode.SETTLEMENT,
        entries=sorted(entries, key=lambda e: e.at),
        plan_end_date=end,
        contact_stops_when=STOPS_CONTACT[2:],
        if_instalment_missed=(
            f"An instalment unpaid {grace} day(s) after its due date breaks the plan; "
            "the account then returns to the regular collection schedule at its current stage."
        ),
    )


class ContactView(BaseModel):
    at: datetime
    channel: str
    template: str
    outcome: str


class AccountStatus(BaseModel):
    """The ``status`` query: everything an agent or the debtor's page needs at a glance."""

    account_id: str
    mode: Mode
    stage: Stage
    dpd: int
    currency: str
    balance: int
    paid_total: int
    holds: list[str] = Field(description="Active holds: kind, or kind:channel for a single medium")
    complaint_due: datetime | None = Field(default=None, description="Open complaint's decision deadline")
    complaint_escalated: bool = False
    opted_out: list[str]
    unreachable: list[str]
    contact_lost: bool
    next_action: str | None
    next_action_at: datetime | None
    last_contacts: list[ContactView]
    plan: AgreedPlan | None = None
    plan_paid: int = 0
    masked_phone: str = "-"
    policy_now: datetime
    closing: str | None = Field(
        default=None, description="The run has begun to close (charged_off, paid …): it takes no new plan"
    )
    rules_version: str | None = Field(default=None, description="The policy and profile versions it runs")
    charges: ChargesSummary | None = Field(
        default=None, description="Penalty interest and late fees added so far; None: the policy has none"
    )
    voice_paused_until: datetime | None = Field(
        default=None, description="Voice paused by the campaign's abandoned-call governor until about then"
    )
    number: NumberStatus | None = Field(
        default=None,
        description="The number on file and how it was found and confirmed, and a new one waiting for its "
        "code (from the application database; the workflow leaves it empty)",
    )
