"""Random debtors, instants, ledgers and tightened profiles: the gate never allows what the law forbids.

Every Allow is re-checked by :mod:`tests.gate.reference` (a naive, independent reading of the rules:
quiet hours in every zone, each cap counted by brute force). Every Defer must name a moment that is
strictly later, that the gate itself then allows, that the reference finds lawful, and before which
(down to the second) nothing was lawful.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from domain.accounts import Channel, ContactOutcome, Hold, HoldKind, LedgerEntry, Mode
from domain.gate import (
    TRANSACTIONAL,
    Allow,
    Defer,
    Deny,
    GateState,
    PlannedContact,
    Purpose,
    decide,
    zones_for_phone,
)
from domain.profiles import Profile, load_profile
from tests.gate.reference import broken_rules

SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,  # the suite is a regression check: the same cases on every run and every machine
)

# Debtors: where a phone number puts them (ambiguous +1 numbers included), or a zone they told us.
PHONES = [
    "+12125550142",  # New York
    "+13105550100",  # Los Angeles
    "+19075550100",  # Alaska: Anchorage and Adak
    "+18085550100",  # Honolulu
    "+16175550115",  # Boston (Massachusetts)
    "+15555550100",  # not a real area code: every NANP zone
    "+8613812341234",  # China mobile
    "+447911123456",  # UK mobile: London, Guernsey, Jersey, Isle of Man
    "+447700900123",  # Ofcom drama range: not valid, the UK's zones
]
ZONES = [
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "Europe/London",
    "Asia/Shanghai",
    "Australia/Sydney",
    "America/Santiago",  # DST changes at midnight: days that begin at 01:00
    "Pacific/Chatham",  # +12:45/+13:45
]
DST_ZONES = [
    "America/New_York",
    "Europe/London",
    "America/Los_Angeles",
    "Australia/Sydney",
    "America/Santiago",
]


@cache
def transition_days() -> list[datetime]:
    """Noon (UTC) of every day 2024-2028 on which one of DST_ZONES changes its clocks."""
    out = []
    day = date(2024, 1, 1)
    while day < date(2029, 1, 1):
        for zone in DST_ZONES:
            tz = ZoneInfo(zone)
            a = datetime.combine(day, time(0), tzinfo=tz).utcoffset()
            b = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).utcoffset()
            if a != b:
                out.append(datetime.combine(day, time(12), tzinfo=UTC))
        day += timedelta(days=1)
    return out


instants = st.one_of(
    st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)),
    st.builds(
        lambda noon, minutes: noon + timedelta(minutes=minutes),
        st.sampled_from(transition_days()),
        st.integers(-36 * 60, 36 * 60),
    ),
).map(lambda t: t.replace(microsecond=0))

debtor_zones = st.one_of(
    st.sampled_from(PHONES).map(lambda phone: list(zones_for_phone(phone))),
    st.sampled_from(ZONES).map(lambda zone: [zone]),
    st.lists(st.sampled_from(ZONES), min_size=2, max_size=3, unique=True),  # often no common window at all
)

SHIPPED = {name: load_profile(name) for name in ("US", "UK", "CN")}


@st.composite
def profiles(draw: st.DrawFn) -> tuple[Profile, str | None]:
    """A shipped profile made stricter at random (never looser), and the debtor's region."""
    base = SHIPPED[draw(st.sampled_from(sorted(SHIPPED)))]
    start_min = draw(
        st.one_of(st.just(base.contact_start.hour * 60), st.integers(base.contact_start.hour * 60, 12 * 60))
    )
    end_min = draw(
        st.one_of(
            st.just(base.contact_end.hour * 60), st.integers(start_min + 60, base.contact_end.hour * 60)
        )
    )

    def tighter(value: int | None, floor: int = 0, spare: int = 3) -> int | None:
        """Mostly the shipped number or a little less; now and then much less, or zero (never allowed)."""
        if value is None:
            return draw(st.one_of(st.none(), st.none(), st.integers(max(floor, 1), spare)))
        return draw(
            st.one_of(st.just(value), st.integers(max(floor, 1, value - 2), value), st.integers(floor, value))
        )

    changes = {
        "contact_start": time(start_min // 60, start_min % 60),
        "contact_end": time(end_min // 60, end_min % 60),
        "max_call_attempts_per_7_days": tighter(base.max_call_attempts_per_7_days, 0, 8),
        "max_connected_calls_per_day": tighter(base.max_connected_calls_per_day, 0, 4),
        "max_sms_per_day": tighter(base.max_sms_per_day),
        "max_sms_per_7_days": tighter(base.max_sms_per_7_days),
        "max_communications_per_7_days": tighter(base.max_communications_per_7_days, 1, 6),
        "min_days_after_conversation": draw(
            st.one_of(
                st.just(base.min_days_after_conversation),
                st.integers(base.min_days_after_conversation or 0, 9),
            )
        ),
        "no_redial_after_abandoned_hours": draw(
            st.one_of(
                st.just(base.no_redial_after_abandoned_hours),
                st.integers(base.no_redial_after_abandoned_hours, 120),
            )
        ),
    }
    if (
        base.legal_floors.max_call_attempts_per_7_days is not None
        and changes["max_call_attempts_per_7_days"] is None
    ):
        changes["max_call_attempts_per_7_days"] = base.max_call_attempts_per_7_days
    if (
        base.legal_floors.max_connected_calls_per_day is not None
        and changes["max_connected_calls_per_day"] is None
    ):
        changes["max_connected_calls_per_day"] = base.max_connected_calls_per_day
    profile = Profile.model_validate({**base.model_dump(), **changes})  # validation proves it is a tightening
    region = draw(st.sampled_from([None, "US-MA", "us-ma"])) if base.name == "US" else None
    return profile, region


# Weighted towards the outcomes the rules turn on (conversations, silent calls), all of them possible.
OUTCOMES = st.one_of(
    st.sampled_from([ContactOutcome.CONVERSATION, ContactOutcome.SILENT, ContactOutcome.NO_ANSWER]),
    st.sampled_from(list(ContactOutcome)),
)


@st.composite
def ledgers(draw: st.DrawFn, now: datetime, size: int = 14) -> list[LedgerEntry]:
    """Past contacts, clustered in the last ten days (where the caps look), by lender and agencies."""
    seconds = st.one_of(st.integers(0, 10 * 86_400), st.integers(0, 86_400))
    return [
        LedgerEntry(
            at=now - timedelta(seconds=draw(seconds)),
            channel=draw(st.sampled_from(list(Channel))),
            outcome=draw(OUTCOMES),
            by=draw(st.sampled_from(["lender", "agency-a", "agency-b"])),
        )
        for _ in range(draw(st.one_of(st.integers(0, 3), st.integers(0, size))))
    ]


@st.composite
def cases(draw: st.DrawFn) -> tuple[PlannedContact, GateState, list[LedgerEntry], datetime, Profile]:
    now = draw(instants)
    profile, region = draw(profiles())
    ledger = draw(ledgers(now))
    person: list[LedgerEntry] | None = None
    if draw(st.booleans()):
        shared = draw(st.lists(st.sampled_from(ledger), unique_by=id)) if ledger else []
        person = shared + draw(ledgers(now, size=8))
    holds = [
        Hold(
            kind=draw(st.sampled_from(list(HoldKind))),
            since=now - timedelta(days=1),
            channel=draw(st.sampled_from([None, *Channel])),
            until=draw(st.one_of(st.none(), st.integers(-48, 48).map(lambda h: now + timedelta(hours=h)))),
        )
        for _ in range(draw(st.integers(0, 2)) if draw(st.integers(0, 3)) == 0 else 0)
    ]
    channel_sets = st.lists(st.sampled_from(list(Channel)), unique=True, max_size=1)
    purpose = draw(st.sampled_from(list(Purpose)))
    usual = {Purpose.DUNNING: Mode.DUNNING, Purpose.PLAN_REMINDER: Mode.SETTLEMENT}.get(purpose, Mode.CLOSED)
    state = GateState(
        mode=draw(st.one_of(st.just(usual), st.just(usual), st.sampled_from(list(Mode)))),
        holds=holds,
        opted_out=draw(channel_sets) if draw(st.integers(0, 5)) == 0 else [],
        unreachable=draw(channel_sets) if draw(st.integers(0, 5)) == 0 else [],
        zones=draw(debtor_zones),
        region=region,
        person_ledger=person,
    )
    contact = PlannedContact(
        channel=draw(st.sampled_from(list(Channel))),
        purpose=purpose,
        template="t",
        at=now + timedelta(minutes=draw(st.sampled_from([-60, 0, 0, 0, 30, 24 * 60 + 7]))),
        live_agent=draw(st.booleans()),
    )
    return contact, state, ledger, now, profile


@SETTINGS
@given(cases())
def test_no_allow_ever_breaks_a_rule_and_every_defer_is_the_first_lawful_moment(
    case: tuple[PlannedContact, GateState, list[LedgerEntry], datetime, Profile],
) -> None:
    contact, state, ledger, now, profile = case
    verdict = decide(contact, state, ledger, now, profile)
    assert decide(contact, state, ledger, now, profile) == verdict  # deterministic
    if isinstance(verdict, Allow):
        assert broken_rules(contact, state, ledger, now, profile) == []
    elif isinstance(verdict, Defer):
        until = verdict.until
        assert until > now and until >= contact.at
        assert decide(contact, state, ledger, until, profile) == Allow(), verdict
        assert broken_rules(contact, state, ledger, until, profile) == [], verdict
        just_before = until - timedelta(seconds=1)
        if just_before >= max(now, contact.at):
            assert broken_rules(contact, state, ledger, just_before, profile) != [], verdict
    else:
        assert isinstance(verdict, Deny)
        assert broken_rules(contact, state, ledger, now, profile) != [] or verdict.rule.startswith(
            ("quiet_hours.no_common_window", "cap.")
        ), verdict


@settings(SETTINGS, max_examples=150)
@given(cases())
def test_holds_modes_and_channels_always_deny(
    case: tuple[PlannedContact, GateState, list[LedgerEntry], datetime, Profile],
) -> None:
    contact, state, ledger, now, profile = case
    verdict = decide(contact, state, ledger, now, profile)
    purpose = contact.purpose
    total = {HoldKind.DECEASED, HoldKind.BANKRUPTCY, HoldKind.ATTORNEY}
    held = any(
        (h.until is None or h.until > now)
        and h.channel in (None, contact.channel)
        and (h.kind in total or purpose not in TRANSACTIONAL)
        for h in state.holds
    )
    if held:
        assert isinstance(verdict, Deny), verdict
    if state.mode == Mode.SETTLEMENT and purpose == Purpose.DUNNING:
        assert verdict == Deny(rule="settlement.no_dunning")
    if state.mode == Mode.CLOSED and purpose not in TRANSACTIONAL:
        assert verdict == Deny(rule="account.closed")
    if contact.channel in state.unreachable:
        assert isinstance(verdict, Deny)
    if contact.channel in state.opted_out and purpose != Purpose.OPT_OUT_CONFIRMATION:
        assert isinstance(verdict, Deny)


def all_inside(at: datetime, zones: list[str], profile: Profile) -> bool:
    """Is ``at`` inside the profile's contact hours in every one of the zones?"""
    return all(
        profile.contact_start <= at.astimezone(ZoneInfo(z)).time() < profile.contact_end for z in zones
    )


@settings(max_examples=150, deadline=None, derandomize=True)
@given(instants, debtor_zones, profiles())
# no common hour until Santiago leaves summer time on 2 April: the first window is 8 days away
@example(
    datetime(2028, 3, 26, 12, 0, tzinfo=UTC),
    ["Asia/Shanghai", "America/Chicago", "America/Santiago"],
    (SHIPPED["CN"], None),
)
def test_quiet_hours_alone_defer_to_a_window_start_in_some_zone(
    now: datetime, zones: list[str], drawn: tuple[Profile, str | None]
) -> None:
    """With nothing else in the way, a Defer lands exactly on contact_start in one of the zones."""
    profile, _ = drawn
    contact = PlannedContact(channel=Channel.SMS, purpose=Purpose.RECEIPT, template="t", at=now)
    verdict = decide(contact, GateState(mode=Mode.CLOSED, zones=zones), [], now, profile)
    if isinstance(verdict, Defer):
        starts = {verdict.until.astimezone(ZoneInfo(z)).time() for z in zones}
        assert profile.contact_start in starts
        # within two days, unless the zones' hours first overlap later (a summer-time change can open
        # the only common window days away: Shanghai, Chicago and Santiago in late March)
        if verdict.until - now >= timedelta(days=2):
            assert not any(
                all_inside(now + timedelta(minutes=m), zones, profile) for m in range(0, 2 * 1440, 15)
            )
    elif isinstance(verdict, Deny):
        assert verdict.rule == "quiet_hours.no_common_window"


@st.composite
def busy_debtors(draw: st.DrawFn) -> tuple[PlannedContact, GateState, list[LedgerEntry], datetime, Profile]:
    """Collection in full swing: dunning mode, no holds, and a dense recent history of calls and texts."""
    now = draw(instants)
    profile, region = draw(profiles())
    recent = st.integers(0, draw(st.sampled_from([6 * 3600, 6 * 3600, 86_400, 3 * 86_400, 8 * 86_400])))
    voice_heavy = st.sampled_from([Channel.VOICE, Channel.VOICE, Channel.SMS])

    def history(n: int) -> list[LedgerEntry]:
        return [
            LedgerEntry(
                at=now - timedelta(seconds=draw(recent)),
                channel=draw(voice_heavy),
                outcome=draw(OUTCOMES),
                by=draw(st.sampled_from(["lender", "agency-a"])),
            )
            for _ in range(n)
        ]

    ledger = history(draw(st.integers(0, 12)))
    person = (
        history(draw(st.integers(0, 6))) + ledger[: draw(st.integers(0, len(ledger)))]
        if draw(st.booleans())
        else None
    )
    state = GateState(mode=Mode.DUNNING, zones=draw(debtor_zones), region=region, person_ledger=person)
    contact = PlannedContact(
        channel=draw(voice_heavy),
        purpose=Purpose.DUNNING,
        template="t",
        at=now,
        live_agent=draw(st.booleans()),
    )
    return contact, state, ledger, now, profile


@SETTINGS
@given(busy_debtors())
def test_caps_hold_for_busy_debtors(
    case: tuple[PlannedContact, GateState, list[LedgerEntry], datetime, Profile],
) -> None:
    test_no_allow_ever_breaks_a_rule_and_every_defer_is_the_first_lawful_moment.hypothesis.inner_test(case)  # type: ignore[attr-defined]
