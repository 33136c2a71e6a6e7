"""A settlement is accepted while the dunning reminder is in flight, many times with random timing.

The carrier here is the simulator behind a thin wrapper that, the instant a ``Messages.json`` create
arrives, tells the test (which then proposes a plan for that debtor after a random pause) and holds
the request for another random pause before the simulator takes it. So every ``propose_settlement``
lands while the send activity is under way: before, during or just after the provider call.

What must hold for every debtor: the update answers, and the carrier recorded no dunning message
after that answer (the update waits for the in-flight send before it answers).
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError, WorkflowUpdateStage

from carrier import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, create_app
from domain.plans import PlanKind, PlanProposal
from runtime.settings import Settings
from tests.chaos.conftest import (
    DevServer,
    WorkerProcess,
    before_ten,
    check_exactly_once,
    check_workflows,
    make_accounts,
    open_campaign,
    reserved,
    terminate_all,
    wait_until,
    worker_env,
)

RACES = int(os.environ.get("CHAOS_RACES", "1000"))
DAY_SECONDS = 1200.0  # a policy day lasts twenty minutes: one reminder per debtor during the test
HOLD = (0.0, 0.3)  # the carrier holds each create this long before taking it
PAUSE = (0.0, 0.4)  # the plan is proposed this long after the create arrived


#: what the plan confirmation says (policies/templates/en.toml ``plan_confirmation``)
CONFIRMATION = "your payment plan is agreed"


def receive_once(body: bytes, receive: Callable[[], Awaitable[dict]]) -> Callable[[], Awaitable[dict]]:
    sent = False

    async def replay() -> dict:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


class HoldingCarrier:
    """ASGI wrapper around the simulator: reports each SMS create, holds it, and times its creation."""

    def __init__(self, inner: Any, on_create: Callable[[str], None], rng: random.Random) -> None:
        self.inner = inner
        self.on_create = on_create
        self.rng = rng
        self.created: dict[str, list[float]] = defaultdict(list)  # to -> monotonic time it was taken
        self.confirmed: dict[str, int] = defaultdict(
            int
        )  # to -> plan confirmations (the agreement in writing)

    async def __call__(self, scope: dict, receive: Callable[[], Awaitable[dict]], send: Any) -> None:
        if not (
            scope["type"] == "http" and scope["method"] == "POST" and scope["path"].endswith("/Messages.json")
        ):
            await self.inner(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        form = parse_qs(body.decode())
        to = form.get("To", [""])[0]
        if CONFIRMATION in form.get("Body", [""])[0]:  # the receipt of the agreement: expected, once
            self.confirmed[to] += 1
            await self.inner(scope, receive_once(body, receive), send)
            return
        self.on_create(to)
        await asyncio.sleep(self.rng.uniform(*HOLD))
        await self.inner(scope, receive_once(body, receive), send)
        self.created[to].append(time.monotonic())


async def serve(app: Any) -> tuple[str, uvicorn.Server, asyncio.Task[None]]:
    sock = socket.socket()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 (uvicorn offers no event to wait on)
        await asyncio.sleep(0.01)
    return f"http://127.0.0.1:{sock.getsockname()[1]}", server, task


async def test_settlement_during_an_in_flight_reminder_silences_dunning_every_time(
    devserver: DevServer, dev_client: Any, chaos_settings: Settings, tmp_path: Any
) -> None:
    rng = random.Random(6_505)
    # four days past due (the first day after the grace), taken in between 09:00 and 10:00 their time
    # (``before_ten``): the day's 10:00 reminder is the first (nothing from before intake is caught up), at most one policy hour (50 s)
    # away, with 11 lawful policy hours (550 s) after it for the 1,000 sends. With 25 s hours (275 s for
    # the sends) a run beside the suite's busiest modules sent 390 by 21:00 local, and the rest waited.
    accounts = make_accounts(RACES, rng=rng, due_offsets=(-4, -4), digits=range(0, 60), hours=before_ten())
    by_phone = {a.debtor.phone: a for a in accounts}
    answered: dict[str, float] = {}
    failures: list[str] = []
    pending: set[asyncio.Task[None]] = set()

    async def settle(phone: str) -> None:
        account = by_phone[phone]
        await asyncio.sleep(rng.uniform(*PAUSE))
        today = account.due_date + timedelta(days=4)
        proposal = PlanProposal(kind=PlanKind.PROMISE_TO_PAY, first_due=today + timedelta(days=20))
        try:
            handle = dev_client.get_workflow_handle(account.workflow_id)
            for attempt in range(10):  # on a loaded machine one long poll may end before the answer
                try:
                    update = await handle.start_update(
                        "propose_settlement",
                        proposal,
                        id=f"settle-{account.account_id}",  # the same update on every try
                        wait_for_stage=WorkflowUpdateStage.ACCEPTED,
                        rpc_timeout=timedelta(seconds=60),
                    )
                    await update.result(rpc_timeout=timedelta(seconds=60))
                    break
                except WorkflowUpdateRPCTimeoutOrCancelledError:
                    if attempt == 9:
                        raise
        except Exception as exc:
            failures.append(f"{account.account_id}: {exc}")
            return
        answered[phone] = time.monotonic()

    proposed: set[str] = set()

    def on_create(to: str) -> None:
        if to in by_phone and to not in proposed:  # a second create for a debtor is checked below
            proposed.add(to)
            task = asyncio.get_running_loop().create_task(settle(to))
            pending.add(task)
            task.add_done_callback(pending.discard)

    app = create_app(DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN)
    carrier = HoldingCarrier(app, on_create, rng)
    url, server, serving = await serve(carrier)
    local = chaos_settings.model_copy(update={"twilio_api_base_url": url})
    worker = WorkerProcess(worker_env(local, address=devserver.address), tmp_path / "worker.log")
    worker.start()
    campaign = None
    try:
        campaign = await open_campaign(dev_client, local, accounts, day_seconds=DAY_SECONDS)
        try:
            await wait_until(
                lambda: len(answered) + len(failures) >= RACES, within=600, what="every plan answered"
            )
        except AssertionError as exc:  # say how far it got: stuck is not the same as slow
            raise AssertionError(
                f"{exc}: {len(proposed)} proposed, {len(answered)} answered, {len(failures)} failed"
                f" of {RACES}; first failures {failures[:3]}"
            ) from None
        assert not failures, failures[:5]
        # every plan's agreement in writing follows its answer, a thousand sends more: nothing is settled
        # until they are out too (waiting only for no reserved attempt raced them and failed)
        try:
            await wait_until(
                lambda: len(carrier.confirmed) >= RACES and not reserved(campaign),
                within=120,
                what="every agreement in writing and no reserved attempt",
            )
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}: {len(carrier.confirmed)} of {RACES} confirmed, {len(reserved(campaign))} reserved"
            ) from None
        await asyncio.sleep(2.0)  # time for anything still queued to reach the carrier (it must not)
        worker.stop()

        late = {
            phone: [t - answered[phone] for t in carrier.created[phone] if t > answered[phone]]
            for phone in by_phone
        }
        late = {p: v for p, v in late.items() if v}
        assert not late, (
            f"{len(late)} debtors got a reminder after their plan was agreed: {list(late.items())[:3]}"
        )
        assert all(len(carrier.created[p]) == 1 for p in by_phone)  # the in-flight reminder went out once
        # the agreement in writing: once for every plan, never twice
        assert set(carrier.confirmed) == set(by_phone)
        assert all(n == 1 for n in carrier.confirmed.values())
        tally = check_exactly_once(campaign, app.state.sim)
        assert tally.carrier == RACES + sum(carrier.confirmed.values()), tally
        failed: list[tuple[str, str]] = []
        kinds = await check_workflows(dev_client, campaign, failed=failed)
        print(f"\nsettlement race: {RACES} plans agreed mid-send, {tally}, runs {dict(kinds)}")
        # a failed run is an account lost (a plan agreed in the same activation as a send's completion
        # once cancelled the next activity before it started, and the CancelledError failed the run)
        assert not failed, failed[:3]
        assert kinds["SettlementWorkflow:running"] == RACES, kinds
    finally:
        worker.stop()
        for task in list(pending):
            task.cancel()
        server.should_exit = True
        await serving
        if campaign is not None:
            await terminate_all(dev_client, campaign)
