"""A signal that lands while the run is busy between two sleeps is acted on, not slept through.

The dunning loop records a stage change (an activity) after it has taken the queued payments and
before it goes back to sleep. A payment signalled during that write used to be queued, then the
sleep reset the "wake up" flag and the run slept until its next contact, at 08:00 the next morning:
the account showed the old balance all night (CI caught it once, at 22:38 in New York). Here the
stage write is held open until the payment has arrived, so the race happens every time.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from temporalio import activity

from activities.deps import Deps
from activities.records import RecordActivities
from domain.effects import RECORD, RECORD_BATCH, Change, ChangeBatch
from domain.timeline import AccountStatus
from runtime.settings import Settings
from store.db import make_engine
from tests.workflows.conftest import NY, Harness, at_local, main_queue_worker, own_queues
from workflows.messages import PaymentIn


class HeldStageWrite:
    """The real ``record`` activities, except that the first stage change waits for ``release``
    (written with the opening, in one batch, by runs that note it)."""

    def __init__(self, real: RecordActivities) -> None:
        self.real = real
        self.entered = threading.Event()
        self.release = threading.Event()

    @activity.defn(name=RECORD)
    def record(self, change: Change) -> None:
        if change.decision == "stage" and not self.entered.is_set():
            self.entered.set()
            assert self.release.wait(30), "the test never released the stage write"
        self.real.record(change)

    @activity.defn(name=RECORD_BATCH)
    def record_batch(self, batch: ChangeBatch) -> None:
        if any(c.decision == "stage" for c in batch.changes) and not self.entered.is_set():
            self.entered.set()
            assert self.release.wait(30), "the test never released the stage write"
        self.real.record_batch(batch)


async def test_a_payment_during_a_stage_write_shows_without_waiting_for_the_next_contact(
    env: Any, settings: Settings, simulator: Any
) -> None:
    local = own_queues(settings, "busy")
    deps = Deps(settings=local, engine=make_engine(local.database_url))
    executor = ThreadPoolExecutor(max_workers=4)
    held = HeldStageWrite(RecordActivities(deps))
    worker = main_queue_worker(env.client, local, [held.record, held.record_batch], executor)
    harness = Harness(env=env, settings=local, sessions=deps.sessions, simulator_url=simulator.url)
    async with worker:
        try:
            today = (await harness.now()).astimezone(NY).date()
            # 23:00 in New York: no contact until 08:00, so nothing else wakes the run before then
            await harness.skip_to(at_local(today + timedelta(days=1), 23))
            account = await harness.open_account(due_in_days=-20, balance=50_000)
            handle = harness.handle(account)
            loop = asyncio.get_running_loop()
            assert await loop.run_in_executor(None, held.entered.wait, 30), "the run never entered a stage"

            # the run is writing its stage change: the payment arrives now
            await handle.signal(
                "payment_received",
                PaymentIn(amount=1_000, currency="USD", reference=f"{account.account_id}-1"),
            )
            held.release.set()

            deadline = time.monotonic() + 30
            while True:
                status = await handle.query("status", result_type=AccountStatus)
                if status.paid_total == 1_000 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            assert (status.paid_total, status.balance) == (1_000, 49_000)
            assert status.policy_now.astimezone(NY).hour == 23  # taken at once, not at the next contact
        finally:
            held.release.set()
            for workflow_id in harness.started:
                await harness.finish(workflow_id)
    executor.shutdown(wait=False)
