"""An agency whose licence has expired gets no visit and no placement: the activities against the real
database (SQLite and PostgreSQL) and the shipped ``policies/agencies.toml``, its dates read from it."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from activities.deps import Deps
from activities.visits import VisitActivities
from domain.agencies import LICENCE_EXPIRED, Agency, PlaceRequest, load_agencies
from domain.visits import AssignRequest
from runtime.settings import Settings
from store import agencies
from store.audit import AuditEntry, audit_entries
from store.db import make_engine
from tests.store.conftest import db_url, sessions, stored  # noqa: F401  (fixtures)

NY = ZoneInfo("America/New_York")


def licence_of(agency_id: str) -> Agency:
    agency = load_agencies().get(agency_id)
    assert agency is not None, agency_id
    return agency


def activities_on(url: str) -> VisitActivities:
    return VisitActivities(Deps(settings=Settings(_env_file=None, database_url=url), engine=make_engine(url)))  # type: ignore[call-arg]


def visit_on(account_id: str, day: date, n: int) -> AssignRequest:
    """A visit on ``day`` (10:00-13:00 in New York), chosen three days before."""
    start = datetime.combine(day, time(10), tzinfo=NY)
    return AssignRequest(
        visit_id=f"account-{account_id}-visit-{n}",
        account_id=account_id,
        region="US-NY",
        country="US",
        window_start=start,
        window_end=start + timedelta(hours=3),
        report_due=start + timedelta(days=2),
        at=datetime.combine(day - timedelta(days=3), time(15), tzinfo=UTC),
    )


def lines(sessions: sessionmaker[Session], account_id: str, action: str) -> list[AuditEntry]:  # noqa: F811
    with sessions.begin() as s:
        return [e for e in audit_entries(s, account_id) if e.action == action]


def test_a_visit_goes_past_an_expired_licence_and_none_goes_out_when_every_licence_has(
    db_url: str,  # noqa: F811
    sessions: sessionmaker[Session],  # noqa: F811
) -> None:
    regional, national = licence_of("northeast-field"), licence_of("national-recovery")
    assert regional.licence_expires < national.licence_expires  # what this test relies on in the file
    account = stored(sessions, region="US-NY")
    work = activities_on(db_url)

    last_day = work.assign_visit(visit_on(account.account_id, regional.licence_expires, 1))
    assert last_day.agency_id == "northeast-field"  # the licence covers its last day

    day_after = work.assign_visit(
        visit_on(account.account_id, regional.licence_expires + timedelta(days=1), 2)
    )
    assert day_after.agency_id == "national-recovery"
    assigned = lines(sessions, account.account_id, "visit_assigned")[-1]
    assert assigned.details["refused"] == {"northeast-field": LICENCE_EXPIRED}

    # the visit's own day counts, not only the day it is arranged: chosen while the national agency
    # is still licensed, for a day after its licence ends
    past_all = national.licence_expires + timedelta(days=1)
    request = visit_on(account.account_id, past_all, 3).model_copy(
        update={"at": datetime.combine(national.licence_expires, time(12), tzinfo=UTC)}
    )
    refused = work.assign_visit(request)
    assert refused.agency_id is None and refused.rule == LICENCE_EXPIRED
    with sessions.begin() as s:
        stored_visit = agencies.visit(s, request.visit_id)
    assert stored_visit is not None and stored_visit.status == "unassigned"
    assert stored_visit.cancel_reason == LICENCE_EXPIRED
    unassigned = lines(sessions, account.account_id, "visit_unassigned")
    assert [(e.rule, e.details["refused"]) for e in unassigned] == [
        (LICENCE_EXPIRED, {"northeast-field": LICENCE_EXPIRED, "national-recovery": LICENCE_EXPIRED})
    ]
    again = work.assign_visit(request)  # a retried activity: same answer, one audit line
    assert again == refused and len(lines(sessions, account.account_id, "visit_unassigned")) == 1


def test_no_placement_with_an_agency_whose_licence_has_expired(
    db_url: str,  # noqa: F811
    sessions: sessionmaker[Session],  # noqa: F811
) -> None:
    national = licence_of("national-recovery")  # the only US agency that takes placements
    account = stored(sessions, region="US-NY")
    work = activities_on(db_url)

    def place(n: int, day: date) -> PlaceRequest:
        return PlaceRequest(
            placement_id=f"{account.account_id}/placement-{n}",
            account_id=account.account_id,
            region="US-NY",
            country="US",
            currency="USD",
            balance=200_000,
            at=datetime.combine(day, time(15), tzinfo=UTC),
        )

    expired = work.place_account(place(1, national.licence_expires + timedelta(days=1)))
    assert expired.agency_id is None and expired.rule == LICENCE_EXPIRED
    with sessions.begin() as s:
        assert agencies.placement(s, f"{account.account_id}/placement-1") is None
        assert agencies.active_placement(s, account.account_id) is None
    refusal = lines(sessions, account.account_id, "placement_unassigned")
    assert [(e.rule, e.details["refused"]) for e in refusal] == [
        (LICENCE_EXPIRED, {"national-recovery": LICENCE_EXPIRED})
    ]

    on_time = work.place_account(place(2, national.licence_expires))
    assert on_time.agency_id == "national-recovery" and on_time.rule is None
    with sessions.begin() as s:
        active = agencies.active_placement(s, account.account_id)
    assert active is not None and active.agency_id == "national-recovery"
