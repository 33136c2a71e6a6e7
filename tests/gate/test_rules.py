"""One readable example per contact rule: what the debtor experiences, in their own clock."""

from __future__ import annotations

import ast
import inspect
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

import domain.gate as gate_module
from domain.accounts import Channel, ContactOutcome, Hold, HoldKind, LedgerEntry, Mode
from domain.gate import (
    Allow,
    Defer,
    Deny,
    GateState,
    PlannedContact,
    Purpose,
    debtor_zones,
    decide,
    next_convenient,
    zones_for_phone,
)
from domain.profiles import Profile, load_profile

NY, LA, LONDON, SHANGHAI = "America/New_York", "America/Los_Angeles", "Europe/London", "Asia/Shanghai"
US, UK, CN = load_profile("US"), load_profile("UK"), load_profile("CN")


def local(zone: str, y: int, m: int, d: int, h: int = 10, mi: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=ZoneInfo(zone))


def state(*zones: str, mode: Mode = Mode.DUNNING, **kw: object) -> GateState:
    return GateState(mode=mode, zones=list(zones) or [NY], **kw)  # type: ignore[arg-type]


def call(at: datetime, outcome: ContactOutcome = ContactOutcome.NO_ANSWER, by: str = "lender") -> LedgerEntry:
    return LedgerEntry(at=at, channel=Channel.VOICE, outcome=outcome, by=by)


def text(at: datetime) -> LedgerEntry:
    return LedgerEntry(at=at, channel=Channel.SMS, outcome=ContactOutcome.DELIVERED)


def want(
    channel: Channel = Channel.VOICE,
    purpose: Purpose = Purpose.DUNNING,
    at: datetime | None = None,
    **kw: object,
) -> PlannedContact:
    return PlannedContact(
        channel=channel, purpose=purpose, template="t", at=at or datetime(2000, 1, 1, tzinfo=UTC), **kw
    )  # type: ignore[arg-type]


def check(
    contact: PlannedContact, st: GateState, ledger: list[LedgerEntry], now: datetime, profile: Profile
) -> Allow | Defer | Deny:
    """decide(), plus the promise every Defer makes: strictly later, and allowed when it comes."""
    verdict = decide(contact, st, ledger, now, profile)
    if isinstance(verdict, Defer):
        assert verdict.until > now
        assert verdict.until.tzinfo is not None and verdict.until.utcoffset() == timedelta(0)
        assert decide(contact, st, ledger, verdict.until, profile) == Allow()
    return verdict


def deferred_to(verdict: object, expected: datetime, rule: str | None = None) -> None:
    assert isinstance(verdict, Defer), verdict
    assert verdict.until == expected, (verdict.until.astimezone(expected.tzinfo), expected)
    if rule is not None:
        assert verdict.rule == rule


# ---- convenient hours ----------------------------------------------------------------------------
def test_2059_local_is_allowed_2100_is_deferred_to_0800_next_day() -> None:
    st = state(NY)
    assert check(want(Channel.SMS), st, [], local(NY, 2026, 10, 6, 20, 59), US) == Allow()
    verdict = check(want(Channel.SMS), st, [], local(NY, 2026, 10, 6, 21, 0), US)
    deferred_to(verdict, local(NY, 2026, 10, 7, 8, 0), "quiet_hours")


def test_0759_is_deferred_to_0800_the_same_day_and_0800_is_allowed() -> None:
    deferred_to(check(want(), state(NY), [], local(NY, 2026, 10, 6, 7, 59), US), local(NY, 2026, 10, 6, 8, 0))
    assert check(want(), state(NY), [], local(NY, 2026, 10, 6, 8, 0), US) == Allow()


@pytest.mark.parametrize(
    ("zone", "day_before", "change_day"),
    [
        (NY, (2026, 3, 7), (2026, 3, 8)),  # spring forward: 02:00 EST -> 03:00 EDT
        (NY, (2026, 10, 31), (2026, 11, 1)),  # fall back: 02:00 EDT -> 01:00 EST
        (LONDON, (2026, 3, 28), (2026, 3, 29)),  # 01:00 GMT -> 02:00 BST
        (LONDON, (2026, 10, 24), (2026, 10, 25)),  # 02:00 BST -> 01:00 GMT
    ],
)
def test_on_dst_change_days_the_evening_defer_lands_on_0800_local(
    zone: str, day_before: tuple[int, int, int], change_day: tuple[int, int, int]
) -> None:
    """21:30 the night before a clock change: the next 08:00 is 9½ h away in wall time, not in UTC."""
    profile = UK if zone == LONDON else US
    verdict = check(want(Channel.SMS), state(zone), [], local(zone, *day_before, 21, 30), profile)
    deferred_to(verdict, local(zone, *change_day, 8, 0), "quiet_hours")
    before = verdict.until - timedelta(seconds=1)  # type: ignore[union-attr]
    assert before.astimezone(ZoneInfo(zone)).hour == 7


def test_where_zones_conflict_the_time_must_suit_every_zone() -> None:
    """907 is Alaska: Anchorage and Adak (an hour behind). 08:00 Anchorage is 07:00 on Adak."""
    zones = debtor_zones(None, "+19075550100")
    assert sorted(zones) == ["America/Adak", "America/Anchorage"]
    st = state(*zones)
    anchorage = "America/Anchorage"
    deferred_to(
        check(want(), st, [], local(anchorage, 2026, 10, 6, 8, 0), US), local(anchorage, 2026, 10, 6, 9, 0)
    )
    assert check(want(), st, [], local(anchorage, 2026, 10, 6, 20, 59), US) == Allow()
    deferred_to(
        check(want(), st, [], local(anchorage, 2026, 10, 6, 21, 0), US), local(anchorage, 2026, 10, 7, 9, 0)
    )


def test_zones_without_a_common_window_are_denied() -> None:
    """UTC, Shanghai and Los Angeles: no hour of the day is between 08:00 and 21:00 in all three."""
    st = state("UTC", SHANGHAI, LA)
    assert check(want(Channel.SMS), st, [], local("UTC", 2026, 10, 6, 12), US) == Deny(
        rule="quiet_hours.no_common_window"
    )


def test_next_convenient_is_the_same_instant_when_already_convenient() -> None:
    t = local(NY, 2026, 10, 6, 12)
    assert next_convenient(t, [NY, LA], US) == t
    assert next_convenient(local(NY, 2026, 10, 6, 9), [NY, LA], US) == local(LA, 2026, 10, 6, 8)


def test_a_number_phonenumbers_cannot_place_gets_its_countrys_zones_not_utc() -> None:
    """UTC for a UK number would allow 21:30 BST in summer; for a US one, 03:00 in New York."""
    assert "Europe/London" in zones_for_phone("+447700900123")  # Ofcom drama range: not a valid number
    assert "UTC" not in zones_for_phone("+447700900123")
    us_unknown = zones_for_phone("+15555550100")
    assert NY in us_unknown and "Pacific/Honolulu" in us_unknown
    assert zones_for_phone("not a number") == ("UTC",)
    summer_evening = local(LONDON, 2026, 7, 1, 21, 30)  # 20:30 UTC
    assert isinstance(
        check(want(Channel.SMS), state(*zones_for_phone("+447700900123")), [], summer_evening, UK), Defer
    )


# ---- US Regulation F -----------------------------------------------------------------------------
def test_us_8th_call_attempt_in_7_days_is_deferred_to_the_day_the_oldest_leaves_the_window() -> None:
    calls = [call(local(NY, 2026, 10, d, 10)) for d in range(5, 12)]  # Mon 5 .. Sun 11: seven attempts
    now = local(NY, 2026, 10, 11, 15)
    deferred_to(
        check(want(), state(NY), calls, now, US), local(NY, 2026, 10, 12, 8), "cap.call_attempts_7_days"
    )
    # six attempts leave room for a seventh
    assert check(want(), state(NY), calls[1:], now, US) == Allow()


def test_us_seven_calls_on_monday_mean_no_call_until_the_next_monday() -> None:
    """The CFPB's own example: seven calls on a Monday; the 8th may not be placed before next Monday."""
    calls = [call(local(NY, 2026, 10, 5, 9 + i)) for i in range(7)]
    verdict = check(want(), state(NY), calls, local(NY, 2026, 10, 6, 10), US)
    deferred_to(verdict, local(NY, 2026, 10, 12, 8), "cap.call_attempts_7_days")


def test_us_call_on_day_7_after_a_conversation_is_deferred_to_day_8() -> None:
    talk = call(local(NY, 2026, 10, 5, 20, 50), ContactOutcome.CONVERSATION)  # Monday = day 1
    day7 = local(NY, 2026, 10, 11, 10)  # Sunday
    deferred_to(
        check(want(), state(NY), [talk], day7, US), local(NY, 2026, 10, 12, 8), "cap.call_after_conversation"
    )
    # calendar days, not 7 x 24 h: day 8 at 08:00 is sooner than 168 h after 20:50 on day 1
    assert check(want(), state(NY), [talk], local(NY, 2026, 10, 12, 8), US) == Allow()
    # a conversation does not stop texts
    assert check(want(Channel.SMS), state(NY), [talk], day7, US) == Allow()


def test_us_the_latest_conversation_starts_the_cool_off() -> None:
    talks = [
        call(local(NY, 2026, 10, 1, 10), ContactOutcome.CONVERSATION),
        call(local(NY, 2026, 10, 5, 10), ContactOutcome.CONVERSATION),  # an inbound-return call, say
    ]
    deferred_to(check(want(), state(NY), talks, local(NY, 2026, 10, 9, 10), US), local(NY, 2026, 10, 12, 8))


def test_us_conversation_cool_off_counts_local_days_across_the_autumn_clock_change() -> None:
    talk = call(local(NY, 2026, 10, 31, 12), ContactOutcome.CONVERSATION)  # Sat, EDT; clocks go back Sun
    verdict = check(want(), state(NY), [talk], local(NY, 2026, 11, 6, 20), US)  # Fri = day 7, EST
    deferred_to(verdict, local(NY, 2026, 11, 7, 8), "cap.call_after_conversation")
    assert verdict.until == datetime(2026, 11, 7, 13, tzinfo=UTC)  # type: ignore[union-attr]


def test_us_caps_read_days_in_the_strictest_zone() -> None:
    """A text sent 23:30 UTC fell on Oct 5 in New York but Oct 6 in Shanghai: Shanghai's day is full."""
    sent = text(datetime(2026, 10, 5, 23, 30, tzinfo=UTC))
    now = datetime(2026, 10, 6, 12, 30, tzinfo=UTC)  # 08:30 New York, 20:30 Shanghai
    assert check(want(Channel.SMS), state(NY), [sent], now, US) == Allow()
    verdict = check(want(Channel.SMS), state(NY, SHANGHAI), [sent], now, US)
    # Shanghai's next day begins at 00:00 UTC: 08:00 there, 20:00 in New York, convenient in both
    deferred_to(verdict, datetime(2026, 10, 7, 0, 0, tzinfo=UTC), "cap.sms_per_day")


def test_massachusetts_allows_two_communications_per_seven_days() -> None:
    ledger = [text(local(NY, 2026, 10, 5, 10)), call(local(NY, 2026, 10, 7, 10))]
    now = local(NY, 2026, 10, 8, 10)
    assert check(want(Channel.SMS), state(NY), ledger, now, US) == Allow()  # elsewhere in the US
    for region in ("US-MA", "us-ma"):
        verdict = check(want(Channel.SMS), state(NY, region=region), ledger, now, US)
        deferred_to(verdict, local(NY, 2026, 10, 12, 8), "cap.communications_7_days")


def test_massachusetts_limit_applies_even_if_a_profile_file_forgets_it() -> None:
    bare = US.model_copy(update={"region_overrides": {}})
    ledger = [text(local(NY, 2026, 10, 5, 10)), text(local(NY, 2026, 10, 7, 10))]
    assert isinstance(
        check(want(), state(NY, region="US-MA"), ledger, local(NY, 2026, 10, 8, 10), bare), Defer
    )


def test_per_person_caps_stop_many_small_debts_multiplying_calls() -> None:
    other_debts = [call(local(NY, 2026, 10, d, 11)) for d in range(5, 11)]  # six calls about other debts
    mine = [call(local(NY, 2026, 10, 10, 15))]
    now = local(NY, 2026, 10, 11, 10)
    assert check(want(), state(NY), mine, now, US) == Allow()  # per debt: 1 attempt
    per_person = state(NY, person_ledger=other_debts)
    deferred_to(
        check(want(), per_person, mine, now, US), local(NY, 2026, 10, 12, 8), "cap.call_attempts_7_days"
    )
    # the person ledger may repeat this debt's own entries: they are not counted twice
    assert check(want(), state(NY, person_ledger=other_debts[:5] + mine), mine, now, US) == Allow()


def test_a_cap_of_zero_is_a_deny_not_an_endless_defer() -> None:
    silent = US.model_copy(update={"max_sms_per_day": 0})
    assert check(want(Channel.SMS), state(NY), [], local(NY, 2026, 10, 6, 10), silent) == Deny(
        rule="cap.sms_per_day"
    )


def test_sms_caps_per_day_and_per_week() -> None:
    now = local(NY, 2026, 10, 9, 12)
    deferred_to(
        check(want(Channel.SMS), state(NY), [text(local(NY, 2026, 10, 9, 9))], now, US),
        local(NY, 2026, 10, 10, 8),
        "cap.sms_per_day",
    )
    week = [text(local(NY, 2026, 10, d, 10)) for d in (5, 6, 7, 8)]
    deferred_to(
        check(want(Channel.SMS), state(NY), week, now, US), local(NY, 2026, 10, 12, 8), "cap.sms_per_7_days"
    )


def test_denied_attempts_are_not_counted() -> None:
    denied = [LedgerEntry(at=local(NY, 2026, 10, 6, 9), channel=Channel.SMS, outcome=ContactOutcome.DENIED)]
    assert check(want(Channel.SMS), state(NY), denied, local(NY, 2026, 10, 6, 12), US) == Allow()


# ---- China ---------------------------------------------------------------------------------------
def test_cn_at_most_three_connected_calls_a_day_across_lender_and_agencies() -> None:
    ledger = [
        call(local(SHANGHAI, 2026, 10, 6, 9), ContactOutcome.CONVERSATION, by="lender"),
        call(local(SHANGHAI, 2026, 10, 6, 10), ContactOutcome.CONVERSATION, by="agency-a"),
        call(local(SHANGHAI, 2026, 10, 6, 11), ContactOutcome.NO_ANSWER, by="agency-b"),
    ]
    now = local(SHANGHAI, 2026, 10, 6, 14)
    assert check(want(), state(SHANGHAI), ledger, now, CN) == Allow()  # two connected, one not
    ledger.append(call(local(SHANGHAI, 2026, 10, 6, 12), ContactOutcome.CONVERSATION, by="agency-b"))
    deferred_to(
        check(want(), state(SHANGHAI), ledger, now, CN),
        local(SHANGHAI, 2026, 10, 7, 8),
        "cap.connected_calls_per_day",
    )


def test_cn_a_call_answered_and_hung_up_at_once_is_a_connected_call() -> None:
    ledger = [
        call(local(SHANGHAI, 2026, 10, 6, 9), ContactOutcome.CONVERSATION),
        call(local(SHANGHAI, 2026, 10, 6, 10), ContactOutcome.SILENT, by="agency-a"),
        call(local(SHANGHAI, 2026, 10, 6, 11), ContactOutcome.CONVERSATION, by="agency-b"),
    ]
    verdict = check(want(live_agent=True), state(SHANGHAI), ledger, local(SHANGHAI, 2026, 10, 6, 14), CN)
    deferred_to(verdict, local(SHANGHAI, 2026, 10, 7, 8), "cap.connected_calls_per_day")


def test_cn_evening_stop_is_the_stricter_2100() -> None:
    deferred_to(
        check(want(Channel.SMS), state(SHANGHAI), [], local(SHANGHAI, 2026, 10, 6, 21), CN),
        local(SHANGHAI, 2026, 10, 7, 8),
    )


# ---- UK Ofcom -------------------------------------------------------------------------------------
def test_uk_no_redial_within_72_hours_of_an_abandoned_call() -> None:
    abandoned = call(local(LONDON, 2026, 10, 5, 10), ContactOutcome.SILENT)
    now = local(LONDON, 2026, 10, 6, 10)
    deferred_to(
        check(want(), state(LONDON), [abandoned], now, UK),
        local(LONDON, 2026, 10, 8, 10),
        "cap.redial_after_abandoned",
    )
    assert check(want(live_agent=True), state(LONDON), [abandoned], now, UK) == Allow()
    assert check(want(Channel.SMS), state(LONDON), [abandoned], now, UK) == Allow()


def test_uk_72_hours_are_real_hours_across_the_spring_clock_change() -> None:
    abandoned = call(local(LONDON, 2026, 3, 28, 10), ContactOutcome.SILENT)  # GMT; BST from Sunday 01:00
    verdict = check(want(), state(LONDON), [abandoned], local(LONDON, 2026, 3, 30, 10), UK)
    deferred_to(verdict, datetime(2026, 3, 31, 10, tzinfo=UTC), "cap.redial_after_abandoned")  # 11:00 BST


# ---- modes, holds, channels ------------------------------------------------------------------------
NOON = local(NY, 2026, 10, 6, 12)


@pytest.mark.parametrize(
    ("mode", "purpose", "rule"),
    [
        (Mode.SETTLEMENT, Purpose.DUNNING, "settlement.no_dunning"),
        (Mode.CLOSED, Purpose.DUNNING, "account.closed"),
        (Mode.CLOSED, Purpose.PLAN_REMINDER, "account.closed"),
        (Mode.DUNNING, Purpose.PLAN_REMINDER, "plan.none_agreed"),
    ],
)
def test_modes_refuse_what_does_not_belong_to_them(mode: Mode, purpose: Purpose, rule: str) -> None:
    assert check(want(Channel.SMS, purpose), state(NY, mode=mode), [], NOON, US) == Deny(rule=rule)


def test_a_closed_account_still_gets_its_receipt_and_a_settled_one_its_plan_reminder() -> None:
    assert check(want(Channel.SMS, Purpose.RECEIPT), state(NY, mode=Mode.CLOSED), [], NOON, US) == Allow()
    assert (
        check(want(Channel.SMS, Purpose.PLAN_REMINDER), state(NY, mode=Mode.SETTLEMENT), [], NOON, US)
        == Allow()
    )


def test_holds_deny_collection_but_let_answers_through_unless_total() -> None:
    dispute = Hold(kind=HoldKind.DISPUTE, since=NOON - timedelta(days=1))
    assert check(want(), state(NY, holds=[dispute]), [], NOON, US) == Deny(rule="hold.dispute")
    ack = want(Channel.SMS, Purpose.ACKNOWLEDGEMENT)
    assert check(ack, state(NY, holds=[dispute]), [], NOON, US) == Allow()
    bankrupt = Hold(kind=HoldKind.BANKRUPTCY, since=NOON - timedelta(days=1))
    assert check(ack, state(NY, holds=[bankrupt]), [], NOON, US) == Deny(rule="hold.bankruptcy")


def test_a_hold_on_one_channel_or_one_that_has_lifted_does_not_deny() -> None:
    cease_calls = Hold(kind=HoldKind.CEASE, since=NOON - timedelta(days=1), channel=Channel.VOICE)
    assert check(want(Channel.SMS), state(NY, holds=[cease_calls]), [], NOON, US) == Allow()
    assert check(want(), state(NY, holds=[cease_calls]), [], NOON, US) == Deny(rule="hold.cease")
    lifted = Hold(kind=HoldKind.PAUSE, since=NOON - timedelta(days=3), until=NOON - timedelta(minutes=1))
    assert check(want(), state(NY, holds=[lifted]), [], NOON, US) == Allow()
    pending = Hold(kind=HoldKind.PAUSE, since=NOON - timedelta(days=3), until=NOON + timedelta(minutes=1))
    assert check(want(), state(NY, holds=[pending]), [], NOON, US) == Deny(rule="hold.pause")


def test_opt_out_and_unreachable_channels() -> None:
    opted = state(NY, opted_out=[Channel.SMS])
    assert check(want(Channel.SMS), opted, [], NOON, US) == Deny(rule="opt_out.sms")
    assert check(want(Channel.SMS, Purpose.OPT_OUT_CONFIRMATION), opted, [], NOON, US) == Allow()
    assert check(want(), opted, [], NOON, US) == Allow()
    assert check(want(), state(NY, unreachable=[Channel.VOICE]), [], NOON, US) == Deny(
        rule="unreachable.voice"
    )


def test_answers_skip_caps_but_not_quiet_hours() -> None:
    full_day = [text(local(NY, 2026, 10, 6, 9))]
    receipt = want(Channel.SMS, Purpose.RECEIPT)
    assert check(receipt, state(NY), full_day, NOON, US) == Allow()
    assert isinstance(check(receipt, state(NY), full_day, local(NY, 2026, 10, 6, 22), US), Defer)


def test_plan_reminders_obey_caps_too() -> None:
    reminder = want(Channel.SMS, Purpose.PLAN_REMINDER)
    full_day = [text(local(NY, 2026, 10, 6, 9))]
    verdict = check(reminder, state(NY, mode=Mode.SETTLEMENT), full_day, NOON, US)
    deferred_to(verdict, local(NY, 2026, 10, 7, 8), "cap.sms_per_day")


def test_a_contact_planned_for_later_is_deferred_to_its_time() -> None:
    later = local(NY, 2026, 10, 8, 10)
    deferred_to(check(want(Channel.SMS, at=later), state(NY), [], NOON, US), later, "schedule")


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        decide(want(), state(NY), [], datetime(2026, 10, 6, 12), US)
    with pytest.raises(ValueError, match="timezone-aware"):
        want(at=datetime(2026, 10, 6, 12))


def test_the_gate_reads_no_clock_no_randomness_no_files() -> None:
    """It runs inside Temporal workflows: everything must come from its arguments."""
    tree = ast.parse(inspect.getsource(gate_module))
    methods = {
        n.func.attr for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
    }
    functions = {
        n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
    }
    assert not methods & {"now", "utcnow", "today", "monotonic", "time_ns", "urandom", "read_text"}
    assert not functions & {"open", "print", "input"}
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])
    }
    assert not imported & {"random", "time", "os", "uuid", "secrets", "socket"}
