"""The domain's pure answers, asked once per distinct question at each instant of the lab's clock.

A synthetic portfolio holds many accounts in the same state at the same instant: due the same day in
the same zone, with numbers the carrier treats alike, they wake at the same lawful moments with the
same steps done and the same ledger. :func:`domain.cadence.next_action`, :func:`domain.gate.decide`
and :func:`domain.cadence.fallback_step` are pure functions of what the key below holds (the parts
of the terms and the carried state they read, the policy and profile objects, the instant), so the
answer for one such account is the answer for all of them, and the lab stays exactly what the
functions say. The keys list every input those functions read: adding a read to them means adding
it here (``tests/workflows/test_simulation.py`` and ``tests/lab`` would show a divergence).

The clock only moves forward, so the plans and verdicts of past instants are dropped when it moves:
memory stays at one instant's worth.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from domain.accounts import AccountTerms, Carried, Channel, ContactOutcome, ContactRecord, LedgerEntry, Mode
from domain.cadence import NextAction, Step, due_before, fallback_step, gate_state, next_action
from domain.gate import PlannedContact, Purpose, Verdict, decide
from domain.policy import Policy
from domain.profiles import Profile

if TYPE_CHECKING:
    from lab.state import SimAccount

#: fallbacks and intake's missed steps do not depend on the clock; past this many they are dropped all the same
MAX_FALLBACKS = 100_000


def terms_key(terms: AccountTerms) -> tuple[Hashable, ...]:
    """What of the terms ``next_action`` and the gate read: product, due date, zones, region."""
    return (terms.product, terms.due_date, tuple(terms.zones), terms.region)


class Answers:
    """Memoised ``next_action``, gate verdicts and fallbacks for one portfolio (one set of policies)."""

    def __init__(self) -> None:
        self._at: datetime | None = None
        self._plans: dict[tuple[Hashable, ...], NextAction] = {}
        self._verdicts: dict[tuple[Hashable, ...], Verdict] = {}
        self._fallbacks: dict[tuple[Hashable, ...], Step | None] = {}
        self._entries: dict[tuple[Hashable, ...], LedgerEntry] = {}
        self._locals: dict[str, datetime] = {}
        self._records: dict[tuple[Hashable, ...], ContactRecord] = {}
        self._missed: dict[tuple[Hashable, ...], tuple[str, ...]] = {}

    def _tick(self, now: datetime) -> None:
        if now != self._at:
            self._plans.clear()
            self._verdicts.clear()
            self._entries.clear()
            self._records.clear()
            self._locals.clear()
            self._at = now

    def entry(self, now: datetime, channel: Channel, outcome: ContactOutcome) -> LedgerEntry:
        """One ledger line, shared by every account that made the same attempt at this instant
        (an equal value: sharing it only spares building and comparing copies in the keys above)."""
        self._tick(now)
        key = (now.tzinfo, channel, outcome)
        found = self._entries.get(key)
        if found is None:
            found = self._entries[key] = LedgerEntry(at=now, channel=channel, outcome=outcome)
        return found

    def local(self, now: datetime, zone: str) -> datetime:
        """``now`` in ``zone`` (what ``dpd_at`` and a debtor's hour read), once per zone per instant."""
        self._tick(now)
        found = self._locals.get(zone)
        if found is None:
            found = self._locals[zone] = now.astimezone(_zone(zone))
        return found

    def dpd(self, terms: AccountTerms, now: datetime) -> int:
        """``dpd_at(now, terms)``: the calendar days past due in the home zone."""
        return (self.local(now, terms.zones[0]).date() - terms.due_date).days

    def record(self, now: datetime, step: Step, outcome: ContactOutcome) -> ContactRecord:
        """The line ``last_contacts`` keeps of a step's send, shared like :meth:`entry`'s (frozen)."""
        self._tick(now)
        key = (now.tzinfo, step, outcome)
        found = self._records.get(key)
        if found is None:
            found = self._records[key] = ContactRecord(
                at=now, channel=step.channel, template=step.template, outcome=outcome, step=step.key
            )
        return found

    def plan(self, a: SimAccount, policy: Policy, profile: Profile, now: datetime) -> NextAction:
        """``next_action(..., stage_at_contact=True)`` on the account's terms and carried state."""
        self._tick(now)
        c = a.carried
        key = (
            now.tzinfo,  # an instant's zone shows in the answer's times: equal instants, same zone
            id(policy),
            id(profile),
            a.terms_key,
            tuple(c.done_steps),
            tuple(c.ledger),
            _gate_key(c),
            c.contact_lost,
        )
        found = self._plans.get(key)
        if found is None:
            found = self._plans[key] = next_action(a.terms, c, policy, profile, now, stage_at_contact=True)
        return found

    def verdict(
        self,
        a: SimAccount,
        channel: Channel,
        purpose: Purpose,
        template: str,
        mode: Mode,
        ledger: Sequence[LedgerEntry],
        now: datetime,
        profile: Profile,
    ) -> Verdict:
        """The contact gate on the account, with the run's ledger or the live one (the send activity's)."""
        self._tick(now)
        c = a.carried
        key = (
            now.tzinfo,
            channel,
            purpose,
            template,
            mode,
            tuple(ledger),
            id(profile),
            a.terms_key,
            _gate_key(c),
        )
        found = self._verdicts.get(key)
        if found is None:
            contact = PlannedContact(channel=channel, purpose=purpose, template=template, at=now)
            found = decide(contact, gate_state(a.terms, c, mode), ledger, now, profile)
            self._verdicts[key] = found
        return found

    def missed(self, terms: AccountTerms, policy: Policy, at: datetime) -> list[str]:
        """``due_before``: it reads the product, the due date, the home zone, the policy and the instant
        (a portfolio's accounts are taken in at a handful of instants, with a few dozen due dates)."""
        key = (id(policy), terms.product, terms.due_date, terms.zones[0], at)
        found = self._missed.get(key)
        if found is None:
            if len(self._missed) >= MAX_FALLBACKS:
                self._missed.clear()
            found = self._missed[key] = tuple(due_before(terms, policy, at))
        return list(found)

    def fallback(self, a: SimAccount, step: Step, policy: Policy) -> Step | None:
        """``fallback_step``: it reads the usable channels and which fallbacks of the step were done."""
        c = a.carried
        keys = _FALLBACK_KEYS.get(step.key)
        if keys is None:
            if len(_FALLBACK_KEYS) >= MAX_FALLBACKS:
                _FALLBACK_KEYS.clear()
            keys = _FALLBACK_KEYS[step.key] = tuple(f"{step.key}>fallback:{ch.value}" for ch in Channel)
        done_steps = c.done_steps
        done = tuple(k in done_steps for k in keys)
        key = (id(policy), a.terms.product, step, tuple(c.opted_out), tuple(c.unreachable), done)
        if key in self._fallbacks:
            return self._fallbacks[key]
        if len(self._fallbacks) >= MAX_FALLBACKS:
            self._fallbacks.clear()
        found = self._fallbacks[key] = fallback_step(policy, a.terms.product, step.channel, c, step)
        return found


#: a step's fallback keys, one per channel (``fallback_step`` names them so)
_FALLBACK_KEYS: dict[str, tuple[str, ...]] = {}


@lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _gate_key(c: Carried) -> tuple[Hashable, ...]:
    """What ``gate_state`` takes from the carried state (the terms' part is in ``terms_key``)."""
    return (tuple(c.holds), tuple(c.opted_out), tuple(c.unreachable))
