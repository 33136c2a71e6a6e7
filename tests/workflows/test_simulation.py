"""200 random accounts through 180 days on the time-skipping server, checked against the law.

Whatever the cadence, the zones, the outcomes and the holds, no contact lands in quiet hours in any of
the debtor's possible zones, none exceeds a frequency cap, none goes out during a hold, and every
message or call the carrier saw has its line in the audit log (and the other way round).
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx

from domain.accounts import Account, AccountTerms
from domain.profiles import load_profile
from tests.workflows.conftest import Harness
from workflows.messages import HoldRequest

ACCOUNTS = 200
DAYS = 180
SEED = 20261124

# fictional ranges per country; the last two digits choose the carrier's outcome (see carrier/outcomes.py):
# people, machines, no answer and busy, but no silent calls, which would pause voice for every test after
DIGITS = [*range(0, 70), *range(75, 90)]
NUMBERING = {
    "US": ("+1212{serial:03d}01{digits:02d}", ["America/New_York", None], "USD"),  # None: from the number
    "CN": ("+86138{serial:04d}00{digits:02d}", ["Asia/Shanghai", "Asia/Urumqi"], "CNY"),
    "UK": ("+4477009{serial:03d}{digits:02d}", ["Europe/London", None], "GBP"),
}


def make_phone(rng: random.Random, country: str, serial: int) -> str:
    return NUMBERING[country][0].format(serial=serial, digits=rng.choice(DIGITS))


async def carrier(harness: Harness) -> list[dict]:
    async with httpx.AsyncClient(base_url=harness.simulator_url, timeout=30) as http:
        await http.post("/_sim/wait_idle", params={"timeout": 10})
        return (await http.get("/_sim/messages")).json() + (await http.get("/_sim/calls")).json()


def windows(at: list[datetime], days: int, zones: list[str]) -> int:
    """The most items in any ``days`` consecutive local calendar days, in the worst of the zones
    (how the profiles count: "3 texts a week" means per local calendar week, rolling by day)."""
    best = 0
    for zone in zones:
        dates = sorted(t.astimezone(ZoneInfo(zone)).date() for t in at)
        for d in dates:
            best = max(best, sum(1 for x in dates if d - timedelta(days=days - 1) <= x <= d))
    return best


async def test_two_hundred_accounts_half_a_year_nothing_unlawful(harness: Harness) -> None:
    rng = random.Random(SEED)
    accounts: list[tuple[Account, AccountTerms]] = []
    for i in range(ACCOUNTS):
        country = rng.choice(list(NUMBERING))
        _, zones, currency = NUMBERING[country]
        account = await harness.open_account(
            due_in_days=rng.randint(-40, 5),
            phone=make_phone(rng, country, 200 + i),
            zone=rng.choice(zones),
            profile=country,
            currency=currency,
            balance=rng.randint(5_000, 500_000),
            fees=0,
        )
        accounts.append((account, AccountTerms.from_account(account)))

    # a quarter of them are paused for ten days somewhere in the first three months
    paused = rng.sample(range(ACCOUNTS), ACCOUNTS // 4)
    start = await harness.now()
    holds: dict[str, tuple[datetime, datetime]] = {}
    for day in range(0, DAYS, 10):
        await harness.skip_to(start + timedelta(days=day))
        for idx in paused:
            account = accounts[idx][0]
            begin = 10 + (idx % 8) * 10
            if day == begin:
                await harness.handle(account).signal("pause", HoldRequest(reason="sim: hardship review"))
                holds[account.account_id] = (
                    await harness.now(),
                    datetime.max.replace(tzinfo=ZoneInfo("UTC")),
                )
            if day == begin + 10:
                # the hold ends when the resume is sent: read the clock before signalling, since
                # the workflow may legitimately send the moment it has resumed
                ended = await harness.now()
                await harness.handle(account).signal("resume", HoldRequest(reason="sim: review done"))
                holds[account.account_id] = (holds[account.account_id][0], ended)
    await harness.skip_to(start + timedelta(days=DAYS))

    seen = await carrier(harness)
    by_sid = {item["sid"]: item for item in seen}
    audited_sids: set[str] = set()
    total_sent = 0
    for account, terms in accounts:
        profile = load_profile(terms.profile)
        lines = harness.contacts(account)
        sent = [c for c in lines if c["decision"] not in ("denied", "deferred", "cancelled", "retry")]
        total_sent += len(sent)
        for c in sent:
            # quiet hours, in every zone the debtor may be in
            for zone in terms.zones:
                local = c["at"].astimezone(ZoneInfo(zone)).time()
                assert profile.contact_start <= local < profile.contact_end, (account.account_id, zone, c)
            # holds: nothing that chases the debt while paused
            if account.account_id in holds and c["purpose"] == "dunning":
                begin, end = holds[account.account_id]
                assert not (begin <= c["at"] < end), (account.account_id, c)
            if sid := c.get("provider_sid"):
                audited_sids.add(sid)
                assert by_sid[sid]["to"] == account.debtor.phone  # the audit line names the real send
        # caps, from the audit log
        dunning = [c for c in sent if c["purpose"] == "dunning"]
        calls = [c["at"] for c in dunning if c["channel"] == "voice"]
        texts = [c["at"] for c in dunning if c["channel"] == "sms"]
        if profile.max_call_attempts_per_7_days is not None:
            assert windows(calls, 7, terms.zones) <= profile.max_call_attempts_per_7_days, account.account_id
        what = [(c["at"], c["template"], c.get("key")) for c in dunning if c["channel"] == "sms"]
        assert windows(texts, 7, terms.zones) <= profile.max_sms_per_7_days, (account.account_id, what)
        assert windows(texts, 1, terms.zones) <= profile.max_sms_per_day, (account.account_id, what)

    # the audit log accounts for every attempt the carrier saw, and nothing was sent twice
    ours = {a.debtor.phone for a, _ in accounts}
    carrier_sids = {item["sid"] for item in seen if item["to"] in ours}
    assert carrier_sids == audited_sids
    assert total_sent >= ACCOUNTS * 10  # the run really collected: about 20 contacts per account
    keys = [c["key"] for a, _ in accounts for c in harness.sent(a)]
    assert len(keys) == len(set(keys))
    for account, _ in accounts:
        await harness.finish(account.workflow_id)
