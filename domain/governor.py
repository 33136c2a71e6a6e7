"""The per-campaign abandoned/silent-call governor: pure rules, no I/O, no clock.

Why it exists: the gate in :mod:`domain.gate` protects *one account* (no redial of that account within
72 hours of its abandoned call). Regulators also look at the *dialler*: at most 3% of live-answered
calls of a campaign may be abandoned over a rolling window (FCC 47 CFR 64.1200(a)(7): 30 days; Ofcom:
24 hours), and a *number* that got an abandoned call must not be redialled within 72 hours, whichever
account or campaign the next call is about. Both need the whole campaign's calls, so they live here
and are fed from the database by :mod:`store.governor`.

Counting (as the FCC and Ofcom count):

* *live-answered*: a person picked up: outcomes ``conversation`` and ``silent``. Voicemail, no answer,
  busy and failed calls are not live-answered and do not move the rate.
* *abandoned*: ``silent``: answered and nobody heard a message (hung up at once, or AMD said
  ``unknown``; AMD false positives are reported the same way and count as abandoned).
* *pending*: a call that may have gone out and whose outcome is not known yet (in flight, or a crash
  left it indeterminate). The governor assumes the worst of it: answered *and* abandoned.

The guarantee. A rate over a handful of calls means nothing (one abandoned call among the first
ten is 10%, and no rule can avoid the first abandoned call except never calling). So the governor
keeps, for **every** rolling window, ``abandoned <= max_rate * max(live_answered, min_sample)`` with
``min_sample = ceil(1 / max_rate)`` (34 at 3%): below 34 live answers at most one abandoned call;
from 34 live answers on, the rate itself is at or under 3%. It does so by allowing a call only if,
were that call (and every pending one) abandoned, no window that will contain it breaks the bound,
including the windows of the coming days, when older good calls age out first. Calls that follow
its advice therefore can never push any window over, whatever the outcomes (tests/service/test_governor.py
checks this with hypothesis).

Time. Every instant here is *policy* time, the time the rules see (:mod:`domain.clock`): a call is
stamped with the policy time of its send (``contact_attempts.sent_at``), and the windows end at a
policy "now". Under the demo's day scaling a 24-hour window is therefore one policy day, not 24
hours of the wall clock. Who has no workflow clock (the HTTP service, the metrics) takes the
campaign's own clock from the database: :func:`store.governor.campaign_now`.

When a rate pause ends. With no new calls, the only thing that changes is older calls ageing out of
the window, so the pause ends at the first such instant at which one more call is allowed again
(:func:`voice_resumes_at`); pending calls still count as abandoned until they age out, so an outcome
that turns out better can only bring it forward.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction

from pydantic import BaseModel, ConfigDict, Field

from domain.accounts import ContactOutcome

#: A person picked up (the denominator of the abandoned-call rate).
LIVE_ANSWERED = frozenset({ContactOutcome.CONVERSATION, ContactOutcome.SILENT})
#: Answered and nobody heard a message: an abandoned call (the numerator).
ABANDONED = frozenset({ContactOutcome.SILENT})
RULE_ALLOWED = "governor.allowed"
RULE_RATE = "governor.abandoned_rate"
RULE_REDIAL = "governor.redial_after_abandoned"

US_WINDOW = timedelta(days=30)  # FCC: per calling campaign per 30-day period
UK_WINDOW = timedelta(hours=24)  # Ofcom: per campaign per 24 hours
NO_REDIAL_FLOOR = timedelta(hours=72)  # the product never redials sooner, whatever a profile says


class GovernorRules(BaseModel):
    """The governor's numbers; :func:`rules_for_profile` derives them from a jurisdiction profile."""

    model_config = ConfigDict(frozen=True)

    max_rate: float = Field(default=0.03, ge=0, le=1, description="Abandoned / live-answered, at most")
    window: timedelta = Field(default=US_WINDOW, description="Rolling window the rate is measured over")
    no_redial: timedelta = Field(default=NO_REDIAL_FLOOR, description="No call to a number this long after")
    min_sample: int | None = Field(
        default=None, ge=1, description="Live answers below which the bound is 'one abandoned call'"
    )
    lookahead: bool = Field(
        default=True,
        description=(
            "Also protect the windows of the coming days, when older good calls age out first (every "
            "rolling window stays within the bound). False: only the window ending now (the rate operators "
            "see), which lets more calls through after an abandoned one"
        ),
    )

    @property
    def limit(self) -> Fraction:
        """The rate as an exact fraction (0.03 → 3/100), so the comparison has no float edge cases."""
        return Fraction(str(self.max_rate))

    @property
    def sample(self) -> int:
        """``min_sample`` or ``ceil(1 / max_rate)``: the fewest live answers one abandoned call fits in."""
        if self.min_sample is not None:
            return self.min_sample
        return math.ceil(1 / self.limit) if self.limit > 0 else 1


def rules_for_profile(
    max_abandoned_rate: float, no_redial_after_abandoned_hours: int, jurisdiction: str
) -> GovernorRules:
    """Rules from a profile's numbers: its rate, its window (UK 24 h, else 30 days), redial >= 72 h."""
    return GovernorRules(
        max_rate=max_abandoned_rate,
        window=UK_WINDOW if jurisdiction.upper() in ("UK", "GB") else US_WINDOW,
        no_redial=max(NO_REDIAL_FLOOR, timedelta(hours=no_redial_after_abandoned_hours)),
    )


@dataclass(frozen=True, slots=True)
class CallFact:
    """One call of the campaign as the governor sees it: when, and what it counts as."""

    at: datetime
    outcome: ContactOutcome | None  # None or SENT/INDETERMINATE: not known yet (pending)

    @property
    def pending(self) -> bool:
        return self.outcome is None or self.outcome in (ContactOutcome.SENT, ContactOutcome.INDETERMINATE)

    @property
    def live(self) -> bool:
        return self.outcome in LIVE_ANSWERED

    @property
    def abandoned(self) -> bool:
        return self.outcome in ABANDONED


class WindowCounts(BaseModel):
    """One rolling window's counts, ending at the report's policy "now" (``as_of``)."""

    model_config = ConfigDict(frozen=True)

    window: str = Field(description="'24h' (Ofcom) or '30d' (FCC)")
    window_hours: float
    live_answered: int
    abandoned: int
    pending: int
    rate: float


class CampaignRate(BaseModel):
    """What an operator sees (``GET /ops/governor``): the window's counts, the rate, and the verdict."""

    model_config = ConfigDict(frozen=True)

    campaign: str
    live_answered: int
    abandoned: int
    pending: int
    rate: float
    max_rate: float
    window_hours: float
    paused: bool
    paused_until: datetime | None = Field(
        default=None,
        description=(
            "Paused: when one more call is expected to be allowed again, with no new calls (policy time); "
            "None while not paused, or when it cannot say"
        ),
    )
    as_of: datetime | None = Field(
        default=None, description="The policy instant the windows end at (the campaign's clock)"
    )
    windows: list[WindowCounts] = Field(
        default_factory=list, description="The counts over both regulatory windows (24 h and 30 days)"
    )


class VoiceVerdict(BaseModel):
    """May we place one more call? ``until`` is when a redial block ends (None for a rate pause);
    ``paused_until`` is when a rate pause is expected to end (:func:`voice_resumes_at`)."""

    model_config = ConfigDict(frozen=True)

    allowed: bool
    rule: str
    until: datetime | None = None
    paused_until: datetime | None = None


def _within(limit: Fraction, sample: int, abandoned: int, live: int) -> bool:
    """``abandoned <= limit * max(live, sample)``, exactly (in integers: a Fraction product per check
    made a rate pause's search slow for a big campaign; the denominator is positive)."""
    return abandoned * limit.denominator <= limit.numerator * max(live, sample)


def counts(calls: Iterable[CallFact], now: datetime, window: timedelta) -> tuple[int, int, int]:
    """(live-answered, abandoned, pending) among the calls in the window ending at ``now``."""
    live = abandoned = pending = 0
    start = now - window
    for c in calls:
        if c.at <= start:
            continue
        live += c.live
        abandoned += c.abandoned
        pending += c.pending
    return live, abandoned, pending


def campaign_allows(calls: Sequence[CallFact], now: datetime, rules: GovernorRules) -> bool:
    """True if one more call now cannot push any window that will contain it over the bound.

    The new call stays in every window ending in ``[now, now + window)``. Within that span the counts
    only change when an existing call ages out, so the windows to check are the one ending now and
    one just after each existing call leaves. In each, the new call and every pending call are
    assumed answered and abandoned. Calls later than ``now`` (a clock ahead of ours) are kept in
    every window: that can only make the answer more careful.
    """
    limit, sample = rules.limit, rules.sample
    inside = sorted((c for c in calls if c.at > now - rules.window), key=lambda c: c.at)
    live = sum(c.live for c in inside)
    abandoned = sum(c.abandoned for c in inside)
    pending = sum(c.pending for c in inside)
    # the window ending now, then one just after each call ages out (oldest first)
    if not _within(limit, sample, abandoned + pending + 1, live + pending + 1):
        return False
    if not rules.lookahead:
        return True
    for c in inside:
        if c.at >= now:
            break  # it stays inside every window the new call is in
        live -= c.live
        abandoned -= c.abandoned
        pending -= c.pending
        if not _within(limit, sample, abandoned + pending + 1, live + pending + 1):
            return False
    return True


def voice_resumes_at(calls: Sequence[CallFact], now: datetime, rules: GovernorRules) -> datetime | None:
    """When voice is expected to be allowed again: the earliest instant from ``now`` on at which, with
    no new calls, :func:`campaign_allows` says yes; ``now`` if it says yes already.

    With no new calls the verdict only changes when a call ages out of the window (at its time plus
    the window), so those instants are the candidates. Outcomes are taken as known now: a pending
    call still counts as abandoned until it ages out, so a better outcome can only bring the moment
    forward. None when no such instant exists (a rate of 0 never allows a call).

    Fast enough for a whole campaign (O(n log n) in its calls): ``campaign_allows`` at time ``t``
    checks the suffixes of the calls sorted by time starting at each index from the first call
    still inside the window (``lo``) to the first call not earlier than ``t`` (``hi``); each
    suffix's check is computed once, and a prefix count of the failing ones answers a candidate
    in O(1).
    """
    if campaign_allows(calls, now, rules):
        return now
    ordered = sorted(calls, key=lambda c: c.at)
    ats = [c.at for c in ordered]
    n = len(ordered)
    limit, sample = rules.limit, rules.sample
    # bad[j]: the check fails for the calls ordered[j:] plus one new call (every pending one abandoned)
    bad = [False] * (n + 1)
    live = abandoned = pending = 0
    for j in range(n, -1, -1):
        if j < n:
            live += ordered[j].live
            abandoned += ordered[j].abandoned
            pending += ordered[j].pending
        bad[j] = not _within(limit, sample, abandoned + pending + 1, live + pending + 1)
    failing = [0] * (n + 2)  # failing[k]: how many of bad[0:k] are True
    for j in range(n + 1):
        failing[j + 1] = failing[j] + bad[j]
    for t in sorted({c.at + rules.window for c in ordered if c.at + rules.window > now}):
        lo = bisect_right(ats, t - rules.window)  # the first call still inside the window ending at t
        hi = bisect_left(ats, t) if rules.lookahead else lo  # ... to the first one not before t
        if failing[hi + 1] - failing[lo] == 0:
            return t
    return None


def campaign_rate(
    campaign: str, calls: Sequence[CallFact], now: datetime, rules: GovernorRules
) -> CampaignRate:
    """The window's counts and rate, and whether the governor currently pauses voice (until when)."""
    live, abandoned, pending = counts(calls, now, rules.window)
    paused = not campaign_allows(calls, now, rules)
    return CampaignRate(
        campaign=campaign,
        live_answered=live,
        abandoned=abandoned,
        pending=pending,
        rate=round(abandoned / live, 6) if live else 0.0,
        max_rate=rules.max_rate,
        window_hours=rules.window.total_seconds() / 3600,
        paused=paused,
        paused_until=voice_resumes_at(calls, now, rules) if paused else None,
        as_of=now,
    )


def window_counts(name: str, calls: Sequence[CallFact], now: datetime, window: timedelta) -> WindowCounts:
    """The counts and rate of the window ``window`` ending at ``now`` (what the metrics report)."""
    live, abandoned, pending = counts(calls, now, window)
    return WindowCounts(
        window=name,
        window_hours=window.total_seconds() / 3600,
        live_answered=live,
        abandoned=abandoned,
        pending=pending,
        rate=round(abandoned / live, 6) if live else 0.0,
    )


def redial_blocked_until(
    abandoned_at: Iterable[datetime], now: datetime, rules: GovernorRules
) -> datetime | None:
    """When the number may be called again, or None if no abandoned call to it is recent enough."""
    ends = [at + rules.no_redial for at in abandoned_at if at + rules.no_redial > now]
    return max(ends) if ends else None


def decide_voice(
    campaign_calls: Sequence[CallFact],
    number_abandoned_at: Iterable[datetime],
    now: datetime,
    rules: GovernorRules,
) -> VoiceVerdict:
    """Voice allowed for this number in this campaign now? The number's 72 hours are checked first.

    ``number_abandoned_at``: when the number's abandoned calls happened, and (the store adds them) its
    calls still in flight, which may yet turn out abandoned.
    """
    until = redial_blocked_until(number_abandoned_at, now, rules)
    if until is not None:
        return VoiceVerdict(allowed=False, rule=RULE_REDIAL, until=until)
    if not campaign_allows(campaign_calls, now, rules):
        return VoiceVerdict(
            allowed=False, rule=RULE_RATE, paused_until=voice_resumes_at(campaign_calls, now, rules)
        )
    return VoiceVerdict(allowed=True, rule=RULE_ALLOWED)


def window_ok(calls: Sequence[CallFact], end: datetime, rules: GovernorRules) -> bool:
    """The bound holds for the window ending at ``end`` (used by tests and by operators' checks)."""
    live, abandoned, _ = counts([c for c in calls if c.at <= end], end, rules.window)
    return _within(rules.limit, rules.sample, abandoned, live)


__all__ = [
    "ABANDONED",
    "LIVE_ANSWERED",
    "RULE_ALLOWED",
    "RULE_RATE",
    "RULE_REDIAL",
    "CallFact",
    "CampaignRate",
    "GovernorRules",
    "VoiceVerdict",
    "WindowCounts",
    "campaign_allows",
    "campaign_rate",
    "counts",
    "decide_voice",
    "redial_blocked_until",
    "rules_for_profile",
    "voice_resumes_at",
    "window_counts",
    "window_ok",
]
