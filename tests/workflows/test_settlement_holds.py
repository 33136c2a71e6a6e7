"""Holds in settlement, and holds lifted where the live gate reads them.

Pause and resume were handled only by the dunning workflow: an operator pausing an account on a
plan got "Account paused" while reminders kept going and the plan broke. A resume lifted the
negotiation hold in the run but not in the database, so the send activity's live gate went on
refusing and those steps were spent: skipped, not delayed. A close order during a plan wrote a plan
status the database refused, and the write was retried for ever.
"""

from __future__ import annotations

from datetime import timedelta

from domain.plans import AgreedPlan, PlanKind, PlanProposal
from domain.timeline import AccountStatus
from store.accounts import account_snapshot
from store.audit import audit_entries
from store.models import PlanRow
from tests.workflows.conftest import NY, Harness, at_local
from workflows.messages import ComplaintDecision, ComplaintIn, HoldRequest, NegotiationRequest, PaymentIn

#: Every test here also runs with continue-as-new forced at every wake-up (tests/conftest.py).
HAND_OVER_EVERY_WAKE_TOO = True


async def agree(harness: Harness, account, days: int = 7, periods: int = 2) -> AgreedPlan:  # type: ignore[no-untyped-def]
    today = (await harness.now()).astimezone(NY).date()
    return await harness.handle(account).execute_update(
        "propose_settlement",
        PlanProposal(
            kind=PlanKind.REINSTALMENT,
            first_due=today + timedelta(days=days),
            periods=periods,
            period_days=14,
        ),
        result_type=AgreedPlan,
    )


async def test_a_paused_plan_sends_nothing_does_not_break_and_restarts_its_grace(harness: Harness) -> None:
    account = await harness.open_account(due_in_days=-20, balance=40_000, fees=0)
    handle = harness.handle(account)
    await harness.skip_to(at_local(account.due_date + timedelta(days=21), 12))
    plan = await agree(harness, account)
    first = plan.instalments[0]
    await handle.signal("pause", HoldRequest(reason="hardship review", actor="olga"))
    paused_at = await harness.now()

    # past the first due date and its grace period: no reminder, and the plan holds
    await harness.skip_to(at_local(first.due_date + timedelta(days=8), 12))
    # no reminder while paused (the agreement's own confirmation, a receipt, may cross the pause)
    sent = [c for c in harness.sent(account) if c["at"] >= paused_at and c["template"] != "plan_confirmation"]
    assert sent == []
    assert [c["template"] for c in harness.sent(account)].count("plan_confirmation") <= 1
    status = await handle.query("status", result_type=AccountStatus)
    assert status.mode == "settlement" and status.holds == ["pause"]
    assert (await handle.describe()).workflow_type == "SettlementWorkflow"

    # resumed: the grace period starts again from today; paid within it, the plan goes on
    await handle.signal("resume", HoldRequest(reason="review done", actor="olga"))
    resumed = await harness.now()
    await harness.skip_to(resumed + timedelta(days=2))
    status = await handle.query("status", result_type=AccountStatus)
    assert status.mode == "settlement" and status.holds == []
    await handle.signal("payment_received", PaymentIn(amount=first.amount, currency="USD", reference="i1"))
    await harness.skip_to(resumed + timedelta(days=6))
    status = await handle.query("status", result_type=AccountStatus)
    assert status.mode == "settlement" and status.plan_paid == first.amount
    with harness.sessions.begin() as s:
        actions = [e.action for e in audit_entries(s, account.account_id)]
    assert "paused" in actions and "resumed" in actions and "plan_broken" not in actions


async def test_a_plan_left_unpaid_after_a_resume_breaks_after_the_new_grace(harness: Harness) -> None:
    account = await harness.open_account(due_in_days=-20, balance=40_000, fees=0)
    handle = harness.handle(account)
    await harness.skip_to(at_local(account.due_date + timedelta(days=21), 12))
    plan = await agree(harness, account)
    await handle.signal("pause", HoldRequest(reason="hardship review"))
    await harness.skip_to(at_local(plan.instalments[0].due_date + timedelta(days=10), 12))
    await handle.signal("resume", HoldRequest(reason="review done"))
    resumed = await harness.now()
    await harness.skip_to(resumed + timedelta(days=6))  # grace is 3 days in the default policy
    status = await handle.query("status", result_type=AccountStatus)
    assert status.mode == "dunning" and status.plan is None
    with harness.sessions.begin() as s:
        broken = [e for e in audit_entries(s, account.account_id) if e.action == "plan_broken"]
    assert len(broken) == 1 and broken[0].at >= resumed


async def test_resume_lifts_a_plan_request_in_the_database_too(harness: Harness) -> None:
    """The live gate reads holds from the database: a plan request's hold lifted only in the run
    kept refusing every step until its seven days were out, and spent those steps."""
    account = await harness.open_account(due_in_days=-20)
    handle = harness.handle(account)
    await harness.skip_to(at_local(account.due_date + timedelta(days=21), 12))
    await handle.signal("negotiation_requested", NegotiationRequest(channel="web"))
    await harness.skip_to(at_local(account.due_date + timedelta(days=21), 14))
    with harness.sessions.begin() as s:
        snap = account_snapshot(s, account.account_id)
    assert snap is not None and [h.kind for h in snap.holds] == ["negotiation"]

    resumed = await harness.now()
    await handle.signal("resume", HoldRequest(reason="agent called back: no plan", actor="ana"))
    await harness.skip_to(at_local(account.due_date + timedelta(days=23), 12))
    with harness.sessions.begin() as s:
        snap = account_snapshot(s, account.account_id)
    assert snap is not None and snap.holds == []
    # the debtor is told the request is closed (issue 14), then DPD 22's reminder goes out on time:
    # delivered, not refused by a stale hold
    after = [c for c in harness.contacts(account) if c["at"] >= resumed]
    assert [(c["template"], c["decision"]) for c in after][:2] == [
        ("plan_request_closed", "sent"),
        ("early_reminder", "sent"),
    ]


async def test_a_close_order_during_a_plan_closes_the_account(harness: Harness) -> None:
    account = await harness.open_account(due_in_days=-20)
    handle = harness.handle(account)
    await harness.skip_to(at_local(account.due_date + timedelta(days=21), 12))
    plan = await agree(harness, account)
    await handle.signal("complaint_filed", ComplaintIn(reason="abusive call", source="regulator"))
    await handle.signal("complaint_resolved", ComplaintDecision(decision="close", note="upheld"))
    result = await handle.result()
    assert result.state == "closed_complaint_upheld"
    with harness.sessions.begin() as s:
        row = s.get(PlanRow, plan.plan_id)
        assert row is not None and row.status == "cancelled"
