"""The licence rule of agencies and the collector check: pure functions over a book written here."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import TypeAdapter, ValidationError

from domain.agencies import LICENCE_EXPIRED, NO_CAPACITY, Work, choose, find_agency, parse_agencies, pick
from domain.collectors import (
    MALFORMED,
    NO_OPEN_VISIT,
    UNKNOWN_AGENCY,
    CollectorId,
    CollectorVisit,
    collector_id,
    confirms,
    typed_collector_id,
)

BOOK = parse_agencies(
    """
[[agencies]]
id = "city-visits"
name = "City Visits"
regions = ["US-NY"]
licence_number = "NY-2087341"
licence_expires = 2027-03-31
visit_capacity = 5
placement_capacity = 5

[[agencies]]
id = "nationwide"
name = "Nationwide   Recovery"
regions = ["US"]
licence_number = "US-1948207"
licence_expires = 2027-06-30
visit_capacity = 5
placement_capacity = 5
""",
    source="test-book",
)
LAST_DAY = date(2027, 3, 31)  # City Visits' licence covers this day, not the next


def test_a_licence_covers_its_last_day_and_not_the_day_after() -> None:
    on_last_day = pick(BOOK, Work.VISIT, region="US-NY", country="US", load={}, on=LAST_DAY)
    assert on_last_day.agency is not None and on_last_day.agency.id == "city-visits"
    assert on_last_day.refused == {} and on_last_day.rule is None

    day_after = pick(BOOK, Work.VISIT, region="US-NY", country="US", load={}, on=LAST_DAY + timedelta(days=1))
    # the regional agency is refused with the rule named; the national one (still licensed) gets it
    assert day_after.agency is not None and day_after.agency.id == "nationwide"
    assert day_after.refused == {"city-visits": LICENCE_EXPIRED}


def test_nobody_licensed_means_no_visit_and_no_placement_and_the_rule_says_why() -> None:
    later = date(2027, 7, 1)  # both licences have expired
    for work in (Work.VISIT, Work.PLACEMENT):
        choice = pick(BOOK, work, region="US-NY", country="US", load={}, on=later)
        assert choice.agency is None and choice.rule == LICENCE_EXPIRED
        assert choice.refused == {"city-visits": LICENCE_EXPIRED, "nationwide": LICENCE_EXPIRED}
        assert choose(BOOK, work, region="US-NY", country="US", load={}, on=later) is None
    # an expired licence wins over room: a full agency with an expired licence is refused for the licence
    full = pick(BOOK, Work.VISIT, region="US-NY", country="US", load={"city-visits": 5}, on=later)
    assert full.rule == LICENCE_EXPIRED


def test_licensed_agencies_without_room_are_a_capacity_matter() -> None:
    full = {"city-visits": 5, "nationwide": 5}
    choice = pick(BOOK, Work.VISIT, region="US-NY", country="US", load=full, on=LAST_DAY)
    assert choice.agency is None and choice.rule == NO_CAPACITY[Work.VISIT] == "visits.no_agency_capacity"
    assert choice.refused == {}
    placement = pick(BOOK, Work.PLACEMENT, region=None, country="US", load=full, on=LAST_DAY)
    assert placement.rule == "placement.no_agency_capacity"
    # an agency that does not serve the region is not "refused": it was never a candidate
    cn = pick(BOOK, Work.VISIT, region=None, country="CN", load={}, on=date(2030, 1, 1))
    assert cn.agency is None and cn.refused == {} and cn.rule == "visits.no_agency_capacity"


AGENCY = """[[agencies]]
id = "a-one"
name = "A One"
regions = ["US"]
{fields}
"""


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ('licence_number = "L-1001"', "agencies.0 (a-one).licence_expires: Field required"),
        ("licence_expires = 2028-01-01", "agencies.0 (a-one).licence_number: Field required"),
        ('licence_number = "L-1001"\nlicence_expires = "next year"', "agencies.0 (a-one).licence_expires"),
        ('licence_number = "L"\nlicence_expires = 2028-01-01', "agencies.0 (a-one).licence_number"),
        ('licence_number = "L-1\\nL-2"\nlicence_expires = 2028-01-01', "agencies.0 (a-one).licence_number"),
    ],
)
def test_a_wrong_licence_field_is_named_with_its_agency(fields: str, named: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_agencies(AGENCY.format(fields=fields), source="agencies.toml")
    assert str(err.value).startswith("agencies.toml: ") and named in str(err.value)


def test_a_region_that_is_no_region_is_refused_by_name() -> None:
    text = AGENCY.replace('["US"]', '["US-NY", "New York"]').format(
        fields='licence_number = "L-1001"\nlicence_expires = 2028-01-01'
    )
    with pytest.raises(ValueError, match=r"agencies\.0 \(a-one\)\.regions: .*'NEW YORK'"):
        parse_agencies(text)


def test_the_shipped_agencies_all_carry_a_licence() -> None:
    from domain.agencies import load_agencies

    for agency in load_agencies().agencies:
        assert len(agency.licence_number) >= 3 and isinstance(agency.licence_expires, date), agency.id


def test_an_agency_is_found_by_id_or_name_in_any_case_and_spacing() -> None:
    assert find_agency(BOOK, "nationwide") is BOOK.agencies[1]
    assert find_agency(BOOK, "  nationwide recovery ") is BOOK.agencies[1]
    assert find_agency(BOOK, "CITY VISITS") is BOOK.agencies[0]
    assert find_agency(BOOK, "City") is None and find_agency(BOOK, "") is None


# ---- collector IDs -----------------------------------------------------------------------------------
def test_a_collector_id_has_one_format() -> None:
    assert collector_id(" nrp-20418 ") == "NRP-20418"
    for wrong in ("", "AB", "-NRP1", "NRP 20418", "NRP_20418", "X" * 33, "收款员1"):
        with pytest.raises(ValueError, match="3 to 32 letters, digits or hyphens"):
            collector_id(wrong)
    with pytest.raises(ValidationError, match="collector ID is 3 to 32"):
        TypeAdapter(CollectorId).validate_python("a b")
    # what a person keys in at the door is read kindly; what cannot be an ID is None
    assert typed_collector_id("nrp 204 18") == "NRP20418"  # spaces a badge prints are dropped
    assert typed_collector_id(" nrp-20418\n") == "NRP-20418"
    assert typed_collector_id("<script>") is None


NOW = datetime(2027, 3, 1, 15, 0, tzinfo=UTC)


def visit(
    status: str = "announced", *, starts_in: timedelta = timedelta(days=2), now: datetime = NOW
) -> CollectorVisit:
    start = NOW + starts_in
    return CollectorVisit(
        account_id="ACC-1",
        status=status,
        window_start=start,
        window_end=start + timedelta(hours=3),
        zone="America/New_York",
        now=now,
    )


def test_yes_only_for_an_open_or_upcoming_visit_of_a_licensed_agency() -> None:
    city = BOOK.get("city-visits")
    yes = confirms(city, "NRP-20418", [visit()])
    assert yes.confirmed and yes.account_id == "ACC-1"
    during = confirms(city, "NRP-20418", [visit(starts_in=-timedelta(hours=1))])  # the window is open now
    assert during.confirmed
    for status in ("scheduled", "announced"):
        assert confirms(city, "NRP-20418", [visit(status)]).confirmed


def test_every_other_case_is_the_same_no_with_the_reason_kept_for_the_audit() -> None:
    city = BOOK.get("city-visits")
    cases = {
        "unknown agency": (confirms(None, "NRP-20418", [visit()]), UNKNOWN_AGENCY),
        "malformed id": (confirms(city, None, []), MALFORMED),
        "nobody by that id": (confirms(city, "NRP-20418", []), NO_OPEN_VISIT),
        "window over": (confirms(city, "NRP-20418", [visit(starts_in=-timedelta(hours=4))]), NO_OPEN_VISIT),
        "reported": (confirms(city, "NRP-20418", [visit("reported")]), NO_OPEN_VISIT),
        "cancelled": (confirms(city, "NRP-20418", [visit("cancelled")]), NO_OPEN_VISIT),
        # the visit falls after City Visits' last licensed day
        "licence expired": (
            confirms(city, "NRP-20418", [visit(starts_in=timedelta(days=31))]),
            LICENCE_EXPIRED,
        ),
    }
    for what, (answer, reason) in cases.items():
        assert not answer.confirmed and answer.account_id is None, what
        assert answer.reason == reason, what
