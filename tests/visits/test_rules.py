"""The pure rules of visits and agencies: who is visited, when, and which agency gets the work."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from pydantic import ValidationError

from domain.accounts import Carried, Channel, ContactOutcome, ContactRecord, Stage
from domain.agencies import Work, choose, load_agencies, parse_agencies
from domain.clock import PolicyClock
from domain.policy import load_policy
from domain.profiles import load_profile
from domain.visits import VisitReport, check_reschedule, eligibility, risk_score, slot_on, visit_slot

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # a Tuesday
POLICY = load_policy("default").visits


def carried(*outcomes: ContactOutcome, paid: int = 0) -> Carried:
    return Carried(
        clock=PolicyClock(epoch=NOW),
        balance=200_000,
        paid_total=paid,
        last_contacts=[
            ContactRecord(at=NOW, channel=Channel.SMS, template="t", outcome=o, step=str(i))
            for i, o in enumerate(outcomes)
        ],
    )


def eligible(c: Carried, **kw: object) -> tuple[bool, str]:
    args: dict[str, object] = dict(
        stage=Stage.LATE, dpd=120, balance=200_000, currency="USD", carried=c, opening_balance=200_000,
        last_visit_at=None, now=NOW, region=None, profile_name="US",
    )  # fmt: skip
    args.update(kw)
    e = eligibility(POLICY, **args)  # type: ignore[arg-type]
    return e.eligible, e.reason


def test_a_late_unreachable_larger_debt_is_visited_and_the_reasons_say_why_not_otherwise() -> None:
    unreached = carried(ContactOutcome.NO_ANSWER, ContactOutcome.DELIVERED, ContactOutcome.VOICEMAIL)
    assert eligible(unreached) == (True, "ok")
    assert eligible(unreached, stage=Stage.MIDDLE, dpd=60) == (False, "visits.stage")
    assert eligible(unreached, balance=50_000) == (False, "visits.balance")
    assert eligible(unreached, currency="JPY") == (False, "visits.balance")  # no minimum set: no visit
    assert eligible(carried(ContactOutcome.NO_ANSWER)) == (False, "visits.channels_not_failed")
    # a debtor who talks to us and pays scores low: no visit
    talking = carried(
        ContactOutcome.CONVERSATION, ContactOutcome.NO_ANSWER, ContactOutcome.NO_ANSWER, paid=90_000
    )
    assert risk_score(talking, 120, 200_000) < POLICY.min_risk_score
    assert eligible(talking) == (False, "visits.risk_score")


def test_at_most_one_visit_per_30_days_and_stricter_where_the_policy_says() -> None:
    c = carried(ContactOutcome.NO_ANSWER, ContactOutcome.NO_ANSWER)
    assert eligible(c, last_visit_at=NOW - timedelta(days=29)) == (False, "visits.frequency")
    assert eligible(c, last_visit_at=NOW - timedelta(days=30))[0]
    stricter = POLICY.model_copy(update={"stricter_days_between": {"US-MA": 45}})
    e = eligibility(
        stricter, stage=Stage.LATE, dpd=120, balance=200_000, currency="USD", carried=c,
        opening_balance=200_000, last_visit_at=NOW - timedelta(days=40), now=NOW, region="US-MA", profile_name="US",
    )  # fmt: skip
    assert (e.eligible, e.reason) == (False, "visits.frequency")
    with pytest.raises(ValidationError, match="looser"):
        POLICY.model_validate({**POLICY.model_dump(), "stricter_days_between": {"US-MA": 10}})


def test_the_visit_window_is_on_a_weekday_ahead_and_inside_contact_hours() -> None:
    thursday = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
    slot = visit_slot(thursday, "America/New_York", POLICY, load_profile("US"))
    assert slot.day == date(2026, 11, 30)  # three days' notice lands on a Sunday: Monday instead
    assert slot.start.weekday() < 5 and slot.start.time() == time(10, 0) and slot.end.time() == time(13, 0)
    late = POLICY.model_copy(update={"window_start": time(19, 30)})
    s = slot_on(date(2026, 12, 1), "Asia/Shanghai", late, load_profile("CN"))
    assert s.end.time() <= time(21, 0)  # quiet hours apply at the door too


def test_reschedule_limits() -> None:
    zone = "America/New_York"
    assert check_reschedule(date(2026, 11, 30), now=NOW, zone=zone, policy=POLICY, reschedules=0) is None
    assert check_reschedule(date(2026, 11, 29), now=NOW, zone=zone, policy=POLICY, reschedules=0) == (
        "visits.reschedule_weekend"
    )
    assert check_reschedule(date(2026, 12, 30), now=NOW, zone=zone, policy=POLICY, reschedules=0) == (
        "visits.reschedule_too_far"
    )
    assert check_reschedule(date(2026, 11, 30), now=NOW, zone=zone, policy=POLICY, reschedules=1) == (
        "visits.reschedule_limit"
    )


def test_a_report_needs_its_recording_and_a_promise_needs_amount_and_date() -> None:
    with pytest.raises(ValidationError, match="recording_ref"):
        VisitReport.model_validate({"outcome": "met_debtor"})
    with pytest.raises(ValidationError, match="recording_ref"):
        VisitReport.model_validate({"outcome": "met_debtor", "recording_ref": "a b c"})
    with pytest.raises(ValidationError, match="promise_amount"):
        VisitReport.model_validate({"outcome": "promise_to_pay", "recording_ref": "rec://1"})


def test_the_most_specific_agency_with_room_gets_the_work() -> None:
    book = load_agencies()
    today = NOW.date()
    ny = choose(book, Work.VISIT, region="US-NY", country="US", load={}, on=today)
    assert ny is not None and ny.id == "northeast-field"
    full = choose(book, Work.VISIT, region="US-NY", country="US", load={"northeast-field": 40}, on=today)
    assert full is not None and full.id == "national-recovery"  # the regional one is full
    placed = choose(book, Work.PLACEMENT, region="US-NY", country="US", load={}, on=today)
    assert placed is not None and placed.id == "national-recovery"
    assert (
        choose(
            book, Work.PLACEMENT, region=None, country="US", load={}, on=today, exclude={"national-recovery"}
        )
        is None
    )
    assert choose(book, Work.VISIT, region=None, country="CN", load={}, on=today).id == "huadong-visits"  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="visit_capacity"):
        parse_agencies(
            '[[agencies]]\nid = "a"\nname = "A"\nregions = ["US"]\nlicence_number = "L-1"\n'
            "licence_expires = 2030-01-01\nvisit_capacity = -1\n"
        )
