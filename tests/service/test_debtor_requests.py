"""The debtor complains or disputes from their own page: the same hold as an agent's, a case in the agents'
inbox with its number and deadline, one acknowledgement; an agent decides it in the console, the case is
answered and the page says so."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import httpx
from fastapi import FastAPI

from domain.accounts import HoldKind
from domain.cases import CaseKind
from service import cases as case_service
from service.app import create_app
from store import cases as case_store
from tests.service import test_selfservice as debtor_pages
from tests.service.test_console import browser
from tests.service.test_console import csrf_of as console_csrf
from tests.service.test_selfservice import csrf_of, link_for, overdue, signed_in, status_of
from tests.workflows.conftest import NY, Harness, at_local

#: the linked debtor's harness and the web client of the self-service tests
harness, web = debtor_pages.harness, debtor_pages.web
AGENT = "requests-agent-token-0123456789abcdefghij"


def _cases(harness: Harness, account_id: str) -> list[case_store.CaseView]:
    with harness.sessions.begin() as s:
        return case_store.cases_of(s, account_id)


async def test_a_complaint_from_the_page_stops_contact_opens_a_case_and_is_decided_in_the_console(
    harness: Harness, web: httpx.AsyncClient
) -> None:
    account = await overdue(harness)
    csrf = csrf_of(await signed_in(web, link_for(account)))
    empty = await web.post("/me/complaint", data={"lang": "en", "csrf": csrf, "text": "  "})
    assert empty.status_code == 422 and "Please write your request" in empty.text
    forged = await web.post(
        "/me/complaint", data={"lang": "en", "csrf": "nope", "text": "They called my boss"}
    )
    assert forged.status_code == 403 and not _cases(harness, account.account_id)

    for _ in range(2):  # a double click files one complaint
        filed = await web.post(
            "/me/complaint", data={"lang": "en", "csrf": csrf, "text": "They called my boss"}
        )
        assert filed.status_code == 303
    page = await web.get(filed.headers["location"])
    assert "Your complaint is filed" in page.text
    [case] = _cases(harness, account.account_id)
    assert case.kind.value == "complaint" and case.channel == "page" and case.summary == "They called my boss"
    assert f"<strong>{case.number}</strong> · complaint" in page.text and "our answer is due by" in page.text
    status = await status_of(harness, account)
    assert HoldKind.COMPLAINT.value in status.holds  # contact stopped at once

    # the agent finds it in the inbox and decides it on the account's page
    console: FastAPI = create_app(harness.settings.model_copy(update={"api_tokens": {AGENT: "ann:agent"}}))
    console.state.temporal_client = harness.client
    console.state.sessions = harness.sessions
    async with browser(console, AGENT) as agent:
        inbox = await agent.get("/console/queue", params={"view": "team"})
        assert case.number in inbox.text
        case_page = await agent.get(f"/console/cases/{case.id}")
        claimed = await agent.post(
            f"/console/cases/{case.id}/claim", data={"csrf": console_csrf(case_page.text)}
        )
        assert claimed.status_code == 303
        mine = await agent.get("/console/queue", params={"view": "mine"})
        assert case.number in mine.text
        answer_here = await agent.post(
            f"/console/cases/{case.id}/answer", data={"csrf": console_csrf(case_page.text), "text": "done"}
        )
        assert (
            "answered%20by%20its%20decision" in answer_here.headers["location"]
        )  # a complaint needs its decision
        account_page = await agent.get(f"/console/accounts/{account.account_id}")
        decided = await agent.post(
            f"/console/accounts/{account.account_id}/complaint/decision",
            data={"csrf": console_csrf(account_page.text), "decision": "resume", "note": "calls were lawful"},
        )
        assert decided.status_code == 303, decided.text[:500]
    [answered] = _cases(harness, account.account_id)
    assert (
        answered.status.value == "answered"
        and answered.owner == "ann"
        and "not upheld" in (answered.answer or "")
    )
    assert HoldKind.COMPLAINT.value not in (await status_of(harness, account)).holds
    again = await web.get("/me/account")
    assert re.search(rf"{case.number}</strong> · complaint ·\s+answered on", again.text)


async def test_a_dispute_from_the_page_stops_collection_until_it_is_verified(
    harness: Harness, web: httpx.AsyncClient
) -> None:
    account = await overdue(harness, language="zh-CN")
    csrf = csrf_of(await signed_in(web, link_for(account)))
    filed = await web.post("/me/dispute", data={"lang": "zh-CN", "csrf": csrf, "text": "我已经还清了"})
    assert filed.status_code == 303
    page = await web.get(filed.headers["location"])
    assert "您的异议已提交" in page.text
    [case] = _cases(harness, account.account_id)
    assert case.kind.value == "dispute" and f"{case.number}</strong> · 异议" in page.text
    assert HoldKind.DISPUTE.value in (await status_of(harness, account)).holds


async def test_a_plan_request_from_the_page_is_one_case(harness: Harness, web: httpx.AsyncClient) -> None:
    account = await overdue(harness)
    csrf = csrf_of(await signed_in(web, link_for(account)))
    for _ in range(2):
        assert (await web.post("/me/request-plan", data={"lang": "en", "csrf": csrf})).status_code == 303
    [case] = await _deadlines_set(harness, account.account_id)
    assert case.kind.value == "plan_request" and case.channel == "page"
    due = case.due_at.astimezone(NY)  # two business days later (on the engine's clock), at 17:00 local
    assert due.weekday() < 5 and (due.hour, due.minute) == (17, 0)
    assert case.remind_at < case.escalate_at < case.due_at


async def _deadlines_set(harness: Harness, account_id: str) -> list[case_store.CaseView]:
    """The cases once the case workflow has put its deadlines on the engine's clock."""
    for _ in range(100):
        found = _cases(harness, account_id)
        if found and all(c.due_at.astimezone(NY).hour == 17 for c in found):
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"the case's clock never set its deadlines: {found}")


async def test_an_agent_answers_a_message_and_the_reply_is_texted_once_through_the_gate(
    harness: Harness, web: httpx.AsyncClient
) -> None:
    account = await overdue(harness)
    case = await case_service.open_case(
        harness.client, harness.sessions, harness.settings, source_key=f"sms/SM{account.account_id}",
        account_id=account.account_id, kind=CaseKind.INBOUND_TEXT, channel="sms",
        summary="Can I pay on the 15th instead?", actor="debtor",
    )  # fmt: skip
    console: FastAPI = create_app(harness.settings.model_copy(update={"api_tokens": {AGENT: "ann:agent"}}))
    console.state.temporal_client = harness.client
    console.state.sessions = harness.sessions
    reply = "Yes, the 15th is fine: no reminder before then."
    async with browser(console, AGENT) as agent:
        page = await agent.get(f"/console/cases/{case.id}")
        too_long = await agent.post(
            f"/console/cases/{case.id}/answer",
            data={"csrf": console_csrf(page.text), "text": "x" * 81, "send": "on"},
        )
        assert "text%3A%20a%20reply%20texted" in too_long.headers["location"]
        answered = await agent.post(
            f"/console/cases/{case.id}/answer",
            data={"csrf": console_csrf(page.text), "text": reply, "send": "on"},
        )
        assert answered.status_code == 303 and "answered" in answered.headers["location"]
    await harness.skip_to(at_local((await harness.now()).astimezone(NY).date() + timedelta(days=1), 13))
    texts = [m.get("body") or "" for m in await harness.carrier_log(account.debtor.phone)]
    [sent] = [t for t in texts if reply in t]  # exactly one text carries the reply
    assert sent.startswith(f"Acme Finance: {reply} Questions? Call ")
    [done] = _cases(harness, account.account_id)
    assert done.status.value == "answered" and done.answer == reply
    with harness.sessions.begin() as s:
        assert [e.action for e in case_store.history(s, case.id)] == ["opened", "replied", "answered"]
