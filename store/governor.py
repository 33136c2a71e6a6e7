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
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from domain.accounts import Channel, ContactOutcome
from domain.governor import (
    ABANDONED,
    CallFact,
    CampaignRate,
    GovernorRules,
    VoiceVerdict,
    campaign_rate,
    decide_voice,
)
from store.models import AccountRow, ContactAttempt

#: attempt states whose call may be (or is about to be) on the network
LIVE_STATES = ("accepted", "indeterminate", "reserved")


def _outcome(value: str | None) -> ContactOutcome | None:
    return ContactOutcome(value) if value else None


def campaign_calls(
    s: Session, campaign: str, since: datetime, *, exclude_key: str | None = None
) -> list[CallFact]:
    """The campaign's voice calls that went out (or may have) after ``since``, oldest first.

    ``exclude_key`` leaves out the caller's own reservation: the governor adds "one more call" itself.
    """
    when = func.coalesce(ContactAttempt.sent_at, ContactAttempt.created_at)
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


__all__ = [
    "abandoned_calls_to",
    "campaign_calls",
    "campaign_report",
    "campaigns",
    "voice_allowed",
    "voice_verdict",
]
