"""What the lab's debtors do after a contact reaches them, and what the account's run makes of it.

:class:`lab.debtors.DebtorModel` decides (the same draws the demo's debtors make); this applies the
decision the way the workflow would, in the terms the next decisions depend on:

* **paid in full**: the run closes as paid; nothing more is sent.
* **a part payment**: the balance falls; dunning goes on.
* **a plan**: dunning stops while the plan runs (reinstalment in the model's number of instalments,
  30 days apart, the first 3 days after the request, as the demo's debtors ask); each instalment is
  paid on its day or, at the first the model says is missed, the plan is broken and dunning resumes
  the next day; all paid, the run closes as settled.
* **STOP**: texts are opted out (the channel is lost, as the workflow's ``opt_out`` does).
* **a complaint**: contact holds until the profile's complaint deadline (``response_tiers.complaint``),
  when the lab assumes the complaint decided and lifts the hold.

What the workflow sends about these (receipts, the plan's confirmation and reminders, the broken-plan
notice, the complaint's acknowledgement) is not simulated: the lab's contact counts are dunning
contacts. Money is integer minor units in the account's currency, as everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from domain.accounts import Channel, ContactOutcome, Hold, HoldKind
from domain.cadence import dpd_at, home_zone, usable_channels
from domain.profiles import Profile
from lab.debtors import DebtorModel, Reaction, Response, reach_of

#: the plan the lab's debtors ask for (carrier/debtors.py asks the same of the plans API)
PLAN_FIRST_DUE_DAYS = 3
PLAN_PERIOD_DAYS = 30
#: an instalment is paid at this local hour of its day
PAY_HOUR = 12


@dataclass(slots=True)
class LabPlan:
    number: int
    instalments: list[tuple[date, int]]
    paid: int = 0


@dataclass(slots=True)
class Money:
    """What one account's debtor did, for the report."""

    opening: int = 0
    recovered: int = 0
    payments: list[tuple[datetime, int]] = field(default_factory=list)
    reached: int = 0
    reactions: dict[str, int] = field(default_factory=dict)
    plans: int = 0
    kept_plans: int = 0
    broken_plans: int = 0
    complaints: int = 0
    plan: LabPlan | None = None
    #: reactions decided and not yet done (when the debtor acts later than the contact): (when, what)
    pending: list[tuple[datetime, Response]] = field(default_factory=list)


def react(
    model: DebtorModel,
    a,
    channel: Channel,
    outcome: ContactOutcome,
    now: datetime,
    profile: Profile,
    act_at: Callable[[datetime], datetime] | None = None,
) -> datetime | None:
    """The debtor's answer to one contact the carrier took, decided now (the hour and lateness of the
    contact) and done now, or at ``act_at(now)`` when the debtor acts later: then the instant the
    account needs a wake (the differential test's debtors act at the next day's checkpoint)."""
    how = reach_of(channel, outcome)
    m: Money = a.money
    if how is None or a.ended is not None or m.plan is not None:
        return None
    m.reached += 1
    hour = now.astimezone(home_zone(a.terms)).hour
    answer = model.respond(a.terms.account_id, m.reached, how, hour, dpd_at(now, a.terms), a.terms.profile)
    if answer.reaction == Reaction.NOTHING:
        return None
    if act_at is None:
        apply(a, answer, now, profile)
        return None
    due = act_at(now)
    m.pending.append((due, answer))
    return due


def apply_due(a, now: datetime, profile: Profile) -> None:
    """What the debtor decided earlier and does by ``now``, in the order decided."""
    m: Money = a.money
    while m.pending and m.pending[0][0] <= now:
        _, answer = m.pending.pop(0)
        if a.ended is None:
            apply(a, answer, now, profile)


def apply(a, answer: Response, now: datetime, profile: Profile) -> None:
    """One reaction, done at ``now`` as the workflow would take it."""
    m: Money = a.money
    m.reactions[answer.reaction.value] = m.reactions.get(answer.reaction.value, 0) + 1
    c = a.carried
    if answer.reaction == Reaction.PAY_FULL:
        _pay(a, c.balance, now)
    elif answer.reaction == Reaction.PAY_PART:
        _pay(a, part(c.balance, answer.share), now)
    elif answer.reaction == Reaction.STOP:
        if Channel.SMS not in c.opted_out:
            c.opted_out = [*c.opted_out, Channel.SMS]
            c.contact_lost = c.contact_lost or not usable_channels(c)
    elif answer.reaction == Reaction.COMPLAIN:
        m.complaints += 1
        days = profile.response_tiers.complaint.days or 15
        hold = Hold(kind=HoldKind.COMPLAINT, reason="lab", since=now, until=now + timedelta(days=days))
        c.holds = [*c.holds, hold]
    elif answer.reaction == Reaction.PLAN:
        m.plans += 1
        today = now.astimezone(ZoneInfo(a.terms.zones[0])).date()
        share, rest = divmod(c.balance, answer.periods)
        m.plan = LabPlan(
            number=m.plans,
            instalments=[
                (
                    today + timedelta(days=PLAN_FIRST_DUE_DAYS + i * PLAN_PERIOD_DAYS),
                    share + (rest if i == 0 else 0),
                )
                for i in range(answer.periods)
            ],
        )


def part(balance: int, share: float) -> int:
    """A part payment of ``share`` of the balance, in whole minor units, at least one (the demo's
    debtors and the differential test pay the same)."""
    return max(int(balance * share), 1)


def plan_wake(model: DebtorModel, a, now: datetime) -> datetime | None:  # type: ignore[no-untyped-def]
    """Under a plan: pay what is due by ``now`` (or break the plan); the next instant the account needs
    a wake, or None when the plan ended (closed as settled, or broken: dunning resumes now)."""
    m: Money = a.money
    plan = m.plan
    assert plan is not None
    zone = ZoneInfo(a.terms.zones[0])
    while plan.paid < len(plan.instalments):
        day, amount = plan.instalments[plan.paid]
        due = datetime.combine(day, time(PAY_HOUR), zone)
        if due > now:
            return due
        if not model.keeps(a.terms.account_id, plan.number, plan.paid + 1, a.terms.profile):
            m.broken_plans += 1
            m.plan = None
            return None
        _pay(a, min(amount, a.carried.balance), due)
        plan.paid += 1
    m.kept_plans += 1
    m.plan = None
    if a.ended is None:  # the last instalment rounded below the balance: settled all the same
        a.ended, a.ended_at = "settled", now
    return None


def _pay(a, amount: int, at: datetime) -> None:  # type: ignore[no-untyped-def]
    m: Money = a.money
    amount = min(amount, a.carried.balance)
    if amount <= 0:
        return
    a.carried.balance -= amount
    m.recovered += amount
    m.payments.append((at, amount))
    if a.carried.balance == 0:
        a.ended, a.ended_at = ("settled" if m.plan is not None else "paid"), at


__all__ = ["LabPlan", "Money", "apply", "apply_due", "part", "plan_wake", "react"]
