"""A deliberately naive second reading of the contact rules, to check the gate against.

Written from DOMAIN.md, not from domain/gate.py, and sharing none of its helpers: it answers only
"would a contact at instant T break a rule?" by brute force (count the entries, look at the clock in
every zone), where the gate has to compute *when* a rule clears. If both agree on every generated
case, the gate's cleverness (one-pass release times, merged window starts) has not cost correctness.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from domain.accounts import Channel, ContactOutcome, HoldKind, LedgerEntry, Mode
from domain.gate import GateState, PlannedContact, Purpose
from domain.profiles import Profile

ANSWERS = {Purpose.RECEIPT, Purpose.OPT_OUT_CONFIRMATION, Purpose.ACKNOWLEDGEMENT}
WHOLE_HOLDS = {HoldKind.DECEASED, HoldKind.BANKRUPTCY, HoldKind.ATTORNEY}


def local_day(t: datetime, zone: str):  # type: ignore[no-untyped-def]
    return t.astimezone(ZoneInfo(zone)).date()


def quiet_hours_broken(t: datetime, zones: Sequence[str], p: Profile) -> list[str]:
    """The zones in which ``t`` is outside contact hours."""
    out = []
    for zone in zones:
        clock = t.astimezone(ZoneInfo(zone)).time()
        if not (p.contact_start <= clock < p.contact_end):
            out.append(zone)
    return out


def counted(ledger: Sequence[LedgerEntry], person: Sequence[LedgerEntry] | None) -> list[LedgerEntry]:
    """This debt's entries plus the person's entries not already among them (an entry counts once)."""
    entries = [e for e in ledger if e.outcome != ContactOutcome.DENIED]
    if person is None:
        return entries
    unmatched = list(entries)
    extra = []
    for e in person:
        if e.outcome == ContactOutcome.DENIED:
            continue
        twin = next(
            (
                m
                for m in unmatched
                if (m.at, m.channel, m.outcome, m.by) == (e.at, e.channel, e.outcome, e.by)
            ),
            None,
        )
        if twin is not None:
            unmatched.remove(twin)
        else:
            extra.append(e)
    return entries + extra


def most_in_last_days(entries: Sequence[LedgerEntry], t: datetime, zones: Sequence[str], days: int) -> int:
    """Entries on the ``days`` local calendar days ending with t's day, in the zone where that is most."""
    best = 0
    for zone in zones:
        today = local_day(t, zone)
        best = max(best, sum(1 for e in entries if 0 <= (today - local_day(e.at, zone)).days < days))
    return best


def region_profile(p: Profile, region: str | None) -> dict[str, int | None]:
    caps: dict[str, int | None] = {
        "max_call_attempts_per_7_days": p.max_call_attempts_per_7_days,
        "min_days_after_conversation": p.min_days_after_conversation,
        "max_connected_calls_per_day": p.max_connected_calls_per_day,
        "max_sms_per_day": p.max_sms_per_day,
        "max_sms_per_7_days": p.max_sms_per_7_days,
        "max_communications_per_7_days": p.max_communications_per_7_days,
        "no_redial_after_abandoned_hours": p.no_redial_after_abandoned_hours,
    }
    if (region or "").upper() == "US-MA":  # 940 CMR 7.04(1)(f)
        mine = caps["max_communications_per_7_days"]
        caps["max_communications_per_7_days"] = 2 if mine is None else min(mine, 2)
    return caps


def broken_rules(
    contact: PlannedContact,
    state: GateState,
    ledger: Sequence[LedgerEntry],
    t: datetime,
    p: Profile,
) -> list[str]:
    """Every rule a contact sent at ``t`` would break (empty: lawful)."""
    out: list[str] = []
    purpose = contact.purpose
    if state.mode == Mode.CLOSED and purpose not in ANSWERS:
        out.append("closed")
    if state.mode == Mode.SETTLEMENT and purpose == Purpose.DUNNING:
        out.append("settlement")
    if state.mode == Mode.DUNNING and purpose == Purpose.PLAN_REMINDER:
        out.append("no plan")
    if contact.channel in state.opted_out and purpose != Purpose.OPT_OUT_CONFIRMATION:
        out.append("opted out")
    if contact.channel in state.unreachable:
        out.append("unreachable")
    for h in state.holds:
        active = h.until is None or h.until > t
        if (
            active
            and h.channel in (None, contact.channel)
            and (h.kind in WHOLE_HOLDS or purpose not in ANSWERS)
        ):
            out.append(f"hold {h.kind}")
    if t < contact.at:
        out.append("before schedule")
    if quiet_hours_broken(t, state.zones, p):
        out.append("quiet hours")
    if purpose in ANSWERS:
        return out

    caps = region_profile(p, state.region)
    everything = counted(ledger, state.person_ledger)
    calls = [e for e in everything if e.channel == Channel.VOICE]
    texts = [e for e in everything if e.channel == Channel.SMS]

    def over(cap: int | None, entries: list[LedgerEntry], days: int) -> bool:
        return cap is not None and most_in_last_days(entries, t, state.zones, days) + 1 > cap

    if contact.channel == Channel.VOICE:
        if over(caps["max_call_attempts_per_7_days"], calls, 7):
            out.append("7 call attempts in 7 days")
        n = caps["min_days_after_conversation"] or 0
        talked = [
            e for e in calls if e.outcome in (ContactOutcome.CONVERSATION, ContactOutcome.INDETERMINATE)
        ]
        for e in talked:
            for zone in state.zones:
                day_number = (local_day(t, zone) - local_day(e.at, zone)).days + 1  # conversation day = day 1
                if day_number <= n:
                    out.append(f"day {day_number} after a conversation")
        picked_up = [
            e
            for e in calls
            if e.outcome in (ContactOutcome.CONVERSATION, ContactOutcome.SILENT, ContactOutcome.INDETERMINATE)
        ]
        if over(caps["max_connected_calls_per_day"], picked_up, 1):
            out.append("connected calls per day")
        hours = caps["no_redial_after_abandoned_hours"] or 0
        if hours and not contact.live_agent:
            for e in calls:
                if e.outcome == ContactOutcome.SILENT and t - e.at < timedelta(hours=hours):
                    out.append("redial after an abandoned call")
    else:
        if over(caps["max_sms_per_day"], texts, 1):
            out.append("sms per day")
        if over(caps["max_sms_per_7_days"], texts, 7):
            out.append("sms per 7 days")
    if over(caps["max_communications_per_7_days"], everything, 7):
        out.append("communications per 7 days")
    return out
