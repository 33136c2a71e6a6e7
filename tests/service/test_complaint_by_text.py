"""A complaint by text, end to end: one acknowledgement with its case number, contact stops at once, the
case shows in the agents' inbox, an agent decides it in the console, and the decision is the first thing
the debtor hears afterwards. A message that is no keyword becomes a case for a person."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
from fastapi import FastAPI

from domain.accounts import HoldKind
from service.app import create_app
from store import cases as case_store
from tests.service import test_selfservice as debtor_pages
from tests.service.conftest import PUBLIC, Signer
from tests.service.test_console import browser
from tests.service.test_console import csrf_of as console_csrf
from tests.service.test_selfservice import overdue, status_of
from tests.workflows.conftest import NY, Harness, at_local

#: the linked debtor's harness and the web client of the self-service tests
harness, web = debtor_pages.harness, debtor_pages.web
AGENT = "text-complaint-agent-token-0123456789abcdef"


async def texted(web: httpx.AsyncClient, twilio: Signer, phone: str, body: str) -> httpx.Response:
    params = {"MessageSid": f"SM{uuid.uuid4().hex}", "From": phone, "To": "+15005550006", "Body": body}
    return await twilio.post(web, "/webhooks/twilio/sms", params, base=PUBLIC)


def _cases(harness: Harness, account_id: str) -> list[case_store.CaseView]:
    with harness.sessions.begin() as s:
        return case_store.cases_of(s, account_id)


async def test_a_complaint_by_text_is_acknowledged_once_decided_in_the_console_and_told_first(
    harness: Harness, web: httpx.AsyncClient, twilio: Signer
) -> None:
    account = await overdue(harness)
    for body in ("COMPLAINT", "complaint!"):  # twice in a row: one complaint, the second noted on its case
        assert (await texted(web, twilio, account.debtor.phone, body)).status_code == 200
    [case] = _cases(harness, account.account_id)
    assert case.kind.value == "complaint" and case.channel == "sms"
    assert HoldKind.COMPLAINT.value in (await status_of(harness, account)).holds  # contact stops at once
    with harness.sessions.begin() as s:
        assert [e.action for e in case_store.history(s, case.id)] == ["opened", "texted_again"]

    day = (await harness.now()).astimezone(NY).date()
    await harness.skip_to(at_local(day + timedelta(days=1), 13))
    texts = [m.get("body") or "" for m in await harness.carrier_log(account.debtor.phone)]
    acks = [t for t in texts if "we have received your complaint" in t]
    assert len(acks) == 1 and f"case {case.number}" in acks[0]

    console: FastAPI = create_app(harness.settings.model_copy(update={"api_tokens": {AGENT: "ann:agent"}}))
    console.state.temporal_client = harness.client
    console.state.sessions = harness.sessions
    async with browser(console, AGENT) as agent:
        assert case.number in (await agent.get("/console/queue", params={"view": "team"})).text
        page = await agent.get(f"/console/accounts/{account.account_id}")
        decided = await agent.post(
            f"/console/accounts/{account.account_id}/complaint/decision",
            data={"csrf": console_csrf(page.text), "decision": "rejected", "note": "calls were lawful"},
        )
        assert decided.status_code == 303, decided.text[:300]
    before = len(await harness.carrier_log(account.debtor.phone))
    await harness.skip_to(at_local(day + timedelta(days=10), 13))
    after = [m.get("body") or "" for m in (await harness.carrier_log(account.debtor.phone))[before:]]
    assert after, "the decision was never sent"
    assert "we have not upheld your complaint" in after[0]  # the decision before any further contact
    assert "Consumer Financial Protection Bureau" in after[0] or "CFPB" in after[0]
    assert _cases(harness, account.account_id)[0].status.value == "answered"


async def test_a_message_that_is_no_keyword_reaches_a_person(
    harness: Harness, web: httpx.AsyncClient, twilio: Signer
) -> None:
    account = await overdue(harness)
    await texted(web, twilio, account.debtor.phone, "I lost my job, can we talk next week?")
    [case] = _cases(harness, account.account_id)
    assert case.kind.value == "inbound_text" and case.summary == "I lost my job, can we talk next week?"
    assert HoldKind.COMPLAINT.value not in (await status_of(harness, account)).holds
