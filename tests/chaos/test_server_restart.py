"""The Temporal dev server (file-backed, as in the demo) is stopped and started again mid-campaign.

Timers, queued tasks and in-flight activities survive in the server's SQLite file; the worker
reconnects by itself. What must hold: every account carries on, nothing reaches the carrier twice.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections import Counter
from typing import Any

from runtime.settings import Settings
from tests.chaos.conftest import (
    DevServer,
    WorkerProcess,
    carrier_sends,
    check_exactly_once,
    check_workflows,
    keys_per_account,
    make_accounts,
    open_campaign,
    reserved,
    terminate_all,
    wait_all_continue,
    wait_until,
    worker_env,
)

ACCOUNTS = int(os.environ.get("CHAOS_RESTART_ACCOUNTS", "100"))
DAY_SECONDS = 8.0
DOWN_SECONDS = 5.0


async def test_server_restart_mid_campaign_loses_nothing_and_sends_nothing_twice(
    devserver: DevServer, dev_client: Any, chaos_settings: Settings, simulator: Any, tmp_path: Any
) -> None:
    rng = random.Random(6_501)
    worker = WorkerProcess(worker_env(chaos_settings, address=devserver.address), tmp_path / "worker.log")
    worker.start()
    accounts = make_accounts(ACCOUNTS, rng=rng, due_offsets=(-6, -3), digits=range(0, 60))
    campaign = await open_campaign(dev_client, chaos_settings, accounts, day_seconds=DAY_SECONDS)
    try:
        await wait_until(
            lambda: len(carrier_sends(simulator, campaign.phones)) >= ACCOUNTS // 3,
            within=120,
            every=0.05,
            what="a third of the first reminders",
        )
        devserver.stop()
        at_stop = Counter({to: len(v) for to, v in carrier_sends(simulator, campaign.phones).items()})
        await asyncio.sleep(DOWN_SECONDS)
        # nothing new was started while the server was away (sends already under way may finish)
        during = sum(len(v) for v in carrier_sends(simulator, campaign.phones).values())
        steps = keys_per_account(campaign)
        devserver.start()
        assert worker.proc is not None and worker.proc.poll() is None, "the worker died with the server"

        # every account goes on: each attempts its next contact step under the new server
        await wait_all_continue(campaign, steps, within=180, client=dev_client)
        await wait_until(lambda: not reserved(campaign), within=60, every=1.0, what="no reserved attempt")
        worker.stop()

        tally = check_exactly_once(campaign, simulator)
        kinds = await check_workflows(dev_client, campaign)
        assert kinds == Counter({"DelinquencyWorkflow:running": ACCOUNTS}), kinds
        print(
            f"\nrestart: {ACCOUNTS} accounts, {sum(at_stop.values())} sends before the stop, "
            f"{during - sum(at_stop.values())} while down, {tally}"
        )
    finally:
        worker.stop()
        if devserver.proc is None:
            steps = keys_per_account(campaign)
        devserver.start()
        await terminate_all(dev_client, campaign)
