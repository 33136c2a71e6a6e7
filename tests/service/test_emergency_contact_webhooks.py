"""Callbacks about a message to an emergency contact change what we know of *their* number, never the
debtor's; their STOP stops further texts to them (the contact gate reads it); any other reply of theirs
is a lead in the agents' inbox (an ``emergency_reply`` case), never a number on file."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from domain.accounts import Account, Channel, Debtor, EmergencyContact
from domain.cases import CaseKind
from domain.gate import Audience
from domain.masking import mask_phone
from domain.templates import forbidden_in
from runtime.settings import Settings
from service.app import create_app
from service.cases import answer_case
from store import cases as case_store
from store.accounts import account_snapshot, upsert_account
from store.audit import audit_entries
from store.contacts import mark_attempt, reserve_attempt, third_party_gate_inputs
from tests.service.conftest import NOW, PUBLIC, Signer, random_phone
from tests.workflows.conftest import running_harness

SMS = "/webhooks/twilio/sms"
STATUS = "/webhooks/twilio/message-status"


def with_emergency(sessions: sessionmaker[Session], emergency_phone: str | None = None) -> Account:
    account = Account(
        account_id=f"S-{uuid.uuid4().hex[:10]}",
        debtor=Debtor(name="Jane Doe", phone=random_phone(), timezone="America/New_York"),
        currency="USD",
        balance=123_456,
        due_date=date(2026, 11, 1),
        emergency=EmergencyContact(
            name="Li Lei", phone=emergency_phone or f"+86138{uuid.uuid4().int % 10**8:08d}"
        ),
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


@pytest.fixture
async def with_cases(env: Any, settings: Settings, simulator: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The app over a worker that runs the cases' clocks (``CaseWorkflow``): a case started on a task
    queue nobody polls would hold the time-skipping server's clock."""
    async with running_harness(env, settings, simulator) as harness:
        app = create_app(harness.settings.model_copy(update={"public_base_url": PUBLIC}))
        app.state.temporal_client = harness.client
        app.state.sessions = harness.sessions
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC) as client:
            yield client


async def test_a_reply_from_the_emergency_contact_is_a_lead_in_the_inbox_never_a_number_on_file(
    with_cases: httpx.AsyncClient, twilio: Signer, sessions: sessionmaker[Session], env: Any
) -> None:
    """One case per account naming the sender, holding the text as written; the numbers it offers are
    found (masked in the audit line) and nothing is written to the debtor's contact points."""
    http = with_cases
    first = with_emergency(sessions)
    assert first.emergency is not None
    second = with_emergency(sessions, emergency_phone=first.emergency.phone)  # one person named by two
    sid = f"SM{uuid.uuid4().hex}"
    text = "李雷: 她的新号码是 13912345678"
    form = {"MessageSid": sid, "From": first.emergency.phone, "To": "+1", "Body": text}
    try:
        for _ in range(2):  # delivered twice: still one case each
            response = await twilio.post(http, SMS, form)
            assert response.status_code == 200 and "<Message" not in response.text
        with sessions.begin() as s:
            opened = [case_store.cases_of(s, a.account_id) for a in (first, second)]
            on_file = [account_snapshot(s, a.account_id) for a in (first, second)]
            lines = [e for e in audit_entries(s, first.account_id) if e.action == "inbound_sms"]
        assert [[(c.kind, c.summary, c.channel) for c in cases] for cases in opened] == [
            [(CaseKind.EMERGENCY_REPLY, text, "sms")]
        ] * 2
        assert [snap.phone for snap in on_file if snap] == [first.debtor.phone, second.debtor.phone]
        assert [(e.actor, e.decision, e.details["leads"], e.details["from"]) for e in lines] == [
            ("emergency_contact", "emergency_reply", ["+86 139****5678"], mask_phone(first.emergency.phone))
        ]
        assert "13912345678" not in str(lines[0].details)

        # a text from someone who is nobody's emergency contact opens nothing
        stranger = {"MessageSid": f"SM{uuid.uuid4().hex}", "From": random_phone(), "To": "+1", "Body": "hi"}
        assert (await twilio.post(http, SMS, stranger)).status_code == 200
        with sessions.begin() as s:
            assert len(case_store.cases_of(s, first.account_id)) == 1
    finally:  # answered, each case's clock ends by itself (a run terminated mid-task would hold the
        # time-skipping server's clock)
        with sessions.begin() as s:
            opened_ids = [c.id for a in (first, second) for c in case_store.cases_of(s, a.account_id)]
        for case_id in opened_ids:
            await answer_case(env.client, sessions, case_id, "ann", "called the new number")
