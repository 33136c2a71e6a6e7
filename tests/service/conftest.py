"""Fixtures for the webhook service: the real app, real database, real signatures, real Temporal.

* ``app`` / ``http``: ``service.app.create_app`` with a public base URL, driven through httpx's ASGI
  transport; ``app.state.temporal_client`` is the time-skipping test server's client.
* ``twilio``: signs requests exactly as Twilio does (the SDK's ``RequestValidator``), or forges them.
* ``probe``: a tiny workflow started as ``account-<id>`` that records every signal it gets, so a test
  can see exactly what the webhook delivered (the real account workflows are used where their
  behaviour is the point: see ``harness`` from ``tests/workflows/conftest.py``).
* ``served``: the same app on a real port (uvicorn on the test's event loop) plus a worker whose send
  activity asks the carrier simulator for callbacks to it: the whole chain, no shortcut.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker
from temporalio import workflow
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker
from twilio.request_validator import RequestValidator

from activities.cases import CaseActivities
from activities.deps import Deps
from domain.accounts import Account, Channel, Debtor
from runtime.settings import Settings
from service.app import create_app
from store.accounts import upsert_account
from store.contacts import mark_attempt, reserve_attempt
from store.db import make_engine, session_factory
from tests.conftest import free_port, random_phone  # noqa: F401  (re-exported for the tests)
from tests.workflows.conftest import Harness
from workers.setup import build_workers, sandbox_runner
from workflows.case import CaseWorkflow

with workflow.unsafe.imports_passed_through():
    from workflows.messages import NegotiationRequest, OptIn, OptOut, OutcomeReport

PUBLIC = "https://collect.example.test"
#: an auditor's token for the operations endpoints (``/ops/governor``)
OPS_TOKEN = "service-tests-ops-token-0123456789abcdef"
OPS = {"Authorization": f"Bearer {OPS_TOKEN}"}
#: an agent's token on ``served``'s API (payments, plans: what the demo's debtors use)
AGENT_TOKEN = "service-tests-agent-token-0123456789abcdef"
NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


@workflow.defn(name="SignalProbe", sandboxed=False)
class SignalProbe:
    """Stands in for an account workflow: records each signal, answers ``status`` with the list."""

    def __init__(self) -> None:
        self.got: list[dict[str, Any]] = []

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.signal
    def contact_outcome(self, report: OutcomeReport) -> None:
        self.got.append({"signal": "contact_outcome", **report.model_dump(mode="json")})

    @workflow.signal
    def opt_out(self, request: OptOut) -> None:
        self.got.append({"signal": "opt_out", **request.model_dump(mode="json")})

    @workflow.signal
    def opt_in(self, request: OptIn) -> None:
        self.got.append({"signal": "opt_in", **request.model_dump(mode="json")})

    @workflow.signal
    def negotiation_requested(self, request: NegotiationRequest) -> None:
        self.got.append({"signal": "negotiation_requested", **request.model_dump(mode="json")})

    @workflow.query
    def status(self) -> list[dict[str, Any]]:
        return self.got


async def quiesce(handle: WorkflowHandle[Any, Any], within: float = 30.0) -> None:
    """Wait until the run has no activity or workflow task in flight (or is closed).

    Terminating a run while its activity is outstanding leaves the time-skipping test server's clock
    locked for every later test, so tests that poke a real account workflow end with this. The raw
    RPC is used because decoding the description's search attributes can fail on the test server.
    """
    request = DescribeWorkflowExecutionRequest(
        namespace=handle._client.namespace, execution=WorkflowExecution(workflow_id=handle.id)
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        raw = await handle._client.workflow_service.describe_workflow_execution(request)
        if raw.workflow_execution_info.status != 1:  # not running
            return
        if not raw.pending_activities and not raw.HasField("pending_workflow_task"):
            return
        await asyncio.sleep(0.05)


@dataclass
class Signer:
    token: str

    def sign(self, url: str, params: Mapping[str, str]) -> str:
        return RequestValidator(self.token).compute_signature(url, dict(params))

    async def post(
        self,
        http: httpx.AsyncClient,
        path: str,
        params: Mapping[str, str],
        *,
        signature: str | None = "valid",
        base: str = PUBLIC,
    ) -> httpx.Response:
        """POST as Twilio would; ``signature=None`` omits it, any other text than "valid" is sent as is."""
        headers = {}
        if signature == "valid":
            headers["X-Twilio-Signature"] = self.sign(base + path, params)
        elif signature is not None:
            headers["X-Twilio-Signature"] = signature
        return await http.post(path, data=dict(params), headers=headers)


@pytest.fixture(scope="session")
def service_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"public_base_url": PUBLIC, "api_tokens": {OPS_TOKEN: "olga:auditor"}})


@pytest.fixture(scope="session")
def sessions(database_url: str) -> sessionmaker[Session]:
    return session_factory(make_engine(database_url))


@pytest.fixture
def twilio(service_settings: Settings) -> Signer:
    return Signer(service_settings.twilio_token)


@pytest.fixture
async def case_clocks(service_settings: Settings, env: Any) -> AsyncIterator[None]:
    """A worker for the cases' clocks (``CaseWorkflow``) on the app's task queue: a text or a form that
    opens a case starts one, and a workflow nobody polls would hold the time-skipping server's clock
    (every later sleep on it would wait in real time)."""
    deps = Deps(settings=service_settings, engine=make_engine(service_settings.database_url))
    worker = Worker(
        env.client,
        task_queue=service_settings.task_queue,
        workflows=[CaseWorkflow],
        activities=[CaseActivities(deps).case_step],
        activity_executor=ThreadPoolExecutor(max_workers=2),
        workflow_runner=sandbox_runner(),
    )
    async with worker:
        yield


@pytest.fixture
def app(service_settings: Settings, env: Any, case_clocks: None) -> FastAPI:
    application = create_app(service_settings)
    application.state.temporal_client = env.client
    return application


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC) as client:
        yield client


def new_account(
    sessions: sessionmaker[Session],
    phone: str,
    *,
    language: str = "en",
    policy: str = "default",
    born: date | None = None,
) -> Account:
    account = Account(
        account_id=f"S-{uuid.uuid4().hex[:10]}",
        debtor=Debtor(
            name="Jane Doe", phone=phone, timezone="America/New_York", language=language, date_of_birth=born
        ),
        currency="USD",
        balance=123_456,
        due_date=date(2026, 11, 1),
        policy=policy,
    )
    with sessions.begin() as s:
        upsert_account(s, account, NOW)
    return account


def sent_attempt(
    sessions: sessionmaker[Session],
    account: Account,
    channel: Channel,
    *,
    at: datetime = NOW,
    outcome: str | None = None,
    phone: str | None = None,
) -> str:
    """An attempt the provider took (state accepted) with a fresh SID; returns the SID."""
    prefix = "SM" if channel == Channel.SMS else "CA"
    sid = prefix + uuid.uuid4().hex
    key = f"{account.account_id}/{uuid.uuid4().hex[:8]}"
    with sessions.begin() as s:
        reserve_attempt(
            s,
            dedupe_key=key,
            account_id=account.account_id,
            channel=channel,
            purpose="dunning",
            template="early_reminder" if channel == Channel.SMS else "early_voice",
            to_address=phone or account.debtor.phone,
            now=at,
        )
        mark_attempt(
            s, key, state="accepted", provider_sid=sid, provider_status="queued", outcome=outcome, now=at
        )
    return sid


@dataclass
class Probe:
    client: Client
    task_queue: str
    started: list[str] = field(default_factory=list)

    async def start(self, account: Account) -> None:
        self.started.append(account.workflow_id)
        await self.client.start_workflow(
            "SignalProbe",
            id=account.workflow_id,
            task_queue=self.task_queue,
            run_timeout=timedelta(minutes=5),
        )

    async def got(self, account: Account, count: int = 1, within: float = 5.0) -> list[dict[str, Any]]:
        """The signals the probe holds once it has at least ``count`` (or whatever it has after ``within`` seconds)."""
        handle = self.client.get_workflow_handle(account.workflow_id)
        deadline = asyncio.get_running_loop().time() + within
        while True:
            got = await handle.query("status")
            if len(got) >= count or asyncio.get_running_loop().time() > deadline:
                return got
            await asyncio.sleep(0.05)


@pytest.fixture
async def probe(env: Any) -> AsyncIterator[Probe]:
    queue = f"probe-{uuid.uuid4().hex[:8]}"
    worker = Worker(env.client, task_queue=queue, workflows=[SignalProbe])
    async with worker:
        p = Probe(env.client, queue)
        try:
            yield p
        finally:
            for workflow_id in p.started:  # an open run would hold the shared test server's clock
                try:
                    await env.client.get_workflow_handle(workflow_id).terminate("test over")
                except Exception:
                    pass


@dataclass
class Served:
    """The app on a real port, and a harness whose send activity asks for callbacks to it."""

    base: str
    harness: Harness
    simulator: Any  # carrier.SimulatorHandle: what the carrier saw, in this process


@pytest.fixture
async def served(env: Any, settings: Settings, simulator: Any) -> AsyncIterator[Served]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    suffix = uuid.uuid4().hex[:8]
    local = settings.model_copy(
        update={
            "public_base_url": base,
            "api_tokens": {**settings.api_tokens, AGENT_TOKEN: "amy:agent"},
            "task_queue": f"svc-{suffix}",
            "contact_task_queue": f"svc-c-{suffix}",
        }
    )
    application = create_app(local)
    application.state.temporal_client = env.client
    server = uvicorn.Server(
        uvicorn.Config(application, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    serving = asyncio.create_task(server.serve())
    for _ in range(1000):
        if server.started:
            break
        await asyncio.sleep(0.01)
    workers, deps, executor = build_workers(env.client, local, max_cached_workflows=100)
    tasks = [asyncio.create_task(w.run()) for w in workers]
    h = Harness(env=env, settings=local, sessions=deps.sessions, simulator_url=simulator.url)
    try:
        yield Served(base=base, harness=h, simulator=simulator)
    finally:

        async def finish(workflow_id: str) -> None:  # side by side, as running_harness does
            try:
                await quiesce(env.client.get_workflow_handle(workflow_id))
                await env.client.get_workflow_handle(workflow_id).terminate("test over")
            except Exception:
                pass

        await asyncio.gather(*(finish(w) for w in dict.fromkeys(h.started)))
        await asyncio.gather(*(w.shutdown() for w in workers), return_exceptions=True)
        await asyncio.gather(*tasks, return_exceptions=True)
        executor.shutdown(wait=False)
        server.should_exit = True
        await serving
