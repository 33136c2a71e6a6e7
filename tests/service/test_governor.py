"""The abandoned-call governor: pure rules (with hypothesis), the database query, the operators' view."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session, sessionmaker

from domain.accounts import Channel, ContactOutcome
from domain.governor import (
    RULE_ALLOWED,
    RULE_RATE,
    RULE_REDIAL,
    CallFact,
    GovernorRules,
    campaign_allows,
    campaign_rate,
    decide_voice,
    rules_for_profile,
    voice_resumes_at,
    window_ok,
)
from domain.profiles import load_profile
from store.governor import campaign_report, voice_allowed, voice_verdict
from tests.service.conftest import OPS, new_account, random_phone, sent_attempt

T0 = datetime(2026, 11, 1, 14, 0, tzinfo=UTC)
RULES = GovernorRules()
C = ContactOutcome


def calls(*specs: tuple[int, ContactOutcome | None]) -> list[CallFact]:
    """(minutes after T0, outcome) → facts."""
    return [CallFact(at=T0 + timedelta(minutes=m), outcome=o) for m, o in specs]


def test_the_first_call_is_allowed_and_one_abandoned_call_needs_34_live_answers() -> None:
    assert campaign_allows([], T0, RULES)
    assert RULES.sample == 34
    one_silent = calls((0, C.SILENT))
    assert not campaign_allows(one_silent, T0 + timedelta(hours=1), RULES)
    # 1 silent + 65 conversations: a second abandoned call would be 2/67 = 2.99%: allowed
    history = one_silent + calls(*[(i + 1, C.CONVERSATION) for i in range(65)])
    assert campaign_allows(history, T0 + timedelta(hours=2), RULES)
    assert not campaign_allows(history[:-1], T0 + timedelta(hours=2), RULES)  # 2/66 = 3.03%


def test_voicemail_no_answer_and_busy_do_not_count() -> None:
    history = calls((0, C.SILENT)) + calls(*[(i + 1, C.VOICEMAIL) for i in range(200)])
    report = campaign_rate("c", history, T0 + timedelta(hours=5), RULES)
    assert (report.live_answered, report.abandoned, report.rate, report.paused) == (1, 1, 1.0, True)


def test_pending_calls_count_as_abandoned_until_they_settle() -> None:
    history = calls(*[(i, C.CONVERSATION) for i in range(40)]) + calls((41, None), (42, C.SENT))
    now = T0 + timedelta(hours=1)
    # worst case: 2 pending + this one all abandoned = 3 of 43 > 3%
    assert not campaign_allows(history, now, RULES)
    settled = history[:-2] + calls((41, C.CONVERSATION), (42, C.VOICEMAIL))
    assert campaign_allows(settled, now, RULES)  # 1 of 42 at worst: within 3% of max(42, 34)


def test_old_good_calls_ageing_out_first_is_seen_ahead() -> None:
    # 40 conversations 29 days ago, one silent call yesterday: fine today, but in two days the
    # conversations leave the window and the silent one stays: a call now must not be allowed
    old = calls(*[(i, C.CONVERSATION) for i in range(40)])
    recent = [CallFact(at=T0 + timedelta(days=28), outcome=C.SILENT)]
    now = T0 + timedelta(days=29)
    assert not campaign_allows(old + recent, now, RULES)


def test_the_window_is_rolling() -> None:
    history = calls((0, C.SILENT))
    assert not campaign_allows(history, T0 + timedelta(days=29, hours=23), RULES)
    assert campaign_allows(history, T0 + timedelta(days=30, minutes=1), RULES)
    uk = rules_for_profile(0.03, 72, "UK")
    assert uk.window == timedelta(hours=24) and campaign_allows(history, T0 + timedelta(hours=25), uk)


def test_no_redial_within_72_hours_of_an_abandoned_call() -> None:
    verdict = decide_voice([], [T0], T0 + timedelta(hours=71, minutes=59), RULES)
    assert (verdict.allowed, verdict.rule, verdict.until) == (False, RULE_REDIAL, T0 + timedelta(hours=72))
    assert decide_voice([], [T0], T0 + timedelta(hours=72), RULES).allowed
    assert rules_for_profile(0.03, 24, "US").no_redial == timedelta(hours=72)  # never below 72 h


def test_profiles_give_their_rate_and_window() -> None:
    for name, window in (("US", timedelta(days=30)), ("UK", timedelta(hours=24)), ("CN", timedelta(days=30))):
        p = load_profile(name)
        rules = rules_for_profile(
            p.max_abandoned_rate, p.no_redial_after_abandoned_hours, p.legal_jurisdiction
        )
        assert rules.max_rate == 0.03 and rules.window == window and rules.no_redial >= timedelta(hours=72)


# ---- properties ---------------------------------------------------------------------------------
OUTCOMES = st.sampled_from([C.CONVERSATION, C.SILENT, C.VOICEMAIL, C.NO_ANSWER, C.BUSY, C.SILENT, C.SILENT])


@settings(max_examples=150, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=24 * 60),  # minutes until the dialler asks again
            st.integers(min_value=0, max_value=5),  # which number it wants to call
            OUTCOMES,  # what happens if it does (adversarial: silent is likely)
            st.integers(min_value=0, max_value=3),  # asks later until the outcome is known
        ),
        min_size=1,
        max_size=120,
    ),
    uk=st.booleans(),
)
def test_following_the_governor_never_breaks_the_rate_or_the_72_hours(
    steps: list[tuple[int, int, ContactOutcome, int]], uk: bool
) -> None:
    rules = rules_for_profile(0.03, 72, "UK" if uk else "US")
    now = T0
    placed: list[tuple[datetime, int, ContactOutcome, int]] = []  # (at, number, outcome, known from step)
    allowed = 0
    for i, (gap, number, outcome, delay) in enumerate(steps):
        now += timedelta(minutes=gap)
        facts = [CallFact(at=at, outcome=o if i >= known else None) for at, _, o, known in placed]
        abandoned_at = [at for at, n, o, known in placed if n == number and o == C.SILENT and i >= known]
        pending_to_number = [at for at, n, _, known in placed if n == number and i < known]
        verdict = decide_voice(facts, abandoned_at + pending_to_number, now, rules)
        if verdict.allowed:
            allowed += 1
            placed.append((now, number, outcome, i + delay))
    assert allowed >= 1  # the first call is always allowed: the governor is not "never call"
    final = [CallFact(at=at, outcome=o) for at, _, o, _ in placed]
    # every window that matters: ending at each call and just after each call ages out
    ends = [f.at for f in final] + [f.at + rules.window for f in final]
    for end in ends:
        assert window_ok(final, end, rules), end
        live = sum(1 for f in final if end - rules.window < f.at <= end and f.live)
        gone = sum(1 for f in final if end - rules.window < f.at <= end and f.abandoned)
        if live >= rules.sample:
            assert gone / live <= 0.03
        else:
            assert gone <= 1
    for j, (at, number, outcome, _) in enumerate(placed):
        if outcome == C.SILENT:
            for later_at, later_number, _, _ in placed[j + 1 :]:
                if later_number == number:
                    assert later_at - at >= timedelta(hours=72)


# ---- the database query and the operators' endpoint ---------------------------------------------
def test_voice_allowed_reads_the_campaign_and_the_number(sessions: sessionmaker[Session]) -> None:
    campaign = f"gov-{uuid.uuid4().hex[:8]}"
    phone = random_phone()
    account = new_account(sessions, phone, policy=campaign)
    other = new_account(sessions, random_phone(), policy=campaign)
    now = T0 + timedelta(days=1)
    with sessions.begin() as s:
        assert voice_allowed(s, campaign, phone, now) == (True, RULE_ALLOWED)
    sent_attempt(sessions, other, Channel.VOICE, at=T0, outcome=C.SILENT.value)
    with sessions.begin() as s:
        # the other account's silent call pauses the campaign; this number was not called
        assert voice_allowed(s, campaign, phone, now) == (False, RULE_RATE)
        # ...but another campaign is untouched
        assert voice_allowed(s, f"{campaign}-b", phone, now) == (True, RULE_ALLOWED)
    sent_attempt(sessions, account, Channel.VOICE, at=T0, outcome=C.SILENT.value)
    with sessions.begin() as s:
        verdict = voice_verdict(s, f"{campaign}-b", phone, now)  # any campaign: the number is blocked
        assert verdict.rule == RULE_REDIAL and verdict.until is not None and verdict.until > now
        report = campaign_report(s, campaign, now)
    assert (report.live_answered, report.abandoned, report.paused) == (2, 2, True)


def test_sms_and_denied_attempts_do_not_count(sessions: sessionmaker[Session]) -> None:
    campaign = f"gov-{uuid.uuid4().hex[:8]}"
    account = new_account(sessions, random_phone(), policy=campaign)
    sent_attempt(sessions, account, Channel.SMS, at=T0, outcome=C.DELIVERED.value)
    with sessions.begin() as s:
        report = campaign_report(s, campaign, T0 + timedelta(hours=1))
    assert (report.live_answered, report.abandoned, report.pending, report.paused) == (0, 0, 0, False)


async def test_operators_see_the_rate(http: httpx.AsyncClient, sessions: sessionmaker[Session]) -> None:
    campaign = f"gov-{uuid.uuid4().hex[:8]}"
    account = new_account(sessions, random_phone(), policy=campaign)
    recent = datetime.now(UTC) - timedelta(hours=1)
    for _ in range(3):
        sent_attempt(sessions, account, Channel.VOICE, at=recent, outcome=C.CONVERSATION.value)
    sent_attempt(sessions, account, Channel.VOICE, at=recent, outcome=C.SILENT.value)
    response = await http.get("/ops/governor", params={"campaign": campaign}, headers=OPS)
    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in ("campaign", "live_answered", "abandoned", "rate", "paused")} == {
        "campaign": campaign,
        "live_answered": 4,
        "abandoned": 1,
        "rate": 0.25,
        "paused": True,
    }
    listing = (await http.get("/ops/governor", headers=OPS)).json()
    assert campaign in [r["campaign"] for r in listing]


# ---- when a rate pause ends -----------------------------------------------------------------------
def test_a_pause_ends_when_the_silent_call_leaves_the_window() -> None:
    history = calls((0, C.SILENT))
    now = T0 + timedelta(hours=1)
    until = voice_resumes_at(history, now, RULES)
    assert until is not None and T0 + timedelta(days=29, hours=23) < until <= T0 + timedelta(
        days=30, minutes=1
    )
    assert campaign_allows(history, until, RULES)
    assert not campaign_allows(history, until - timedelta(seconds=1), RULES)
    assert voice_resumes_at([], now, RULES) == now  # not paused: allowed now
    report = campaign_rate("c", history, now, RULES)
    assert report.paused and report.paused_until == until
    verdict = decide_voice(history, [], now, RULES)
    assert (verdict.allowed, verdict.rule, verdict.paused_until) == (False, RULE_RATE, until)


@settings(max_examples=200, deadline=None)
@given(
    specs=st.lists(
        st.tuples(st.integers(min_value=0, max_value=60 * 24 * 40), st.one_of(st.none(), OUTCOMES)),
        max_size=60,
    ),
    after=st.integers(min_value=0, max_value=60 * 24 * 45),
    uk=st.booleans(),
)
def test_the_pause_ends_at_the_first_instant_a_call_is_allowed(
    specs: list[tuple[int, ContactOutcome | None]], after: int, uk: bool
) -> None:
    """Brute force: with no new calls the verdict can only change when a call ages out, so the first
    such instant the governor allows is when the pause ends (and never a moment earlier)."""
    rules = rules_for_profile(0.03, 72, "UK" if uk else "US")
    history = calls(*specs)
    now = T0 + timedelta(minutes=after)
    until = voice_resumes_at(history, now, rules)
    if campaign_allows(history, now, rules):
        assert until == now
        return
    candidates = sorted({c.at + rules.window for c in history if c.at + rules.window > now})
    expected = next((t for t in candidates if campaign_allows(history, t, rules)), None)
    assert until == expected
    if until is not None:
        assert not campaign_allows(history, until - timedelta(seconds=1), rules)
