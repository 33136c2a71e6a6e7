"""Payments come first: nothing goes out after a payment that settles the debt.

Seen on a run with a sped-up clock: accounts paid in full between 0.5 s and 5 s after their charge-off
instant, placed with an agency, got the placement letter ("… will handle it from now on and may
contact you") the next morning, before their payment was applied. Here accounts are paid in full at
moments from one second before to one policy day after their charge-off, placed and not placed, and
each must end with its payment recorded, exactly one receipt, and nothing else after the payment.
The other tests put a payment against each kind of message that can be waiting: a final message,
a plan reminder, a field visit's announcement (the dunning reminder's own test is
tests/workflows/test_waiting_reminder.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from domain.accounts import Account, Product
from domain.agencies import CloseRequest
from domain.plans import AgreedPlan, PlanKind, PlanProposal
from store.agencies import placement
from store.models import PaymentRow
from tests.conftest import random_phone
from tests.workflows.conftest import NY, Harness, at_local
from workflows.messages import PaymentIn

PLACED_BALANCE = 150_000  # above the default policy's placement minimum (USD 1,000)
UNPLACED_BALANCE = 20_000
#: seconds from the charge-off instant (local midnight) at which each pair of accounts pays in full:
#: in the charge-off's own writes, while the placement letter waits for 08:00, after it went, late
OFFSETS = [-1.0, 0.2, 1.0, 5.0, 60.0, 2 * 3600.0, 9 * 3600.0, 86_399.0]


def payments(harness: Harness, account: Account) -> list[tuple[str, int]]:
    with harness.sessions.begin() as s:
        rows = s.query(PaymentRow).filter(PaymentRow.account_id == account.account_id).order_by(PaymentRow.id)
        return [(r.reference, r.amount_minor) for r in rows]


def sent_after(harness: Harness, account: Account, moment: datetime) -> list[str]:
    return [c["template"] for c in harness.sent(account) if c["at"] >= moment]


async def test_paid_in_full_around_the_charge_off_gets_one_receipt_and_nothing_else(harness: Harness) -> None:
    today = (await harness.now()).astimezone(NY).date()
    await harness.skip_to(at_local(today + timedelta(days=1), 12))
    pairs: list[tuple[float, Account, Account]] = []
    for offset in OFFSETS:
        placed = await harness.open_account(
            due_in_days=-119, product=Product.CLOSED_END, balance=PLACED_BALANCE, fees=0, phone=random_phone()
        )
        unplaced = await harness.open_account(
            due_in_days=-119,
            product=Product.CLOSED_END,
            balance=UNPLACED_BALANCE,
            fees=0,
            phone=random_phone(),
        )
        pairs.append((offset, placed, unplaced))
    chargeoff = at_local(pairs[0][1].due_date + timedelta(days=120), 0)

    paid_at: dict[str, datetime] = {}
    for offset, placed, unplaced in pairs:
        await harness.skip_to(chargeoff + timedelta(seconds=offset))
        moment = await harness.now()
        for account in (placed, unplaced):
            paid_at[account.account_id] = moment
            await harness.handle(account).signal(
                "payment_received",
                PaymentIn(amount=account.balance, currency="USD", reference=f"full-{offset}"),
            )

    for offset, placed, unplaced in pairs:
        for account in (placed, unplaced):
            result = await harness.handle(account).result()
            where = (offset, account.balance)
            assert (result.state, result.balance, result.paid_total) == ("closed_paid", 0, account.balance), (
                where
            )
            assert payments(harness, account) == [(f"full-{offset}", account.balance)], where
            templates = [c["template"] for c in harness.sent(account)]
            assert templates.count("payment_receipt") == 1, (where, templates)
            after = sent_after(harness, account, paid_at[account.account_id])
            assert after == ["payment_receipt"], (where, after)
        if offset >= 60:  # by then the larger account was placed: the agency's file is closed, not left open
            with harness.sessions.begin() as s:
                ended = placement(s, f"{placed.account_id}/placement-1")
            assert ended is not None and ended.status == "completed", (offset, ended)


async def test_a_final_message_waiting_for_the_morning_gives_way_to_the_receipt(harness: Harness) -> None:
    """Written off at night: the final message waits for 08:00; paid in full before then, the debtor
    is told it is paid, not that it was written off."""
    account = await harness.open_account(due_in_days=-60, phone=random_phone())
    handle = harness.handle(account)
    await harness.skip_to(at_local(account.due_date + timedelta(days=61), 23))
    await handle.signal("close", CloseRequest(reason="written_off", note="uneconomic", actor="olga"))
    await harness.skip_to(at_local(account.due_date + timedelta(days=62), 2))
    moment = await harness.now()
    await handle.signal(
        "payment_received", PaymentIn(amount=account.balance, currency="USD", reference="late")
    )
    result = await handle.result()
    assert result.state == "closed_paid" and result.balance == 0
    assert sent_after(harness, account, moment) == ["payment_receipt"]
    assert "written_off" not in [c["template"] for c in harness.sent(account)]


async def test_a_plan_reminder_waiting_for_the_morning_is_withdrawn_when_the_instalment_is_paid(
    harness: Harness,
) -> None:
    account = await harness.open_account(due_in_days=-20, phone=random_phone(), balance=40_000, fees=0)
    handle = harness.handle(account)
    await harness.skip_to(at_local(account.due_date + timedelta(days=21), 12))
    today = (await harness.now()).astimezone(NY).date()
    plan = await handle.execute_update(
        "propose_settlement",
        PlanProposal(
            kind=PlanKind.REINSTALMENT, first_due=today + timedelta(days=7), periods=2, period_days=14
        ),
        result_type=AgreedPlan,
    )
    first = plan.instalments[0]
    # the reminder three days before the due date waits for its 10:00; the instalment is paid at
    # 07:00 that day, so neither that reminder nor the one the day before may go
    await harness.skip_to(at_local(first.due_date - timedelta(days=3), 7))
    moment = await harness.now()
    await handle.signal("payment_received", PaymentIn(amount=first.amount, currency="USD", reference="i1"))
    await harness.skip_to(at_local(first.due_date + timedelta(days=1), 12))
    reminders = [c for c in harness.sent(account) if c["template"] == "plan_reminder" and c["at"] >= moment]
    assert reminders == []  # neither the 3-day nor the 1-day reminder of a paid instalment


async def test_paid_in_full_calls_a_visit_off_at_once(harness: Harness) -> None:
    """A visit announced for next week: the debtor pays in full today. The visit is called off from
    the payment's own handler (not after the run records the payment), and the debtor hears only
    the receipt."""
    from tests.visits.test_visits import BALANCE, announced_visit, visits

    account = await harness.open_account(due_in_days=-100, phone=random_phone(76), balance=BALANCE, fees=0)
    visit = await announced_visit(harness, account.account_id)
    moment = await harness.now()
    await harness.handle(account).signal(
        "payment_received", PaymentIn(amount=BALANCE, currency="USD", reference="full")
    )
    result = await harness.handle(account).result()
    assert result.state == "closed_paid"
    assert sent_after(harness, account, moment) == ["payment_receipt"]
    ended = [v for v in visits(harness, account.account_id) if v.visit_id == visit.visit_id]
    assert ended and ended[0].status == "cancelled" and ended[0].cancel_reason == "paid"
