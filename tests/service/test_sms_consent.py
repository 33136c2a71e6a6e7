"""Opt-out and opt-in against the real account workflows: texts from the debtor through the signed
webhook, confirmations through the contact gate to the carrier simulator. Each keyword twice in a row,
and the debtor gets exactly one confirmation per change, in the account's language."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import httpx
from sqlalchemy.orm import Session, sessionmaker

from domain.accounts import Account
from domain.timeline import AccountStatus
from store.accounts import account_snapshot
from tests.service.conftest import Served, Signer, quiesce, random_phone
from tests.service.test_inbound_sms import SMS, inbound
from tests.workflows.conftest import Harness, at_local

CONFIRMATIONS = ("opt_out_confirmation", "opt_in_confirmation")


async def until(check: Callable[[], bool], what: str, within: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"not within {within:.0f} s: {what}")
        await asyncio.sleep(0.1)


def confirmations(harness: Harness, account: Account) -> list[str]:
    """The confirmations the send activity says went out, oldest first."""
    return [c["template"] for c in harness.sent(account) if c["template"] in CONFIRMATIONS]


async def lawful_hours(harness: Harness) -> None:
    """Noon tomorrow in the debtor's zone: confirmations wait for a lawful hour like every text."""
    await harness.skip_to(at_local((await harness.now()).date() + timedelta(days=1), 12))


async def settled(harness: Harness, account: Account) -> AccountStatus:
    """The run's view once nothing is in flight (and a moment for anything late to show)."""
    handle = harness.handle(account)
    await quiesce(handle)
    await asyncio.sleep(0.5)
    await quiesce(handle)
    return await handle.query("status", result_type=AccountStatus)


def db_opted_out(sessions: sessionmaker[Session], account: Account) -> list[str]:
    with sessions.begin() as s:
        snap = account_snapshot(s, account.account_id)
    assert snap is not None
    return [c.value for c in snap.opted_out]


async def test_a_second_stop_while_the_confirmation_is_under_way_does_not_cancel_it(
    served: Served, http: httpx.AsyncClient, twilio: Signer
) -> None:
    """The bug of issue 14: the repeat's ``opt_out`` signal cancelled the send in flight, and the only
    confirmation was lost (a plan request did the same). The carrier refuses the confirmation's first
    try (503), so the second STOP lands while Temporal waits to retry it: before the fix, no
    confirmation ever went."""
    harness = served.harness
    phone = random_phone()
    account = await harness.open_account(due_in_days=30, phone=phone)
    await lawful_hours(harness)
    async with httpx.AsyncClient(base_url=harness.simulator_url) as sim:
        fault = {"status": 503, "count": 1, "path": "Messages", "method": "POST"}
        (await sim.post("/_sim/faults", json=fault)).raise_for_status()
        try:
            await twilio.post(http, SMS, inbound(phone, "STOP"))
            await until(
                lambda: any(
                    c["decision"] == "retry" and c["template"] == "opt_out_confirmation"
                    for c in harness.contacts(account)
                ),
                "the confirmation's first try refused",
            )
            again = await twilio.post(http, SMS, inbound(phone, "stop"))  # the retry is 2 s away
            assert "<Message" not in again.text
            await twilio.post(http, SMS, inbound(phone, "1"))  # a plan request neither
            await until(lambda: confirmations(harness, account) != [], "the confirmation sent")
        finally:
            await sim.delete("/_sim/faults")
    status = await settled(harness, account)
    assert status.opted_out == ["sms"] and "negotiation" in status.holds
    assert confirmations(harness, account) == ["opt_out_confirmation"]
    assert len(await harness.carrier_log(phone)) == 1  # the carrier saw exactly one text


async def test_stop_twice_start_twice_stop_again_one_confirmation_for_each_change(
    served: Served, http: httpx.AsyncClient, twilio: Signer, sessions: sessionmaker[Session]
) -> None:
    harness = served.harness
    phone = random_phone()
    account = await harness.open_account(due_in_days=30, phone=phone)
    await lawful_hours(harness)

    for body in ("STOP", "Stop."):
        assert "<Message" not in (await twilio.post(http, SMS, inbound(phone, body))).text
    await until(lambda: len(confirmations(harness, account)) == 1, "the opt-out confirmed")
    assert db_opted_out(sessions, account) == ["sms"]

    for body in ("START", "start"):
        assert "<Message" not in (await twilio.post(http, SMS, inbound(phone, body))).text
    await until(lambda: len(confirmations(harness, account)) == 2, "the opt-in confirmed")
    status = await settled(harness, account)
    assert status.opted_out == [] and db_opted_out(sessions, account) == []

    # a STOP after the START is a new opt-out: confirmed again, once
    for body in ("unsubscribe", "UNSUBSCRIBE"):
        await twilio.post(http, SMS, inbound(phone, body))
    await until(lambda: len(confirmations(harness, account)) == 3, "the second opt-out confirmed")
    status = await settled(harness, account)
    assert status.opted_out == ["sms"] and db_opted_out(sessions, account) == ["sms"]
    assert confirmations(harness, account) == [
        "opt_out_confirmation",
        "opt_in_confirmation",
        "opt_out_confirmation",
    ]
    bodies = [m["body"] for m in await harness.carrier_log(phone)]  # oldest first
    assert len(bodies) == 3
    assert "Reply START" in bodies[0] and "Reply STOP" not in bodies[0]
    assert "again" in bodies[1] and bodies[1].endswith("Reply STOP to opt out.")


async def test_chinese_keywords_twice_each_are_confirmed_once_in_chinese(
    served: Served, http: httpx.AsyncClient, twilio: Signer, sessions: sessionmaker[Session]
) -> None:
    harness = served.harness
    phone = random_phone()
    account = await harness.open_account(due_in_days=30, phone=phone, language="zh-CN")
    await lawful_hours(harness)
    for body in ("退订", "ＴＤ"):
        await twilio.post(http, SMS, inbound(phone, body))
    await until(lambda: len(confirmations(harness, account)) == 1, "退订 confirmed")
    for body in ("开始", "开始。"):
        await twilio.post(http, SMS, inbound(phone, body))
    await until(lambda: len(confirmations(harness, account)) == 2, "开始 confirmed")
    help_reply = (await twilio.post(http, SMS, inbound(phone, "帮助"))).text
    status = await settled(harness, account)
    assert status.opted_out == [] and db_opted_out(sessions, account) == []
    bodies = [m["body"] for m in await harness.carrier_log(phone)]  # oldest first
    assert len(bodies) == 2
    assert "您已退订" in bodies[0] and "回复“开始”" in bodies[0]
    assert "您已恢复接收" in bodies[1] and bodies[1].endswith("回复TD退订")
    # HELP names the same opt-out word as every text the debtor gets
    assert "如需帮助" in help_reply and help_reply.count("回复TD退订") == 1


async def test_two_accounts_on_one_number_send_one_confirmation_between_them(
    served: Served, http: httpx.AsyncClient, twilio: Signer
) -> None:
    harness = served.harness
    phone = random_phone()
    first = await harness.open_account(due_in_days=30, phone=phone)
    second = await harness.open_account(due_in_days=30, phone=phone)
    await lawful_hours(harness)
    for body in ("STOP", "STOP"):
        await twilio.post(http, SMS, inbound(phone, body))
    await until(lambda: len(confirmations(harness, first) + confirmations(harness, second)) == 1, "confirmed")
    assert (await settled(harness, first)).opted_out == ["sms"]
    assert (await settled(harness, second)).opted_out == ["sms"]
    assert len(confirmations(harness, first) + confirmations(harness, second)) == 1
    assert len(await harness.carrier_log(phone)) == 1


async def test_a_word_only_twilio_knows_opts_out_with_one_confirmation(
    served: Served, http: httpx.AsyncClient, twilio: Signer, sessions: sessionmaker[Session]
) -> None:
    harness = served.harness
    phone = random_phone()
    account = await harness.open_account(due_in_days=30, phone=phone)
    await lawful_hours(harness)
    for _ in range(2):  # a word the Messaging Service has and our lists do not
        await twilio.post(http, SMS, inbound(phone, "ARRET", OptOutType="STOP"))
    await until(lambda: len(confirmations(harness, account)) == 1, "confirmed")
    status = await settled(harness, account)
    assert status.opted_out == ["sms"] and db_opted_out(sessions, account) == ["sms"]
    assert len(await harness.carrier_log(phone)) == 1


async def test_plan_by_sms_puts_the_negotiation_hold_on(
    served: Served, http: httpx.AsyncClient, twilio: Signer
) -> None:
    harness = served.harness
    phone = random_phone()
    account = await harness.open_account(due_in_days=30, phone=phone)
    response = await twilio.post(http, SMS, inbound(phone, "协商"))
    assert "<Message>" in response.text
    status = await settled(harness, account)
    assert "negotiation" in status.holds
