"""What the lab keeps per simulated account, and what it records of each attempt.

An account is what ``DelinquencyWorkflow`` keeps (its terms and its :class:`Carried` state) plus what
the database would hold for the send activity's live check (every attempt that reached the carrier).
The engine (:mod:`lab.engine`) moves it; the report (:mod:`lab.report`) reads ``sent`` and ``refused``.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache

from domain.accounts import AccountTerms, Carried, Channel, ContactOutcome, LedgerEntry, Stage
from domain.clock import PolicyClock
from domain.gate import Purpose
from domain.governor import GovernorRules, rules_for_profile
from domain.policy import Policy, load_policy
from domain.profiles import Profile, load_profile
from lab.memo import terms_key
from lab.reactions import Money

#: the workflow keeps this much of its ledger (workflows/base.py KEEP_LEDGER_DAYS) and of its contacts
KEEP_LEDGER = timedelta(days=8)
KEEP_CONTACTS = 12
#: the live check reads the attempts of the last 8 days (activities/contact_checks.py)
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
class Visit:
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
    live: list[LedgerEntry] = field(default_factory=list)  # accepted attempts the live check may still read
    deferred: dict[str, datetime] = field(default_factory=dict)
    voice_paused_until: datetime | None = None
    sent: list[Sent] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    stages: list[tuple[datetime, Stage]] = field(default_factory=list)
    ended: str | None = None  # "charged_off", "placed", "paid", "settled"
    ended_at: datetime | None = None
    visit: Visit | None = None
    holds_due: list[HoldChange] = field(default_factory=list)
    wake_at: datetime | None = None
    notice_due: datetime | None = None  # the placement notice, until it went or was given up
    terms_key: tuple[Hashable, ...] = field(init=False, repr=False)
    money: Money = field(init=False)  # what the debtor paid, planned, complained (lab/reactions.py)

    def __post_init__(self) -> None:
        self.terms_key = terms_key(self.terms)
        self.carried = Carried(clock=PolicyClock(epoch=self.opened_at), balance=self.terms.balance)
        self.money = Money(opening=self.terms.balance)


@lru_cache(maxsize=64)
def cached_policy(name: str) -> Policy:
    return load_policy(name)


@lru_cache(maxsize=64)
def cached_profile(name: str) -> Profile:
    return load_profile(name)


@lru_cache(maxsize=64)
def governor_rules(profile: str) -> GovernorRules:
    p = cached_profile(profile)
    return rules_for_profile(p.max_abandoned_rate, p.no_redial_after_abandoned_hours, p.legal_jurisdiction)


@dataclass(frozen=True, slots=True)
class SendResult:
    """What one send came to: its outcome, the rule that refused or put it off, and a fallback's."""

    outcome: ContactOutcome
    rule: str | None = None
    deferred_until: datetime | None = None
    voice_paused_until: datetime | None = None
    fallback: SendResult | None = None

    def with_fallback(self, fb: SendResult) -> SendResult:
        return SendResult(self.outcome, self.rule, self.deferred_until, self.voice_paused_until, fb)


def live_ledger(a: SimAccount, now: datetime) -> list[LedgerEntry]:
    """What the live check reads: the attempts of the last :data:`LIVE_LEDGER`.

    The clock only moves forward, so what has left the window is dropped from ``a.live`` for good
    (attempts are added in time order: the oldest are at the front). Read it, do not keep it."""
    cut = now - LIVE_LEDGER
    live = a.live
    if live and live[0].at < cut:
        live = a.live = [e for e in live if e.at >= cut]
    return live
