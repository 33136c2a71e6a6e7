"""The dashboard's open accounts are the account workflows Temporal counts, never the field visits.

A field visit is a child workflow (``FieldVisitWorkflow``, ``account-<id>-visit-<n>``): a bare
``temporal workflow count`` (and the UI's count) includes it, which reads like duplicate accounts
(issue 20: 245 running for 237 accounts). The README's query counts the account workflow types only;
this test runs that very query through the Temporal CLI against a real dev server while a visit is
running, and the dashboard shows the same number.

Real dev server (the time-skipping test server has no visibility queries), real workers, real
database of the test's own (the dashboard counts the whole database), one policy day per second, so
that the late accounts' first visit is arranged about ten seconds after they start.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from domain.accounts import Account, AccountTerms, Debtor
from runtime.devserver import temporal_cli
from runtime.intake import start_account
from runtime.settings import Settings
from runtime.temporal import data_converter
from service.app import create_app
from service.dashboard import render_dashboard
from store.accounts import upsert_account
from store.audit import AuditEntry, account_clock, audit_entries
from store.db import make_engine, session_factory, upgrade
from store.reporting import dashboard_data
from tests.conftest import random_phone
from workers.setup import build_workers
from workflows import search

ROOT = Path(__file__).resolve().parents[2]
NY = ZoneInfo("America/New_York")
TOKEN = "count-auditor-xxxxxxxxxxxxxxxxxxx"
#: What the README tells operators to type (the test checks it is there, word for word).
ACCOUNTS = "WorkflowType IN ('DelinquencyWorkflow', 'SettlementWorkflow') AND ExecutionStatus = 'Running'"
RUNNING = "ExecutionStatus = 'Running'"
VISITS = "WorkflowType = 'FieldVisitWorkflow' AND ExecutionStatus = 'Running'"


def cli_count(address: str, query: str) -> int:
    """``temporal workflow count --query …``, as an operator runs it."""
    done = subprocess.run(
        [temporal_cli(), "workflow", "count", "--address", address, "--query", query],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    found = re.search(r"Total:\s*(\d+)", done.stdout)
    assert found, done.stdout + done.stderr
    return int(found[1])


def open_tile(page: str) -> int:
    found = re.search(r'Open accounts</div><div class="value">([\d,]+)</div>', page)
    assert found, "no open-accounts tile"
    return int(found[1].replace(",", ""))


@pytest.fixture
async def stack(tmp_path: Path, simulator: object) -> AsyncIterator[tuple[WorkflowEnvironment, Settings]]:
    url = f"sqlite:///{tmp_path / 'count.db'}"
    upgrade(url)
    settings = Settings(
        database_url=url,
        twilio_account_sid=None,
        twilio_api_base_url=simulator.url,  # type: ignore[attr-defined]
        sender_messages_per_second=1000.0,
        public_base_url=None,
        api_tokens={TOKEN: "ann:auditor"},
        task_queue=f"count-{uuid.uuid4().hex[:8]}",
        contact_task_queue=f"count-c-{uuid.uuid4().hex[:8]}",
        _env_file=None,  # type: ignore[call-arg]
    )
    async with await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(),
        data_converter=data_converter(),
        search_attributes=search.ALL,
        dev_server_log_level="error",
    ) as env:
        workers, _deps, executor = build_workers(env.client, settings, max_cached_workflows=100)
        tasks = [asyncio.create_task(w.run()) for w in workers]
        try:
            yield env, settings
        finally:
            async for execution in env.client.list_workflows(ACCOUNTS):
                try:
                    await env.client.get_workflow_handle(execution.id).terminate("test over")
                except Exception:  # closed meanwhile
                    pass
            await asyncio.gather(*(w.shutdown() for w in workers), return_exceptions=True)
            await asyncio.gather(*tasks, return_exceptions=True)
            executor.shutdown(wait=False)


async def open_account(
    env: WorkflowEnvironment, settings: Settings, *, dpd: int, balance: int, last: int
) -> str:
    account = Account(
        account_id=f"CNT-{uuid.uuid4().hex[:8]}",
        debtor=Debtor(name="Jane Doe", phone=random_phone(last), timezone="America/New_York"),
        currency="USD",
        balance=balance,
        fees=0,
        due_date=datetime.now(NY).date() - timedelta(days=dpd),
    )
    sessions = session_factory(make_engine(settings.database_url))
    with sessions.begin() as s:
        upsert_account(s, account, datetime.now(UTC))
    await start_account(
        env.client,
        AccountTerms.from_account(account),
        task_queue=settings.task_queue,
        day_seconds=1.0,  # a policy day a second: the late accounts' visit comes within seconds
        contact_queue=settings.contact_task_queue,
        sessions=sessions,
    )
    return account.account_id


def test_the_readme_shows_the_query_that_counts_accounts() -> None:
    readme = (ROOT / "README.md").read_text()
    assert f'temporal workflow count --query "{ACCOUNTS}"' in readme


async def test_the_dashboard_counts_account_workflows_not_field_visits(
    stack: tuple[WorkflowEnvironment, Settings],
) -> None:
    env, settings = stack
    address = env.client.service_client.config.target_host
    # two late accounts over the visit minimum whose calls go unanswered (they get a field visit),
    # and one early account that does not
    for dpd, balance, last in ((100, 200_000, 76), (100, 200_000, 77), (10, 20_000, 42)):
        await open_account(env, settings, dpd=dpd, balance=balance, last=last)
    app = create_app(settings, env.client)
    seen: tuple[int, int, int, int] | None = None
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://dash") as http:
        deadline = asyncio.get_running_loop().time() + 75
        while asyncio.get_running_loop().time() < deadline:
            if (await env.client.count_workflows(VISITS)).count == 0:
                await asyncio.sleep(0.2)
                continue
            everything = await asyncio.to_thread(cli_count, address, RUNNING)
            accounts = await asyncio.to_thread(cli_count, address, ACCOUNTS)
            page = await http.get("/dashboard", headers={"Authorization": f"Bearer {TOKEN}"})
            assert page.status_code == 200
            visits = (await env.client.count_workflows(VISITS)).count
            if visits and everything > accounts:  # a visit ran throughout: the bare count included it
                seen = (everything, accounts, open_tile(page.text), visits)
                break
    assert seen is not None, "no field visit ran while the counts were taken"
    everything, accounts, dashboard, _ = seen
    assert accounts == 3, seen  # the account workflows, whatever their children
    assert everything > 3, seen  # the bare count holds the visits as well
    assert dashboard == accounts, seen


async def test_the_audit_log_speaks_the_accounts_policy_clock(
    stack: tuple[WorkflowEnvironment, Settings],
) -> None:
    """A policy day a second: the workflow's lines are days ahead of the wall clock. An agent's read
    through the API, written after them, used to carry the wall time and sort before all of them."""
    env, settings = stack
    account_id = await open_account(env, settings, dpd=10, balance=20_000, last=42)
    sessions = session_factory(make_engine(settings.database_url))

    def workflow_lines() -> list[AuditEntry]:
        with sessions.begin() as s:
            return [e for e in audit_entries(s, account_id) if e.action != "api_read"]

    for _ in range(300):  # up to a minute
        if workflow_lines():
            break
        await asyncio.sleep(0.2)
    assert workflow_lines(), "the workflow wrote nothing"
    app = create_app(settings, env.client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
        wall = datetime.now(UTC)
        read = await http.get(f"/api/accounts/{account_id}", headers={"Authorization": f"Bearer {TOKEN}"})
    assert read.status_code == 200, read.text
    with sessions.begin() as s:
        clock = account_clock(s, account_id)
        entries = audit_entries(s, account_id)
    assert clock is not None and clock.day_seconds == 1.0
    [line] = [e for e in entries if e.action == "api_read"]
    assert line.wall_at is not None and timedelta(0) <= line.wall_at - wall < timedelta(seconds=5)
    assert line.at == clock.policy_now(line.wall_at)  # the wall time carried onto the account's clock
    before = [e for e in entries if e.id < line.id]
    assert before and all(e.at <= line.at for e in before), [(e.action, e.at) for e in entries]
    assert entries.index(line) >= len(before)  # nothing written before the read sorts after it


def test_an_account_taken_in_but_not_yet_staged_is_open() -> None:
    """Right after intake the account's workflow runs (Temporal counts it) before it has recorded a
    stage: the dashboard counts it too (it used to sum the stage funnel, which leaves it out)."""
    from tempfile import TemporaryDirectory

    with TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/fresh.db"
        upgrade(url)
        sessions = session_factory(make_engine(url))
        now = datetime.now(UTC)
        with sessions.begin() as s:
            upsert_account(
                s,
                Account(
                    account_id="FRESH-1",
                    debtor=Debtor(name="Jane Doe", phone="+12125550142", timezone="America/New_York"),
                    currency="USD",
                    balance=50_000,
                    due_date=date(2026, 10, 1),
                ),
                now,
            )
            data = dashboard_data(s, now)
        assert data.open_accounts == 1
        assert open_tile(render_dashboard(data, now)) == 1
