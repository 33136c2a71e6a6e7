"""The dunning workflow's decisions over a simulated clock: same functions, no Temporal, no database.

Each account (:class:`lab.state.SimAccount`) is what ``DelinquencyWorkflow`` keeps plus what the
database would hold for the send activity's live check. :meth:`Portfolio.run` wakes accounts in time order,
all of them on one clock, because the call governor judges the whole campaign's calls together.

At each wake the account does what the workflow's loop does (``workflows/delinquency.py``): enter
a new stage, charge off, arrange a field visit, then ask :func:`domain.cadence.next_action`; a step
due now is decided again by the gate on the run's view and by the gate on the live view (and, for a
call, by the governor), sent, and its outcome applied (a fallback on another channel, a channel
lost). What the workflow does with I/O (records, searches, audit lines) has no counterpart here:
only what changes the next decision does.

Field visits, charge-off and placement are in :mod:`lab.fieldwork`; the call governor's running sums
in :mod:`lab.governor`; the memo of the domain's pure answers (shared by accounts in the same state
at the same instant) in :mod:`lab.memo`.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from domain.accounts import (
    Channel,
    ContactOutcome,
    Hold,
    HoldKind,
    Mode,
    Stage,
)
from domain.agencies import AgencyBook, Work
from domain.cadence import (
    Step,
    usable_channels,
)
from domain.gate import Allow, Defer, Deny, Purpose
from domain.governor import (
    RULE_RATE,
    RULE_REDIAL,
    CallFact,
    GovernorRules,
    redial_blocked_until,
)
from domain.policy import Policy
from domain.profiles import Profile
from lab.behaviour import Answer, Behaviour
from lab.debtors import DebtorModel
from lab.fieldwork import FieldWork
from lab.governor import CampaignCalls
from lab.memo import Answers
from lab.reactions import apply_due, plan_wake, react
from lab.state import (
    KEEP_CONTACTS,
    KEEP_LEDGER,
    HoldChange,
    Refused,
    Sent,
    SimAccount,
)
from lab.state import SendResult as _Result
from lab.state import cached_policy as _policy
from lab.state import cached_profile as _profile
from lab.state import governor_rules as _governor_rules
from lab.state import live_ledger as _live

__all__ = ["HoldChange", "Portfolio", "Refused", "Sent", "SimAccount"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _micros(at: datetime) -> int:
    """The instant as an exact integer (µs since the epoch): the wake queue's order, cheaply compared."""
    return (at - _EPOCH) // _MICROSECOND


class Portfolio(FieldWork):
    """Accounts on one simulated clock, with the campaign-wide state the governor and agencies need."""

    def __init__(
        self,
        behaviour: Behaviour,
        agencies: AgencyBook | None = None,
        *,
        load: tuple[dict[str, int], dict[str, int]] | None = None,
        policies: dict[str, Policy] | None = None,
        debtors: DebtorModel | None = None,
        act_at: Callable[[datetime], datetime] | None = None,
    ) -> None:
        """``load``: open visits and active placements per agency already (``store.agencies.agency_load``).
        ``policies``: policies by name that are not in ``policies/`` (a variant being tried).
        ``debtors``: what debtors do once a contact reaches them (:mod:`lab.debtors`); None: nothing
        (the differential test's portfolio: the workflows' debtors never answer either).
        ``act_at``: when a debtor does what they decided at a contact (default: at once)."""
        self.policies = dict(policies or {})
        self.behaviour = behaviour
        self.debtors = debtors
        self.act_at = act_at
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
        #: (instant in µs since the epoch, sequence, instant, account): an integer key, because
        #: comparing aware datetimes of different zones asks each for its offset at every comparison
        self._queue: list[tuple[int, int, datetime, SimAccount]] = []
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
        account.carried.done_steps = self._answers.missed(account.terms, policy, account.opened_at)
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
        heapq.heappush(self._queue, (_micros(at), self._seq, at, account))

    # ---- the clock ----------------------------------------------------------------------------
    def run(self, until: datetime) -> None:
        """Every wake up to ``until``, in time order (ties: in the order they were asked for)."""
        queue, last = self._queue, _micros(until)
        while queue and queue[0][0] <= last:
            _, _, at, account = heapq.heappop(queue)
            pending = account.money.pending
            signalled = (account.holds_due and account.holds_due[0].at <= at) or (
                pending and pending[0][0] <= at
            )
            if at != account.wake_at and not signalled:
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
        if a.money.pending and a.money.pending[0][0] <= now:
            apply_due(a, now, _profile(terms.profile))
            if a.ended is not None:
                return None  # paid in full: the run closed
        if a.money.plan is not None and self.debtors is not None:  # dunning waits while a plan runs
            nxt = plan_wake(self.debtors, a, now)
            if nxt is not None or a.ended is not None:
                return nxt  # broken: dunning resumes at once
        policy, profile = self.policy(terms.policy), _profile(terms.profile)
        while True:
            dpd = self._answers.dpd(terms, now)
            stage = policy.stage_for(dpd, terms.product)
            if stage != c.stage:
                c.stage = stage
                a.stages.append((now, stage))
            if stage == Stage.CHARGED_OFF:
                self._charge_off(a, now, policy)
                return now if a.notice_due is not None else None
            cut = now - KEEP_LEDGER
            if c.ledger and c.ledger[0].at < cut:  # in time order: the oldest first
                c.ledger = [e for e in c.ledger if e.at >= cut]
            if any(h.until is not None and h.until <= now for h in c.holds):
                c.holds = [h for h in c.holds if h.until is None or h.until > now]
            visit_wake = self._tend_visit(a, stage, dpd, now, policy, profile, arrange=False)
            action = self._answers.plan(a, policy, profile, now)
            if action.skipped:
                c.done_steps.extend(action.skipped)
            step = action.step
            wait_until = action.at
            if step is not None and (later := a.deferred.get(step.key)) is not None and later > now:
                wait_until = later
            if step is not None and wait_until <= now:
                self._do_step(a, step, stage, now, policy, profile)
                if a.ended is not None:
                    return None  # paid in full: the run closed
                if a.money.plan is not None:
                    return self._turn(a, now)  # a plan agreed: its instalments' days decide the wakes
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
            c.done_steps.append(step.key)
            a.deferred.pop(step.key, None)
            if (alt := self._fallback(a, step, policy)) is not None:
                self._do_step(a, alt, stage, now, policy, profile)
            return
        riding = self._fallback(a, step, policy) if went is None and step.channel == Channel.VOICE else None
        result = went or self._contact(a, step.key, step.channel, step.template, stage, now, profile, riding)
        if result.deferred_until is not None:
            return
        c.done_steps.append(step.key)
        a.deferred.pop(step.key, None)
        if result.outcome != ContactOutcome.DENIED:
            c.ledger.append(self._answers.entry(now, step.channel, result.outcome))
            contacts = c.last_contacts
            contacts.append(self._answers.record(now, step, result.outcome))
            if len(contacts) > KEEP_CONTACTS:
                del contacts[:-KEEP_CONTACTS]
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
            if self.debtors is not None:
                due = react(
                    self.debtors,
                    a,
                    channel,
                    answer.outcome,
                    now,
                    _profile(a.terms.profile),
                    self.act_at,
                )
                if due is not None:
                    self._wake(a, due, planned=False)
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
