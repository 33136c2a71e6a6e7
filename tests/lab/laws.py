"""The laws a run is checked against, read from what was sent (audit lines or the lab's sends).

Written independently of the gate on purpose: a check that called ``domain.gate.decide`` would
agree with any bug in it. Calendar windows are counted per local day in each of the debtor's zones,
as the profiles count ("3 texts a week": any 7 consecutive local calendar days).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from domain.profiles import Profile


def most_in_window(at: Sequence[datetime], days: int, zones: Sequence[str]) -> int:
    """The most items in any ``days`` consecutive local calendar days, in the worst of the zones."""
    best = 0
    for zone in zones:
        dates = sorted(t.astimezone(ZoneInfo(zone)).date() for t in at)
        for d in dates:
            best = max(best, sum(1 for x in dates if d - timedelta(days=days - 1) <= x <= d))
    return best


def caps_kept(dunning: Sequence[tuple[datetime, str]], profile: Profile, zones: Sequence[str]) -> list[str]:
    """The frequency caps a debt's dunning contacts (instant, "sms" or "voice") break; [] if none."""
    calls = [at for at, channel in dunning if channel == "voice"]
    texts = [at for at, channel in dunning if channel == "sms"]
    broken: list[str] = []
    if profile.max_call_attempts_per_7_days is not None:
        if (n := most_in_window(calls, 7, zones)) > profile.max_call_attempts_per_7_days:
            broken.append(f"{n} calls in 7 days")
    if (n := most_in_window(texts, 7, zones)) > profile.max_sms_per_7_days:
        broken.append(f"{n} texts in 7 days")
    if (n := most_in_window(texts, 1, zones)) > profile.max_sms_per_day:
        broken.append(f"{n} texts in a day")
    return broken


def quiet_hours_broken(at: Sequence[datetime], profile: Profile, zones: Sequence[str]) -> list[datetime]:
    """The contacts outside the profile's hours in any of the debtor's possible zones."""
    return [
        t
        for t in at
        for zone in zones
        if not profile.contact_start <= t.astimezone(ZoneInfo(zone)).time() < profile.contact_end
    ]
