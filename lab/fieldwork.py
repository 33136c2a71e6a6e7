"""Field visits and the end of collection, as the workflows arrange them, for the lab's accounts.

``workflows/fieldvisits.py`` and ``workflows/visit.py`` arrange a visit when
:func:`domain.visits.eligibility` allows one, with an agency :func:`domain.agencies.choose` picks,
and announce it by text at a lawful hour at least a day before its window; ``workflows/delinquency.py``
charges off and places the account with an agency when the policy says so, and sends the letter
naming it once. :class:`FieldWork` is that part of :class:`lab.engine.Portfolio`, which it is mixed
into: it reads the portfolio's agencies and their load, and sends through the portfolio's
``_send`` and ``_deliver`` (the same gate, live check and carrier as every other message).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from domain.accounts import Channel, ContactOutcome, Mode, Stage
from domain.agencies import AgencyBook, Work, choose
from domain.gate import Allow, Defer, Purpose
from domain.policy import Policy
from domain.profiles import Profile
from domain.visits import eligibility, visit_slot
from lab.memo import Answers
from lab.state import (
    PLACEMENT_NOTICE_WAIT,
    VISIT_MIN_NOTICE,
    Refused,
    SendResult,
    SimAccount,
    Visit,
    cached_profile,
    live_ledger,
)

if TYPE_CHECKING:
    from domain.cadence import Step
    from lab.behaviour import Answer


class FieldWork:
    """Visits, charge-off and placement: the part of a portfolio that involves agencies."""

    agencies: AgencyBook | None
    _load: dict[Work, dict[str, int]]
    _answers: Answers

    if TYPE_CHECKING:  # provided by lab.engine.Portfolio

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
        ) -> SendResult: ...

        def _deliver(
            self,
            a: SimAccount,
            key: str,
            channel: Channel,
            template: str,
            purpose: Purpose,
            stage: Stage,
            now: datetime,
        ) -> Answer: ...

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
        a.visit = Visit(
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

    def _announce(self, a: SimAccount, v: Visit, now: datetime, profile: Profile) -> datetime | None:
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
        profile = cached_profile(a.terms.profile)
        sms, receipt, letter = Channel.SMS, Purpose.RECEIPT, "agency_placement"
        verdict = self._answers.verdict(a, sms, receipt, letter, Mode.CLOSED, a.carried.ledger, now, profile)
        if isinstance(verdict, Allow):
            verdict = self._answers.verdict(
                a, sms, receipt, letter, Mode.CLOSED, live_ledger(a, now), now, profile
            )
        if isinstance(verdict, Defer) and verdict.until <= a.notice_due:
            return verdict.until
        if isinstance(verdict, Allow):
            self._deliver(a, "placement", sms, letter, receipt, Stage.CHARGED_OFF, now)
        else:
            a.refused.append(Refused(now, Channel.SMS, "agency_placement", verdict.rule, "denied"))
        a.notice_due = None
        return None
