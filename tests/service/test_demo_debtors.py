"""The demo's debtors (carrier/debtors.py) act through the product's own doors, against real workflows.

A model file that leaves one thing to chance at most: the debtor engages with every contact and does
one given thing. The account's first overdue text goes through the gate to the carrier simulator, the
debtors see it delivered, and the account's run shows what a real debtor's act would have done: paid
off and closed, SMS opted out (by a signed STOP), a complaint hold (by a signed COMPLAINT), a plan
asked for by text and agreed through the plans API, its instalment paid on its day.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from carrier.callbacks import CallbackDispatcher
from carrier.debtors import DemoDebtors, debtors_from_accounts
from domain.accounts import Account
from lab.debtors import load_model
from service.inbound_sms import INBOUND_SMS
from tests.lab.forced import forced_model_file
from tests.service.conftest import AGENT_TOKEN, Served, random_phone
from tests.service.test_sms_consent import lawful_hours, settled, until
from tests.workflows.conftest import Harness, at_local


async def first_text_reacted(
    served: Served, tmp_path: Path, does: str, *, and_the_call: bool = False
) -> tuple[Account, DemoDebtors, httpx.AsyncClient]:
    """``and_the_call``: the debtor looks only once the next day's call has reached them too."""
    harness: Harness = served.harness
    phone = random_phone(42)  # a number the carrier delivers to (and a person answers)
    account = await harness.open_account(due_in_days=-3, phone=phone)  # tomorrow: day 4, the first text
    await lawful_hours(harness)
    await until(lambda: any(c["template"] for c in harness.sent(account)), "the first overdue text sent")
    if and_the_call:  # day 5 at noon: the policy's first call
        await harness.skip_to(at_local((await harness.now()).date() + timedelta(days=1), 12))
        await until(
            lambda: any(c["channel"] == "voice" for c in harness.sent(account)), "the first call made"
        )
    debtors = DemoDebtors(
        store=served.simulator.store,
        model=load_model(forced_model_file(tmp_path, does)),
        service_url=served.base,
        token=AGENT_TOKEN,
        auth_token=harness.settings.twilio_token,
        inbound_url=served.base + INBOUND_SMS,
        debtors=debtors_from_accounts([account]),
        plan_check_seconds=0,
        clock=harness.now,  # the time-skipping server's (a status answers at the run's last task)
    )
    http = httpx.AsyncClient(
        base_url=served.base, headers={"Authorization": f"Bearer {AGENT_TOKEN}"}, timeout=30
    )
    dispatcher = CallbackDispatcher(harness.settings.twilio_token, served.simulator.store)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while not debtors.reactions:
        assert loop.time() < deadline, "the debtor never reacted to the delivered text"
        await debtors.tick(http, dispatcher)
        await asyncio.sleep(0.2)
    await dispatcher.close()
    return account, debtors, http


@pytest.mark.parametrize("does", ["pay_full", "pay_part", "stop", "complain"])
async def test_a_debtor_acts_on_the_text_that_reached_them(served: Served, tmp_path: Path, does: str) -> None:
    account, debtors, http = await first_text_reacted(served, tmp_path, does)
    await http.aclose()
    assert debtors.reactions == {does: 1}
    status = await settled(served.harness, account)
    if does == "pay_full":
        assert status.closing == "paid" and status.balance == 0
        assert status.paid_total == account.balance  # what the status showed the debtor, all of it
    elif does == "pay_part":
        assert status.paid_total == account.balance // 4 and status.balance == account.balance * 3 // 4
        assert status.mode.value == "dunning"
    elif does == "stop":
        assert status.opted_out == ["sms"]  # the signed STOP went through the inbound webhook
    else:
        assert "complaint" in status.holds and status.complaint_due is not None


async def test_a_text_and_a_call_that_reached_a_debtor_together_are_paid_once(
    served: Served, tmp_path: Path
) -> None:
    """Both answered, each with a status that did not yet show the first payment, and the demo's
    debtor paid the whole balance twice (when the day-5 call came before their first look: by the hour
    the module's test-server clock started at)."""
    account, debtors, http = await first_text_reacted(served, tmp_path, "pay_full", and_the_call=True)
    await http.aclose()
    assert debtors.reactions == {"pay_full": 1}
    status = await settled(served.harness, account)
    assert status.closing == "paid" and status.paid_total == account.balance


async def test_a_debtor_asks_for_a_plan_by_text_and_pays_its_first_instalment_on_its_day(
    served: Served, tmp_path: Path
) -> None:
    harness = served.harness
    account, debtors, http = await first_text_reacted(served, tmp_path, "plan")
    try:
        status = await settled(harness, account)
        assert status.plan is not None and len(status.plan.instalments) == 3
        first = status.plan.instalments[0]
        assert first.due_date > status.policy_now.date()
        await debtors.tick(http, CallbackDispatcher(harness.settings.twilio_token, served.simulator.store))
        assert (await settled(harness, account)).plan_paid == 0  # not before its day
        await harness.skip_to(at_local(first.due_date, 12))
        await debtors.tick(http, CallbackDispatcher(harness.settings.twilio_token, served.simulator.store))
        status = await settled(harness, account)
        assert status.plan_paid == first.amount
    finally:
        await http.aclose()
