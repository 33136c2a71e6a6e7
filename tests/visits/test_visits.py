"""Field visits as a child workflow of the account: announced, reported (or not), cancelled by a plan request.

The accounts owe USD 2,000 (above the default policy's visit minimum) and start at 100 days past due;
their number's calls go unanswered (simulator: last digits 75-79), so after the late stage's text and
call the account qualifies for a visit (failed channels, risk score from its history).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest

from domain.accounts import HoldKind
from domain.timeline import AccountStatus
from store.accounts import account_snapshot
from store.agencies import VisitView, visits_for_account
from store.audit import AuditEntry, audit_entries
from tests.visits.conftest import bearer, eventually
from tests.workflows.conftest import NY, Harness
from workflows.messages import ComplaintIn, PaymentIn

#: Every test here also runs with continue-as-new forced at every wake-up (tests/conftest.py).
HAND_OVER_EVERY_WAKE_TOO = True

BALANCE = 200_000


def visits(h: Harness, account_id: str) -> list[VisitView]:
    with h.sessions.begin() as s:
        return visits_for_account(s, account_id)


def audit(h: Harness, account_id: str) -> list[AuditEntry]:
    with h.sessions.begin() as s:
        return audit_entries(s, account_id)


async def running_type(h: Harness, workflow_id: str) -> str:
    """The workflow type of the run that owns the account now (raw RPC, see ``Harness.finish``)."""
    raw = await h.client.workflow_service.describe_workflow_execution(
        DescribeWorkflowExecutionRequest(
            namespace=h.client.namespace, execution=WorkflowExecution(workflow_id=workflow_id)
        )
    )
    return raw.workflow_execution_info.type.name


async def announced_visit(h: Harness, account_id: str, *, days: int = 20) -> VisitView:
    for _ in range(days * 2):
        found = visits(h, account_id)
        if found and found[-1].status == "announced":
            return found[-1]
        await h.env.sleep(timedelta(hours=12))  # type: ignore[attr-defined]
    raise AssertionError(f"no visit announced within {days} days: {visits(h, account_id)}")


async def open_late_account(h: Harness, phone: str):  # type: ignore[no-untyped-def]
    return await h.open_account(due_in_days=-100, phone=phone, balance=BALANCE, fees=0)


async def test_visit_announced_agency_reports_promise_to_pay_and_the_promise_is_kept(
    harness: Harness, api: httpx.AsyncClient
) -> None:
    account = await open_late_account(harness, "+12125550176")
    visit = await announced_visit(harness, account.account_id)

    assert visit.agency_id == "national-recovery"  # the one serving the debtor's country with room
    local_start = visit.window_start.astimezone(NY)
    assert local_start.hour == 10 and visit.window_end.astimezone(NY).hour == 13
    assert local_start.weekday() < 5
    texts = [m for m in await harness.carrier_log("+12125550176") if "visit you on" in m.get("body", "")]
    assert len(texts) == 1
    assert f"on {local_start.date().isoformat()}, 10:00-13:00" in texts[0]["body"]
    assert "National Recovery Partners" in texts[0]["body"]

    await harness.skip_to(visit.window_end + timedelta(hours=1))
    url = f"/agency/visits/{visit.visit_id}/report"
    promise_day = (visit.window_end.astimezone(NY) + timedelta(days=7)).date()
    report = {
        "outcome": "promise_to_pay",
        "promise_amount": 50_000,
        "promise_date": promise_day.isoformat(),
        "notes": "met at home, will pay next week",
    }
    # the recording is required: no reference, no report
    r = await api.post(url, json=report, headers=bearer("tok-agency-xxxxxxxxxxxxxxxxxxxxxx"))
    assert r.status_code == 422 and "recording_ref" in r.text
    # another agency cannot report on (or even see) this visit
    r = await api.post(
        url,
        json={**report, "recording_ref": "rec://x/1"},
        headers=bearer("tok-other-agency-xxxxxxxxxxxxxxxx"),
    )
    assert r.status_code == 404
    # an agent's token is not an agency's
    r = await api.post(
        url,
        json={**report, "recording_ref": "rec://x/1"},
        headers=bearer("tok-agent-xxxxxxxxxxxxxxxxxxxxxxx"),
    )
    assert r.status_code == 403

    r = await api.post(
        url,
        json={**report, "recording_ref": "s3://visits/2026/rec-001.mp4"},
        headers=bearer("tok-agency-xxxxxxxxxxxxxxxxxxxxxx"),
    )
    assert r.status_code == 202, r.text

    def plan_agreed() -> list[AuditEntry]:
        return [e for e in audit(harness, account.account_id) if e.decision == "plan_agreed"]

    agreed = await eventually(plan_agreed, "the promise becomes a plan")
    assert agreed[0].actor == "agency:national-recovery"
    done = visits(harness, account.account_id)[-1]
    assert done.status == "reported" and done.outcome == "promise_to_pay"
    assert done.recording_ref == "s3://visits/2026/rec-001.mp4"

    # the debtor keeps the promise (once the settlement run owns the account): the plan completes and
    # dunning resumes for the rest of the balance
    for _ in range(200):
        if await running_type(harness, account.workflow_id) == "SettlementWorkflow":
            break
        await asyncio.sleep(0.05)
    status = await harness.handle(account).query("status", result_type=AccountStatus)
    assert status.plan is not None and status.plan.kind == "promise_to_pay" and status.plan.total == 50_000
    await harness.handle(account).signal(
        "payment_received", PaymentIn(amount=50_000, currency="USD", reference="visit-promise-1")
    )

    def kept() -> bool:
        return any(e.decision == "promise_kept" for e in audit(harness, account.account_id))

    await eventually(kept, "the promise is kept")
    with harness.sessions.begin() as s:
        snap = account_snapshot(s, account.account_id)
    assert snap is not None and snap.balance_minor == BALANCE - 50_000 and snap.mode == "dunning"


async def test_agency_that_never_reports_is_escalated_to_a_supervisor(harness: Harness) -> None:
    account = await open_late_account(harness, "+12125550177")
    visit = await announced_visit(harness, account.account_id)

    await harness.skip_to(visit.report_due + timedelta(hours=1))

    def escalated() -> VisitView | None:
        v = visits(harness, account.account_id)[-1]
        return v if v.status == "escalated" else None

    await eventually(escalated, "the overdue report is escalated")
    lines = [e for e in audit(harness, account.account_id) if e.action == "visit_report_overdue"]
    assert len(lines) == 1 and lines[0].rule == "visits.report_deadline"
    assert "escalated to a supervisor" in lines[0].details["detail"]
    # a late report is no longer taken
    assert visits(harness, account.account_id)[-1].outcome is None


async def test_debtor_asks_for_a_plan_instead_and_the_visit_is_cancelled(
    harness: Harness, api: httpx.AsyncClient
) -> None:
    account = await open_late_account(harness, "+12125550178")
    visit = await announced_visit(harness, account.account_id)

    r = await api.post(
        f"/visits/{visit.visit_id}/plan-instead", headers=bearer("tok-agent-xxxxxxxxxxxxxxxxxxxxxxx")
    )
    assert r.status_code == 202, r.text

    def cancelled() -> VisitView | None:
        v = visits(harness, account.account_id)[-1]
        return v if v.status == "cancelled" else None

    v = await eventually(cancelled, "the visit is cancelled")
    assert v.cancel_reason == "plan_requested"

    def held() -> bool:  # the hold's write may land just after the visit's cancellation
        with harness.sessions.begin() as s:
            snap = account_snapshot(s, account.account_id)
        return snap is not None and HoldKind.NEGOTIATION in [h.kind for h in snap.holds]

    assert await eventually(held, "the negotiation hold is stored")
    # no agency may report on a cancelled visit
    r = await api.post(
        f"/agency/visits/{visit.visit_id}/report",
        json={"outcome": "met_debtor", "recording_ref": "rec://late/1"},
        headers=bearer("tok-agency-xxxxxxxxxxxxxxxxxxxxxx"),
    )
    assert r.status_code == 409
    # and the agency does not ring the bell: nothing but the one announcement went out about it
    texts = [m for m in await harness.carrier_log("+12125550178") if "visit you on" in m.get("body", "")]
    assert len(texts) == 1


async def test_a_complaint_about_a_visit_pauses_the_account_and_calls_the_visit_off(harness: Harness) -> None:
    account = await open_late_account(harness, "+12125550179")
    visit = await announced_visit(harness, account.account_id)

    await harness.handle(account).signal(
        "complaint_filed", ComplaintIn(reason="the visitor was rude on the phone", source="visit")
    )

    def cancelled() -> VisitView | None:
        v = visits(harness, account.account_id)[-1]
        return v if v.status == "cancelled" else None

    v = await eventually(cancelled, "the visit is called off")
    assert v.visit_id == visit.visit_id and (v.cancel_reason or "").startswith("hold.")
    with harness.sessions.begin() as s:
        snap = account_snapshot(s, account.account_id)
    assert snap is not None
    assert {HoldKind.COMPLAINT, HoldKind.PAUSE} <= {h.kind for h in snap.holds}


async def test_debtor_proposes_another_day_and_gets_it_announced(
    harness: Harness, api: httpx.AsyncClient
) -> None:
    account = await open_late_account(harness, "+12125550165")
    visit = await announced_visit(harness, account.account_id)
    day = visit.window_start.astimezone(NY).date() + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)

    r = await api.post(
        f"/visits/{visit.visit_id}/reschedule",
        json={"day": day.isoformat()},
        headers=bearer("tok-agent-xxxxxxxxxxxxxxxxxxxxxxx"),
    )
    assert r.status_code == 202, r.text

    def moved() -> VisitView | None:
        v = visits(harness, account.account_id)[-1]
        return v if v.reschedules == 1 and v.status == "announced" else None

    v = await eventually(moved, "the visit moves to the proposed day")
    assert v.window_start.astimezone(NY).date() == day and v.window_start.astimezone(NY).hour == 10
    # announced again, under the same gate: a second text the same day waits for the next (1 SMS a day)
    for _ in range(8):
        announced = [e for e in audit(harness, account.account_id) if e.action == "visit_announced"]
        if len(announced) == 2:
            break
        await harness.env.sleep(timedelta(hours=6))  # type: ignore[attr-defined]
    texts = [m for m in await harness.carrier_log("+12125550165") if "visit you on" in m.get("body", "")]
    assert [day.isoformat() in t["body"] for t in texts] == [False, True]
