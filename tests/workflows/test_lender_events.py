"""The lender hears what the account's workflow did: the events come out of the real workflows' writes.

An account overdue at intake freezes its line when its first dunning stage begins; paid in full, the
payment, the close and the restored line follow, numbered in order; a plan agreed and completed says so.
Real time-skipping Temporal server, real worker, real database (the outbox is written by the ``record``
activity in the state change's own transaction: tests/events/test_outbox.py).
"""

from __future__ import annotations

from datetime import timedelta

from domain.plans import AgreedPlan, PlanKind, PlanProposal
from store.outbox import account_events
from tests.workflows.conftest import NY, Harness, at_local
from workflows.messages import PaymentIn


def told(harness: Harness, account_id: str) -> list[tuple[int, str]]:
    with harness.sessions.begin() as s:
        return [(e.seq, e.type) for e in account_events(s, account_id)]


async def test_an_overdue_account_paid_in_full_freezes_then_restores_its_line(harness: Harness) -> None:
    account = await harness.open_account(due_in_days=-5, phone="+12125550142")
    handle = harness.handle(account)
    await harness.skip_to(at_local(account.due_date + timedelta(days=8), 12))
    assert told(harness, account.account_id) == [(1, "line_frozen")]
    await handle.signal(
        "payment_received", PaymentIn(amount=account.balance, currency="USD", reference="bank-77")
    )
    assert (await handle.result()).state == "closed_paid"
    assert told(harness, account.account_id) == [
        (1, "line_frozen"),
        (2, "payment_applied"),
        (3, "closed"),
        (4, "line_restored"),
    ]
    with harness.sessions.begin() as s:
        data = {e.type: e.data for e in account_events(s, account.account_id)}
    assert data["line_frozen"]["stage"] == "early"
    assert data["payment_applied"]["amount"] == {"amount": account.balance, "currency": "USD"}
    assert data["closed"] == {"reason": "paid", "balance": {"amount": 0, "currency": "USD"}}


async def test_a_plan_agreed_and_kept_tells_the_lender_and_restores_the_line(harness: Harness) -> None:
    account = await harness.open_account(due_in_days=-40, phone="+12125550143")
    handle = harness.handle(account)
    # the line is frozen when the run first records its stage; a plan agreed before that (at the run's
    # very first task) leaves the line as it was, so the plan waits for the freeze here
    for _ in range(100):
        if told(harness, account.account_id):
            break
        await harness.skip_to(await harness.now() + timedelta(hours=1))
    assert told(harness, account.account_id) == [(1, "line_frozen")]
    today = (await harness.now()).astimezone(NY).date()
    plan = await handle.execute_update(
        "propose_settlement",
        PlanProposal(kind=PlanKind.DEFERRAL, first_due=today + timedelta(days=10)),
        result_type=AgreedPlan,
    )
    await harness.skip_to(at_local(plan.instalments[0].due_date, 12))
    await handle.signal(
        "payment_received", PaymentIn(amount=plan.total, currency="USD", reference="deferral-1")
    )
    assert (await handle.result()).state == "closed_settled"
    kinds = [kind for _, kind in told(harness, account.account_id)]
    assert kinds == [
        "line_frozen",
        "plan_agreed",
        "payment_applied",
        "plan_completed",
        "closed",
        "line_restored",
    ]
    assert [seq for seq, _ in told(harness, account.account_id)] == list(range(1, 7))
