"""The debtor's emergency contact: asked only while the debtor is unreachable, only with a text that
cannot disclose the debt, never under a hold, at most as often as the profile says, at their hours."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.accounts import Channel, ContactOutcome, Hold, HoldKind, LedgerEntry, Mode
from domain.gate import (
    Allow,
    Audience,
    Defer,
    Deny,
    GateState,
    PlannedContact,
    Purpose,
    convenient_everywhere,
    debtor_unreachable,
    decide,
)
from domain.profiles import PROFILE_DIR, load_profile, parse_profile

NY, SHANGHAI, LONDON = "America/New_York", "Asia/Shanghai", "Europe/London"
US, CN, UK = load_profile("US"), load_profile("CN"), load_profile("UK")
BOTH_GONE = [Channel.SMS, Channel.VOICE]


def local(zone: str, y: int, m: int, d: int, h: int = 10, mi: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=ZoneInfo(zone))


def lost(**kw: object) -> GateState:
    """A debtor in New York whose every channel failed, with an emergency contact in Shanghai."""
    fields: dict[str, object] = {
        "mode": Mode.DUNNING,
        "zones": [NY],
        "unreachable": BOTH_GONE,
        "third_party_zones": [SHANGHAI],
    }
    fields.update(kw)
    return GateState.model_validate(fields)


def locate(
    at: datetime, template: str = "third_party_locate", purpose: Purpose = Purpose.DUNNING
) -> PlannedContact:
    return PlannedContact(
        channel=Channel.SMS, purpose=purpose, template=template, at=at, audience=Audience.THIRD_PARTY
    )


def sent(at: datetime) -> LedgerEntry:
    return LedgerEntry(at=at, channel=Channel.SMS, outcome=ContactOutcome.DELIVERED)


NOON_SHANGHAI = local(SHANGHAI, 2026, 12, 2, 12)  # 23:00 the evening before in New York


def test_a_lost_debtors_emergency_contact_may_be_asked_at_their_own_convenient_hour() -> None:
    assert decide(locate(NOON_SHANGHAI), lost(), [], NOON_SHANGHAI, CN) == Allow()
    # opted out of one channel, the other dead: still nobody to reach
    mixed = lost(unreachable=[Channel.SMS], opted_out=[Channel.VOICE])
    assert decide(locate(NOON_SHANGHAI), mixed, [], NOON_SHANGHAI, CN) == Allow()


@pytest.mark.parametrize(
    ("unreachable", "opted_out"),
    [([], []), ([Channel.SMS], []), ([Channel.VOICE], []), ([], [Channel.SMS])],
)
def test_never_while_the_debtor_can_still_be_reached(
    unreachable: list[Channel], opted_out: list[Channel]
) -> None:
    state = lost(unreachable=unreachable, opted_out=opted_out)
    assert not debtor_unreachable(state)
    assert decide(locate(NOON_SHANGHAI), state, [], NOON_SHANGHAI, CN) == Deny(
        rule="third_party.debtor_reachable"
    )


def test_a_debtor_who_opted_out_of_everything_is_not_lost_and_their_contact_is_left_alone() -> None:
    """Opting out is the debtor's choice about hearing from us, not a reason to ask their family."""
    state = lost(unreachable=[], opted_out=list(Channel))
    assert not debtor_unreachable(state)
    assert decide(locate(NOON_SHANGHAI), state, [], NOON_SHANGHAI, CN) == Deny(
        rule="third_party.debtor_reachable"
    )


@pytest.mark.parametrize(
    "template", ["early_reminder", "voicemail_limited", "settlement_offer", "no_such_text"]
)
def test_only_a_template_marked_for_third_parties_may_go_to_one(template: str) -> None:
    verdict = decide(locate(NOON_SHANGHAI, template), lost(), [], NOON_SHANGHAI, CN)
    assert verdict == Deny(rule="third_party.template_discloses")


def test_no_emergency_contact_on_file_or_their_number_unusable() -> None:
    assert decide(locate(NOON_SHANGHAI), lost(third_party_zones=None), [], NOON_SHANGHAI, CN) == Deny(
        rule="third_party.none"
    )
    for status in ("unreachable", "opted_out"):
        verdict = decide(locate(NOON_SHANGHAI), lost(third_party_status=status), [], NOON_SHANGHAI, CN)
        assert verdict == Deny(rule=f"third_party.{status}")


@pytest.mark.parametrize("kind", list(HoldKind))
def test_every_hold_stops_asking_others_too(kind: HoldKind) -> None:
    since = NOON_SHANGHAI - timedelta(days=1)
    held = lost(holds=[Hold(kind=kind, since=since)])
    assert decide(locate(NOON_SHANGHAI), held, [], NOON_SHANGHAI, CN) == Deny(rule=f"hold.{kind.value}")
    # a cease of one medium is enough too: the debtor asked us to stop, we do not go round them
    one = lost(holds=[Hold(kind=kind, since=since, channel=Channel.VOICE)])
    assert decide(locate(NOON_SHANGHAI), one, [], NOON_SHANGHAI, CN) == Deny(rule=f"hold.{kind.value}")
    # a hold that has run out is over
    over = lost(holds=[Hold(kind=kind, since=since, until=NOON_SHANGHAI - timedelta(hours=1))])
    assert decide(locate(NOON_SHANGHAI), over, [], NOON_SHANGHAI, CN) == Allow()


def test_not_in_settlement_not_when_closed_and_only_to_locate() -> None:
    settled = lost(mode=Mode.SETTLEMENT)
    assert decide(locate(NOON_SHANGHAI), settled, [], NOON_SHANGHAI, CN) == Deny(rule="settlement.no_dunning")
    closed = lost(mode=Mode.CLOSED)
    assert decide(locate(NOON_SHANGHAI), closed, [], NOON_SHANGHAI, CN) == Deny(rule="account.closed")
    receipt = locate(NOON_SHANGHAI, purpose=Purpose.RECEIPT)
    assert decide(receipt, lost(), [], NOON_SHANGHAI, CN) == Deny(rule="third_party.purpose")


def test_quiet_hours_are_the_third_partys_not_the_debtors() -> None:
    ten_in_new_york = local(NY, 2026, 12, 2, 10)  # 23:00 in Shanghai
    verdict = decide(locate(ten_in_new_york), lost(), [], ten_in_new_york, CN)
    assert verdict == Defer(until=local(SHANGHAI, 2026, 12, 3, 8), rule="quiet_hours")


def test_at_most_one_a_week_and_the_profiles_total() -> None:
    monday = local(SHANGHAI, 2026, 11, 30, 9)
    # CN: once in any 7 days, 3 in all; the 7 days are counted in the third party's calendar
    verdict = decide(locate(NOON_SHANGHAI), lost(), [sent(monday)], NOON_SHANGHAI, CN)
    assert verdict == Defer(until=local(SHANGHAI, 2026, 12, 7, 8), rule="third_party.cap_7_days")
    three = [sent(monday - timedelta(days=30 * i)) for i in range(3)]
    later = NOON_SHANGHAI + timedelta(days=30)
    assert decide(locate(later), lost(), three, later, CN) == Deny(rule="third_party.cap_total")
    # US: FDCPA 804(3), once (UK: twice)
    assert decide(locate(later), lost(), [sent(monday)], later, US) == Deny(rule="third_party.cap_total")
    assert decide(locate(later), lost(), [sent(monday)], later, UK) == Allow()
    # a refused attempt reached nobody and does not count
    refused = LedgerEntry(at=monday, channel=Channel.SMS, outcome=ContactOutcome.DENIED)
    assert decide(locate(later), lost(), [refused], later, US) == Allow()


def test_a_profile_may_not_allow_more_than_the_law() -> None:
    text = (PROFILE_DIR / "us.toml").read_text(encoding="utf-8")
    with pytest.raises(ValueError, match=r"max_locate_total: 2 exceeds the legal maximum 1 .*FDCPA 804\(3\)"):
        parse_profile(text.replace("max_locate_total = 1", "max_locate_total = 2"), source="us.toml")
    with pytest.raises(ValueError, match="max_locate_per_7_days"):
        parse_profile(
            text.replace("max_locate_per_7_days = 1", "max_locate_per_7_days = -1"), source="us.toml"
        )
    tighter = parse_profile(text.replace("max_locate_total = 1", "max_locate_total = 0"), source="us.toml")
    later = NOON_SHANGHAI
    assert decide(locate(later), lost(), [], later, tighter) == Deny(rule="third_party.cap_total")


def test_a_debtor_contact_ignores_the_emergency_contact_entirely() -> None:
    """Adding an emergency contact changes nothing for messages to the debtor (same verdicts)."""
    reachable = lost(unreachable=[], third_party_zones=[SHANGHAI])
    plain = lost(unreachable=[], third_party_zones=None)
    at = local(NY, 2026, 12, 2, 10)
    to_debtor = PlannedContact(channel=Channel.SMS, purpose=Purpose.DUNNING, template="early_reminder", at=at)
    assert decide(to_debtor, reachable, [], at, US) == decide(to_debtor, plain, [], at, US) == Allow()


# ---- property: whatever the state, an Allow to a third party is lawful; a Defer names a lawful moment
SYDNEY = "Australia/Sydney"
ZONES = [NY, SHANGHAI, LONDON, "America/Los_Angeles", SYDNEY]
START = datetime(2026, 1, 1, tzinfo=ZoneInfo("UTC"))


@st.composite
def third_party_cases(draw: st.DrawFn) -> tuple[GateState, list[LedgerEntry], datetime, str]:
    """A lost debtor with an emergency contact, often with one thing wrong (the gate must notice)."""
    now = START + timedelta(minutes=draw(st.integers(0, 365 * 24 * 60)))
    flaw = draw(st.sampled_from([None, None, None, "mode", "template", "none", "status", "reach", "hold"]))
    gone = draw(st.sampled_from([(BOTH_GONE, []), ([Channel.SMS], [Channel.VOICE]), ([], BOTH_GONE)]))
    if flaw == "reach":
        gone = draw(st.sampled_from([([], []), ([Channel.SMS], []), ([], [Channel.VOICE])]))
    hold_until = draw(st.sampled_from([now - timedelta(hours=1), now + timedelta(days=2), None]))
    holds = [
        Hold(kind=draw(st.sampled_from(list(HoldKind))), since=now - timedelta(days=3), until=hold_until)
    ]
    state = GateState(
        mode=draw(st.sampled_from([Mode.SETTLEMENT, Mode.CLOSED])) if flaw == "mode" else Mode.DUNNING,
        zones=[draw(st.sampled_from(ZONES))],
        unreachable=gone[0],
        opted_out=gone[1],
        holds=holds if flaw == "hold" else [],
        third_party_zones=None
        if flaw == "none"
        else draw(
            st.sampled_from([[SHANGHAI], [NY], [LONDON], [SYDNEY, LONDON], [NY, "America/Los_Angeles"]])
        ),
        third_party_status=draw(st.sampled_from(["unreachable", "opted_out"]))
        if flaw == "status"
        else "active",
    )
    ledger = [
        sent(now - timedelta(hours=draw(st.integers(1, 24 * 40)))) for _ in range(draw(st.integers(0, 3)))
    ]
    template = (
        draw(st.sampled_from(["early_reminder", "plan_offer"]))
        if flaw == "template"
        else "third_party_locate"
    )
    return state, ledger, now, template


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(third_party_cases(), st.sampled_from([US, CN, UK]))
def test_no_third_party_contact_is_ever_allowed_unlawfully(
    case: tuple[GateState, list[LedgerEntry], datetime, str], profile: object
) -> None:
    state, ledger, now, template = case
    contact = locate(now, template)
    verdict = decide(contact, state, ledger, now, profile)  # type: ignore[arg-type]

    def lawful_at(moment: datetime) -> bool:
        week = [e for e in ledger if e.at > moment - timedelta(days=8)]
        return (
            state.mode == Mode.DUNNING
            and template == "third_party_locate"
            and state.third_party_zones is not None
            and state.third_party_status == "active"
            and debtor_unreachable(state)
            and not [h for h in state.holds if h.until is None or h.until > moment]
            and len(ledger) < profile.max_locate_total  # type: ignore[attr-defined]
            and len(week) < 2  # within 7 local days plus the day boundary: never two in 6 days
            and all(moment - e.at >= timedelta(days=6) for e in ledger)
            and convenient_everywhere(moment, state.third_party_zones, profile)  # type: ignore[arg-type]
        )

    if isinstance(verdict, Allow):
        assert lawful_at(now)
    elif isinstance(verdict, Defer):
        assert verdict.until > now
        assert lawful_at(verdict.until)
        assert decide(locate(verdict.until, template), state, ledger, verdict.until, profile) == Allow()  # type: ignore[arg-type]
