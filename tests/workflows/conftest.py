"""A running worker per test (own task queues), plus helpers to read what really happened."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy.orm import sessionmaker
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import WorkflowHandle
from temporalio.worker import Worker

from domain.accounts import Account, AccountTerms, Debtor, Product
from domain.gate import debtor_zones
from domain.rules import Rules
from runtime.intake import start_account
from runtime.settings import Settings
from runtime.timeskip import skip_clock
from store.accounts import upsert_account
from store.audit import audit_entries
from workers.setup import WORKFLOWS, build_workers, sandbox_runner
from workflows.messages import RunResult

NY = ZoneInfo("America/New_York")
# the run is waiting for a worker: a workflow task scheduled or started, an activity scheduled
BUSY_EVENTS = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
    EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
    EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
}


class SkippingHandle(WorkflowHandle):
    """A handle whose ``result()`` lets the test server skip time, like the one ``start_workflow`` returns.

    Handles from ``get_workflow_handle`` wait in real time, so a 180-day lifecycle would never end.

    Once the run has ended and nothing else on the server is waiting, the server's clock may leap to
    its ten-year run timeout before the time lock is taken again. A test that goes on with the same
    account after the result (a reopening) skips a bounded time instead (``skip_to``) and then waits
    on a plain handle (tests/intake/test_closed_and_reopen.py).
    """

    def __init__(self, env: object, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._env = env

    async def result(self, **kwargs: Any) -> Any:
        async with self._env.time_skipping_unlocked():  # type: ignore[attr-defined]
            for _ in range(2):  # each long poll lasts ~20 s of real time
                try:
                    return await super().result(**kwargs)
                except RuntimeError as err:  # the test server's long poll ended before the run did
                    if "No completion event found" not in str(err):
                        raise
            raise AssertionError(f"{self.id} did not finish within two minutes of real time")


@dataclass
class Harness:
    env: object
    settings: Settings
    sessions: sessionmaker
    simulator_url: str
    started: list[str] = field(default_factory=list)
    #: every run hands over (continue-as-new) at each wake-up: proves nothing a handler took is lost
    hand_over_every_wake: bool = False

    @property
    def client(self):  # type: ignore[no-untyped-def]
        return self.env.client  # type: ignore[attr-defined]

    async def now(self) -> datetime:
        return await self.env.get_current_time()  # type: ignore[attr-defined]

    async def skip_to(self, target: datetime) -> None:
        await skip_clock(self.env, target)

    def phone(self, number: str) -> str:
        """The number a test names, as this harness uses it.

        A module that runs each test twice (steady and handing over at every wake-up) would give the
        same fixed number to two accounts in one session, and carrier and governor counts per number
        would see both. The second run gets the 556 exchange instead of 555 (the last two digits,
        which choose the simulator's outcome, stay; Twilio's magic 500-555 test numbers stay too).
        """
        if self.hand_over_every_wake and number.startswith("+1") and number[5:8] == "555":
            if not number.startswith("+1500"):
                return f"{number[:5]}556{number[8:]}"
        return number

    async def open_account(
        self,
        *,
        due_in_days: int,
        phone: str = "+12125550142",
        balance: int = 50_000,
        fees: int = 2_500,
        product: Product = Product.CREDIT_LINE,
        zone: str | None = "America/New_York",
        profile: str = "US",
        currency: str = "USD",
        start: bool = True,
        language: str = "en",
        policy: str = "default",
        rules: Rules | None = None,
    ) -> Account:
        """A debtor in the database and, unless ``start`` is False, its workflow running.

        ``zone=None`` leaves the debtor's zone to be inferred from the number (possibly several).
        """
        phone = self.phone(phone)
        home = zone or debtor_zones(None, phone)[0]
        today = (await self.now()).astimezone(ZoneInfo(home)).date()
        account = Account(
            account_id=f"T-{uuid.uuid4().hex[:10]}",
            debtor=Debtor(name="Jane Doe", phone=phone, timezone=zone, language=language),
            product=product,
            profile=profile,
            currency=currency,
            balance=balance,
            fees=fees,
            due_date=today + timedelta(days=due_in_days),
            policy=policy,
        )
        with self.sessions.begin() as s:
            upsert_account(s, account, await self.now())
        if start:
            await self.start(account, rules)
        return account

    async def start(self, account: Account, rules: Rules | None = None) -> None:
        """``rules``: what the account runs instead of its policy and profile files as they are now."""
        await start_account(
            self.client,
            AccountTerms.from_account(account),
            rules=rules,
            task_queue=self.settings.task_queue,
            day_seconds=86_400,
            contact_queue=self.settings.contact_task_queue,
            continue_as_new_every_wake=self.hand_over_every_wake,
        )
        self.started.append(account.workflow_id)

    def handle(self, account: Account) -> SkippingHandle:
        return SkippingHandle(self.env, self.client, account.workflow_id, result_type=RunResult)

    async def finish(self, workflow_id: str) -> None:
        """Terminate a run once it is idle.

        The time-skipping test server leaks its time lock when a run is terminated while one of
        its tasks is in flight, and every later sleep on that server then hangs. A busy 2-core
        machine can take many seconds to finish a send, so the wait is generous (30 s).
        """
        handle = self.client.get_workflow_handle(workflow_id)
        quiet = 0
        deadline = asyncio.get_running_loop().time() + 30
        while asyncio.get_running_loop().time() < deadline:
            # raw RPC: the test server returns an unset Datetime search attribute in a form the
            # SDK's typed decoding rejects
            raw = await self.client.workflow_service.describe_workflow_execution(
                DescribeWorkflowExecutionRequest(
                    namespace=self.client.namespace, execution=WorkflowExecution(workflow_id=workflow_id)
                )
            )
            if raw.workflow_execution_info.status != 1:  # not running
                return
            for child in raw.pending_children:  # a field visit: idle it first, or its end leaks too
                await self.finish(child.workflow_id)
            last = (await handle.fetch_history()).events[-1].event_type
            busy = raw.pending_activities or last in BUSY_EVENTS
            quiet = 0 if busy else quiet + 1
            if quiet >= 3:
                break
            await asyncio.sleep(0.05)
        try:
            await handle.terminate("test over")
        except Exception:  # closed meanwhile
            pass

    def contacts(self, account: Account) -> list[dict]:
        """Every contact decision the send activity recorded, oldest first (audit lines)."""
        with self.sessions.begin() as s:
            entries = audit_entries(s, account.account_id)
        return [
            {"at": e.at, "decision": e.decision, "rule": e.rule, **(e.details or {})}
            for e in entries
            if e.action == "contact"
        ]

    def sent(self, account: Account) -> list[dict]:
        return [
            c
            for c in self.contacts(account)
            if c["decision"] not in ("denied", "deferred", "cancelled", "retry")
        ]

    async def carrier_log(self, phone: str) -> list[dict]:
        async with httpx.AsyncClient(base_url=self.simulator_url) as http:
            await http.post("/_sim/wait_idle", params={"timeout": 5})
            messages = (await http.get("/_sim/messages")).json()
            calls = (await http.get("/_sim/calls")).json()
        items = messages if isinstance(messages, list) else messages.get("messages", [])
        calls_items = calls if isinstance(calls, list) else calls.get("calls", [])
        return [m for m in items + calls_items if m.get("to") == self.phone(phone)]


def at_local(day: date, hour: int, zone: ZoneInfo = NY) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=zone)


#: ``harness`` parameters: runs that hand over only when the server suggests it, or at every wake-up.
STEADY, EVERY_WAKE = "steady", "hand-over-every-wake"


@pytest.fixture
async def harness(env, settings: Settings, simulator, request) -> AsyncIterator[Harness]:  # type: ignore[no-untyped-def]
    """A worker on task queues of the test's own. Modules that set ``HAND_OVER_EVERY_WAKE_TOO = True``
    run each test twice: once as usual, once with every run continuing as new at each wake-up."""
    every_wake = getattr(request, "param", STEADY) == EVERY_WAKE
    async with running_harness(env, settings, simulator, every_wake=every_wake) as h:
        yield h


@pytest.fixture
async def own_harness(own_env, settings: Settings, simulator) -> AsyncIterator[Harness]:  # type: ignore[no-untyped-def]
    """A harness on a server of the test's own (see the ``own_env`` fixture)."""
    async with running_harness(own_env, settings, simulator) as h:
        yield h


def own_queues(settings: Settings, name: str) -> Settings:
    """The settings on task queues of the test's own: no other test's worker takes its tasks."""
    suffix = uuid.uuid4().hex[:8]
    return settings.model_copy(
        update={"task_queue": f"{name}-{suffix}", "contact_task_queue": f"{name}-c-{suffix}"}
    )


def main_queue_worker(client: Any, settings: Settings, activities: list[Any], executor: Any) -> Worker:
    """A worker on the main queue with every workflow and only ``activities``: a test that holds a write
    or leaves the sender out builds its own from the real parts."""
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=WORKFLOWS,
        activities=activities,
        activity_executor=executor,
        workflow_runner=sandbox_runner(),
    )


async def until_activity_waits(harness: Harness, workflow_id: str, activity_type: str, what: str) -> None:
    """Until the run has ``activity_type`` scheduled or running (raw RPC: see ``Harness.finish``)."""
    for _ in range(150):
        raw = await harness.client.workflow_service.describe_workflow_execution(
            DescribeWorkflowExecutionRequest(
                namespace=harness.client.namespace, execution=WorkflowExecution(workflow_id=workflow_id)
            )
        )
        if any(a.activity_type.name == activity_type for a in raw.pending_activities):
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{what} was never scheduled")


@asynccontextmanager
async def running_harness(
    env, settings: Settings, simulator, *, every_wake: bool = False, contact_slots: int | None = None
) -> AsyncIterator[Harness]:  # type: ignore[no-untyped-def]
    local = own_queues(settings, "main")
    # a cache that holds every account a test opens (the simulation opens 200): an evicted account is
    # replayed from its whole history at each wake-up, which was most of the simulation's time
    workers, deps, executor = build_workers(
        env.client,
        local,
        max_cached_workflows=1000,
        **({"contact_slots": contact_slots} if contact_slots is not None else {}),
    )
    tasks = [asyncio.create_task(w.run()) for w in workers]
    harness = Harness(
        env=env,
        settings=local,
        sessions=deps.sessions,
        simulator_url=simulator.url,
        hand_over_every_wake=every_wake,
    )
    try:
        yield harness
    finally:
        # A run left open would wake on this test's dead task queues and hold the shared test
        # server's clock still for every later test.
        # side by side (a test that opened sixty accounts spent 14 s finishing them one by one)
        gate = asyncio.Semaphore(16)

        async def finish(workflow_id: str) -> None:
            async with gate:
                await harness.finish(workflow_id)

        try:  # a server that stopped answering must not hold the test's end (and the suite) forever
            await asyncio.wait_for(asyncio.gather(*(finish(w) for w in dict.fromkeys(harness.started))), 90)
        except TimeoutError:
            pass
        await asyncio.gather(*(w.shutdown() for w in workers), return_exceptions=True)
        await asyncio.gather(*tasks, return_exceptions=True)
        executor.shutdown(wait=False)
