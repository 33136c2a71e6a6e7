"""A payment or a plan while a reminder is still waiting to go out (a sender backlog at the pacing limit).

* A part payment: before, the run recorded it only after that send finished, so with a backlog of
  minutes the account showed the old balance all that time, and the reminder then quoted it to a
  debtor who had just paid. Now the payment withdraws the waiting reminder, shows at once, and the
  reminder goes out once, with the new balance.
* A plan: the reminder is under way, so the update takes the careful path. The stored state says
  "settlement" before it answers (the send's own gate would refuse), and the reminder never goes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import update

from domain.money import format_minor
from domain.plans import AgreedPlan, PlanKind, PlanProposal
from domain.timeline import AccountStatus
from runtime.settings import Settings
from store.accounts import account_snapshot
from store.contacts import contact_attempts
from store.models import SenderPacingRow
from store.pacing import acquire_slot
from tests.workflows.conftest import NY, at_local, running_harness
from workflows.messages import PaymentIn

#: Every test here also runs with continue-as-new forced at every wake-up (tests/conftest.py).
HAND_OVER_EVERY_WAKE_TOO = True

SENDER = "+15005550911"  # a sender of this test's own: its backlog holds up nobody else's sends
PHONE = "+12125550151"
PLAN_PHONE = "+12125550152"
#: How long the sender's schedule is taken by others: long enough to check the payment inside it.
BOOKED = 30.0


async def until(probe: Callable[[], Awaitable[Any]], ok: Callable[[Any], bool], within: float = 60.0) -> Any:
    """Poll in real time (the send waits in real time); fail with the last value at the deadline."""
    deadline = time.monotonic() + within
    while True:
        value = await probe()
        if ok(value):
            return value
        assert time.monotonic() < deadline, f"still {value!r} after {within} s"
        await asyncio.sleep(0.2)


def book_sender(sessions: Any, *, seconds: float) -> None:
    """The sender's schedule is full for ``seconds``: other accounts' sends are queued before ours."""
    acquire_slot(sessions, SENDER, 1.0)  # the sender's row exists
    with sessions.begin() as s:
        s.execute(
            update(SenderPacingRow)
            .where(SenderPacingRow.sender == SENDER)
            .values(next_at_us=int((time.time() + seconds) * 1_000_000))
        )


async def test_a_part_payment_withdraws_a_waiting_reminder_and_shows_at_once(
    env: object, settings: Settings, simulator: Any
) -> None:
    own = settings.model_copy(update={"twilio_from_number": SENDER})
    async with running_harness(env, own, simulator) as harness:
        today = (await harness.now()).astimezone(NY).date()
        # taken in a minute before the day's 10:00 reminder (one from before intake is never caught up)
        ten = at_local(today + timedelta(days=1), 10)
        await harness.skip_to(ten - timedelta(minutes=1))
        account = await harness.open_account(due_in_days=-4, phone=PHONE, balance=50_000)
        # four days past due at 10:00 (the grace period over): the policy's first reminder is due, and waits for its slot
        book_sender(harness.sessions, seconds=BOOKED)
        await harness.skip_to(ten)
        handle = harness.handle(account)

        async def attempts() -> list[Any]:
            with harness.sessions.begin() as s:
                return contact_attempts(s, account.account_id)

        await until(attempts, lambda rows: len(rows) == 1)  # reserved, waiting for the sender
        before = await handle.query("status", result_type=AccountStatus)
        assert before.paid_total == 0

        signalled = time.monotonic()
        await handle.signal(
            "payment_received", PaymentIn(amount=10_000, currency="USD", reference=f"{account.account_id}-p1")
        )

        async def status() -> AccountStatus:
            return await handle.query("status", result_type=AccountStatus)

        # the sender is still booked for minutes: the payment shows without waiting for it
        after = await until(status, lambda s: s.paid_total == 10_000)
        print(f"payment visible after {time.monotonic() - signalled:.1f} s")
        assert after.balance == before.balance - 10_000

        async def stored() -> tuple[int, int] | None:
            # the run shows the payment as it schedules its record; the row follows a moment later
            with harness.sessions.begin() as s:
                snap = account_snapshot(s, account.account_id)
            return None if snap is None else (snap.paid_minor, snap.balance_minor)

        await until(stored, lambda row: row == (10_000, after.balance), within=20)
        assert time.time() < repo_booked_until(harness.sessions), "the backlog ended before the check"

        async def texts() -> list[dict[str, Any]]:
            async with httpx.AsyncClient(base_url=harness.simulator_url) as http:
                items = (await http.get("/_sim/messages")).json()
            items = items if isinstance(items, list) else items.get("messages", [])
            return [m for m in items if m.get("to") == PHONE]

        sent = await until(texts, lambda items: len(items) >= 1, within=BOOKED + 60)
        await asyncio.sleep(2)  # anything else that was going to go out has gone out
        sent = await texts()
        assert len(sent) == 1, sent  # the withdrawn reminder never went out; its step went once
        body = sent[0]["body"]
        assert format_minor(after.balance, "USD") in body, body
        assert format_minor(before.balance, "USD") not in body, body


def repo_booked_until(sessions: Any) -> float:
    with sessions.begin() as s:
        row = s.get(SenderPacingRow, SENDER)
    assert row is not None
    return row.next_at_us / 1_000_000


async def test_a_plan_agreed_while_a_reminder_waits_is_stored_before_the_answer_and_the_reminder_never_goes(
    env: object, settings: Settings, simulator: Any
) -> None:
    own = settings.model_copy(update={"twilio_from_number": SENDER})
    async with running_harness(env, own, simulator) as harness:
        today = (await harness.now()).astimezone(NY).date()
        ten = at_local(today + timedelta(days=1), 10)
        await harness.skip_to(ten - timedelta(minutes=1))
        account = await harness.open_account(due_in_days=-4, phone=PLAN_PHONE, balance=50_000)
        book_sender(harness.sessions, seconds=BOOKED)
        await harness.skip_to(ten)
        handle = harness.handle(account)

        async def attempts() -> list[Any]:
            with harness.sessions.begin() as s:
                return contact_attempts(s, account.account_id)

        await until(attempts, lambda rows: len(rows) == 1)  # the reminder is under way
        proposal = PlanProposal(kind=PlanKind.PROMISE_TO_PAY, first_due=today + timedelta(days=15))
        plan = await handle.execute_update("propose_settlement", proposal, result_type=AgreedPlan)
        with harness.sessions.begin() as s:
            snap = account_snapshot(s, account.account_id)
            stored = contact_attempts(s, account.account_id)
        assert snap is not None and snap.mode == "settlement"  # stored before the answer
        assert [a.state for a in stored] != ["reserved"]  # the waiting reminder was withdrawn
        assert plan.instalments

        await asyncio.sleep(BOOKED + 5)  # past the backlog: the withdrawn reminder must not go now

        async with httpx.AsyncClient(base_url=harness.simulator_url) as http:
            items = (await http.get("/_sim/messages")).json()
        items = items if isinstance(items, list) else items.get("messages", [])
        # the withdrawn reminder never went; what the debtor gets is the agreement in writing, once
        to_debtor = [m.get("body", "") for m in items if m.get("to") == PLAN_PHONE]
        assert [b for b in to_debtor if "plan is agreed" not in b] == []
        assert len(to_debtor) <= 1
