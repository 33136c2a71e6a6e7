"""Callbacks about a message to an emergency contact change what we know of *their* number, never the
debtor's; their STOP stops further texts to them (the contact gate reads it)."""

from __future__ import annotations

import uuid
from datetime import date

import httpx
from sqlalchemy.orm import Session, sessionmaker

from domain.accounts import Account, Channel, Debtor, EmergencyContact
from domain.gate import Audience
from domain.templates import forbidden_in
from store.accounts import account_snapshot, upsert_account
from store.contacts import mark_attempt, reserve_attempt, third_party_gate_inputs
from tests.service.conftest import NOW, Signer, random_phone

SMS = "/webhooks/twilio/sms"
STATUS = "/webhooks/twilio/message-status"


def with_emergency(sessions: sessionmaker[Session]) -> Account:
    account = Account(
        account_id=f"S-{uuid.uuid4().hex[:10]}",
        debtor=Debtor(name="Jane Doe", phone=random_phone(), timezone="America/New_York"),
        currency="USD",
        balance=123_456,
        due_date=date(2026, 11, 1),
        emergency=EmergencyContact(name="Li Lei", phone=f"+86138{uuid.uuid4().int % 10**8:08d}"),
    )
    with sessions.begin() as s:
        upsert_account(s, account, NOW)
    return account


def third_party_state(sessions: sessionmaker[Session], account: Account) -> tuple[str, list[Channel]]:
    with sessions.begin() as s:
        state, _ = third_party_gate_inputs(s, account.account_id, now=NOW)
    return state.third_party_status, state.unreachable


async def test_an_undelivered_locate_text_marks_their_number_not_the_debtors(
    http: httpx.AsyncClient, twilio: Signer, sessions: sessionmaker[Session]
) -> None:
    account = with_emergency(sessions)
    assert account.emergency is not None
    sid = f"SM{uuid.uuid4().hex}"
    with sessions.begin() as s:
        reserve_attempt(
            s,
            dedupe_key=f"{account.account_id}/locate/1",
            account_id=account.account_id,
            channel=Channel.SMS,
            purpose="dunning",
            template="third_party_locate",
            to_address=account.emergency.phone,
            now=NOW,
            audience=Audience.THIRD_PARTY,
        )
        mark_attempt(s, f"{account.account_id}/locate/1", state="accepted", provider_sid=sid, now=NOW)
    form = {
        "MessageSid": sid,
        "MessageStatus": "undelivered",
        "ErrorCode": "30003",
        "To": account.emergency.phone,
    }
    assert (await twilio.post(http, STATUS, form)).status_code == 200
    assert third_party_state(sessions, account) == ("unreachable", [])  # the debtor's SMS is untouched


async def test_stop_from_the_emergency_contact_opts_them_out_only(
    http: httpx.AsyncClient, twilio: Signer, sessions: sessionmaker[Session]
) -> None:
    account = with_emergency(sessions)
    assert account.emergency is not None
    form = {
        "MessageSid": "SMin1",
        "SmsSid": "SMin1",
        "From": account.emergency.phone,
        "To": "+1",
        "Body": "STOP",
    }
    response = await twilio.post(http, SMS, form)
    again = await twilio.post(http, SMS, {**form, "MessageSid": "SMin2", "SmsSid": "SMin2"})
    # one confirmation, as for anyone (no workflow sends it: this is not the debtor), naming no debt
    assert response.status_code == 200 and response.text.count("<Message>") == 1
    assert forbidden_in(response.text) == [] and "<Message" not in again.text
    assert third_party_state(sessions, account) == ("opted_out", [])
    with sessions.begin() as s:
        snap = account_snapshot(s, account.account_id)
    assert snap is not None and snap.opted_out == []  # the debtor did not opt out of anything


async def test_start_from_the_emergency_contact_lets_them_be_asked_again_once_confirmed(
    http: httpx.AsyncClient, twilio: Signer, sessions: sessionmaker[Session]
) -> None:
    account = with_emergency(sessions)
    assert account.emergency is not None
    replies = []
    for n, body in enumerate(("退订", "开始", "开始"), start=1):
        form = {"MessageSid": f"SMx{n}", "SmsSid": f"SMx{n}", "From": account.emergency.phone, "Body": body}
        replies.append((await twilio.post(http, SMS, form)).text)
    assert [r.count("<Message>") for r in replies] == [1, 1, 0]  # in the words' language, Chinese
    assert "您已退订" in replies[0] and "您已恢复接收" in replies[1]
    assert all(forbidden_in(r) == [] for r in replies)
    assert third_party_state(sessions, account) == ("active", [])
