"""The governor's inputs read from ``contact_attempts``: a campaign's calls and a number's abandoned calls.

Why here and not in the workflow: the rate is a property of the whole campaign (every account's calls),
and the 72-hour rule of the *number* (several accounts may share one), so only the database sees
enough. The send activity calls :func:`voice_allowed` right before it places a call, inside the same
transaction discipline as the contact gate.

A *campaign* is the set of accounts collected under one policy file (``accounts.policy``: one
cadence, one dialling strategy). Until ``contact_attempts`` carries a campaign of its own, that is the
finest grouping the schema offers.

Which attempts count: voice attempts that may have gone out (``accepted``, ``indeterminate``) and
ones reserved right now (about to be placed: concurrent sends see each other, because the activity
commits its reservation before it asks). ``denied``, ``rejected`` and ``retryable`` never reached the
network. Times: when the call went out (``sent_at``), else when it was reserved.

**Policy time.** Those times are policy time (the send activity stamps them with
``max(planned_at, clock.policy_now(real now))``), and so must the "now" the windows end at, or under
the demo's day scaling (``--day-seconds``) a window of "24 hours" of the wall clock holds every call
of many policy days. The send activity has its account's clock and passes its policy now. Readers
without a workflow clock (``GET /ops/governor``, the metrics, the dashboard) use
:func:`campaign_now`: the later of the wall clock and the newest policy time the campaign's own
contact attempts carry (any channel, any state). Why that and not a setting: the policy clock is
each account's (``PolicyClock.epoch`` is fixed when its workflow starts, ``day_seconds`` comes with
intake), neither is in the database, and the service and the metrics run in other processes that
may not be told the demo's scaling; the attempts are what every process shares. In production
(real time) it is the wall clock. Under day scaling it is the campaign's clock as of its last
attempt: between attempts (policy nights, a quiet campaign) it stands still, so the figures are
those of the campaign's last activity, never of a window no real one had.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from domain.accounts import Channel, ContactOutcome
from domain.governor import (
    ABANDONED,
    UK_WINDOW,
    US_WINDOW,
    CallFact,
    CampaignRate,
    GovernorRules,
    VoiceVerdict,
    campaign_allows,
    campaign_rate,
    decide_voice,
    rules_for_profile,
    voice_resumes_at,
    window_counts,
)
from store.models import AccountRow, ContactAttempt

#: attempt states whose call may be (or is about to be) on the network
LIVE_STATES = ("accepted", "indeterminate", "reserved")
#: The two regulatory windows every report shows (Ofcom 24 h, FCC 30 days), as the metrics label them.
REPORT_WINDOWS: dict[str, timedelta] = {"24h": UK_WINDOW, "30d": US_WINDOW}
#: When an attempt happened in policy time: when it went out, else when it was reserved.
ATTEMPT_TIME = func.coalesce(ContactAttempt.sent_at, ContactAttempt.created_at)


def _outcome(value: str | None) -> ContactOutcome | None:
    return ContactOutcome(value) if value else None


def campaign_calls(
    s: Session, campaign: str, since: datetime, *, exclude_key: str | None = None
) -> list[CallFact]:
    """The campaign's voice calls that went out (or may have) after ``since``, oldest first.

    ``exclude_key`` leaves out the caller's own reservation: the governor adds "one more call" itself.
    """
    when = ATTEMPT_TIME
    stmt = (
        select(when, ContactAttempt.outcome, ContactAttempt.dedupe_key)
        .join(AccountRow, AccountRow.account_id == ContactAttempt.account_id)
        .where(
            AccountRow.policy == campaign,
            ContactAttempt.channel == Channel.VOICE.value,
            ContactAttempt.state.in_(LIVE_STATES),
            when > since,
        )
        .order_by(when, ContactAttempt.id)
    )
    rows = s.execute(stmt).all()
    return [
        CallFact(at=_aware(at), outcome=_outcome(outcome)) for at, outcome, key in rows if key != exclude_key
    ]


def campaign_clocks(s: Session, wall: datetime) -> dict[str, datetime]:
    """Every campaign's policy "now" (see the module's docstring): ``max(wall, newest attempt time)``.

    One ``GROUP BY`` over the attempts; a campaign without attempts is at the wall clock.
    """
    rows = s.execute(
        select(AccountRow.policy, func.max(ATTEMPT_TIME))
        .join(AccountRow, AccountRow.account_id == ContactAttempt.account_id)
        .group_by(AccountRow.policy)
    ).all()
    clocks = {name: wall for name in campaigns(s)}
    for name, latest in rows:
        clocks[name] = max(wall, _aware(latest)) if latest is not None else wall
    return clocks


def campaign_now(s: Session, campaign: str, wall: datetime) -> datetime:
    """The campaign's policy "now" for a reader without a workflow clock: the later of ``wall`` and the
    newest policy time its contact attempts carry (see the module's docstring)."""
    latest = s.scalar(
        select(func.max(ATTEMPT_TIME))
        .join(AccountRow, AccountRow.account_id == ContactAttempt.account_id)
        .where(AccountRow.policy == campaign)
    )
    return max(wall, _aware(latest)) if latest is not None else wall


def latest_attempt_at(s: Session) -> datetime | None:
    """The newest policy time any contact attempt carries (the portfolio's clock, for the dashboard)."""
    latest = s.scalar(select(func.max(ATTEMPT_TIME)))
    return _aware(latest) if latest is not None else None


def _aware(value: datetime) -> datetime:
    """``coalesce`` bypasses the column type on SQLite, so a naive UTC value can come back: make it aware."""
    if isinstance(value, str):  # SQLite returns text for an expression it cannot type
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def abandoned_calls_to(
    s: Session, phone: str, since: datetime, *, exclude_key: str | None = None
) -> list[datetime]:
    """When each abandoned call to ``phone`` happened, for any account or campaign, plus every call to
    it whose outcome is not known yet (it may turn out abandoned: never two calls in flight to one number).

    The time is the later of when it went out and when its row was last written: the abandonment
    happened in between, and the later instant can only make the 72 hours end later.
    """
    pending = ContactAttempt.state.in_(LIVE_STATES) & (
        ContactAttempt.outcome.is_(None)
        | ContactAttempt.outcome.in_([ContactOutcome.SENT.value, ContactOutcome.INDETERMINATE.value])
    )
    rows = s.execute(
        select(
            ContactAttempt.sent_at,
            ContactAttempt.created_at,
            ContactAttempt.updated_at,
            ContactAttempt.dedupe_key,
        ).where(
            ContactAttempt.to_address == phone,
            ContactAttempt.channel == Channel.VOICE.value,
            ContactAttempt.outcome.in_([o.value for o in ABANDONED]) | pending,
            ContactAttempt.updated_at > since,
        )
    ).all()
    return [
        max(t for t in (sent, created, updated) if t is not None)
        for sent, created, updated, key in rows
        if key != exclude_key
    ]


def voice_verdict(
    s: Session,
    campaign: str,
    phone: str,
    now: datetime,
    *,
    rules: GovernorRules | None = None,
    exclude_key: str | None = None,
) -> VoiceVerdict:
    """The full verdict (rule and, for a redial block, until when)."""
    rules = rules or GovernorRules()
    calls = campaign_calls(s, campaign, now - rules.window, exclude_key=exclude_key)
    abandoned = abandoned_calls_to(s, phone, now - rules.no_redial, exclude_key=exclude_key)
    return decide_voice(calls, abandoned, now, rules)


def voice_allowed(
    s: Session,
    campaign: str,
    phone: str,
    now: datetime,
    *,
    rules: GovernorRules | None = None,
    exclude_key: str | None = None,
) -> tuple[bool, str]:
    """``(allowed, rule)`` for one more call to ``phone`` in ``campaign`` at ``now``: what the send
    activity asks right before ``calls.create``. The rule names why (``governor.abandoned_rate``,
    ``governor.redial_after_abandoned``, or ``governor.allowed``)."""
    verdict = voice_verdict(s, campaign, phone, now, rules=rules, exclude_key=exclude_key)
    return verdict.allowed, verdict.rule


def campaign_report(
    s: Session, campaign: str, now: datetime, rules: GovernorRules | None = None
) -> CampaignRate:
    """The operator's view of one campaign (``GET /ops/governor``)."""
    rules = rules or GovernorRules()
    return campaign_rate(campaign, campaign_calls(s, campaign, now - rules.window), now, rules)


def campaigns(s: Session) -> list[str]:
    """Every campaign (policy) that has accounts, sorted."""
    return sorted(s.scalars(select(AccountRow.policy).distinct()).all())


def campaign_rules(s: Session, campaign: str) -> list[GovernorRules]:
    """The governor rules the campaign's calls are judged by: one set per profile version its open
    accounts run (a UK account's calls by the 24-hour window, a US one's by 30 days), as the send
    activity derives them. A campaign without open accounts: those of all its accounts, else the default.
    """
    from store.rules import profile as pinned_profile

    def pairs(open_only: bool) -> list[tuple[str, str | None]]:
        stmt = select(AccountRow.profile, AccountRow.profile_version).where(AccountRow.policy == campaign)
        if open_only:
            stmt = stmt.where(AccountRow.mode != "closed")
        found = {(name, version) for name, version in s.execute(stmt.distinct()).all()}
        return sorted(found, key=lambda p: (p[0], p[1] or ""))

    found: dict[GovernorRules, None] = {}
    for name, version in pairs(True) or pairs(False):
        p = pinned_profile(s, version, name)
        found[
            rules_for_profile(p.max_abandoned_rate, p.no_redial_after_abandoned_hours, p.legal_jurisdiction)
        ] = None
    return list(found) or [GovernorRules()]


def governor_report(s: Session, campaign: str, wall: datetime) -> CampaignRate:
    """What ``GET /ops/governor`` shows for one campaign, at the campaign's policy now (:func:`campaign_now`).

    The top-level counts and rate are those of the campaign's longest window (30 days unless all its
    accounts are UK); ``paused`` says whether one more call would be refused under the rules of any
    profile its accounts run, and ``paused_until`` when all of them are expected to allow calls
    again (None if one cannot say); ``windows`` has the counts over 24 hours and 30 days, as the
    metrics report them.
    """
    now = campaign_now(s, campaign, wall)
    rules = sorted(campaign_rules(s, campaign), key=lambda r: r.window, reverse=True)
    longest = max([r.window for r in rules] + list(REPORT_WINDOWS.values()))
    calls = campaign_calls(s, campaign, now - longest)
    report = campaign_rate(campaign, calls, now, rules[0])
    paused = [r for r in rules if not campaign_allows(calls, now, r)]
    resumes = [voice_resumes_at(calls, now, r) for r in paused]
    return report.model_copy(
        update={
            "paused": bool(paused),
            "paused_until": max(resumes) if paused and None not in resumes else None,  # type: ignore[type-var]
            "as_of": now,
            "windows": [window_counts(name, calls, now, span) for name, span in REPORT_WINDOWS.items()],
        }
    )


__all__ = [
    "REPORT_WINDOWS",
    "abandoned_calls_to",
    "campaign_calls",
    "campaign_clocks",
    "campaign_now",
    "campaign_report",
    "campaign_rules",
    "campaigns",
    "governor_report",
    "latest_attempt_at",
    "voice_allowed",
    "voice_verdict",
]
