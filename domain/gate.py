"""The contact gate: may this contact go out now, later, or never?

One pure function, :func:`decide`, called in two places on purpose: by the workflow when it plans
(so timers wake at lawful moments and the timeline it shows is honest) and by the send activity a
moment before the provider call, against the live state in the database (so a hold or a settlement
that landed a millisecond earlier still wins).

It runs inside Temporal workflows, so it is deterministic: no wall clock, no randomness, no I/O
beyond the tz database. Everything it needs arrives as arguments.

How the answer is found. Refusals that do not clear with time (mode, opt-out, unreachable, holds, a
cap of zero) give :class:`Deny`. Every other rule is a constraint of the form "not before R": a
frequency cap clears once its oldest counted contact leaves the window, a conversation's cool-off
ends on a given day, an abandoned call's 72 hours run out. The earliest lawful moment is therefore
the first convenient moment (in *every* zone the debtor may be in) at or after the latest of those
R's, found in one pass. Because all caps only ever relax as time passes, that moment is itself
allowed: a :class:`Defer` never names a time that :func:`decide` would refuse.

Calendar arithmetic ("7 consecutive days", "per day", "day of conversation = day 1") is done on
local dates in each of the debtor's zones, and the strictest zone wins. Instants are compared in
UTC only, so a DST change day (23 or 25 hours) never shifts a window by an hour.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Literal, NamedTuple
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator

from domain.accounts import Channel, ContactOutcome, Hold, HoldKind, LedgerEntry, Mode
from domain.profiles import Profile
from domain.zones import debtor_zones as debtor_zones
from domain.zones import zones_for_phone as zones_for_phone


class Purpose(StrEnum):
    DUNNING = "dunning"  # reminders and calls about the debt
    PLAN_REMINDER = "plan_reminder"  # courtesy reminder before an agreed instalment falls due
    RECEIPT = "receipt"  # payment received / account closed confirmation
    OPT_OUT_CONFIRMATION = "opt_out_confirmation"
    ACKNOWLEDGEMENT = "acknowledgement"  # complaint / dispute received


class Audience(StrEnum):
    """Whom a contact is for. A third party is the debtor's emergency contact, asked only for a way
    to reach the debtor (CN NIFA: only when the debtor is unreachable, never disclosing the debt;
    US Reg F 12 CFR 1006.10 location communications)."""

    DEBTOR = "debtor"
    THIRD_PARTY = "third_party"


# Answers to something the debtor did: exempt from frequency caps and most holds (never from quiet hours).
TRANSACTIONAL = {Purpose.RECEIPT, Purpose.OPT_OUT_CONFIRMATION, Purpose.ACKNOWLEDGEMENT}

# How far ahead a common convenient window is looked for before the zones are declared irreconcilable.
HORIZON_DAYS = 8


class PlannedContact(BaseModel):
    model_config = ConfigDict(frozen=True)

    channel: Channel
    purpose: Purpose
    template: str
    at: datetime = Field(description="When the contact is meant to go out (policy time, aware)")
    live_agent: bool = Field(
        default=False,
        description="A live agent is guaranteed on answer (lifts the UK no-redial-after-abandoned rule only)",
    )
    audience: Audience = Field(default=Audience.DEBTOR, description="The debtor, or their emergency contact")

    @field_validator("at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("must be timezone-aware")
        return value


class GateState(BaseModel):
    """The parts of an account the gate looks at; built from workflow state or from the database."""

    model_config = ConfigDict(frozen=True)

    mode: Mode
    holds: list[Hold] = Field(default_factory=list)
    opted_out: list[Channel] = Field(default_factory=list)
    unreachable: list[Channel] = Field(default_factory=list)
    zones: list[str] = Field(min_length=1, description="Every time zone the debtor may be in")
    region: str | None = None
    third_party_zones: list[str] | None = Field(
        default=None,
        description="Zones of the emergency contact's number; None: the account has no emergency contact",
    )
    third_party_status: Literal["active", "unreachable", "opted_out"] = Field(
        default="active", description="Whether the emergency contact's number may still be used"
    )
    person_ledger: list[LedgerEntry] | None = Field(
        default=None,
        description=(
            "Every contact with this *person* across all their debts (this one's may be included or not). "
            "When given, caps also count per person, so many small debts cannot multiply calls. "
            "None: only this debt's ledger is known and caps count per debt."
        ),
    )


class Allow(BaseModel):
    model_config = ConfigDict(frozen=True)
    verdict: Literal["allow"] = "allow"
    rule: str = "ok"


class Defer(BaseModel):
    model_config = ConfigDict(frozen=True)
    verdict: Literal["defer"] = "defer"
    until: datetime
    rule: str


class Deny(BaseModel):
    model_config = ConfigDict(frozen=True)
    verdict: Literal["deny"] = "deny"
    rule: str


Verdict = Allow | Defer | Deny

#: every Allow is the same frozen value: built once, not at each of the gate's answers
_ALLOW = Allow()

# A hold of these kinds stops every contact, transactional ones included (attorney: talk to the attorney).
_TOTAL_HOLDS = {HoldKind.DECEASED, HoldKind.BANKRUPTCY, HoldKind.ATTORNEY}

# Ledger outcomes as the caps read them. DENIED means the gate refused: nothing was placed.
_NOT_AN_ATTEMPT = {ContactOutcome.DENIED}
# A telephone conversation (Reg F cool-off). INDETERMINATE: a crash left it unknown whether the call
# went out, let alone what happened; the strict reading assumes the worst.
_CONVERSATION = {ContactOutcome.CONVERSATION, ContactOutcome.INDETERMINATE}
# A connected call (CN daily cap): someone picked up, including a person who hung up at once.
_CONNECTED = {ContactOutcome.CONVERSATION, ContactOutcome.SILENT, ContactOutcome.INDETERMINATE}
# An abandoned call (Ofcom): answered and nobody spoke; AMD false positives are reported as SILENT too.
_ABANDONED = {ContactOutcome.SILENT}


# ---- zones ----------------------------------------------------------------------------------------
# Where the debtor may be is domain.zones; re-exported here, where the gate's callers look for it.


@lru_cache(maxsize=1024)
def _tz(zone: str) -> ZoneInfo:
    return ZoneInfo(zone)


def _utc(instant: datetime) -> datetime:
    """Aware instants to UTC; a naive one is taken as UTC (the store's convention) rather than crash."""
    if instant.tzinfo is None:
        return instant.replace(tzinfo=UTC)
    return instant.astimezone(UTC)


def _local_date(instant: datetime, zone: str) -> date:
    return instant.astimezone(_tz(zone)).date()


def _day_start(day: date, zone: str) -> datetime:
    """The instant (UTC) a local calendar day begins; after a midnight DST gap that is 01:00."""
    return datetime.combine(day, time(0), tzinfo=_tz(zone)).astimezone(UTC)


# ---- quiet hours --------------------------------------------------------------------------------
def _in_window(instant: datetime, zone: str, start: time, end: time) -> bool:
    local = instant.astimezone(_tz(zone)).time()
    return start <= local < end


def convenient_everywhere(instant: datetime, zones: Sequence[str], profile: Profile) -> bool:
    """Inside the profile's contact hours in every zone the debtor may be in (Reg F: all known locations)."""
    return all(
        _in_window(instant, z, profile.contact_start, profile.contact_end) for z in dict.fromkeys(zones)
    )


def _window_starts(after: datetime, zone: str, start: time, limit: datetime) -> Iterator[datetime]:
    """The local contact-start moments in ``zone`` later than ``after``, ascending, up to ``limit``."""
    day = _local_date(after, zone) - timedelta(days=1)
    while True:
        moment = datetime.combine(day, start, tzinfo=_tz(zone)).astimezone(UTC)
        if moment > limit:
            return
        if moment > after:
            yield moment
        day += timedelta(days=1)


def next_convenient(instant: datetime, zones: Sequence[str], profile: Profile) -> datetime | None:
    """The earliest moment at or after ``instant`` that is convenient in every zone (None if never).

    The convenient set is an intersection of daily windows [start, end) per zone, so its earliest
    point after an inconvenient ``instant`` is a window start in one of the zones: walk those in
    time order (all zones merged) and take the first that is convenient everywhere. Looks ahead
    :data:`HORIZON_DAYS`; zones whose windows never overlap give None.
    """
    if convenient_everywhere(instant, zones, profile):
        return instant
    after = _utc(instant)
    limit = after + timedelta(days=HORIZON_DAYS)
    unique = list(dict.fromkeys(zones))
    for candidate in heapq.merge(*(_window_starts(after, z, profile.contact_start, limit) for z in unique)):
        if convenient_everywhere(candidate, unique, profile):
            return candidate.astimezone(instant.tzinfo)
    return None


# ---- frequency caps -----------------------------------------------------------------------------
class _Seen(NamedTuple):
    at: datetime  # UTC
    channel: Channel
    outcome: ContactOutcome
    by: str


class _Block(NamedTuple):
    rule: str
    release: datetime | None  # not before this instant (UTC); None: never


def _counted(ledger: Sequence[LedgerEntry], person_ledger: Sequence[LedgerEntry] | None) -> list[_Seen]:
    """The contacts the caps count, oldest first.

    Per debt by default. With a person ledger, the multiset union of both: an entry in both lists is
    counted once (max of its multiplicities), one in either is counted, so the caller may pass the
    person's other debts only or all of them. Attempts of every ``by`` (lender, each agency) count.
    """
    seen = [_Seen(_utc(e.at), e.channel, e.outcome, e.by) for e in ledger if e.outcome not in _NOT_AN_ATTEMPT]
    if person_ledger is None:
        # the caps read only the times of the sorted contacts (and each kind's own, in order), so
        # this sort gives them what the multiset's would: no Counter for the common case
        seen.sort(key=_at)
        return seen
    mine = Counter(seen)
    mine |= Counter(
        _Seen(_utc(e.at), e.channel, e.outcome, e.by)
        for e in person_ledger
        if e.outcome not in _NOT_AN_ATTEMPT
    )
    return sorted(mine.elements(), key=_at)


def _at(seen: _Seen) -> datetime:
    return seen.at


def _rolling_cap(
    seen: Sequence[_Seen], cap: int | None, days: int, zones: Sequence[str], rule: str
) -> _Block | None:
    """At most ``cap`` contacts in any ``days`` consecutive local calendar days (today included).

    A new contact on local day D is blocked while the cap-th most recent contact falls on D-days+1
    or later, so it clears at the start of that contact's day + ``days``, in the latest zone.
    """
    if cap is None:
        return None
    if cap == 0:
        return _Block(rule, None)
    if len(seen) < cap:
        return None
    pivot = seen[-cap].at
    return _Block(rule, max(_day_start(_local_date(pivot, z) + timedelta(days=days), z) for z in zones))


def _blocks(
    contact: PlannedContact, seen: Sequence[_Seen], zones: Sequence[str], profile: Profile
) -> list[_Block]:
    """Every frequency rule that applies to ``contact``, with the instant from which it is satisfied."""
    out: list[_Block | None] = []
    if contact.channel == Channel.VOICE:
        calls = [s for s in seen if s.channel == Channel.VOICE]
        out.append(
            _rolling_cap(calls, profile.max_call_attempts_per_7_days, 7, zones, "cap.call_attempts_7_days")
        )
        cool_off = profile.min_days_after_conversation
        talks = [s for s in calls if s.outcome in _CONVERSATION]
        if cool_off and talks:
            # day of the conversation = day 1: with 7, days 1..7 are closed and day 8 opens at midnight
            last = talks[-1].at
            release = max(_day_start(_local_date(last, z) + timedelta(days=cool_off), z) for z in zones)
            out.append(_Block("cap.call_after_conversation", release))
        connected = [s for s in calls if s.outcome in _CONNECTED]
        out.append(
            _rolling_cap(
                connected, profile.max_connected_calls_per_day, 1, zones, "cap.connected_calls_per_day"
            )
        )
        abandoned = [s for s in calls if s.outcome in _ABANDONED]
        hours = profile.no_redial_after_abandoned_hours
        if hours and abandoned and not contact.live_agent:
            out.append(_Block("cap.redial_after_abandoned", abandoned[-1].at + timedelta(hours=hours)))
    else:
        texts = [s for s in seen if s.channel == Channel.SMS]
        out.append(_rolling_cap(texts, profile.max_sms_per_day, 1, zones, "cap.sms_per_day"))
        out.append(_rolling_cap(texts, profile.max_sms_per_7_days, 7, zones, "cap.sms_per_7_days"))
    out.append(
        _rolling_cap(seen, profile.max_communications_per_7_days, 7, zones, "cap.communications_7_days")
    )
    return [b for b in out if b is not None]


def _hold_applies(hold: Hold, contact: PlannedContact, now: datetime) -> bool:
    """A hold stops collection; an answer to the debtor (receipt, acknowledgement) only if it is total.

    A hold that has passed its ``until`` is over even if nobody has removed it yet: the live
    database may still list it, and refusing on its account would silently stop a lawful contact.
    """
    if hold.until is not None and _utc(hold.until) <= now:
        return False  # lifted by itself
    if hold.channel is not None and hold.channel != contact.channel:
        return False
    return hold.kind in _TOTAL_HOLDS or contact.purpose not in TRANSACTIONAL


def decide(
    contact: PlannedContact,
    state: GateState,
    ledger: Sequence[LedgerEntry],
    now: datetime,
    profile: Profile,
) -> Verdict:
    """Allow, Defer(until, rule) or Deny(rule) for one contact at ``now``.

    Order matters: permanent refusals first (they never clear by waiting), then holds, then the
    "not before" rules (schedule and caps) combined, then quiet hours, so a Defer always names a
    moment at which every rule is satisfied. ``Defer.until`` is in UTC and strictly after ``now``.
    Caps apply to every non-transactional contact (dunning and plan reminders), quiet hours to all.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    now_utc = _utc(now)
    profile = profile.for_region(state.region)
    purpose = contact.purpose
    if contact.audience == Audience.THIRD_PARTY:
        return _decide_third_party(contact, state, ledger, now_utc, profile)

    if state.mode == Mode.CLOSED and purpose not in TRANSACTIONAL:
        return Deny(rule="account.closed")
    if state.mode == Mode.SETTLEMENT and purpose == Purpose.DUNNING:
        return Deny(rule="settlement.no_dunning")
    if state.mode == Mode.DUNNING and purpose == Purpose.PLAN_REMINDER:
        return Deny(rule="plan.none_agreed")
    if contact.channel in state.opted_out and purpose != Purpose.OPT_OUT_CONFIRMATION:
        return Deny(rule=f"opt_out.{contact.channel.value}")
    if contact.channel in state.unreachable:
        return Deny(rule=f"unreachable.{contact.channel.value}")
    for hold in state.holds:
        if _hold_applies(hold, contact, now_utc):
            return Deny(rule=f"hold.{hold.kind.value}")

    zones = list(dict.fromkeys(state.zones))
    earliest = max(now_utc, _utc(contact.at))
    rule = "schedule" if earliest > now_utc else "quiet_hours"
    if purpose not in TRANSACTIONAL:
        blocks = _blocks(contact, _counted(ledger, state.person_ledger), zones, profile)
        for block in blocks:
            if block.release is None:
                return Deny(rule=block.rule)
        binding = max(blocks, key=lambda b: b.release or earliest, default=None)
        if binding is not None and binding.release is not None and binding.release > earliest:
            earliest, rule = binding.release, binding.rule
    return _first_lawful(earliest, rule, zones, profile, now_utc)


# ---- third parties (the debtor's emergency contact) ---------------------------------------------
def debtor_unreachable(state: GateState) -> bool:
    """Contact lost: no channel of the debtor is usable, and at least one failed for real.

    A debtor who merely opted out of every channel chose not to hear from us: writing to their
    emergency contact instead would go round that choice, so opt-outs alone never open this door.
    """
    usable = [c for c in Channel if c not in state.unreachable and c not in state.opted_out]
    return not usable and any(c in state.unreachable for c in Channel)


def _decide_third_party(
    contact: PlannedContact,
    state: GateState,
    ledger: Sequence[LedgerEntry],
    now_utc: datetime,
    profile: Profile,
) -> Verdict:
    """A location message to the emergency contact: the narrowest door the gate has.

    Only while the account is being collected and the debtor cannot be reached at all, only with a
    template that cannot disclose the debt (:func:`domain.templates.third_party_safe`), never under
    any hold (a cease, complaint, dispute or attorney hold stops asking others too), at most
    ``max_locate_per_7_days`` and ``max_locate_total`` messages (``ledger`` is the messages to this
    third party, all of them), and at convenient hours in *the third party's* zones.
    """
    from domain.templates import third_party_safe  # templates imports this module

    if state.mode == Mode.CLOSED:
        return Deny(rule="account.closed")
    if state.mode == Mode.SETTLEMENT:
        return Deny(rule="settlement.no_dunning")
    if contact.purpose != Purpose.DUNNING:
        return Deny(rule="third_party.purpose")
    if not third_party_safe(contact.template):
        return Deny(rule="third_party.template_discloses")
    if state.third_party_zones is None:
        return Deny(rule="third_party.none")
    if state.third_party_status != "active":
        return Deny(rule=f"third_party.{state.third_party_status}")
    if not debtor_unreachable(state):
        return Deny(rule="third_party.debtor_reachable")
    for hold in state.holds:
        if hold.until is None or _utc(hold.until) > now_utc:  # any hold, on any channel, of any kind
            return Deny(rule=f"hold.{hold.kind.value}")
    zones = list(dict.fromkeys(state.third_party_zones)) or ["UTC"]
    seen = _counted(ledger, None)
    if len(seen) >= profile.max_locate_total:
        return Deny(rule="third_party.cap_total")
    earliest = max(now_utc, _utc(contact.at))
    rule = "schedule" if earliest > now_utc else "quiet_hours"
    block = _rolling_cap(seen, profile.max_locate_per_7_days, 7, zones, "third_party.cap_7_days")
    if block is not None:
        if block.release is None:
            return Deny(rule=block.rule)
        if block.release > earliest:
            earliest, rule = block.release, block.rule
    return _first_lawful(earliest, rule, zones, profile, now_utc)


def _first_lawful(
    earliest: datetime, rule: str, zones: Sequence[str], profile: Profile, now_utc: datetime
) -> Verdict:
    """Allow now, or Defer to the first convenient moment at or after ``earliest`` (named by ``rule``)."""
    moment = next_convenient(earliest, zones, profile)
    if moment is None:
        return Deny(rule="quiet_hours.no_common_window")
    if moment <= now_utc:
        return _ALLOW
    return Defer(until=_utc(moment), rule=rule)
