"""A worker is SIGKILLed in the middle of a campaign and a new one takes over.

The new worker must carry every account on (each gets its next contact), and the carrier must never
see one reminder twice: an activity killed after reserving its dedupe key is retried by the new
worker, finds the reservation and sends nothing (the attempt becomes *indeterminate*).
"""

from __future__ import annotations

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

ACCOUNTS = int(os.environ.get("CHAOS_KILL_ACCOUNTS", "500"))
DAY_SECONDS = 8.0  # one policy day every 8 s: the next early step (DPD 1, 4, 5, 8) within half a minute


async def test_sigkill_mid_campaign_loses_nothing_and_sends_nothing_twice(
    devserver: DevServer, dev_client: Any, chaos_settings: Settings, simulator: Any, tmp_path: Any
) -> None:
    rng = random.Random(6_500)
    env = worker_env(chaos_settings, address=devserver.address)
    first = WorkerProcess(env, tmp_path / "worker-1.log")
    second = WorkerProcess(env, tmp_path / "worker-2.log")
    first.start()
    # due between three days ago and today: a first reminder at once or within a policy day or two
    accounts = make_accounts(ACCOUNTS, rng=rng, due_offsets=(-6, -3), digits=range(0, 60))
    campaign = await open_campaign(dev_client, chaos_settings, accounts, day_seconds=DAY_SECONDS)
    try:
        # mid-campaign: about a third of the debtors have had their first reminder
        await wait_until(
            lambda: len(carrier_sends(simulator, campaign.phones)) >= ACCOUNTS // 3,
            within=240,
            every=0.05,
            what="a third of the first reminders",
        )
        first.kill()
        at_kill = Counter({to: len(v) for to, v in carrier_sends(simulator, campaign.phones).items()})
        interrupted = set(reserved(campaign))  # sends the kill caught between reserving and the answer
        steps = keys_per_account(campaign)
        second.start()

        # every account goes on: each attempts its next contact step under the new worker
        await wait_all_continue(campaign, steps, within=360, client=dev_client)
        # the sends the kill interrupted have been retried (and found their reservation); the campaign
        # goes on meanwhile, so later sends may be in flight at any moment: only these must be settled
        await wait_until(
            lambda: not interrupted & set(reserved(campaign)),
            within=90,
            every=1.0,
            what=f"the {len(interrupted)} sends the kill interrupted to be settled",
        )
        second.stop()

        tally = check_exactly_once(campaign, simulator)
        kinds = await check_workflows(dev_client, campaign)
        assert kinds == Counter({"DelinquencyWorkflow:running": ACCOUNTS}), kinds
        print(f"\nSIGKILL: {ACCOUNTS} accounts, {sum(at_kill.values())} sends before the kill, {tally}")
    finally:
        first.stop()
        second.stop()
        await terminate_all(dev_client, campaign)
