"""The dunning cadence as a plan: which contact comes next, and when, for an account's current state.

The workflow executes exactly what :func:`next_action` says, and the ``timeline`` query shows what
repeated calls of it would do, so what a debtor is told is what the system will really do.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from domain.accounts import AccountTerms, Carried, Channel, HoldKind, LedgerEntry, Mode, Product, Stage
from domain.gate import Allow, Defer, Deny, GateState, PlannedContact, Purpose, decide
from domain.policy import Policy
from domain.profiles import Profile

STALE_AFTER_DAYS = 1  # a step deferred overnight (quiet hours) still goes out; older ones are superseded


class Step(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str
    dpd: int
    channel: Channel
    template: str


class NextAction(BaseModel):
    """The next thing the dunning workflow will do if nothing else happens first."""

    model_config = ConfigDict(frozen=True)

    kind: str  # "contact", "stage", "chargeoff", "hold_ends"
    at: datetime
    dpd: int
    stage: Stage
    step: Step | None = None
    rule: str | None = None  # why a contact was deferred, if it was
    skipped: tuple[str, ...] = ()  # steps denied or superseded on the way (for the audit)
    skipped_rules: tuple[str, ...] = ()


def expand(policy: Policy) -> tuple[Step, ...]:
    """Every planned step of the cadence, in the order they fall due.

    Asked at every wake of every account (and by the strategy lab for each account at each step), so
    the steps are built once per distinct cadence: the rules' channels, templates and days are the key.
    """
    return _expand(tuple((r.channel, r.template, tuple(r.days())) for r in policy.cadence))


def steps_for(policy: Policy, product: Product, profile: Profile | None = None) -> tuple[Step, ...]:
    """The cadence one product runs: no overdue step inside its grace period, and the notice before
    the first credit report where the lender reports and the profile's law asks for one (issue 15).

    The grace filter is here, not only in the policy's validation, so that a policy whose grace covers
    some products and not others (or an upgrade that lengthens the grace) can never put an overdue
    message inside the grace of the account it runs. The notice is a step like any other: the gate
    clears it at a lawful hour, and the furnishing file reports nobody whose notice was not delivered
    (``store/credit_facts.py``).
    """
    key = (id(policy), product, id(profile))
    found = _STEPS.get(key)
    if found is not None and found[0] is policy and found[1] is profile:
        return found[2]
    steps = _steps_for(policy, product, profile)
    if len(_STEPS) >= _STEPS_KEPT:
        _STEPS.clear()
    _STEPS[key] = (policy, profile, steps)  # holding both keeps their ids from being reused
    return steps


#: :func:`steps_for` per policy and profile object: asked at every wake of every account, and both
#: are frozen, so one object's steps never change (the entry holds the objects, so an id is never
#: reused while its entry lives)
_STEPS: dict[tuple[int, Product, int], tuple[Policy, Profile | None, tuple[Step, ...]]] = {}
_STEPS_KEPT = 256


def _steps_for(policy: Policy, product: Product, profile: Profile | None) -> tuple[Step, ...]:
    grace = policy.grace_for(product)
    every = expand(policy)
    notice = _notice_step(policy, profile)
    if grace == 0 and notice is None:
        return every
    kept = [s for s in every if not 1 <= s.dpd <= grace]
    if notice is not None and notice.key not in {s.key for s in kept}:
        kept.append(notice)
        kept.sort(key=lambda s: (s.dpd, _CHANNEL_ORDER[s.channel], s.template))
    return tuple(kept)


def _notice_step(policy: Policy, profile: Profile | None) -> Step | None:
    furnishing = policy.credit_reporting
    law = profile.credit_reporting if profile is not None else None
    if furnishing is None or law is None:
        return None
    d, template = furnishing.notice_dpd, law.notice_template
    return Step(key=f"{d}:{Channel.SMS.value}:{template}", dpd=d, channel=Channel.SMS, template=template)


def is_report_notice(step: Step, profile: Profile) -> bool:
    law = profile.credit_reporting
    return law is not None and step.template == law.notice_template


_CHANNEL_ORDER = {Channel.SMS: 0, Channel.VOICE: 1}


@lru_cache(maxsize=256)
def _expand(cadence: tuple[tuple[Channel, str, tuple[int, ...]], ...]) -> tuple[Step, ...]:
    steps = {
        f"{d}:{channel.value}:{template}": Step(
            key=f"{d}:{channel.value}:{template}", dpd=d, channel=channel, template=template
        )
        for channel, template, days in cadence
        for d in days
    }
    order = {Channel.SMS: 0, Channel.VOICE: 1}
    return tuple(sorted(steps.values(), key=lambda s: (s.dpd, order[s.channel], s.template)))


def home_zone(terms: AccountTerms) -> ZoneInfo:
    """The calendar days past due are counted in (the first of the debtor's possible zones)."""
    return ZoneInfo(terms.zones[0])


def local_date(instant: datetime, terms: AccountTerms) -> date:
    return instant.astimezone(home_zone(terms)).date()


def local_days_later(instant: datetime, terms: AccountTerms, days: int) -> datetime:
    """The same wall-clock time ``days`` calendar days later in the debtor's home zone.

    "Payments taken for 30 days" is a promise in the debtor's calendar: 30 x 24 hours would end an
    hour early (the evening before) across an autumn clock change.
    """
    return instant.astimezone(home_zone(terms)) + timedelta(days=days)


def dpd_at(instant: datetime, terms: AccountTerms) -> int:
    return (local_date(instant, terms) - terms.due_date).days


def day_start(terms: AccountTerms, dpd: int) -> datetime:
    """The local midnight at which the account reaches ``dpd`` days past due."""
    return datetime.combine(terms.due_date + timedelta(days=dpd), time(0), tzinfo=home_zone(terms))


def planned_time(terms: AccountTerms, dpd: int, send_time: time) -> datetime:
    return datetime.combine(terms.due_date + timedelta(days=dpd), send_time, tzinfo=home_zone(terms))


def due_before(terms: AccountTerms, policy: Policy, instant: datetime) -> list[str]:
    """Keys of the cadence steps whose planned time was before ``instant`` (an account's intake).

    Those fell due while the account was elsewhere (the lender, an earlier servicer): a debtor taken in
    at 17:18 must not get, at once, a "catch-up" for the 10:00 step of a day they were never ours. The
    account starts at its stage's next step instead. (Steps older than the catch-up window are never
    sent anyway, so only the window's are listed: the carried state stays small.)
    """
    oldest = dpd_at(instant, terms) - STALE_AFTER_DAYS
    return [
        step.key
        for step in steps_for(policy, terms.product)
        if step.dpd >= oldest and planned_time(terms, step.dpd, policy.send_time) < instant
    ]


def gate_state(terms: AccountTerms, carried: Carried, mode: Mode) -> GateState:
    return GateState(
        mode=mode,
        holds=list(carried.holds),
        opted_out=list(carried.opted_out),
        unreachable=list(carried.unreachable),
        zones=list(terms.zones),
        region=terms.region,
    )


def third_party_gate_state(terms: AccountTerms, carried: Carried, mode: Mode) -> GateState:
    """The gate's view for a message to the emergency contact: the account plus that number's zones."""
    state = gate_state(terms, carried, mode)
    zones = list(terms.emergency_zones) if terms.emergency_masked else None
    return state.model_copy(update={"third_party_zones": zones})


def usable_channels(carried: Carried) -> list[Channel]:
    return [c for c in Channel if c not in carried.opted_out and c not in carried.unreachable]


def active_holds(carried: Carried, now: datetime) -> list[HoldKind]:
    return [h.kind for h in carried.holds if h.until is None or h.until > now]


def _next_boundary(terms: AccountTerms, policy: Policy, dpd: int) -> NextAction:
    """The first stage start (or charge-off) after ``dpd``: the earliest, the first listed on a tie."""
    best: tuple[datetime, int, Stage] | None = None
    for d, s in policy.stage_starts(terms.product):
        if d > dpd:
            at = day_start(terms, d)
            if best is None or at < best[0]:
                best = (at, d, s)
    if best is None:
        raise ValueError("no stage starts after the account's day")  # what min() of none would say
    at, d, s = best
    return NextAction(kind="chargeoff" if s == Stage.CHARGED_OFF else "stage", at=at, dpd=d, stage=s)


def next_action(
    terms: AccountTerms,
    carried: Carried,
    policy: Policy,
    profile: Profile,
    now: datetime,
    *,
    ledger: Sequence[LedgerEntry] | None = None,
    stage_at_contact: bool = False,
) -> NextAction:
    """What dunning does next: a contact (with its lawful time), a stage change, or charge-off.

    ``stage_at_contact``: a stage that begins on a day with a contact is entered at that contact
    instead of at the day's midnight, so the day costs the engine one wake, not two (issue 18); the
    stage is written with the contact's send. Charge-off is never postponed.
    """
    dpd = dpd_at(now, terms)
    stage = policy.stage_for(dpd, terms.product)
    chargeoff_dpd = policy.chargeoff_for(terms.product)
    if stage == Stage.CHARGED_OFF:
        return NextAction(kind="chargeoff", at=now, dpd=dpd, stage=stage)

    upcoming = _next_boundary(terms, policy, dpd)

    holds_until = [h.until for h in carried.holds if h.until is not None and h.until > now]
    state = gate_state(terms, carried, Mode.DUNNING)
    ledger = list(carried.ledger if ledger is None else ledger)
    skipped: list[str] = []
    skipped_rules: list[str] = []
    if carried.contact_lost:
        return upcoming
    done = set(carried.done_steps)
    oldest = dpd - STALE_AFTER_DAYS
    for step in steps_for(policy, terms.product, profile):
        if step.dpd < oldest or step.dpd >= chargeoff_dpd or step.key in done:
            continue
        at = planned_time(terms, step.dpd, policy.send_time)
        if at >= upcoming.at and upcoming.kind == "chargeoff":
            break
        contact = PlannedContact(channel=step.channel, purpose=Purpose.DUNNING, template=step.template, at=at)
        verdict = decide(contact, state, ledger, now, profile)
        if isinstance(verdict, Deny):
            if verdict.rule.startswith("hold.") and holds_until:
                # a hold that lifts by itself: wake up then and plan again
                wake = min(holds_until)
                return min(
                    upcoming, NextAction(kind="hold_ends", at=wake, dpd=dpd, stage=stage), key=lambda a: a.at
                )
            skipped.append(step.key)
            skipped_rules.append(verdict.rule)
            if verdict.rule.startswith("hold."):
                break  # nothing goes out during an open-ended hold; stage changes still happen
            continue
        when = now if isinstance(verdict, Allow) else verdict.until
        if isinstance(verdict, Defer) and local_date(when, terms) > terms.due_date + timedelta(
            days=step.dpd + STALE_AFTER_DAYS
        ):
            skipped.append(step.key)
            skipped_rules.append(f"superseded:{verdict.rule}")
            continue
        action = NextAction(
            kind="contact",
            at=when,
            dpd=dpd,
            stage=stage,
            step=step,
            rule=None if isinstance(verdict, Allow) else verdict.rule,
            skipped=tuple(skipped),
            skipped_rules=tuple(skipped_rules),
        )
        same_day = (
            stage_at_contact
            and upcoming.kind == "stage"
            and local_date(action.at, terms) == local_date(upcoming.at, terms)
        )
        return (
            action
            if action.at <= upcoming.at or same_day
            else upcoming.model_copy(
                update={"skipped": tuple(skipped), "skipped_rules": tuple(skipped_rules)}
            )
        )
    return upcoming.model_copy(update={"skipped": tuple(skipped), "skipped_rules": tuple(skipped_rules)})


def fallback_step(
    policy: Policy, product: Product, failed: Channel, carried: Carried, origin: Step
) -> Step | None:
    """When a channel cannot carry a step, the same reminder through the next usable channel.

    The substitute is a template the policy sends on that channel in the *same stage* as the step
    (the latest of its days at or before the step's day, else the earliest after), so it never
    states something false: a pre-due "your payment is due on …" never stands in for a past-due
    reminder. None when the policy has no such template: better no message than a wrong one.
    """
    stage = policy.stage_for(origin.dpd, product)
    for channel in usable_channels(carried):
        if channel == failed:
            continue
        key = f"{origin.key}>fallback:{channel.value}"
        if key in carried.done_steps:
            continue
        fits = [
            (d, rule.template)
            for rule in policy.cadence
            if rule.channel == channel
            for d in rule.days()
            if policy.stage_for(d, product) == stage and not policy.in_grace(d, product)
        ]
        if not fits:
            continue
        before = [f for f in fits if f[0] <= origin.dpd]
        _, template = max(before) if before else min(fits)
        return Step(key=key, dpd=origin.dpd, channel=channel, template=template)
    return None


def legacy_fallback_step(
    policy: Policy, stage_dpd: int, failed: Channel, carried: Carried, origin: Step
) -> Step | None:
    """The choice runs recorded before :func:`fallback_step` made (any template within 45 days).

    Kept only so that those runs replay the same commands; never used for a new decision.
    """
    for channel in usable_channels(carried):
        if channel == failed:
            continue
        for rule in policy.cadence:
            if rule.channel == channel and any(abs(d - stage_dpd) <= 45 for d in rule.days()):
                key = f"{origin.key}>fallback:{channel.value}"
                if key not in carried.done_steps:
                    return Step(key=key, dpd=origin.dpd, channel=channel, template=rule.template)
    return None
