"""Every operator action on the console's account page, over the real app, a real account workflow on
the time-skipping server and a real database.

Each action is driven as an operator would (signed in, the page's CSRF token, the form's fields) and
checked three ways: the role that may do it gets it done and a role that may not gets 403 with nothing
changed; the workflow's own ``status`` (or its end) shows the change; the audit log names the person
who signed in, never "cli" or "console".
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from domain.accounts import Account, Mode
from domain.timeline import AccountStatus
from runtime.settings import Settings
from service.app import create_app
from store import agencies
from store.accounts import account_snapshot, set_mode
from store.audit import AuditEntry, audit_entries
from tests.service.conftest import PUBLIC
from tests.service.test_console import browser, csrf_of, status_of
from tests.workflows.conftest import Harness, at_local, running_harness

AGENT, SUPERVISOR, SECOND, AUDITOR = (
    "actions-agent-token-xxxxxxxxxxxxxxxx",
    "actions-supervisor-token-xxxxxxxxxxx",
    "actions-second-supervisor-token-xxxx",
    "actions-auditor-token-xxxxxxxxxxxxxx",
)
TOKENS = {
    AGENT: "alice:agent",
    SUPERVISOR: "sam:supervisor",
    SECOND: "kim:supervisor",
    AUDITOR: "ann:auditor",
}
#: every action of the account page and the grant its access-table line (and the API's route) requires
ACTIONS = {
    "pause": "write",
    "resume": "write",
    "complaint": "write",
    "complaint/decision": "write",
    "dispute": "write",
    "dispute/verification": "write",
    "cease": "write",
    "number": "write",
    "number/code": "write",
    "number/confirm": "write",
    "number/cancel": "write",
    "recall": "approve",
    "close": "approve",
    "reopen": "approve",
}


@pytest.fixture
async def harness(env: Any, settings: Settings, simulator: Any) -> AsyncIterator[Harness]:
    async with running_harness(env, settings, simulator) as h:
        yield h


@pytest.fixture
def console(harness: Harness) -> FastAPI:
    app = create_app(harness.settings.model_copy(update={"api_tokens": TOKENS, "public_base_url": PUBLIC}))
    app.state.temporal_client = harness.client
    app.state.sessions = harness.sessions
    return app


def lines(harness: Harness, account: Account, action: str | None = None) -> list[AuditEntry]:
    with harness.sessions.begin() as s:
        return [e for e in audit_entries(s, account.account_id) if action is None or e.action == action]


async def eventually(check: Callable[[], Any], what: str, tries: int = 200) -> Any:
    """Poll (50 ms) until ``check()`` is truthy: a workflow's own audit lines follow its activity."""
    for _ in range(tries):
        if value := check():
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


async def closed_as(harness: Harness, account: Account) -> str | None:
    """The close reason stored once the run has closed, a day later on the server's clock.

    Not ``handle.result()``: while it waits the test server may skip its clock years ahead to
    another run's timer, and an account reopened afterwards would be charged off at once."""
    await harness.skip_to(await harness.now() + timedelta(days=1))

    def closed() -> str | None:
        with harness.sessions.begin() as s:
            snap = account_snapshot(s, account.account_id)
        return snap.close_reason if snap is not None and snap.mode == Mode.CLOSED else None

    return await eventually(closed, "the account is closed")  # type: ignore[no-any-return]


async def act(web: httpx.AsyncClient, account: Account, path: str, **fields: str) -> httpx.Response:
    """Open the account page and post one of its forms, with the page's CSRF token."""
    page = await web.get(f"/console/accounts/{account.account_id}")
    return await web.post(
        f"/console/accounts/{account.account_id}/{path}", data={"csrf": csrf_of(page.text), **fields}
    )


async def followed(web: httpx.AsyncClient, response: httpx.Response) -> str:
    assert response.status_code == 303, response.text[:2000]
    return (await web.get(response.headers["location"])).text


def refused(html: str) -> str:
    found = re.search(r'<div class="notice bad" role="alert" id="refused">(.*?)</div>', html, re.S)
    assert found, "the page says nothing about why"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1))).strip()


async def test_an_agent_files_and_decides_a_complaint_which_lifts_the_hold(
    console: FastAPI, harness: Harness
) -> None:
    account = await harness.open_account(due_in_days=-20, phone="+12125550161")
    async with browser(console, AGENT) as web:
        page = await followed(
            web, await act(web, account, "complaint", reason="called at work", source="debtor")
        )
        assert "Complaint filed" in page and '<span class="badge hold">complaint</span>' in page
        assert (await status_of(harness, account)).holds == ["complaint"]
        assert 'id="act-complaint-decision" open' in page  # the decision is what is owed now

        missing = await act(web, account, "complaint/decision", note="looked at the calls")
        assert missing.status_code == 422
        assert refused(missing.text) == "Not done. decision: is required"
        assert "looked at the calls</textarea>" in missing.text  # the form as it was posted
        wrong = await act(web, account, "complaint/decision", decision="ignore")
        assert (
            wrong.status_code == 422
            and "decision: Input should be &#39;upheld&#39;, &#39;rejected&#39;, &#39;close&#39; or &#39;resume&#39;"
            in (wrong.text)
        )
        assert (await status_of(harness, account)).holds == ["complaint"]

        decided = await act(web, account, "complaint/decision", decision="resume", note="calls within hours")
        page = await followed(web, decided)
        assert "Complaint decided, not upheld" in page
        status = await status_of(harness, account)
        assert status.holds == [] and status.mode == Mode.DUNNING and status.complaint_due is None
        assert '<td data-label="Who" class="actor">alice</td>' in page  # the page names who decided

        again = await act(web, account, "complaint/decision", decision="resume")
        assert again.status_code == 409 and "has no open complaint to decide" in refused(again.text)

    filed = lines(harness, account, "complaint")
    assert [(e.actor, e.decision, e.details["source"]) for e in filed] == [("alice", "signalled", "debtor")]
    assert [(e.actor, e.decision) for e in lines(harness, account, "complaint_decision")] == [
        ("alice", "resume")
    ]
    note = lines(harness, account, "note")
    assert [(e.actor, e.decision, e.details["text"]) for e in note] == [
        ("alice", "complaint", "called at work"),
        ("alice", "complaint_decision", "calls within hours"),
    ]
    # the workflow's own record of the decision carries the person too (written by its activity)
    recorded = await eventually(
        lambda: [e for e in lines(harness, account) if e.decision == "complaint_resume"],
        "the decision recorded",
    )
    assert {e.actor for e in recorded} == {"alice"}
    assert not any(e.actor in ("cli", "console", "investigator") for e in lines(harness, account))
    await harness.finish(account.workflow_id)


async def test_an_upheld_complaint_closes_the_account(console: FastAPI, harness: Harness) -> None:
    account = await harness.open_account(due_in_days=-30, phone="+12125550162")
    async with browser(console, AGENT) as web:
        await followed(web, await act(web, account, "complaint", reason="harassment", source="regulator"))
        page = await followed(web, await act(web, account, "complaint/decision", decision="close"))
    assert "Complaint upheld" in page
    assert await closed_as(harness, account) == "complaint_upheld"


async def test_a_dispute_is_filed_and_verified_in_the_console(console: FastAPI, harness: Harness) -> None:
    account = await harness.open_account(due_in_days=-10, phone="+12125550163")
    async with browser(console, AGENT) as web:
        blank = await act(web, account, "dispute", reason="   ")
        assert blank.status_code == 422 and refused(blank.text) == "Not done. reason: is required"
        page = await followed(web, await act(web, account, "dispute", reason="not my loan"))
        assert "Dispute filed" in page and (await status_of(harness, account)).holds == ["dispute"]
        page = await followed(
            web, await act(web, account, "dispute/verification", note="contract and statement mailed")
        )
        assert "Dispute verified" in page
        assert (await status_of(harness, account)).holds == []
        again = await act(web, account, "dispute/verification")
        assert again.status_code == 409 and "has no open dispute to decide" in refused(again.text)
    assert [(e.actor, e.decision) for e in lines(harness, account, "dispute_verification")] == [
        ("alice", "verified")
    ]
    await eventually(
        lambda: [
            e for e in lines(harness, account) if e.decision == "dispute_verified" and e.actor == "alice"
        ],
        "the verification recorded under alice's name",
    )
    await harness.finish(account.workflow_id)


async def test_cease_stops_every_contact_but_the_one_notice(console: FastAPI, harness: Harness) -> None:
    account = await harness.open_account(due_in_days=-1, phone="+12125550164")
    async with browser(console, AGENT) as web:
        blank = await act(web, account, "cease", channel="")
        assert (
            blank.status_code == 422 and refused(blank.text) == "Not done. channel: choose all, sms or voice"
        )
        odd = await act(web, account, "cease", channel="email")
        assert odd.status_code == 422 and "channel: &#39;email&#39; is not all, sms or voice" in odd.text
        assert (await status_of(harness, account)).holds == []  # a blank form stopped nothing
        page = await followed(web, await act(web, account, "cease", channel="all"))
    assert "Contact stopped for good" in page and (await status_of(harness, account)).holds == ["cease"]
    await harness.skip_to(at_local(account.due_date + timedelta(days=45), 12))
    assert [c["template"] for c in harness.sent(account)] == ["cease_ack"]
    assert [(e.actor, e.details["channel"]) for e in lines(harness, account, "cease")] == [("alice", "all")]
    await harness.finish(account.workflow_id)


async def test_a_reader_may_do_none_of_it_and_an_agent_none_of_a_supervisors(
    console: FastAPI, harness: Harness
) -> None:
    account = await harness.open_account(due_in_days=-20, phone="+12125550165")
    fields = {"reason": "x", "decision": "close", "channel": "all", "note": "x", "source": "debtor"}
    async with browser(console, AUDITOR) as web:
        page = await web.get(f"/console/accounts/{account.account_id}")
        assert page.status_code == 200 and "/complaint" not in page.text and "/cease" not in page.text
        assert "/number" not in page.text
        for path in ACTIONS:
            refused_here = await act(web, account, path, **{**fields, "reason": "written_off"})
            assert refused_here.status_code == 403, path
            assert "Your role (auditor) may not" in refused_here.text, path
    async with browser(console, AGENT) as web:
        page = await web.get(f"/console/accounts/{account.account_id}")
        assert "/complaint" in page.text and "/close" not in page.text and "/reopen" not in page.text
        for path in (p for p, grant in ACTIONS.items() if grant == "approve"):
            refused_here = await act(web, account, path, **{**fields, "reason": "written_off"})
            assert refused_here.status_code == 403 and "may not approve" in refused_here.text, path
        forged = await web.post(
            f"/console/accounts/{account.account_id}/complaint", data={"csrf": "0" * 40, "reason": "x"}
        )
        assert forged.status_code == 403 and "Form expired" in forged.text
    status = await status_of(harness, account)
    assert status.holds == [] and status.mode == Mode.DUNNING
    assert not [
        e for e in lines(harness, account) if e.actor in ("ann", "alice") and e.action != "console_read"
    ]
    await harness.finish(account.workflow_id)


async def test_a_write_off_takes_two_supervisors_and_a_closed_account_is_reopened(
    console: FastAPI, harness: Harness
) -> None:
    account = await harness.open_account(due_in_days=-10, phone="+12125550166", balance=50_000, fees=0)
    async with browser(console, SUPERVISOR) as sam:
        bad = await act(sam, account, "close", reason="forgiven", note="")
        assert bad.status_code == 422
        assert (
            "reason: Input should be &#39;written_off&#39;, &#39;deceased&#39; or &#39;bankrupt&#39;"
            in bad.text
        )
        for _ in range(2):  # the same supervisor twice is still one pair of eyes
            page = await followed(
                sam, await act(sam, account, "close", reason="written_off", note="uneconomic")
            )
            assert "Write-off requested" in page and "A write-off requested by sam waits" in page
        assert (await status_of(harness, account)).mode == Mode.DUNNING
    async with browser(console, SECOND) as kim:
        page = await kim.get(f"/console/accounts/{account.account_id}")
        assert "(a write-off by sam waits for you)" in page.text
        page = await followed(kim, await act(kim, account, "close", reason="written_off", note=""))
        assert "Closing" in page
    assert await closed_as(harness, account) == "written_off"
    assert [(e.actor, e.decision) for e in lines(harness, account, "write_off")] == [
        ("sam", "requested"),
        ("sam", "requested"),
        ("kim", "confirmed"),
    ]

    # closed: the page offers a supervisor to reopen it, and reopening starts collection again
    async with browser(console, AGENT) as alice:
        page = await alice.get(f"/console/accounts/{account.account_id}")
        assert page.status_code == 200 and 'id="mode">closed<' in page.text
        assert "/reopen" not in page.text and "/complaint" not in page.text  # nothing to act on now
    async with browser(console, SUPERVISOR) as sam:
        page = await sam.get(f"/console/accounts/{account.account_id}")
        assert 'id="act-reopen" open' in page.text and "/close" not in page.text
        blank = await act(sam, account, "reopen", reason="")
        assert blank.status_code == 422 and refused(blank.text) == "Not done. reason: is required"
        page = await followed(sam, await act(sam, account, "reopen", reason="sale reversed"))
        assert "Reopened" in page and 'id="mode">dunning<' in page
        again = await act(sam, account, "reopen", reason="twice")
        assert again.status_code == 409 and "has a running workflow" in refused(again.text)
    assert (await status_of(harness, account)).mode == Mode.DUNNING
    reopened = lines(harness, account, "reopened")
    assert [(e.actor, e.details["reason"], e.details["close_reason"]) for e in reopened] == [
        ("sam", "sale reversed", "written_off")
    ]
    await harness.finish(account.workflow_id)


async def test_deceased_closes_at_once_with_the_supervisors_name(console: FastAPI, harness: Harness) -> None:
    account = await harness.open_account(due_in_days=-10, phone="+12125550167")
    async with browser(console, SUPERVISOR) as sam:
        page = await followed(
            sam, await act(sam, account, "close", reason="deceased", note="certificate seen")
        )
        assert "Closing" in page
        # closed (the run ended): it takes no more holds. Asked once the close is stored: asked while the
        # run was finishing its last task, the status query has missed its 30 s deadline in full suites
        assert await closed_as(harness, account) == "deceased"
        pause = await act(sam, account, "pause")
        assert pause.status_code == 409 and "closed" in refused(pause.text)
    assert [(e.actor, e.decision) for e in lines(harness, account, "close")] == [("sam", "deceased")]


async def test_an_account_temporal_no_longer_keeps_is_shown_from_the_database_and_reopened(
    console: FastAPI, harness: Harness
) -> None:
    account = await harness.open_account(due_in_days=-40, phone="+12125550168", start=False)
    with harness.sessions.begin() as s:
        set_mode(s, account.account_id, Mode.CLOSED, close_reason="written_off", now=datetime.now(UTC))
    async with browser(console, SUPERVISOR) as sam:
        page = await sam.get(f"/console/accounts/{account.account_id}")
        assert page.status_code == 200
        assert 'id="close-reason">written off<' in page.text and "USD 500.00" in page.text
        refused_page = await act(sam, account, "reopen", reason="")
        assert refused_page.status_code == 422 and "reason: is required" in refused_page.text
        page = await followed(sam, await act(sam, account, "reopen", reason="closed by mistake"))
        harness.started.append(account.workflow_id)
    assert "Reopened" in page and 'id="mode">dunning<' in page
    with harness.sessions.begin() as s:
        snap = account_snapshot(s, account.account_id)
    assert snap is not None and snap.mode == Mode.DUNNING
    await harness.finish(account.workflow_id)


async def test_a_placed_account_is_recalled_by_a_supervisor(console: FastAPI, harness: Harness) -> None:
    account = await harness.open_account(due_in_days=-178, phone="+12125550169", balance=200_000, fees=0)
    async with browser(console, SUPERVISOR) as sam:
        not_placed = await act(sam, account, "recall", reason="agency complaint")
        assert not_placed.status_code == 409 and "is not placed" in refused(not_placed.text)
    await harness.skip_to(at_local(account.due_date + timedelta(days=180), 12))

    def placed() -> agencies.PlacementView | None:
        with harness.sessions.begin() as s:
            return agencies.active_placement(s, account.account_id)

    first = await eventually(placed, "the account is placed at charge-off")
    async with browser(console, SUPERVISOR) as sam:
        page = await sam.get(f"/console/accounts/{account.account_id}")
        assert f"Placed with {first.agency_id}" in page.text and f"Recall from {first.agency_id}" in page.text
        assert account.debtor.phone not in page.text and "Jane" not in page.text
        too_long = await act(sam, account, "recall", reason="x" * 201)
        assert too_long.status_code == 422 and "reason: String should have at most 200 characters" in (
            too_long.text
        )
        page = await followed(sam, await act(sam, account, "recall", reason="agency complaint"))
        assert "Recalled from the agency" in page

    def ended() -> agencies.PlacementView | None:
        with harness.sessions.begin() as s:
            found = agencies.placement(s, first.placement_id)
        return found if found is not None and found.status == "recalled" else None

    assert (await eventually(ended, "the placement ends as recalled")).end_reason == "agency complaint"
    assert [(e.actor, e.details["agency"]) for e in lines(harness, account, "recall")] == [
        ("sam", first.agency_id)
    ]
    await eventually(
        lambda: [
            e for e in lines(harness, account) if e.decision == "placement_recalled" and e.actor == "sam"
        ],
        "the workflow records the recall under sam's name",
    )
    await harness.finish(account.workflow_id)


async def test_the_api_decides_complaints_and_disputes_and_ceases_with_the_same_rules(
    console: FastAPI, harness: Harness
) -> None:
    """The console's new actions are the API's too (the same service functions and grants)."""
    account = await harness.open_account(due_in_days=-20, phone="+12125550170")
    base = f"/api/accounts/{account.account_id}"
    agent, auditor = {"Authorization": f"Bearer {AGENT}"}, {"Authorization": f"Bearer {AUDITOR}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=console), base_url=PUBLIC) as api:
        nothing = await api.post(f"{base}/complaints/decision", json={"decision": "resume"}, headers=agent)
        assert nothing.status_code == 409 and "no open complaint" in nothing.json()["detail"]
        filed = await api.post(f"{base}/complaints", json={"reason": "rude"}, headers=agent)
        assert filed.status_code == 202
        forbidden = await api.post(
            f"{base}/complaints/decision", json={"decision": "resume"}, headers=auditor
        )
        assert forbidden.status_code == 403
        bad = await api.post(f"{base}/complaints/decision", json={"decision": "maybe"}, headers=agent)
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "decision"]
        done = await api.post(f"{base}/complaints/decision", json={"decision": "resume"}, headers=agent)
        assert done.status_code == 202 and done.json()["by"] == "alice"
        assert (await status_of(harness, account)).holds == []

        assert (await api.post(f"{base}/disputes", json={"reason": "paid"}, headers=agent)).status_code == 202
        verified = await api.post(f"{base}/disputes/verification", json={}, headers=agent)
        assert verified.status_code == 202
        ceased = await api.post(f"{base}/cease", json={"channel": "voice"}, headers=agent)
        assert ceased.status_code == 202
    status: AccountStatus = await status_of(harness, account)
    assert status.holds == ["cease:voice"]
    assert [e.actor for e in lines(harness, account) if e.action in ("complaint_decision", "cease")] == [
        "alice",
        "alice",
    ]
    await harness.finish(account.workflow_id)
