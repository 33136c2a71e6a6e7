"""The reporting dashboard renders a seeded portfolio, and a real browser shows its charts.

The portfolio is written through the repository functions the workflows use (accounts at every
stage, payments over twelve weeks, SMS and call outcomes, plans kept and broken, holds, complaints
within and past their SLA, visits and placements) into a database of the test's own, so the numbers
on the page can be checked exactly. Headless Debian Chromium (PyPI ``playwright``, never
``playwright install``) takes the screenshot to ``test-artifacts/dashboard.png``.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn

from domain.accounts import Account, CloseReason, ContactOutcome, Debtor, Hold, HoldKind, Mode, Stage
from domain.plans import AgreedPlan, Instalment, PlanKind
from runtime.settings import Settings
from service.app import create_app
from service.auth import COOKIE
from service.dashboard import silent_svg
from store.accounts import set_mode, update_progress, upsert_account
from store.agencies import create_placement, create_visit, update_visit
from store.audit import audit
from store.contacts import mark_attempt, reserve_attempt
from store.db import make_engine, session_factory, upgrade
from store.holds import add_hold
from store.ledger import record_payment, save_plan, set_plan_status
from tests.conftest import free_port

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TOKEN = "dash-auditor-xxxxxxxxxxxxxxxxxxxx"
NOW = datetime.now(UTC).replace(microsecond=0)
STAGES = {Stage.PRE_DUE: 18, Stage.EARLY: 34, Stage.MIDDLE: 22, Stage.LATE: 12}


def seed(url: str) -> dict[str, int]:
    """A portfolio of 100 accounts with a recognisable shape; returns the counts the page must show."""
    rng = random.Random(7)
    sessions = session_factory(make_engine(url))
    ids: list[str] = []
    with sessions.begin() as s:
        n = 0
        for stage, count in [*STAGES.items(), (Stage.CHARGED_OFF, 14)]:
            for _ in range(count):
                n += 1
                acct = Account(
                    account_id=f"D-{n:04d}",
                    debtor=Debtor(name=f"Debtor {n}", phone=f"+1212555{n:04d}", timezone="America/New_York"),
                    currency="USD",
                    balance=rng.randrange(20_000, 400_000),
                    due_date=date(2026, 6, 1),
                )
                upsert_account(s, acct, NOW - timedelta(days=90))
                update_progress(
                    s, acct.account_id, stage=stage, dpd=None, balance_minor=None, paid_minor=None, now=NOW
                )
                ids.append(acct.account_id)
                if stage == Stage.CHARGED_OFF:
                    reason = CloseReason.PLACED if n % 2 else CloseReason.PAID
                    set_mode(s, acct.account_id, Mode.CLOSED, close_reason=reason, now=NOW)
        # payments: a recovery that picks up over twelve weeks
        for week in range(12):
            for k in range(3 + week):
                at = NOW - timedelta(weeks=11 - week, days=rng.randrange(0, 6))
                record_payment(
                    s,
                    account_id=rng.choice(ids),
                    amount_minor=rng.randrange(5_000, 60_000),
                    currency="USD",
                    reference=f"pay-{week}-{k}",
                    received_at=min(at, NOW),
                    source="lender",
                )
        # contacts: texts mostly delivered, calls with conversations, voicemails, no answers, a few silent
        sms = [ContactOutcome.DELIVERED] * 8 + [ContactOutcome.UNDELIVERABLE, ContactOutcome.OPTED_OUT]
        voice = (
            [ContactOutcome.CONVERSATION] * 8
            + [ContactOutcome.VOICEMAIL] * 3
            + [ContactOutcome.NO_ANSWER] * 3
            + [ContactOutcome.BUSY]
        )
        for i in range(240):
            channel = "sms" if i % 2 else "voice"
            at = NOW - timedelta(days=rng.randrange(0, 29), hours=rng.randrange(0, 8))
            outcome = rng.choice(sms if channel == "sms" else voice)
            if i in (58, 170):  # two abandoned calls in a month
                outcome = ContactOutcome.SILENT
            key = f"seed/{i}"
            reserve_attempt(
                s, dedupe_key=key, account_id=rng.choice(ids), channel=channel, purpose="dunning",
                template="seed", to_address="+12125550000", now=at,
            )  # fmt: skip
            mark_attempt(s, key, state="accepted", outcome=outcome, now=at)
        # settlements: 9 accepted (4 kept, 2 broken, 3 running) and 3 proposals refused
        for i in range(9):
            plan = AgreedPlan(
                plan_id=f"P-{i}",
                kind=PlanKind.REINSTALMENT,
                currency="USD",
                total=30_000,
                instalments=[Instalment(seq=1, due_date=date(2026, 12, 1), amount=30_000)],
                agreed_at=NOW - timedelta(days=20),
                proposed_by="agent",
            )
            save_plan(s, ids[20 + i], plan)
            if i < 4:
                set_plan_status(s, plan.plan_id, "completed", now=NOW)
            elif i < 6:
                set_plan_status(s, plan.plan_id, "broken", now=NOW)
        for i in range(3):
            audit(
                s,
                at=NOW,
                clock="policy",
                account_id=ids[i],
                actor="agent",
                action="plan_rejected",
                decision="plan_rejected",
            )
        # holds: pauses, disputes, one cease; complaints: 3 within the 15-day SLA, 1 overdue, 1 escalated
        for i, kind in enumerate([HoldKind.PAUSE] * 4 + [HoldKind.DISPUTE] * 3 + [HoldKind.CEASE]):
            add_hold(s, ids[40 + i], Hold(kind=kind, reason="seed", since=NOW - timedelta(days=2)))
        for i, age in enumerate([2, 5, 9, 20, 25]):
            add_hold(
                s, ids[50 + i], Hold(kind=HoldKind.COMPLAINT, reason="seed", since=NOW - timedelta(days=age))
            )
        audit(
            s,
            at=NOW,
            clock="policy",
            account_id=ids[54],
            actor="workflow",
            action="complaint_escalated",
            decision="complaint_escalated",
        )
        # visits and placements
        for i, status in enumerate(
            ["announced", "announced", "reported", "reported", "reported", "escalated", "cancelled"]
        ):
            create_visit(
                s, visit_id=f"V-{i}", account_id=ids[80 + i], agency_id="national-recovery",
                window_start=NOW, window_end=NOW + timedelta(hours=3), report_due=NOW + timedelta(days=2), now=NOW,
            )  # fmt: skip
            update_visit(s, f"V-{i}", NOW, status=status)
        for i in range(7):
            create_placement(
                s, placement_id=f"PL-{i}", account_id=ids[-1 - 2 * i], agency_id="national-recovery",
                currency="USD", balance_minor=100_000, now=NOW,
            )  # fmt: skip
    return {"open": sum(STAGES.values()), "complaints_open": 5}


@pytest.fixture(scope="module")
async def served(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    url = f"sqlite:///{tmp_path_factory.mktemp('dash') / 'dash.db'}"
    upgrade(url)
    seed(url)
    settings = Settings(database_url=url, api_tokens={TOKEN: "ada:auditor"}, _env_file=None)  # type: ignore[call-arg]
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


async def test_dashboard_renders_the_seeded_portfolio(served: str) -> None:
    async with httpx.AsyncClient(base_url=served) as http:
        assert (await http.get("/dashboard")).status_code == 401
        r = await http.get("/dashboard", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200
    page = r.text
    for chart in (
        "Portfolio funnel by stage",
        "Recovery rate over time",
        "Contact outcomes by channel",
        "Silent and abandoned call rate against the 3% line",
        "Settlements",
        "Holds by kind",
        "Complaints by SLA status",
    ):
        assert f'aria-label="{chart}"' in page, chart
    assert "<script" not in page and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    # the numbers drawn are the database's
    funnel = page.split('aria-label="Portfolio funnel by stage"')[1].split("</svg>")[0]
    drawn = [int(x) for x in re.findall(r'font-weight="600">(\d+)</text>', funnel)]
    assert drawn == [*STAGES.values(), 0]  # charged-off accounts are closed, not in the open funnel
    settlements = page.split('aria-label="Settlements"')[1].split("</svg>")[0]
    assert [int(x) for x in re.findall(r'font-weight="700">(\d+)</text>', settlements)] == [12, 9, 4, 2]
    assert "3% legal limit" in page
    complaints = page.split('aria-label="Complaints by SLA status"')[1].split("</svg>")[0]
    assert [int(x) for x in re.findall(r'font-weight="700">(\d+)</text>', complaints)] == [5, 3, 1, 1, 0]


def test_silent_rate_is_a_trailing_rate_and_points_above_the_line_are_red() -> None:
    days = [(date(2026, 11, d), s, 100) for d, s in [(1, 0), (2, 9), (3, 0), (4, 0)]]
    svg = str(silent_svg(days, window=7))
    assert "2026-11-02: 4.5%" in svg and "2026-11-03: 3.0%" in svg and "2026-11-04: 2.2%" in svg
    assert svg.count('fill="#dc2626"><title>') == 1  # only 2 Nov is over 3%; exactly 3% is lawful


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")
async def test_dashboard_in_a_real_browser(served: str) -> None:
    from playwright.async_api import async_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "dashboard.png"
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            context = await browser.new_context(viewport={"width": 1400, "height": 900})
            async with httpx.AsyncClient(base_url=served) as console:  # sign in: the cookie is a session id
                signed_in = await console.post("/console/login", data={"token": TOKEN, "next": "/console"})
                assert signed_in.status_code == 303, signed_in.text
                session_id = console.cookies[COOKIE]
            await context.add_cookies([{"name": COOKIE, "value": session_id, "url": served}])
            page = await context.new_page()
            requests: list[str] = []
            page.on("request", lambda req: requests.append(req.url))
            await page.goto(f"{served}/dashboard")
            assert await page.locator("svg[role=img]").count() >= 9
            box = await page.locator('svg[aria-label="Recovery rate over time"]').bounding_box()
            assert box is not None and box["width"] > 500 and box["height"] > 150
            await page.screenshot(path=str(shot), full_page=True)
        finally:
            await browser.close()
    assert all(u.startswith(served) for u in requests)  # nothing from a CDN, nothing from anywhere else
    assert shot.stat().st_size > 50_000
