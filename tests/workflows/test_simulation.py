"""Random accounts through 180 days on the time-skipping server, checked against the law and the lab.

Whatever the cadence, the zones, the outcomes and the holds, no contact lands in quiet hours in any of
the debtor's possible zones, none exceeds a frequency cap, none goes out during a hold, and every
message or call the carrier saw has its line in the audit log (and the other way round).

And the strategy lab, given the same accounts, the same holds and the same carrier, sends exactly
what the workflows sent: the same channel and template at the same moment, for every account. That
is what lets ``tests/lab/test_lawful.py`` check the same laws over thousands of accounts in seconds.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from domain.accounts import AccountTerms
from domain.agencies import load_agencies
from domain.profiles import load_profile
from lab.behaviour import CarrierTable
from lab.engine import HoldChange, Portfolio, SimAccount
from lab.synthetic import synthetic_accounts
from store.accounts import upsert_account
from store.agencies import agency_load
from tests.lab.laws import caps_kept
from tests.workflows.conftest import Harness, running_harness
from workflows.messages import HoldRequest

ACCOUNTS = 50
DAYS = 180
SEED = 20261124
#: the simulator's moment of a send may differ from the activity's by the real seconds a send takes
SAME_MOMENT = timedelta(seconds=90)


@pytest.fixture
async def harness(env, settings, simulator) -> AsyncIterator[Harness]:  # type: ignore[no-untyped-def]
    """Sends one at a time: the governor counts a call still in flight as abandoned (its worst case),
    so calls of two accounts overlapping by chance could pause voice in one run and not in another.
    The lab knows each call's outcome at once; one send at a time makes the workflows' view the same."""
    async with running_harness(env, settings, simulator, contact_slots=1) as h:
        yield h


async def carrier(harness: Harness) -> list[dict]:
    async with httpx.AsyncClient(base_url=harness.simulator_url, timeout=30) as http:
        await http.post("/_sim/wait_idle", params={"timeout": 10})
        return (await http.get("/_sim/messages")).json() + (await http.get("/_sim/calls")).json()


async def test_accounts_half_a_year_nothing_unlawful_and_the_lab_agrees(harness: Harness) -> None:
    begin = await harness.now()
    accounts = synthetic_accounts(ACCOUNTS, seed=SEED, now=begin, prefix=f"T{uuid.uuid4().hex[:6]}")
    with harness.sessions.begin() as s:
        load = agency_load(s)
    opened: dict[str, datetime] = {}
    for account in accounts:
        with harness.sessions.begin() as s:
            upsert_account(s, account, await harness.now())
        opened[account.account_id] = await harness.now()
        await harness.start(account)
    terms = {a.account_id: AccountTerms.from_account(a) for a in accounts}

    # a quarter of them are paused for ten days somewhere in the first three months
    rng = random.Random(SEED)
    paused = rng.sample(range(ACCOUNTS), ACCOUNTS // 4)
    start = await harness.now()
    changes: list[HoldChange] = []
    holds: dict[str, tuple[datetime, datetime]] = {}
    for day in range(0, DAYS, 10):
        await harness.skip_to(start + timedelta(days=day))
        for idx in paused:
            account = accounts[idx]
            first = 10 + (idx % 8) * 10
            if day == first:
                at = await harness.now()
                await harness.handle(account).signal("pause", HoldRequest(reason="sim: hardship review"))
                changes.append(HoldChange(at=at, account_id=account.account_id, pause=True))
                holds[account.account_id] = (at, datetime.max.replace(tzinfo=ZoneInfo("UTC")))
            if day == first + 10:
                # the hold ends when the resume is sent: read the clock before signalling, since
                # the workflow may legitimately send the moment it has resumed
                ended = await harness.now()
                await harness.handle(account).signal("resume", HoldRequest(reason="sim: review done"))
                changes.append(HoldChange(at=ended, account_id=account.account_id, pause=False))
                holds[account.account_id] = (holds[account.account_id][0], ended)
    await harness.skip_to(start + timedelta(days=DAYS))

    seen = await carrier(harness)
    by_sid = {item["sid"]: item for item in seen}
    audited_sids: set[str] = set()
    total_sent = 0
    sent_by: dict[str, list[dict]] = {}
    for account in accounts:
        t = terms[account.account_id]
        profile = load_profile(t.profile)
        lines = harness.contacts(account)
        sent = [c for c in lines if c["decision"] not in ("denied", "deferred", "cancelled", "retry")]
        sent_by[account.account_id] = sent
        total_sent += len(sent)
        for c in sent:
            # quiet hours, in every zone the debtor may be in
            for zone in t.zones:
                local = c["at"].astimezone(ZoneInfo(zone)).time()
                assert profile.contact_start <= local < profile.contact_end, (account.account_id, zone, c)
            # holds: nothing that chases the debt while paused
            if account.account_id in holds and c["purpose"] == "dunning":
                paused_at, resumed_at = holds[account.account_id]
                assert not (paused_at <= c["at"] < resumed_at), (account.account_id, c)
            if sid := c.get("provider_sid"):
                audited_sids.add(sid)
                assert by_sid[sid]["to"] == account.debtor.phone  # the audit line names the real send
        # caps, from the audit log
        dunning = [(c["at"], c["channel"]) for c in sent if c["purpose"] == "dunning"]
        assert caps_kept(dunning, profile, t.zones) == [], account.account_id

    # the audit log accounts for every attempt the carrier saw, and nothing was sent twice
    ours = {a.debtor.phone for a in accounts}
    carrier_sids = {item["sid"] for item in seen if item["to"] in ours}
    assert carrier_sids == audited_sids
    assert total_sent >= ACCOUNTS * 10  # the run really collected: about 20 contacts per account
    keys = [c["key"] for a in accounts for c in harness.sent(a)]
    assert len(keys) == len(set(keys))

    # the lab, on the same accounts, holds and carrier, sends the same contacts at the same moments
    lab = Portfolio(CarrierTable(), load_agencies(harness.settings.agencies_file), load=load)
    for account in accounts:
        lab.open(SimAccount(terms[account.account_id], account.debtor.phone, opened[account.account_id]))
    for change in changes:
        lab.hold(change)
    lab.run(start + timedelta(days=DAYS))
    differ: list[str] = []
    for account in accounts:
        real = [(c["at"], c["channel"], c["template"]) for c in sent_by[account.account_id]]
        simulated = [(s.at, s.channel.value, s.template) for s in lab.accounts[account.account_id].sent]
        same = len(real) == len(simulated) and all(
            r[1:] == m[1:] and abs(r[0] - m[0]) <= SAME_MOMENT for r, m in zip(real, simulated, strict=True)
        )
        if not same:
            differ.append(_diff(account.account_id, account.debtor.phone, real, simulated))
    assert not differ, "\n\n".join(differ)

    for account in accounts:
        await harness.finish(account.workflow_id)


def _diff(account_id: str, phone: str, real: list[tuple], simulated: list[tuple]) -> str:
    rows = [f"{account_id} (number ending {phone[-2:]}): workflows | lab"]
    for i in range(max(len(real), len(simulated))):
        r = real[i] if i < len(real) else None
        m = simulated[i] if i < len(simulated) else None
        fmt = lambda x: f"{x[0]:%Y-%m-%d %H:%M:%S%z} {x[1]} {x[2]}" if x else "-"  # noqa: E731
        rows.append(f"  {fmt(r):60} | {fmt(m)}")
    return "\n".join(rows)
