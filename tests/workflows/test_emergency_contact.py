"""The emergency contact end to end: asked once how to reach an unreachable debtor, told nothing else.

Real time-skipping Temporal server, real database, the real twilio SDK against the carrier
simulator; what counts is what the simulator received on the emergency contact's number.
Every debtor here lives in New York and names an emergency contact in Shanghai, so the debtor's
10:00 reminder falls in the emergency contact's night: the locate message has to wait for 08:00 in
Shanghai, which leaves time to see that nothing goes early, and to file a cease or a new number first.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from domain.accounts import Account, Channel, Debtor, EmergencyContact, Product
from domain.masking import mask_phone
from domain.templates import forbidden_in
from domain.timeline import AccountStatus
from store.accounts import update_phone, upsert_account
from store.contacts import contact_attempts, set_contact_status
from tests.workflows.conftest import NY, Harness, at_local
from workflows.messages import CeaseRequest, ContactUpdate, OptOut

#: Every test here also runs with continue-as-new forced at every wake-up (tests/conftest.py).
HAND_OVER_EVERY_WAKE_TOO = True

REACHABLE = "+12125550142"  # delivered, and a person answers
SHANGHAI = ZoneInfo("Asia/Shanghai")


def dead_number() -> str:
    """A number of its own (the simulator is shared) ending 98: texts fail with 30005 (unknown handset)."""
    return f"+1212{random.randrange(200, 999)}{random.randrange(100):02d}98"


def shanghai_mobile() -> str:
    """A fresh number per account (the simulator is shared), ending 00-59: texts are delivered."""
    return f"+86138{random.randrange(10**6):06d}{random.randrange(60):02d}"


async def open_with_emergency(harness: Harness, phone: str, due_date: date) -> Account:
    account = Account(
        account_id=f"T-{uuid.uuid4().hex[:10]}",
        debtor=Debtor(name="Jane Doe", phone=phone, timezone="America/New_York"),
        product=Product.CREDIT_LINE,
        currency="USD",
        balance=123_456,
        fees=2_500,
        due_date=due_date,
        emergency=EmergencyContact(name="Li Lei", phone=shanghai_mobile()),
    )
    with harness.sessions.begin() as s:
        upsert_account(s, account, await harness.now())
    await harness.start(account)
    return account


async def open_unreachable(harness: Harness, due_date: date) -> Account:
    """A debtor who stopped calls (keypad 9: the webhook writes the database, then signals) and whose
    only number cannot take texts: once the first reminder bounces, every channel is gone."""
    account = await open_with_emergency(harness, dead_number(), due_date)
    with harness.sessions.begin() as s:
        set_contact_status(s, account.account_id, Channel.VOICE, "opted_out", await harness.now())
    await harness.handle(account).signal("opt_out", OptOut(channel=Channel.VOICE, source="debtor_keypad"))
    return account


async def contact_lost(harness: Harness, account: Account) -> bool:
    """Wait (in real time, a few seconds at most) until the run has taken in its failed sends."""
    for _ in range(100):
        status = await harness.handle(account).query("status", result_type=AccountStatus)
        if status.contact_lost:
            return True
        await asyncio.sleep(0.1)
    return False


async def test_an_unreachable_debtors_emergency_contact_is_asked_once_and_told_nothing(
    harness: Harness,
) -> None:
    # start in the small hours, so every account's first reminder is at 10:00 New York today
    day = (await harness.now()).astimezone(NY).date() + timedelta(days=1)
    await harness.skip_to(at_local(day, 3))
    due = day - timedelta(days=4)  # the first day after the 3-day grace period
    lost = await open_unreachable(harness, due)
    ceased = await open_unreachable(harness, due)
    found = await open_unreachable(harness, due)
    unsignalled = await open_unreachable(harness, due)
    reachable = await open_with_emergency(harness, REACHABLE, due)
    assert lost.emergency and ceased.emergency and found.emergency and reachable.emergency
    assert unsignalled.emergency

    # 12:00 in New York (midnight in Shanghai): contact is lost, the emergency contact sleeps
    await harness.skip_to(at_local(day, 12))
    for account in (lost, ceased, found, unsignalled):
        assert await contact_lost(harness, account)
    assert await harness.carrier_log(lost.emergency.phone) == []  # quiet hours in *their* zone

    await harness.handle(ceased).signal("cease_requested", CeaseRequest(channel=None))
    with harness.sessions.begin() as s:  # the debtor called in with a new number
        update_phone(s, found.account_id, "+12125550143", await harness.now())
        # the same, but the workflow is never told: the send activity's live gate must notice
        update_phone(s, unsignalled.account_id, "+12125550144", await harness.now())
    await harness.handle(found).signal(
        "contact_updated", ContactUpdate(masked_phone=mask_phone("+12125550143"), zones=["America/New_York"])
    )

    # nine days on: past the 7-day cap, so a second message would have had its chance
    await harness.skip_to(at_local(day + timedelta(days=9), 12))
    log = await harness.carrier_log(lost.emergency.phone)
    assert len(log) == 1, log
    body = log[0]["body"]
    assert "Jane" in body and "Reply STOP to opt out." in body
    assert forbidden_in(body) == []  # no debt word, no amount, no currency
    assert "1,234.56" not in body and "1234.56" not in body
    assert await harness.carrier_log(ceased.emergency.phone) == []  # a cease stops asking others too
    assert await harness.carrier_log(found.emergency.phone) == []  # a new number ends locating
    assert await harness.carrier_log(unsignalled.emergency.phone) == []
    refused = [c for c in harness.contacts(unsignalled) if c["template"] == "third_party_locate"]
    assert refused and {c["rule"] for c in refused} == {"third_party.debtor_reachable"}
    assert await harness.carrier_log(reachable.emergency.phone) == []  # never while the debtor answers
    assert harness.sent(reachable)  # (dunning did run for that one)

    # the database knows whom it went to; Temporal never saw the name or the number
    with harness.sessions.begin() as s:
        attempts = [a for a in contact_attempts(s, lost.account_id) if a.audience == "third_party"]
    assert [(a.template, a.state.value) for a in attempts] == [("third_party_locate", "accepted")]
    assert attempts[0].sent_at is not None  # sent in Shanghai's daytime, the first morning after
    assert 8 <= attempts[0].sent_at.astimezone(SHANGHAI).hour < 21
    assert attempts[0].sent_at.astimezone(SHANGHAI).date() == day + timedelta(days=1)
    history = await harness.client.get_workflow_handle(lost.workflow_id).fetch_history()
    raw = b"".join(e.SerializeToString() for e in history.events)  # payloads as stored, undecoded
    assert lost.emergency.phone.lstrip("+").encode() not in raw and b"Li Lei" not in raw
    events = await harness.handle(lost).query("history")
    assert [e["kind"] for e in events].count("locate_sent") == 1
