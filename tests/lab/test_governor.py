"""The lab's running-sum governor says what the domain's governor says, call after call.

The lab asks :class:`lab.governor.CampaignCalls` instead of :func:`domain.governor.campaign_allows`
and :func:`~domain.governor.voice_resumes_at` so a big campaign is not rescanned at every call; a
run is only faithful if both give the same verdict and the same resume instant on every question.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.accounts import ContactOutcome
from domain.governor import (
    UK_WINDOW,
    US_WINDOW,
    CallFact,
    GovernorRules,
    campaign_allows,
    voice_resumes_at,
)
from lab.governor import CampaignCalls

START = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)
OUTCOMES = [
    ContactOutcome.CONVERSATION,
    ContactOutcome.SILENT,
    ContactOutcome.VOICEMAIL,
    ContactOutcome.NO_ANSWER,
    ContactOutcome.SENT,  # pending: counted as answered and abandoned
]

# (minutes since the last question, outcomes of the calls placed then): gaps of 0 ask twice at one instant
_steps = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=6 * 60),
        st.lists(st.sampled_from(OUTCOMES), max_size=4),
    ),
    min_size=1,
    max_size=120,
)
_rules = st.sampled_from(
    [
        GovernorRules(max_rate=0.03, window=US_WINDOW),
        GovernorRules(max_rate=0.03, window=UK_WINDOW),
        GovernorRules(max_rate=0.1, window=timedelta(hours=6)),
        GovernorRules(max_rate=0.25, window=timedelta(hours=3), min_sample=2),
        GovernorRules(max_rate=0.03, window=timedelta(hours=12), lookahead=False),
        GovernorRules(max_rate=0.0, window=UK_WINDOW),
    ]
)


@settings(max_examples=300, deadline=None)
@given(rules=_rules, steps=_steps)
def test_running_sums_agree_with_the_domain_governor(
    rules: GovernorRules, steps: list[tuple[int, list[ContactOutcome]]]
) -> None:
    judge = CampaignCalls(rules)
    calls: list[CallFact] = []
    now = START
    for gap, placed in steps:
        now += timedelta(minutes=gap)
        inside = [c for c in calls if c.at > now - rules.window]
        allowed = campaign_allows(inside, now, rules)
        paused, until = judge.paused_until(now)
        assert paused == (not allowed), now
        assert until == (None if allowed else voice_resumes_at(inside, now, rules)), now
        for outcome in placed:
            fact = CallFact(at=now, outcome=outcome)
            calls.append(fact)
            judge.add(fact)


def test_a_pause_is_remembered_until_voice_resumes() -> None:
    """Many accounts asking during one pause: the answer stays, and ends at the named instant."""
    rules = GovernorRules(max_rate=0.03, window=UK_WINDOW)
    judge = CampaignCalls(rules)
    for minute, outcome in enumerate([ContactOutcome.CONVERSATION] * 5 + [ContactOutcome.SILENT] * 2):
        judge.add(CallFact(at=START + timedelta(minutes=minute), outcome=outcome))
    asked = START + timedelta(hours=1)
    paused, until = judge.paused_until(asked)
    assert paused and until == voice_resumes_at(judge.calls, asked, rules)
    assert until is not None
    assert judge.paused_until(until - timedelta(seconds=1)) == (True, until)
    assert judge.paused_until(until) == (False, None)
    assert campaign_allows(judge.recent(until), until, rules)


def test_a_long_campaign_agrees_question_by_question() -> None:
    """Thousands of calls, windows full of them: the queue's ends move a long way, and still agree."""
    rng = random.Random(17)
    for rules in (GovernorRules(max_rate=0.03, window=UK_WINDOW), GovernorRules(max_rate=0.05)):
        judge = CampaignCalls(rules)
        calls: list[CallFact] = []
        now = START
        for _ in range(1_500):
            now += timedelta(minutes=rng.choice([0, 0, 1, 5, 30, 90]))
            inside = [c for c in calls if c.at > now - rules.window]
            allowed = campaign_allows(inside, now, rules)
            assert judge.paused_until(now) == (
                (False, None) if allowed else (True, voice_resumes_at(inside, now, rules))
            )
            if allowed or rng.random() < 0.3:  # a paused campaign still sees other profiles' calls
                outcome = rng.choices(OUTCOMES, weights=[40, 2, 30, 27, 1])[0]
                fact = CallFact(at=now, outcome=outcome)
                calls.append(fact)
                judge.add(fact)
