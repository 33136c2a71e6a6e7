"""Where a debtor may be: the file's zone, the number's region, and numbers that have none."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from domain.accounts import Account, AccountTerms, Channel, Debtor, Mode
from domain.gate import Allow, Defer, GateState, PlannedContact, Purpose, decide
from domain.intake import parse_portfolio
from domain.profiles import load_profile
from domain.zones import debtor_zones, region_zones, same_clock

NY, LA = "America/New_York", "America/Los_Angeles"
US = load_profile("US")
TOLL_FREE = "+18005550100"
AU_MOBILE = "+61412345678"  # Australian mobiles are nationwide: from Perth to Lord Howe Island


def test_a_file_zone_and_a_phone_region_that_disagree_are_both_candidates() -> None:
    assert debtor_zones(NY, "+13105550100") == [NY, LA]
    assert debtor_zones(LA, "+13105550100") == [LA]
    assert debtor_zones("America/Anchorage", "+19075550100") == ["America/Anchorage", "America/Adak"]


def test_zones_that_keep_the_same_clock_are_not_a_conflict() -> None:
    """Detroit's clock is New York's; Jersey's is London's. Brisbane has no summer time, Sydney does."""
    assert same_clock(NY, "America/Detroit") and same_clock("Europe/London", "Europe/Jersey")
    assert not same_clock("Australia/Brisbane", "Australia/Sydney")
    assert debtor_zones("America/Detroit", "+12125550100") == ["America/Detroit"]
    assert debtor_zones("Europe/London", "+447700900123") == ["Europe/London"]


def test_the_text_waits_for_eight_in_the_phones_zone_too() -> None:
    """What went wrong before: the file said New York, so 08:00 there was lawful, 05:00 in Los Angeles."""
    state = GateState(mode=Mode.DUNNING, zones=debtor_zones(NY, "+13105550100"))
    sms = PlannedContact(
        channel=Channel.SMS,
        purpose=Purpose.DUNNING,
        template="t",
        at=datetime(2026, 1, 1, tzinfo=ZoneInfo(NY)),
    )
    eight_ny = datetime(2026, 10, 6, 8, tzinfo=ZoneInfo(NY))
    verdict = decide(sms, state, [], eight_ny, US)
    assert isinstance(verdict, Defer) and verdict.rule == "quiet_hours"
    assert verdict.until == datetime(2026, 10, 6, 8, tzinfo=ZoneInfo(LA))
    assert decide(sms, state, [], verdict.until, US) == Allow()


@pytest.mark.parametrize("phone", [TOLL_FREE, AU_MOBILE, "+15555550100"])
def test_a_number_with_no_region_adds_no_guessed_zone(phone: str) -> None:
    assert region_zones(phone) is None
    assert debtor_zones("Pacific/Honolulu", phone) == ["Pacific/Honolulu"]


def test_a_country_with_one_clock_is_a_place_even_for_a_nationwide_number() -> None:
    assert region_zones("+8613800000042") == ("Asia/Shanghai",)
    assert debtor_zones(None, "+61212345678") == ["Australia/Sydney"]  # a Sydney landline


@pytest.mark.parametrize("phone", [TOLL_FREE, AU_MOBILE])
def test_a_debtor_with_no_zone_and_a_number_with_no_region_is_refused(phone: str) -> None:
    with pytest.raises(ValidationError, match="timezone is required"):
        Debtor(name="Jane Doe", phone=phone)
    located = Debtor(name="Jane Doe", phone=phone, timezone="Australia/Perth")
    assert located.timezone == "Australia/Perth"


def test_intake_says_which_rows_need_a_zone_and_takes_the_rest() -> None:
    report = parse_portfolio(
        "account_id,name,phone,timezone,currency,balance,due_date\n"
        f"Z-1,Ann Doe,{TOLL_FREE},,USD,100.00,2026-11-01\n"
        f"Z-2,Bob Doe,{TOLL_FREE},America/Chicago,USD,100.00,2026-11-01\n"
        "Z-3,Cy Doe,+13105550100,America/New_York,USD,100.00,2026-11-01\n"
    )
    [error] = report.errors
    assert (error.line, error.field, error.account_id) == (2, "timezone", "Z-1")
    assert "+1 800***0100 has no region" in error.reason and "5550100" not in error.reason
    zones = {a.account_id: AccountTerms.from_account(a).zones for _, a in report.accounts}
    assert zones == {"Z-2": ["America/Chicago"], "Z-3": [NY, LA]}


def test_an_account_built_in_code_gets_the_same_answer() -> None:
    account = Account(
        account_id="Z-4",
        debtor=Debtor(name="Jane Doe", phone="+13105550100", timezone=NY),
        currency="USD",
        balance=100,
        due_date=datetime(2026, 11, 1).date(),
    )
    assert AccountTerms.from_account(account).zones == [NY, LA]
