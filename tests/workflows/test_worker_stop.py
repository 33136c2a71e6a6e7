"""A worker stopped while a run waits on a send leaves nothing behind in its log.

A process manager stops workers whenever it likes, often with a reminder in flight. The worker drops
the runs it holds, and Python closes their coroutines: the code after each ``await`` runs outside the
workflow's event loop. A ``finally`` that read the workflow's clock there raised, and Python printed
"Exception ignored in: <coroutine ...>" with a traceback into the worker's log (CI's production-path
test found it). Here the send is never picked up, so the run is always waiting on it when the worker
stops.
"""

from __future__ import annotations

import gc
import os
import sys
import traceback
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from activities.deps import Deps
from activities.records import RecordActivities
from domain.effects import SEND_CONTACT
from runtime.settings import Settings
from store.db import make_engine
from tests.workflows.conftest import Harness, at_local, main_queue_worker, own_queues, until_activity_waits


@contextmanager
def unraisable() -> Iterator[list[str]]:
    """What Python would print as "Exception ignored in ..." from our workflow code while the block runs
    (other tests' leftovers collected meanwhile are not this test's business)."""
    seen: list[str] = []
    before = sys.unraisablehook

    def hook(u: Any) -> None:
        files = [frame.f_code.co_filename for frame, _ in traceback.walk_tb(u.exc_traceback)]
        if any(f"{os.sep}workflows{os.sep}" in name for name in files):
            seen.append(f"{u.object!r}: {u.exc_type.__name__}: {u.exc_value}")
        else:
            before(u)

    sys.unraisablehook = hook
    try:
        yield seen
    finally:
        sys.unraisablehook = before


async def test_a_worker_stopped_mid_send_drops_its_runs_without_a_traceback(
    own_env: Any, settings: Settings, simulator: Any
) -> None:
    """On a server of its own: its runs are left waiting on their sends when the test ends."""
    local = own_queues(settings, "stop")
    deps = Deps(settings=local, engine=make_engine(local.database_url))
    records = RecordActivities(deps)
    executor = ThreadPoolExecutor(max_workers=4)
    harness = Harness(env=own_env, settings=local, sessions=deps.sessions, simulator_url=simulator.url)
    # no worker on the contact queue: the reminder's send waits to be picked up for as long as the test likes
    worker = main_queue_worker(harness.client, local, [records.record, records.record_batch], executor)
    with unraisable() as seen:
        async with worker:
            accounts = [await harness.open_account(due_in_days=-20) for _ in range(3)]
            # the step at 22 days past due, at the policy's send time
            await harness.skip_to(at_local(accounts[-1].due_date + timedelta(days=22), 10))
            for account in accounts:
                await until_activity_waits(harness, account.workflow_id, SEND_CONTACT, "the reminder")
        # the worker is stopped and dropped, its runs with it: their coroutines are closed
        del worker
        gc.collect()
    executor.shutdown(wait=False)
    assert seen == [], seen
