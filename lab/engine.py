"""The dunning workflow's decisions over a simulated clock: same functions, no Temporal, no database.

Each account is what ``DelinquencyWorkflow`` keeps (its terms and its :class:`Carried` state) plus
what the database would hold for the send activity's live check (every attempt that reached the
carrier, a visit's announcement included). :meth:`Portfolio.run` wakes accounts in time order,
all of them on one clock, because the call governor judges the whole campaign's calls together.

At each wake the account does what the workflow's loop does (``workflows/delinquency.py``): enter
a new stage, charge off, arrange a field visit, then ask :func:`domain.cadence.next_action`; a step
due now is decided again by the gate on the run's view and by the gate on the live view (and, for a
call, by the governor), sent, and its outcome applied (a fallback on another channel, a channel
lost). What the workflow does with I/O (records, searches, audit lines) has no counterpart here:
only what changes the next decision does.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache

from domain.accounts import (
    AccountTerms,
    Carried,
    Channel,
    ContactOutcome,
    ContactRecord,
    Hold,
    HoldKind,
    LedgerEntry,
    Mode,
    Stage,
)
from domain.agencies import AgencyBook, Work, choose
from domain.cadence import (
    Step,
    dpd_at,
    due_before,
    usable_channels,
)
from domain.clock import PolicyClock
from domain.gate import Allow, Defer, Deny, Purpose
from domain.governor import (
    RULE_RATE,
    RULE_REDIAL,
    CallFact,
    GovernorRules,
    redial_blocked_until,
    rules_for_profile,
)
from domain.policy import Policy, load_policy
from domain.profiles import Profile, load_profile
from domain.visits import eligibility, visit_slot
from lab.behaviour import Answer, Behaviour
from lab.governor import CampaignCalls
from lab.memo import Answers, terms_key

#: the workflow keeps this much of its ledger (workflows/base.py KEEP_LEDGER_DAYS) and of its contacts
KEEP_LEDGER = timedelta(days=8)
KEEP_CONTACTS = 12
#: the live check reads the attempts of the last 8 days (activities/contact.py)
LIVE_LEDGER = timedelta(days=8)
#: a visit is announced at least this long before its window (workflows/visit.py MIN_NOTICE)
VISIT_MIN_NOTICE = timedelta(days=1)
#: a message that goes once waits this long for a lawful hour (workflows/contacts.py send_once)
PLACEMENT_NOTICE_WAIT = timedelta(days=2)


@dataclass(frozen=True, slots=True)
class Sent:
    """One attempt the carrier saw."""

    at: datetime
    channel: Channel
    template: str
    purpose: Purpose
    outcome: ContactOutcome
    key: str
    stage: Stage


@dataclass(frozen=True, slots=True)
class Refused:
    """A contact the gate or the governor refused or put off (what the audit log's lines say)."""

    at: datetime
    channel: Channel
    template: str
    rule: str
    decision: str  # "denied", "deferred" or "skipped" (a step the plan passed over)


@dataclass(frozen=True, slots=True)
class HoldChange:
    """An operator's pause or resume at an instant (policy time), as the signals do."""

    at: datetime
    account_id: str
    pause: bool
    reason: str = "lab"


@dataclass(slots=True)
class _Visit:
    key: str
    agency: str
    announce_from: datetime  # the announcement goes at or after this...
    latest: datetime  # ...and not after this, or the visit is called off
    ends: datetime  # the report deadline: the visit is over for the account's loop
    announced: bool = False


@dataclass
class SimAccount:
    terms: AccountTerms
    phone: str
    opened_at: datetime
    segment: str = ""
    carried: Carried = field(init=False)
    live: list[LedgerEntry] = field(default_factory=list)  # every accepted attempt (the database's view)
    deferred: dict[str, datetime] = field(default_factory=dict)
    voice_paused_until: datetime | None = None
    sent: list[Sent] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    stages: list[tuple[datetime, Stage]] = field(default_factory=list)
    ended: str | None = None  # "charged_off", "placed"
    ended_at: datetime | None = None
    visit: _Visit | None = None
    holds_due: list[HoldChange] = field(default_factory=list)
    wake_at: datetime | None = None
    notice_due: datetime | None = None  # the placement notice, until it went or was given up
    terms_key: tuple[Hashable, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.terms_key = terms_key(self.terms)
        self.carried = Carried(clock=PolicyClock(epoch=self.opened_at), balance=self.terms.balance)


@lru_cache(maxsize=64)
def _policy(name: str) -> Policy:
    return load_policy(name)


@lru_cache(maxsize=64)
def _profile(name: str) -> Profile:
    return load_profile(name)


@lru_cache(maxsize=64)
def _governor_rules(profile: str) -> GovernorRules:
    p = _profile(profile)
    return rules_for_profile(p.max_abandoned_rate, p.no_redial_after_abandoned_hours, p.legal_jurisdiction)


class Portfolio:
    """Accounts on one simulated clock, with the campaign-wide state the governor and agencies need."""

    def __init__(
        self,
        behaviour: Behaviour,
        agencies: AgencyBook | None = None,
        *,
        load: tuple[dict[str, int], dict[str, int]] | None = None,
        policies: dict[str, Policy] | None = None,
    ) -> None:
        """``load``: open visits and active placements per agency already (``store.agencies.agency_load``).
        ``policies``: policies by name that are not in ``policies/`` (a variant being tried)."""
        self.policies = dict(policies or {})
        self.behaviour = behaviour
        self.agencies = agencies
        self.accounts: dict[str, SimAccount] = {}
        self._calls: dict[str, list[CallFact]] = {}  # per campaign (policy), oldest first
        #: campaigns with an abandoned (or pending) call so far: the governor has nothing to judge
        #: before one, and scanning every call of the campaign at each call made a run quadratic
        self._any_abandoned: set[str] = set()
        self._abandoned: dict[str, list[datetime]] = {}  # per number
        self._judges: dict[str, dict[GovernorRules, CampaignCalls]] = {}  # per campaign, per rules
        visits, placed = load or ({}, {})
        self._load: dict[Work, dict[str, int]] = {Work.VISIT: dict(visits), Work.PLACEMENT: dict(placed)}
        self._queue: list[tuple[datetime, int, str]] = []
        self._seq = 0
        self._answers = Answers()

    def policy(self, name: str) -> Policy:
        found = self.policies.get(name)
        return found if found is not None else _policy(name)

    # ---- set-up -------------------------------------------------------------------------------
    def open(self, account: SimAccount) -> None:
        """Intake: the steps that fell due before the account was ours are not caught up."""
        self.accounts[account.terms.account_id] = account
        policy = self.policy(account.terms.policy)
        missed = due_before(account.terms, policy, account.opened_at)
        account.carried.done_steps = list(missed)
        self._wake(account, account.opened_at)

    def hold(self, change: HoldChange) -> None:
        account = self.accounts[change.account_id]
        account.holds_due.append(change)
        account.holds_due.sort(key=lambda h: h.at)
        self._wake(account, change.at, planned=False)

    def _wake(self, account: SimAccount, at: datetime, *, planned: bool = True) -> None:
        """Queue a wake; a planned one replaces the account's previous plan (a signal's does not)."""
        if planned:
            account.wake_at = at
        self._seq += 1
        heapq.heappush(self._queue, (at, self._seq, account.terms.account_id))

    # ---- the clock ----------------------------------------------------------------------------
    def run(self, until: datetime) -> None:
        """Every wake up to ``until``, in time order (ties: in the order they were asked for)."""
        while self._queue and self._queue[0][0] <= until:
            at, _, account_id = heapq.heappop(self._queue)
            account = self.accounts[account_id]
            if at != account.wake_at and not (account.holds_due and account.holds_due[0].at <= at):
                continue  # superseded: a signal woke the account earlier and it planned again
            if account.ended is not None:
                nxt = self._placement_notice(account, at)
            else:
                nxt = self._turn(account, at)
            account.wake_at = None
            if nxt is not None:
                self._wake(account, nxt)

    # ---- one wake of one account (the workflow's loop) -----------------------------------------
    def _turn(self, a: SimAccount, now: datetime) -> datetime | None:
        while a.holds_due and a.holds_due[0].at <= now:
            change = a.holds_due.pop(0)
            c = a.carried
            if change.pause:
                hold = Hold(kind=HoldKind.PAUSE, reason=change.reason, since=change.at)
                c.holds = [h for h in c.holds if (h.kind, h.channel) != (HoldKind.PAUSE, None)] + [hold]
                self._end_visit(a)  # a live hold stops a visit (workflows/fieldvisits.py tend_visit)
            else:
                c.holds = [h for h in c.holds if h.kind not in (HoldKind.PAUSE, HoldKind.NEGOTIATION)]
        terms, c = a.terms, a.carried
        policy, profile = self.policy(terms.policy), _profile(terms.profile)
        while True:
            dpd = dpd_at(now, terms)
            stage = policy.stage_for(dpd, terms.product)
            if stage != c.stage:
                c.stage = stage
                a.stages.append((now, stage))
            if stage == Stage.CHARGED_OFF:
                self._charge_off(a, now, policy)
                return now if a.notice_due is not None else None
            if any(e.at < now - KEEP_LEDGER for e in c.ledger):  # a pydantic assignment costs more
                c.ledger = [e for e in c.ledger if e.at >= now - KEEP_LEDGER]
            if any(h.until is not None and h.until <= now for h in c.holds):
                c.holds = [h for h in c.holds if h.until is None or h.until > now]
            visit_wake = self._tend_visit(a, stage, dpd, now, policy, profile, arrange=False)
            action = self._answers.plan(a, policy, profile, now)
            if action.skipped:
                c.done_steps = [*c.done_steps, *action.skipped]
            step = action.step
            wait_until = action.at
            if step is not None and (later := a.deferred.get(step.key)) is not None and later > now:
                wait_until = later
            if step is not None and wait_until <= now:
                self._do_step(a, step, stage, now, policy, profile)
                continue
            if a.visit is None:  # arranged once this wake's own step has gone (workflows/delinquency.py)
                visit_wake = self._tend_visit(a, stage, dpd, now, policy, profile)
            wakes = [wait_until]
            if visit_wake is not None:
                wakes.append(visit_wake)
            if a.holds_due:
                wakes.append(a.holds_due[0].at)
            return max(min(wakes), now)

    def _do_step(
        self,
        a: SimAccount,
        step: Step,
        stage: Stage,
        now: datetime,
        policy: Policy,
        profile: Profile,
        went: _Result | None = None,
    ) -> None:
        c = a.carried
        if step.channel == Channel.VOICE and a.voice_paused_until is not None and now < a.voice_paused_until:
            c.done_steps = [*c.done_steps, step.key]
            a.deferred.pop(step.key, None)
            if (alt := self._fallback(a, step, policy)) is not None:
                self._do_step(a, alt, stage, now, policy, profile)
            return
        riding = self._fallback(a, step, policy) if went is None and step.channel == Channel.VOICE else None
        result = went or self._contact(a, step.key, step.channel, step.template, stage, now, profile, riding)
        if result.deferred_until is not None:
            return
        c.done_steps = [*c.done_steps, step.key]
        a.deferred.pop(step.key, None)
        if result.outcome != ContactOutcome.DENIED:
            c.ledger = [*c.ledger, self._answers.entry(now, step.channel, result.outcome)]
            record = ContactRecord(
                at=now, channel=step.channel, template=step.template, outcome=result.outcome, step=step.key
            )
            c.last_contacts = [*c.last_contacts, record][-KEEP_CONTACTS:]
        if step.channel == Channel.VOICE:
            a.voice_paused_until = result.voice_paused_until
        governed = result.rule is not None and result.rule.startswith("governor.")
        if (governed or result.fallback is not None) and step.channel == Channel.VOICE:
            alt = self._fallback(a, step, policy)
            if alt is not None:
                ride = result.fallback if riding is not None and riding.key == alt.key else None
                self._do_step(a, alt, stage, now, policy, profile, went=ride)
            return
        if result.outcome in (ContactOutcome.UNDELIVERABLE, ContactOutcome.OPTED_OUT):
            lost = self._channel_outcome(a, step.channel, result.outcome)
            if not lost and result.outcome == ContactOutcome.UNDELIVERABLE:
                if (alt := self._fallback(a, step, policy)) is not None:
                    self._do_step(a, alt, stage, now, policy, profile)

    def _fallback(self, a: SimAccount, step: Step, policy: Policy) -> Step | None:
        return self._answers.fallback(a, step, policy)

    def _channel_outcome(self, a: SimAccount, channel: Channel, outcome: ContactOutcome) -> bool:
        c = a.carried
        if outcome == ContactOutcome.UNDELIVERABLE and channel not in c.unreachable:
            c.unreachable = [*c.unreachable, channel]
        elif outcome == ContactOutcome.OPTED_OUT and channel not in c.opted_out:
            c.opted_out = [*c.opted_out, channel]
        if not usable_channels(c) and not c.contact_lost:
            c.contact_lost = True
            return True
        return False

    # ---- a send: the run's gate, then the activity's live gate, governor and provider ------------
    def _contact(
        self,
        a: SimAccount,
        key: str,
        channel: Channel,
        template: str,
        stage: Stage,
        now: datetime,
        profile: Profile,
        riding: Step | None,
    ) -> _Result:
        purpose = Purpose.DUNNING
        planned = self._answers.verdict(
            a, channel, purpose, template, Mode.DUNNING, a.carried.ledger, now, profile
        )
        if isinstance(planned, Deny):
            a.refused.append(Refused(now, channel, template, planned.rule, "denied"))
            return _Result(outcome=ContactOutcome.DENIED, rule=planned.rule)
        if isinstance(planned, Defer):
            return _Result(outcome=ContactOutcome.DENIED, rule=planned.rule, deferred_until=planned.until)
        backup = None
        if riding is not None:
            fb = self._answers.verdict(
                a, riding.channel, purpose, riding.template, Mode.DUNNING, a.carried.ledger, now, profile
            )
            if isinstance(fb, Allow):
                backup = riding
        result = self._send(a, key, channel, template, purpose, stage, now, profile, backup)
        if result.deferred_until is not None:
            a.deferred[key] = result.deferred_until
        return result

    def _send(
        self,
        a: SimAccount,
        key: str,
        channel: Channel,
        template: str,
        purpose: Purpose,
        stage: Stage,
        now: datetime,
        profile: Profile,
        backup: Step | None,
    ) -> _Result:
        """What the send activity does: the live gate, the governor for a call, then the carrier."""
        verdict = self._answers.verdict(
            a, channel, purpose, template, Mode.DUNNING, _live(a, now), now, profile
        )
        if isinstance(verdict, Deny):
            a.refused.append(Refused(now, channel, template, verdict.rule, "denied"))
            return _Result(outcome=ContactOutcome.DENIED, rule=verdict.rule)
        if isinstance(verdict, Defer):
            a.refused.append(Refused(now, channel, template, verdict.rule, "deferred"))
            return _Result(outcome=ContactOutcome.DENIED, rule=verdict.rule, deferred_until=verdict.until)
        if channel == Channel.VOICE:
            held = self._governor(a, now)
            if held is not None:
                a.refused.append(Refused(now, channel, template, held.rule or "", "denied"))
                if held.deferred_until is None and backup is not None:
                    fb = self._send(
                        a, backup.key, backup.channel, backup.template, purpose, stage, now, profile, None
                    )
                    if fb.deferred_until is not None:
                        a.deferred[backup.key] = fb.deferred_until
                    return held.with_fallback(fb)
                return held
        return _Result(outcome=self._deliver(a, key, channel, template, purpose, stage, now).outcome)

    def _deliver(
        self,
        a: SimAccount,
        key: str,
        channel: Channel,
        template: str,
        purpose: Purpose,
        stage: Stage,
        now: datetime,
    ) -> Answer:
        """The carrier's answer; what it accepted counts in the live ledger (and a call, for the governor)."""
        answer = self.behaviour.answer(a.phone, channel, now)
        if answer.accepted:
            a.live.append(self._answers.entry(now, channel, answer.outcome))
            a.sent.append(Sent(now, channel, template, purpose, answer.outcome, key, stage))
            if channel == Channel.VOICE:
                fact = CallFact(at=now, outcome=answer.outcome)
                self._calls.setdefault(a.terms.policy, []).append(fact)
                for judge in self._judges.get(a.terms.policy, {}).values():
                    judge.add(fact)
                if fact.abandoned or fact.pending:
                    self._any_abandoned.add(a.terms.policy)
                if answer.outcome == ContactOutcome.SILENT:
                    self._abandoned.setdefault(a.phone, []).append(now)
        return answer

    def _governor(self, a: SimAccount, now: datetime) -> _Result | None:
        """``decide_voice`` for one more call to the account's number in its campaign."""
        rules = _governor_rules(a.terms.profile)
        abandoned = [t for t in self._abandoned.get(a.phone, []) if t > now - rules.no_redial]
        until = redial_blocked_until(abandoned, now, rules)
        if until is not None:
            return _Result(outcome=ContactOutcome.DENIED, rule=RULE_REDIAL, deferred_until=until)
        if a.terms.policy not in self._any_abandoned:
            return None  # no abandoned call anywhere: the bound cannot be at risk from one more call
        paused, resumes = self._judge(a.terms.policy, rules).paused_until(now)
        if not paused:
            return None
        return _Result(outcome=ContactOutcome.DENIED, rule=RULE_RATE, voice_paused_until=resumes)

    def _judge(self, campaign: str, rules: GovernorRules) -> CampaignCalls:
        """The campaign's calls as these rules count them (a campaign's profiles may differ)."""
        judges = self._judges.setdefault(campaign, {})
        judge = judges.get(rules)
        if judge is None:
            judge = judges[rules] = CampaignCalls(rules)
            for fact in self._calls.get(campaign, []):
                judge.add(fact)
        return judge

    # ---- field visits (workflows/fieldvisits.py, workflows/visit.py) ----------------------------
    def _tend_visit(
        self,
        a: SimAccount,
        stage: Stage,
        dpd: int,
        now: datetime,
        policy: Policy,
        profile: Profile,
        *,
        arrange: bool = True,
    ) -> datetime | None:
        """Arrange a visit when the rules say so, and announce it; the next instant it needs a wake."""
        c = a.carried
        v = a.visit
        if v is not None:
            if now >= v.ends:
                self._end_visit(a)  # the report deadline passed: escalated to a supervisor, nothing to send
            elif not v.announced:
                return self._announce(a, v, now, profile)
            else:
                return v.ends
        visits = policy.visits
        if not arrange or not visits.enabled or c.contact_lost:
            return None
        if stage not in visits.stages or dpd < visits.from_dpd:
            return None  # what eligibility() says first, without scoring the account's history
        verdict = eligibility(
            visits,
            stage=stage,
            dpd=dpd,
            balance=c.balance,
            currency=a.terms.currency,
            carried=c,
            opening_balance=a.terms.balance,
            last_visit_at=c.last_visit_at,
            now=now,
            region=a.terms.region,
            profile_name=a.terms.profile,
        )
        if not verdict.eligible:
            return None
        c.visits += 1
        c.last_visit_at = now
        if self.agencies is None:
            return None
        slot = visit_slot(now, a.terms.zones[0], visits, profile)
        agency = choose(
            self.agencies,
            Work.VISIT,
            region=a.terms.region,
            country=a.terms.profile,
            load=self._load[Work.VISIT],
            on=max(now.date(), slot.start.date()),  # the licence must cover the visit's day
        )
        if agency is None:
            return None
        self._load[Work.VISIT][agency.id] = self._load[Work.VISIT].get(agency.id, 0) + 1
        key = f"{a.terms.account_id}/visit-{c.visits}/announce-1"
        a.visit = _Visit(
            key=key,
            agency=agency.id,
            announce_from=now,
            latest=slot.start - VISIT_MIN_NOTICE,
            ends=slot.end + timedelta(days=visits.report_days),
        )
        return self._announce(a, a.visit, now, profile)  # the child announces at once

    def _end_visit(self, a: SimAccount) -> None:
        if a.visit is not None:
            load = self._load[Work.VISIT]
            load[a.visit.agency] = max(load.get(a.visit.agency, 0) - 1, 0)
        a.visit = None

    def _announce(self, a: SimAccount, v: _Visit, now: datetime, profile: Profile) -> datetime | None:
        if now < v.announce_from:
            return v.announce_from
        if now > v.latest:
            self._end_visit(a)
            return None
        result = self._send(
            a,
            v.key,
            Channel.SMS,
            "visit_announcement",
            Purpose.DUNNING,
            a.carried.stage or Stage.LATE,
            now,
            profile,
            None,
        )
        if result.deferred_until is not None:
            if result.deferred_until > v.latest:
                self._end_visit(a)
                return None
            v.announce_from = result.deferred_until
            return v.announce_from
        if result.outcome in (ContactOutcome.DENIED, ContactOutcome.FAILED, ContactOutcome.UNDELIVERABLE):
            self._end_visit(a)
            return None
        v.announced = True
        return v.ends

    # ---- the end of collection --------------------------------------------------------------------
    def _charge_off(self, a: SimAccount, now: datetime, policy: Policy) -> None:
        a.ended_at = now
        self._end_visit(a)
        due = policy.placement.places_at_charge_off(a.carried.balance, a.terms.currency)
        if due and self.agencies is not None:
            agency = choose(
                self.agencies,
                Work.PLACEMENT,
                region=a.terms.region,
                country=a.terms.profile,
                load=self._load[Work.PLACEMENT],
                on=now.date(),
            )
            if agency is not None:
                self._load[Work.PLACEMENT][agency.id] = self._load[Work.PLACEMENT].get(agency.id, 0) + 1
                a.ended = "placed"
                a.notice_due = now + PLACEMENT_NOTICE_WAIT
                return
        a.ended = "charged_off"

    def _placement_notice(self, a: SimAccount, now: datetime) -> datetime | None:
        """The letter naming the agency (a receipt-like message: quiet hours apply, caps do not),
        sent once at the first lawful moment within two days, as ``send_once`` does."""
        if a.notice_due is None:
            return None
        profile = _profile(a.terms.profile)
        sms, receipt, letter = Channel.SMS, Purpose.RECEIPT, "agency_placement"
        verdict = self._answers.verdict(a, sms, receipt, letter, Mode.CLOSED, a.carried.ledger, now, profile)
        if isinstance(verdict, Allow):
            verdict = self._answers.verdict(a, sms, receipt, letter, Mode.CLOSED, _live(a, now), now, profile)
        if isinstance(verdict, Defer) and verdict.until <= a.notice_due:
            return verdict.until
        if isinstance(verdict, Allow):
            self._deliver(a, "placement", sms, letter, receipt, Stage.CHARGED_OFF, now)
        else:
            a.refused.append(Refused(now, Channel.SMS, "agency_placement", verdict.rule, "denied"))
        a.notice_due = None
        return None


@dataclass(frozen=True, slots=True)
class _Result:
    outcome: ContactOutcome
    rule: str | None = None
    deferred_until: datetime | None = None
    voice_paused_until: datetime | None = None
    fallback: _Result | None = None

    def with_fallback(self, fb: _Result) -> _Result:
        return _Result(self.outcome, self.rule, self.deferred_until, self.voice_paused_until, fb)


def _live(a: SimAccount, now: datetime) -> list[LedgerEntry]:
    """What the live check reads: the attempts of the last :data:`LIVE_LEDGER`."""
    return [e for e in a.live if e.at >= now - LIVE_LEDGER]
