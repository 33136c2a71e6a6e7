"""The console's what-if: a supervisor compares two policies on a segment of the real book.

Accounts are stored as intake stores them (real database); a stored policy version with fewer agent
calls stands beside the ``default`` file, and the page must run the strategy lab on exactly the
segment's accounts, show both policies with their different contact counts, and audit the run under
the supervisor's name. Agents are refused, and bad input names its field without running anything.
"""

from __future__ import annotations

import html
import json
import random
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from domain.accounts import Account, Debtor, Product
from domain.policy import POLICY_DIR
from domain.rules import RuleSource, version_of
from domain.segments import Segment, matches
from runtime.settings import Settings
from service import console_whatif
from service.app import create_app
from store.accounts import upsert_account
from store.models import AuditRow
from store.rules import save_sources
from store.segments import segment_accounts
from tests.service.conftest import PUBLIC

SUPERVISOR, AGENT = "whatif-supervisor-token-xxxxxxxxxxxx", "whatif-agent-token-xxxxxxxxxxxxxxxxx"
TOKENS = {SUPERVISOR: "sam:supervisor", AGENT: "alice:agent"}
#: a balance no other test's account has: the segment is these accounts and no others
BALANCE = 1_234_568  # GBP 12,345.68
BAND = {"balance_min": "12345.67", "balance_max": "12345.69"}
BOOK = 6


@pytest.fixture
def console(service_settings: Settings, sessions: sessionmaker[Session]) -> FastAPI:
    app = create_app(service_settings.model_copy(update={"api_tokens": TOKENS}))
    app.state.sessions = sessions
    return app


async def browser(app: FastAPI, token: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC) as client:
        assert (
            await client.post("/console/login", data={"token": token, "next": "/console"})
        ).status_code == 303
        yield client


@pytest.fixture
async def supervisor(console: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async for client in browser(console, SUPERVISOR):
        yield client


@pytest.fixture
async def agent(console: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async for client in browser(console, AGENT):
        yield client


@pytest.fixture(scope="module")
def book(sessions: sessionmaker[Session]) -> list[Account]:
    """UK closed-end loans 40 days past due, in dunning, with the test's own balance."""
    today = datetime.now(UTC).date()
    serials = random.Random().sample(range(1000), BOOK)
    accounts = [
        Account(
            account_id=f"WHATIF-{serial:03d}-{i}",
            debtor=Debtor(
                name="Jane Doe", phone=f"+4477009{serial:03d}{10 * i + 5:02d}", timezone="Europe/London"
            ),
            product=Product.CLOSED_END,
            profile="UK",
            currency="GBP",
            balance=BALANCE,
            due_date=today - timedelta(days=40),
        )
        for i, serial in enumerate(serials)
    ]
    with sessions.begin() as s:
        for account in accounts:
            upsert_account(s, account, datetime.now(UTC))
    return accounts


@pytest.fixture(scope="module")
def fewer_calls(sessions: sessionmaker[Session]) -> str:
    """The default policy with agent calls every 21 days instead of 7, stored as intake stores a version."""
    text = (POLICY_DIR / "default.toml").read_text(encoding="utf-8")
    assert text.count("every_days = 7\n") == 1, "the default policy's weekly agent call moved"
    text = text.replace('name = "default"', 'name = "fewer-calls"').replace(
        "every_days = 7\n", "every_days = 21\n"
    )
    version = version_of("fewer-calls", text)
    with sessions.begin() as s:
        save_sources(
            s, [RuleSource(kind="policy", name="fewer-calls", version=version, text=text)], datetime.now(UTC)
        )
    return version


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert found, "the page has no CSRF field"
    return found.group(1)


async def post(web: httpx.AsyncClient, **fields: str) -> httpx.Response:
    form = await web.get("/console/whatif")
    assert form.status_code == 200, form.text[:500]
    data = {"csrf": csrf_of(form.text), "source": "portfolio", "days": "60", "seed": "1", **fields}
    return await web.post("/console/whatif", data=data)


def report(page: str) -> list[dict[str, Any]]:
    found = re.search(r'<pre id="whatif-json"[^>]*>(.*?)</pre>', page, re.S)
    assert found, "no report on the page"
    return json.loads(html.unescape(found.group(1)))  # type: ignore[no-any-return]


def runs(sessions: sessionmaker[Session]) -> list[AuditRow]:
    with sessions.begin() as s:
        rows = s.scalars(select(AuditRow).where(AuditRow.action == "whatif_run").order_by(AuditRow.id)).all()
        s.expunge_all()
    return list(rows)


async def test_a_supervisor_compares_two_policies_on_a_segment_of_the_book(
    supervisor: httpx.AsyncClient, book: list[Account], fewer_calls: str, sessions: sessionmaker[Session]
) -> None:
    form = await supervisor.get("/console/whatif")
    assert fewer_calls in form.text, "stored policy versions are offered beside the files"
    before = len(runs(sessions))

    response = await post(
        supervisor,
        policy_a="default",
        policy_b=fewer_calls,
        profile="UK",
        product="closed_end",
        debtors="silent",  # the cadences alone: a debtor who answers a call may pay and get no more texts
        **BAND,
    )

    assert response.status_code == 200, response.text[:2000]
    default, fewer = report(response.text)
    assert (default["policy"], fewer["policy"]) == ("default", fewer_calls)
    assert default["accounts"] == fewer["accounts"] == BOOK, "exactly the segment's stored accounts"
    calls = default["totals"]["by_channel"]["voice"], fewer["totals"]["by_channel"]["voice"]
    assert calls[0] > calls[1] > 0, f"weekly agent calls against every 21 days: {calls}"
    assert default["totals"]["by_channel"]["sms"] == fewer["totals"]["by_channel"]["sms"], "texts unchanged"
    # the page's own table and the lab's side-by-side report name both, with their counts
    for s in (default, fewer):
        row = re.search(
            rf'<tr data-policy="{re.escape(s["policy"])}"><td>[^<]*</td><td class="num">(\d+)<', response.text
        )
        assert row and int(row.group(1)) == s["totals"]["contacts"]
    srcdoc = html.unescape(re.search(r'srcdoc="([^"]*)"', response.text, re.S).group(1))  # type: ignore[union-attr]
    assert f"What-if: default and {fewer_calls} on UK, closed_end, balance 12345.67-12345.69" in srcdoc
    assert f"<th>default</th><th>{fewer_calls}</th>" in srcdoc
    # audited: who, which policies, which segment, how many accounts
    (line,) = runs(sessions)[before:]
    assert (line.actor, line.account_id, line.decision) == ("sam", None, "ran")
    assert line.details["policies"] == ["default", fewer_calls]
    assert line.details["segment"] == {
        "profile": "UK",
        "product": "closed_end",
        "balance_min": "12345.67",
        "balance_max": "12345.69",
    }
    assert (line.details["accounts"], line.details["matched"], line.details["source"]) == (
        BOOK,
        BOOK,
        "portfolio",
    )


async def test_a_segment_larger_than_the_limit_is_a_seeded_sample_and_the_page_says_so(
    supervisor: httpx.AsyncClient, book: list[Account], fewer_calls: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(console_whatif, "MAX_ACCOUNTS", 4)
    fields = {"policy_a": "default", "policy_b": fewer_calls, "profile": "UK", "days": "20", **BAND}

    first = await post(supervisor, **fields)
    again = await post(supervisor, **fields)

    assert first.status_code == 200, first.text[:2000]
    assert "The segment holds 6 accounts in dunning; the lab ran a seeded sample of 4 (seed 1)." in first.text
    assert [s["accounts"] for s in report(first.text)] == [4, 4]
    assert report(first.text) == report(again.text), "the same seed draws the same sample"


async def test_a_synthetic_portfolio_is_cut_by_the_same_segment(supervisor: httpx.AsyncClient) -> None:
    fields = {"policy_a": "default", "policy_b": "standard", "source": "synthetic", "count": "60"}
    fields |= {"profile": "US", "days": "30"}
    response = await post(supervisor, **fields)

    assert response.status_code == 200, response.text[:2000]
    default, standard = report(response.text)
    assert 0 < default["accounts"] == standard["accounts"] < 60, "only the US accounts of the 60"
    assert set(default["segments"]) == {"US"}
    # the debtors answer by default (lab/debtors.toml): some pay, so the report has a recovery
    assert default["totals"]["recovered_share"] > 0 and default["totals"]["paid"] > 0
    assert default["recovery_by_day"][-1] == default["totals"]["recovered_share"]

    silent = await post(supervisor, **fields, debtors="silent")
    quiet, _ = report(silent.text)
    assert quiet["totals"]["recovered_share"] == 0 and quiet["totals"]["reactions"] == {}
    assert quiet["totals"]["contacts"] > default["totals"]["contacts"], "nobody paid, so dunning went on"


@pytest.mark.parametrize(
    ("fields", "names"),
    [
        ({"policy_b": "no-such-policy"}, "policy_b: 'no-such-policy' is neither a policy file nor a stored"),
        ({"policy_b": "default"}, "policy_b: choose a policy other than policy_a"),
        ({"policy_a": ""}, "policy_a: choose a policy"),
        ({"days": "0"}, "days: 0 is out of range (1 to 365)"),
        ({"days": "a year"}, "days: 'a year' is not a whole number"),
        ({"dpd_min": "90", "dpd_max": "30"}, "dpd_max must not be below dpd_min"),
        ({"balance_min": "lots"}, "balance_min: 'lots' is not an amount"),
        ({"profile": "FR"}, "profile: 'FR' is not one of CN, UK, US"),
        ({"source": "synthetic", "count": "50000"}, "count: 50000 is out of range (1 to 5,000)"),
        ({"balance_min": "99999999"}, "segment: no account in dunning matches"),
        ({"debtors": "sometimes"}, "debtors: 'sometimes' is not one of answer, silent"),
    ],
)
async def test_bad_input_names_the_field_and_runs_nothing(
    supervisor: httpx.AsyncClient, sessions: sessionmaker[Session], fields: dict[str, str], names: str
) -> None:
    before = len(runs(sessions))

    response = await post(supervisor, **{"policy_a": "default", "policy_b": "standard", **fields})

    assert response.status_code == 422
    assert names in html.unescape(response.text)
    assert 'id="whatif-result"' not in response.text
    assert len(runs(sessions)) == before


async def test_an_agent_may_not_run_a_what_if(
    agent: httpx.AsyncClient, sessions: sessionmaker[Session]
) -> None:
    before = len(runs(sessions))

    page = await agent.get("/console/whatif")
    posted = await agent.post("/console/whatif", data={"policy_a": "default", "policy_b": "standard"})

    assert page.status_code == posted.status_code == 403
    assert "Your role (agent) may not approve here." in page.text
    assert 'href="/console/whatif"' not in (await agent.get("/console")).text
    assert len(runs(sessions)) == before


async def test_a_post_without_the_form_s_token_is_refused(
    supervisor: httpx.AsyncClient, sessions: sessionmaker[Session]
) -> None:
    before = len(runs(sessions))

    response = await supervisor.post("/console/whatif", data={"policy_a": "default", "policy_b": "standard"})

    assert response.status_code == 403
    assert "Form expired" in response.text
    assert len(runs(sessions)) == before


def test_the_dpd_band_is_inclusive_in_the_database_and_in_the_lab(
    book: list[Account], sessions: sessionmaker[Session]
) -> None:
    """The stored accounts are 40 days past due: a band ending or starting at 40 holds them, 41 does not;
    a synthetic account is cut by the same rule (:func:`domain.segments.matches`)."""
    today = datetime.now(UTC).date()
    band = {"balance_min": Decimal(BAND["balance_min"]), "balance_max": Decimal(BAND["balance_max"])}

    def drawn(**dpd: int) -> int:
        with sessions.begin() as s:
            return len(segment_accounts(s, Segment(**band, **dpd), today, limit=100, seed=1).accounts)

    assert drawn(dpd_min=40, dpd_max=40) == drawn(dpd_min=30, dpd_max=40) == drawn(dpd_min=40) == BOOK
    assert drawn(dpd_min=41) == drawn(dpd_max=39) == 0
    assert [matches(Segment(**band, dpd_min=40, dpd_max=40), a, today) for a in book] == [True] * BOOK
    assert not any(matches(Segment(**band, dpd_min=41), a, today) for a in book)
    assert not any(matches(Segment(balance_min=Decimal("12345.69")), a, today) for a in book)
