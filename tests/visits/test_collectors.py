"""The agency names the collector it sends to a visit, through its API, before the visit; the public
``/verify`` page confirms that person while the visit is open and no longer once it is over. A real
visit workflow (time-skipping Temporal), the real database and the real HTTP service."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx

from store.agencies import VisitView
from tests.conftest import random_phone
from tests.visits.conftest import bearer, eventually
from tests.visits.test_visits import BALANCE, announced_visit, audit, visits
from tests.workflows.conftest import Harness

AGENCY = bearer("tok-agency-xxxxxxxxxxxxxxxxxxxxxx")  # national-recovery
OTHER_AGENCY = bearer("tok-other-agency-xxxxxxxxxxxxxxxx")  # northeast-field
AGENT = bearer("tok-agent-xxxxxxxxxxxxxxxxxxxxxxx")


async def confirmed(
    api: httpx.AsyncClient, collector: str, agency: str = "National Recovery Partners"
) -> bool:
    page = await api.post("/verify", data={"collector_id": collector, "agency": agency})
    assert page.status_code == 200 and "data-answer" in page.text, page.text
    return 'data-answer="yes"' in page.text


async def test_the_agency_names_its_collector_and_verify_confirms_them_until_the_visit_is_over(
    harness: Harness, api: httpx.AsyncClient
) -> None:
    account = await harness.open_account(due_in_days=-100, phone=random_phone(76), balance=BALANCE, fees=0)
    visit = await announced_visit(harness, account.account_id)
    assert visit.agency_id == "national-recovery" and visit.collector_id is None
    url = f"/agency/visits/{visit.visit_id}/collector"
    n = uuid.uuid4().hex[:6].upper()
    first, second = f"nrp-{n}1", f"NRP-{n}2"

    bad = await api.put(url, json={"collector_id": "NR P!"}, headers=AGENCY)
    assert bad.status_code == 422 and "collector_id" in bad.text and "3 to 32 letters" in bad.text
    assert (await api.put(url, json={"collector_id": first}, headers=OTHER_AGENCY)).status_code == 404
    assert (await api.put(url, json={"collector_id": first}, headers=AGENT)).status_code == 403
    assert not await confirmed(api, first)  # nobody named yet

    named = await api.put(url, json={"collector_id": first}, headers=AGENCY)
    assert named.status_code == 200, named.text
    assert named.json()["collector_id"] == first.upper()
    mine = [
        v for v in (await api.get("/agency/visits", headers=AGENCY)).json() if v["visit_id"] == visit.visit_id
    ]
    assert mine[0]["collector_id"] == first.upper()
    assert await confirmed(api, first) and await confirmed(api, first, "national-recovery")
    assert not await confirmed(api, first, "Northeast Field Services")

    # the agency sends someone else: only the new person is confirmed now
    assert (await api.put(url, json={"collector_id": second}, headers=AGENCY)).status_code == 200
    assert await confirmed(api, second) and not await confirmed(api, first)
    named_lines = [e for e in audit(harness, account.account_id) if e.action == "visit_collector"]
    assert [(e.actor, e.details["collector_id"]) for e in named_lines] == [
        ("agency:national-recovery", first.upper()),
        ("agency:national-recovery", second),
    ]
    checks = [e.decision for e in audit(harness, account.account_id) if e.action == "collector_check"]
    assert checks == ["confirmed", "confirmed", "confirmed"]  # every yes is on the account's log

    # the visit takes place and is reported: the collector is no longer working the account
    await harness.skip_to(visit.window_end + timedelta(hours=1))
    report = {"outcome": "not_home", "recording_ref": "s3://visits/rec-collector-1.mp4"}
    assert (
        await api.post(f"/agency/visits/{visit.visit_id}/report", json=report, headers=AGENCY)
    ).status_code == 202

    def reported() -> VisitView | None:
        v = visits(harness, account.account_id)[-1]
        return v if v.status == "reported" else None

    await eventually(reported, "the visit is reported")
    assert not await confirmed(api, second)
    late = await api.put(url, json={"collector_id": first}, headers=AGENCY)
    assert late.status_code == 409 and "reported" in late.text
