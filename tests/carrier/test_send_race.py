"""Two sends for one account at the same moment: the live gate decides them one after the other.

A reminder from the account's workflow and a visit announcement from its child workflow can reach
the contact queue together. Each send activity reads the live ledger and decides; without the
account lock and the claim made in the same transaction, both would read "no text today" and a cap
of one text a day would let two through. Runs the real send activity (in threads, as the worker
does), the real database and the real twilio SDK against the carrier simulator.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import create_engine
from temporalio.testing import ActivityEnvironment

from activities.contact import ContactActivities
from activities.deps import Deps
from domain.accounts import Account, Channel, ContactOutcome, Debtor, Language
from domain.clock import PolicyClock
from domain.effects import SendRequest, SendResult
from domain.gate import Purpose
from domain.profiles import load_profile
from runtime.settings import Settings
from store.accounts import upsert_account
from store.contacts import contact_attempts
from tests.conftest import random_phone

NY = ZoneInfo("America/New_York")


def request(account: Account, key: str, template: str, at: datetime) -> SendRequest:
    return SendRequest(
        dedupe_key=f"{account.account_id}/{key}",
        account_id=account.account_id,
        channel=Channel.SMS,
        purpose=Purpose.DUNNING,
        template=template,
        language=Language.EN,
        profile="US",
        clock=PolicyClock(epoch=at),
        planned_at=at,
        context={"amount": "USD 500.00", "stage": "late"},
    )


async def test_two_texts_racing_for_one_account_pass_a_daily_cap_of_one_only_once(
    settings: Settings, simulator: Any
) -> None:
    assert load_profile("US").max_sms_per_day == 1
    # a weekday noon in New York, years from now: nothing else in the database is near it
    noon = datetime.combine(date(2041, 3, 6), time(12), tzinfo=NY)
    deps = Deps(settings=settings, engine=create_engine(settings.database_url))
    account = Account(
        account_id=f"R-{uuid.uuid4().hex[:10]}",
        debtor=Debtor(name="Jane Doe", phone=random_phone(), timezone="America/New_York"),
        currency="USD",
        balance=50_000,
        due_date=(noon - timedelta(days=100)).date(),
    )
    with deps.sessions.begin() as s:
        upsert_account(s, account, noon)
    sends = ContactActivities(deps)

    for round_ in range(5):  # the race is decided differently each time; the cap must hold every time
        at = noon + timedelta(days=7 * round_)  # a week apart: only the daily cap can bind
        first = request(account, f"{round_}:sms:settlement_offer", "settlement_offer", at)
        second = request(account, f"{round_}:sms:visit", "settlement_offer", at)
        results: list[SendResult] = await asyncio.gather(
            asyncio.to_thread(ActivityEnvironment().run, sends.send_contact, first),
            asyncio.to_thread(ActivityEnvironment().run, sends.send_contact, second),
        )
        went = [r for r in results if r.provider_sid]
        held = [r for r in results if r.deferred_until is not None]
        assert len(went) == 1 and len(held) == 1, results
        assert held[0].outcome == ContactOutcome.DENIED and held[0].rule == "cap.sms_per_day", held
        assert held[0].deferred_until > at  # type: ignore[operator]

    async with httpx.AsyncClient(base_url=simulator.url) as http:  # type: ignore[attr-defined]
        await http.post("/_sim/wait_idle", params={"timeout": 5})
        seen = [m for m in (await http.get("/_sim/messages")).json() if m.get("to") == account.debtor.phone]
    assert len(seen) == 5  # one text a day, as the carrier counts them
    with deps.sessions.begin() as s:
        attempts = contact_attempts(s, account.account_id)
    assert sorted(a.state for a in attempts) == ["accepted"] * 5 + ["retryable"] * 5
    assert all(a.sent_at is None for a in attempts if a.state == "retryable")  # deferred: not counted
    deps.engine.dispose()
