"""The carrier misbehaves for a while across a whole campaign: 429s, 500s and requests that time out.

``tests/carrier/test_faults_no_duplicates.py`` proves the single-send case on the time-skipping
server (one account, N refusals, backoff read from the history). This extends it to a campaign on
the dev server in real time, with timeouts too: every debtor still gets exactly one reminder, each
refusal shows up as one ``retry`` audit line, and nothing is lost.

The worker runs in this process so that its Twilio client can time out after 2 s instead of the
production 30 s (``activities.twilio_client.REQUEST_TIMEOUT``); the carrier holds those requests 3 s.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from twilio.rest import Client as TwilioClient

from activities.deps import Deps
from activities.twilio_client import RedirectingHttpClient
from runtime.settings import Settings
from store.db import make_engine
from tests.chaos.conftest import (
    Campaign,
    audit_lines,
    before_ten,
    carrier_sends,
    check_exactly_once,
    check_workflows,
    make_accounts,
    open_campaign,
    reserved,
    terminate_all,
    wait_until,
)
from workers.setup import build_workers

ACCOUNTS = 60
DAY_SECONDS = 600.0  # a policy day lasts ten minutes: only each debtor's first reminder within the test
CLIENT_TIMEOUT = 2.0


@asynccontextmanager
async def worker(client: Any, settings: Settings) -> AsyncIterator[None]:
    deps = Deps(settings=settings, engine=make_engine(settings.database_url))
    http = RedirectingHttpClient(settings.twilio_base or "", timeout=CLIENT_TIMEOUT)
    deps.__dict__["twilio"] = TwilioClient(settings.twilio_sid, settings.twilio_token, http_client=http)
    workers, _, executor = build_workers(client, settings, deps, max_cached_workflows=500)
    tasks = [asyncio.create_task(w.run()) for w in workers]
    try:
        yield
    finally:
        await asyncio.gather(*(w.shutdown() for w in workers), return_exceptions=True)
        await asyncio.gather(*tasks, return_exceptions=True)
        executor.shutdown(wait=False)


def refused(simulator: Any, campaign: Campaign) -> Counter[int]:
    phones = set(campaign.phones)
    return Counter(
        r["status"]
        for r in simulator.control("GET", "/_sim/rejected").json()
        if r["params"].get("To", [""])[0] in phones
    )


async def run_campaign(dev_client: Any, settings: Settings, simulator: Any, seed: int) -> Campaign:
    # taken in before the day's 10:00 reminder (nothing from before intake is caught up): it is each
    # debtor's first contact, at most one policy hour (25 s) away (``before_ten``)
    accounts = make_accounts(
        ACCOUNTS, rng=random.Random(seed), due_offsets=(-4, -4), digits=range(0, 60), hours=before_ten()
    )
    return await open_campaign(dev_client, settings, accounts, day_seconds=DAY_SECONDS)


async def test_429_500_and_timeouts_are_retried_and_nothing_is_sent_twice(
    dev_client: Any, chaos_settings: Settings, simulator: Any
) -> None:
    faults = [
        {"status": 429, "count": 25, "method": "POST", "path": "/Messages.json"},
        {"status": 500, "count": 25, "method": "POST", "path": "/Messages.json"},
        # held past the client's timeout, then refused: the carrier did not take them
        {"status": 503, "delay": 3.0, "count": 6, "method": "POST", "path": "/Messages.json"},
    ]
    simulator.control("DELETE", "/_sim/faults").raise_for_status()
    simulator.control("POST", "/_sim/faults", json=faults).raise_for_status()
    campaign = None
    try:
        async with worker(dev_client, chaos_settings):
            campaign = await run_campaign(dev_client, chaos_settings, simulator, 6_502)

            def everyone_reached() -> bool:
                sends = carrier_sends(simulator, campaign.phones)
                return len(sends) == ACCOUNTS

            await wait_until(everyone_reached, within=150, every=0.5, what="a reminder for every debtor")
            await wait_until(lambda: not reserved(campaign), within=30, what="no reserved attempt")
        pending = simulator.control("GET", "/_sim/faults").json()
        kinds = await check_workflows(dev_client, campaign)
    finally:
        simulator.control("DELETE", "/_sim/faults")
        if campaign is not None:
            await terminate_all(dev_client, campaign)

    assert pending == [], "every injected fault was hit"
    assert refused(simulator, campaign) == Counter({429: 25, 500: 25, 503: 6})
    tally = check_exactly_once(campaign, simulator)
    # exactly one reminder per debtor: the refused ones were resent, none twice, none lost
    assert tally.carrier == tally.accepted == ACCOUNTS, tally
    assert tally.indeterminate == 0
    lines = [a for a in audit_lines(campaign) if a.action == "contact"]
    retries = Counter(a.rule for a in lines if a.decision == "retry")
    assert retries == Counter(
        {"provider.http_429": 25, "provider.http_500": 25, "provider.unreachable": 6}
    ), retries
    assert Counter(a.decision for a in lines)["sent"] == ACCOUNTS
    assert kinds == Counter({"DelinquencyWorkflow:running": ACCOUNTS}), kinds


async def test_a_timeout_the_carrier_did_take_is_not_sent_again(
    dev_client: Any, chaos_settings: Settings, simulator: Any
) -> None:
    # held past the client's timeout and then *created*: the answer is lost, the message is not
    faults = [{"delay": 3.0, "count": 6, "method": "POST", "path": "/Messages.json"}]
    simulator.control("DELETE", "/_sim/faults").raise_for_status()
    simulator.control("POST", "/_sim/faults", json=faults).raise_for_status()
    campaign = None
    try:
        async with worker(dev_client, chaos_settings):
            campaign = await run_campaign(dev_client, chaos_settings, simulator, 6_503)
            await wait_until(
                lambda: len(carrier_sends(simulator, campaign.phones)) == ACCOUNTS,
                within=120,
                what="a reminder for every debtor",
            )
            await wait_until(lambda: not reserved(campaign), within=30, what="no reserved attempt")
            await asyncio.sleep(CLIENT_TIMEOUT + 4)  # time for any resend to land
    finally:
        simulator.control("DELETE", "/_sim/faults")
        if campaign is not None:
            await terminate_all(dev_client, campaign)
    sends = carrier_sends(simulator, campaign.phones)
    doubled = {to: v for to, v in sends.items() if len(v) > 1}
    assert not doubled, f"{len(doubled)} debtors got their reminder twice"
