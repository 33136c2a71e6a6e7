"""The agent console over the real app, a real account workflow on the time-skipping server, a real database.

Each test reads what an agent would see (the HTML) and, where it matters, what the workflow itself
says afterwards (its ``status`` query): a page that claims a plan was agreed must mean the workflow
switched to settlement, and a page that refuses one must have left dunning untouched.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from fastapi import FastAPI

from domain.accounts import Account, Mode
from domain.masking import mask_phone
from domain.plans import add_months
from domain.timeline import AccountStatus
from runtime.settings import Settings
from service.app import create_app
from service.auth import COOKIE
from store.audit import audit_entries
from store.refunds import queue_refund
from store.refunds import refund as refund_by_id
from tests.service.conftest import PUBLIC
from tests.workflows.conftest import Harness, running_harness

AGENT, SUPERVISOR, AUDITOR = (
    "agent-token-1-xxxxxxxxxxxxxxxxxxx",
    "supervisor-token-1-xxxxxxxxxxxxxx",
    "auditor-token-1-xxxxxxxxxxxxxxxxx",
)
TOKENS = {AGENT: "alice:agent", SUPERVISOR: "sam:supervisor", AUDITOR: "ann:auditor"}


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


@asynccontextmanager
async def browser(app: FastAPI, token: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """A client that keeps cookies like a browser; logged in with ``token`` when given."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC) as client:
        if token is not None:
            response = await client.post("/console/login", data={"token": token, "next": "/console"})
            assert response.status_code == 303
        yield client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


async def overdue(harness: Harness, days: int = 40) -> Account:
    return await harness.open_account(due_in_days=-days, phone="+12125550142", balance=90_000, fees=3_000)


async def status_of(harness: Harness, account: Account) -> AccountStatus:
    return await harness.client.get_workflow_handle(account.workflow_id).query(
        "status", result_type=AccountStatus
    )


async def test_pages_need_a_login_and_the_cookie_is_httponly_and_strict(console: FastAPI) -> None:
    async with browser(console) as web:
        response = await web.get("/console")
        assert response.status_code == 303
        assert response.headers["location"].startswith("/console/login?next=")

        refused = await web.post("/console/login", data={"token": "guess", "next": "/console"})
        assert refused.status_code == 401
        assert "not valid" in refused.text
        assert COOKIE not in web.cookies

        accepted = await web.post("/console/login", data={"token": AGENT, "next": "/console"})
        assert accepted.status_code == 303
        cookie = accepted.headers["set-cookie"].lower()
        assert cookie.startswith(f"{COOKIE}=") and AGENT.lower() not in cookie  # an opaque session id
        assert "httponly" in cookie and "samesite=strict" in cookie

        page = await web.get("/console")
        assert page.status_code == 200
        assert "alice (agent)" in page.text

        # an open redirect after login is refused: only console paths
        elsewhere = await web.post("/console/login", data={"token": AGENT, "next": "https://evil.example/"})
        assert elsewhere.headers["location"] == "/console"


async def test_account_page_shows_status_timeline_and_only_the_masked_phone(
    console: FastAPI, harness: Harness
) -> None:
    account = await overdue(harness)
    async with browser(console, AGENT) as web:
        page = await web.get(f"/console/accounts/{account.account_id}")
    assert page.status_code == 200
    html = page.text
    assert "USD 900.00" in html
    assert ">middle<" in html  # the stage at 40 days past due
    assert mask_phone(account.debtor.phone) in html
    assert account.debtor.phone not in html and "5550142" not in html.replace("***0142", "")
    assert "Jane" not in html  # no name either
    chargeoff = account.due_date + timedelta(days=180)
    assert f"contact ends at charge-off on <strong>{chargeoff}</strong>" in html
    assert "Contact history" in html and "Build a plan" in html


async def test_plan_preview_names_the_broken_rule_and_changes_nothing(
    console: FastAPI, harness: Harness
) -> None:
    account = await overdue(harness)
    async with browser(console, AGENT) as web:
        page = await web.get(f"/console/accounts/{account.account_id}")
        csrf = csrf_of(page.text)
        too_late = add_months(account.due_date, 13) + timedelta(days=5)
        form = {"csrf": csrf, "kind": "deferral", "first_due": too_late.isoformat(), "periods": "1"}

        forged = await web.post(
            f"/console/accounts/{account.account_id}/plan/preview", data={**form, "csrf": "x"}
        )
        assert forged.status_code == 403

        preview = await web.post(f"/console/accounts/{account.account_id}/plan/preview", data=form)
        assert preview.status_code == 200
        assert 'data-verdict="rejected"' in preview.text
        assert "deferral.max_months" in preview.text
        assert str(too_late) in preview.text  # the schedule is shown too

        fragment = await web.post(
            f"/console/accounts/{account.account_id}/plan/preview?fragment=1", data=form
        )
        assert "deferral.max_months" in fragment.text and "<html" not in fragment.text

        # submitting it anyway is refused with the same rule, before the workflow is asked
        submitted = await web.post(f"/console/accounts/{account.account_id}/plan", data=form)
        assert submitted.status_code == 422
        assert "deferral.max_months" in submitted.text
    assert (await status_of(harness, account)).mode == Mode.DUNNING


async def test_submitting_a_valid_plan_moves_the_account_to_settlement(
    console: FastAPI, harness: Harness
) -> None:
    account = await overdue(harness)
    today = (await harness.now()).date()
    async with browser(console, AGENT) as web:
        page = await web.get(f"/console/accounts/{account.account_id}")
        form = {
            "csrf": csrf_of(page.text),
            "kind": "reinstalment",
            "first_due": (today + timedelta(days=7)).isoformat(),
            "periods": "3",
            "period_days": "30",
        }
        preview = await web.post(f"/console/accounts/{account.account_id}/plan/preview", data=form)
        assert 'data-verdict="acceptable"' in preview.text
        assert preview.text.count("USD 300.00") >= 3  # 900.00 in three instalments

        submitted = await web.post(f"/console/accounts/{account.account_id}/plan", data=form)
        assert submitted.status_code == 303
        after = await web.get(submitted.headers["location"])
    assert "Plan agreed" in after.text
    assert 'id="mode">settlement<' in after.text
    status = await status_of(harness, account)
    assert status.mode == Mode.SETTLEMENT
    assert status.plan is not None and status.plan.proposed_by == "alice"


async def test_an_auditor_reads_but_cannot_preview_or_submit(console: FastAPI, harness: Harness) -> None:
    account = await overdue(harness)
    async with browser(console, AUDITOR) as web:
        page = await web.get(f"/console/accounts/{account.account_id}")
        assert page.status_code == 200 and "Build a plan" not in page.text
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
        assert csrf  # the logout form
        refused = await web.post(
            f"/console/accounts/{account.account_id}/plan",
            data={"csrf": csrf.group(1), "kind": "deferral", "first_due": "2030-01-01"},
        )
        assert refused.status_code == 403
        assert "may not write" in refused.text
        queue = await web.get("/console/approvals")
        assert queue.status_code == 403


async def test_a_fee_waiver_waits_for_a_supervisor_who_approves_it(
    console: FastAPI, harness: Harness
) -> None:
    account = await overdue(harness)
    today = (await harness.now()).date()
    async with browser(console, AGENT) as agent:
        page = await agent.get(f"/console/accounts/{account.account_id}")
        form = {
            "csrf": csrf_of(page.text),
            "kind": "fee_waiver",
            "first_due": (today + timedelta(days=5)).isoformat(),
            "periods": "2",
            "period_days": "30",
            "waiver": "30.00",
            "hardship_evidence": "unemployment letter",
        }
        preview = await agent.post(f"/console/accounts/{account.account_id}/plan/preview", data=form)
        assert 'data-verdict="needs_approval"' in preview.text
        queued = await agent.post(f"/console/accounts/{account.account_id}/plan", data=form)
        assert queued.status_code == 303 and "waiver_queued" in queued.headers["location"]
    assert (await status_of(harness, account)).mode == Mode.DUNNING

    async with browser(console, SUPERVISOR) as boss:
        queue = await boss.get("/console/approvals")
        assert account.account_id in queue.text and "USD 30.00" in queue.text
        section = queue.text.split(account.account_id, 1)[1]
        request_id = re.search(r"/console/approvals/(\d+)/approve", section)
        assert request_id
        approved = await boss.post(
            f"/console/approvals/{request_id.group(1)}/approve", data={"csrf": csrf_of(queue.text)}
        )
        assert approved.status_code == 303 and "Approved" in approved.headers["location"].replace("%20", " ")
    status = await status_of(harness, account)
    assert status.mode == Mode.SETTLEMENT
    assert status.plan is not None and status.plan.approver == "sam" and status.plan.waived == 3_000


async def test_search_input_errors_name_the_field(console: FastAPI) -> None:
    async with browser(console, AGENT) as web:
        page = await web.get("/console", params={"dpd_min": "forty", "stage": "middle"})
    assert page.status_code == 422
    assert "dpd_min: &#39;forty&#39; is not a whole number" in page.text


async def test_the_refund_queue_page_lists_an_open_refund_and_a_supervisor_resolves_it(
    console: FastAPI, harness: Harness
) -> None:
    account = await harness.open_account(due_in_days=-20, start=False)
    with harness.sessions.begin() as s:
        refund = queue_refund(
            s, account_id=account.account_id, reference="late-7", amount_minor=4_200, currency="USD",
            reason="received after the account closed (paid)", now=datetime.now(UTC),
        )  # fmt: skip
    async with browser(console, AGENT) as agent:
        home = await agent.get("/console")
        assert 'href="/console/refunds"' in home.text  # in the navigation
        listed = await agent.get("/console/refunds")
        assert listed.status_code == 200
        section = listed.text.split(f"#{refund.id} ·", 1)[1].split("</section>", 1)[0]
        assert account.account_id in section and "USD 42.00" in section
        assert "received after the account closed (paid)" in section
        assert "/resolve" not in section  # an agent sees it, a supervisor decides
        refused = await agent.post(
            f"/console/refunds/{refund.id}/resolve", data={"csrf": csrf_of(listed.text), "status": "refunded"}
        )
        assert refused.status_code == 403
    async with browser(console, SUPERVISOR) as boss:
        page = await boss.get("/console/refunds")
        assert f"/console/refunds/{refund.id}/resolve" in page.text
        forged = await boss.post(
            f"/console/refunds/{refund.id}/resolve", data={"csrf": "x", "status": "refunded"}
        )
        assert forged.status_code == 403
        form = {"csrf": csrf_of(page.text), "status": "refunded", "note": "wire W-77"}
        done = await boss.post(f"/console/refunds/{refund.id}/resolve", data=form)
        assert done.status_code == 303 and f"Refund #{refund.id} refunded" in unquote(
            done.headers["location"]
        )
        after = await boss.get(done.headers["location"])
        assert f"#{refund.id} ·" not in after.text
        again = await boss.post(f"/console/refunds/{refund.id}/resolve", data=form)
        assert "already refunded" in unquote(again.headers["location"])
    with harness.sessions.begin() as s:
        stored = refund_by_id(s, refund.id)
        lines = [e for e in audit_entries(s, account.account_id) if e.action == "refund_resolved"]
    assert stored is not None and (stored.status, stored.resolved_by, stored.note) == (
        "refunded",
        "sam",
        "wire W-77",
    )
    assert [(e.actor, e.decision) for e in lines] == [("sam", "refunded")]
