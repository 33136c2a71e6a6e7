"""The debtor downloads the agreement of a plan really agreed: real workflows, the real database, the
HTTP app. Only a session verified by the date of birth gets it; without a plan the answer is a page
that says so; with one, a PDF whose schedule is the plan's as the workflow agreed it.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pypdf
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from domain.accounts import Mode
from domain.money import format_minor
from domain.timeline import AccountStatus
from runtime.settings import Settings
from service.app import create_app
from store.audit import audit_entries
from tests.service.conftest import PUBLIC
from tests.service.test_selfservice import BORN, SECRET, csrf_of, link_for, overdue, signed_in, status_of
from tests.workflows.conftest import NY, Harness, running_harness

AGENT = "agreement-agent-token-0123456789abcdef"
SUPER = "agreement-supervisor-token-0123456789ab"
PDF = "/me/agreement.pdf"


@pytest.fixture
async def harness(env: Any, settings: Settings, simulator: Any) -> AsyncIterator[Harness]:
    linked = settings.model_copy(
        update={
            "link_secret": SecretStr(SECRET),
            "self_service_url": f"{PUBLIC}/me",
            "link_ttl_days": 14,
            "company_name": "Acme Finance",
            "callback_number": "+12125550100",
            "api_tokens": {AGENT: "ann:agent", SUPER: "sam:supervisor"},
        }
    )
    async with running_harness(env, linked, simulator) as h:
        yield h


@pytest.fixture
async def web(harness: Harness) -> AsyncIterator[httpx.AsyncClient]:
    app: FastAPI = create_app(harness.settings)
    app.state.temporal_client = harness.client
    app.state.sessions = harness.sessions
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC) as client:
        yield client


def text_of(data: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(data))
    return " ".join(" ".join(page.extract_text().split()) for page in reader.pages)


async def download(web: httpx.AsyncClient, **params: str) -> httpx.Response:
    """The agreement, once the plan the workflow agreed is on record (its record activity follows)."""
    for _ in range(100):
        got = await web.get(PDF, params=params)
        if got.status_code != 404:
            return got
        await asyncio.sleep(0.1)
    return got


def rows(status: AccountStatus) -> list[str]:
    """The schedule the workflow agreed, as a PDF table row reads: ``1 2026-12-10 USD 158.34``."""
    assert status.plan is not None
    return [
        f"{i.seq} {i.due_date} {format_minor(i.amount, status.plan.currency)}"
        for i in status.plan.instalments
    ]


async def test_only_a_verified_session_gets_it_and_without_a_plan_the_page_says_so(
    harness: Harness, web: httpx.AsyncClient
) -> None:
    account = await overdue(harness)
    nobody = await web.get(PDF)
    assert nobody.status_code == 401 and "application/pdf" not in nobody.headers["content-type"]

    asked = await web.get(link_for(account), follow_redirects=True)  # a session, before the date of birth
    refused = await web.get(PDF)
    assert refused.status_code == 403 and "application/pdf" not in refused.headers["content-type"]
    assert "date of birth" in refused.text and "USD" not in refused.text

    await web.post("/me/verify", data={"born": BORN.isoformat(), "csrf": csrf_of(asked)})
    none = await web.get(PDF)
    assert none.status_code == 404 and "No agreement yet" in none.text
    assert none.headers["cache-control"] == "no-store"
    page = await web.get("/me/account")
    assert 'id="agreement"' not in page.text  # no plan, no link


async def test_a_promise_agreed_on_the_page_downloads_as_its_agreement(
    harness: Harness, web: httpx.AsyncClient
) -> None:
    account = await overdue(harness)
    csrf = csrf_of(await signed_in(web, link_for(account)))
    due = (await harness.now()).astimezone(NY).date() + timedelta(days=10)
    kept = await web.post(
        "/me/promise", data={"lang": "en", "csrf": csrf, "date": due.isoformat(), "amount": "200.00"}
    )
    assert kept.status_code == 303
    status = await status_of(harness, account)
    assert status.mode == Mode.SETTLEMENT and status.plan is not None

    page = await web.get(kept.headers["location"])
    assert 'href="/me/agreement.pdf?lang=en"' in page.text and "Download the agreement (PDF)" in page.text

    got = await download(web)
    assert got.status_code == 200, got.text
    assert got.headers["content-type"] == "application/pdf"
    assert got.headers["cache-control"] == "no-store"
    assert got.headers["content-disposition"] == f'attachment; filename="agreement-{status.plan.plan_id}.pdf"'
    text = text_of(got.content)
    assert "Payment plan agreement" in text and f"Plan ID {status.plan.plan_id}" in text
    assert "Plan Promise to pay" in text and "Total to pay USD 200.00" in text
    assert rows(status) == [f"1 {due} USD 200.00"] and f"1 {due} USD 200.00 Total USD 200.00" in text
    agreed = status.plan.agreed_at.astimezone(NY).date()
    assert f"Agreed on {agreed}" in text
    assert "Acme Finance, phone +12125550100" in text and f"{PUBLIC}/me" in text
    assert "Consumer Financial Protection Bureau (CFPB)" in text  # the account runs the US profile
    assert "Fee waiver" not in text
    with harness.sessions.begin() as s:
        downloads = [
            e.details["plan_id"]
            for e in audit_entries(s, account.account_id)
            if e.decision == "agreement_downloaded"
        ]
    assert downloads == [status.plan.plan_id]


async def test_a_waiver_approved_by_a_supervisor_is_in_the_chinese_agreement_with_its_approver(
    harness: Harness, web: httpx.AsyncClient
) -> None:
    account = await overdue(harness, language="zh-CN")
    first_due = (await harness.now()).astimezone(NY).date() + timedelta(days=14)
    waiver = {
        "kind": "fee_waiver",
        "first_due": first_due.isoformat(),
        "periods": 3,
        "waiver": 2_500,
        "hardship_evidence": "medical certificate 2026-11-02",
    }
    path = f"/api/accounts/{account.account_id}/waivers"
    queued = await web.post(path, json=waiver, headers={"Authorization": f"Bearer {AGENT}"})
    assert queued.status_code == 202, queued.text
    approved = await web.post(
        f"/api/waivers/{queued.json()['id']}/approve", headers={"Authorization": f"Bearer {SUPER}"}
    )
    assert approved.status_code == 200, approved.text
    status = await status_of(harness, account)
    assert status.plan is not None and status.plan.approver == "sam"

    await signed_in(web, link_for(account))
    got = await download(web)  # the account's language
    assert got.status_code == 200, got.text
    text = text_of(got.content)
    assert "还款计划协议" in text and "方案 减免罚息费用，其余按计划还款" in text
    assert "应还总额 USD 475.00" in text  # USD 500.00 less the USD 25.00 of fees waived
    schedule = rows(status)
    assert len(schedule) == 3 and " ".join([*schedule, "合计 USD 475.00"]) in text
    assert "减免罚息费用 USD 25.00" in text and "由 sam 于" in text and "批准" in text
    assert "美国消费者金融保护局（CFPB）" in text and "Acme Finance，电话 +12125550100" in text
    assert "medical certificate" not in text  # the evidence stays with the lender

    english = await download(web, lang="en")
    assert english.status_code == 200
    english_text = text_of(english.content)
    assert "Payment plan agreement" in english_text
    assert "Late fees of USD 25.00 are waived" in english_text and "Approved by sam on" in english_text
    assert " ".join([*schedule, "Total USD 475.00"]) in english_text
