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

from domain.accounts import Account, AccountTerms, Channel
from domain.agencies import load_agencies
from domain.cadence import dpd_at
from domain.profiles import load_profile
from domain.timeline import AccountStatus
from lab.behaviour import CarrierTable
from lab.debtors import DebtorModel, Reaction, load_model, reach_of
from lab.engine import HoldChange, Portfolio, SimAccount
from lab.reactions import part
from lab.synthetic import synthetic_accounts
from store.accounts import upsert_account
from store.agencies import agency_load
from store.contacts import contact_attempts
from tests.lab.laws import caps_kept
from tests.workflows.conftest import Harness, running_harness
from workflows.messages import HoldRequest, OptOut, PaymentIn

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


async def open_portfolio(
    harness: Harness, count: int, seed: int, tag: str
) -> tuple[list[Account], dict[str, datetime], tuple[dict[str, int], dict[str, int]]]:
    """A seeded synthetic portfolio stored and started; when each account was taken in, and the
    agencies' load before it (both what the lab needs to start from the same place)."""
    begin = await harness.now()
    accounts = synthetic_accounts(count, seed=seed, now=begin, prefix=f"{tag}{uuid.uuid4().hex[:6]}")
    with harness.sessions.begin() as s:
        load = agency_load(s)
    opened: dict[str, datetime] = {}
    for account in accounts:
        with harness.sessions.begin() as s:
            upsert_account(s, account, await harness.now())
        opened[account.account_id] = await harness.now()
        await harness.start(account)
    return accounts, opened, load


async def test_accounts_half_a_year_nothing_unlawful_and_the_lab_agrees(harness: Harness) -> None:
    accounts, opened, load = await open_portfolio(harness, ACCOUNTS, SEED, "T")
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


# ---- debtors who act --------------------------------------------------------------------------------
REACTING = 24
REACT_DAYS = 60
DAY = timedelta(days=1)


def reacting_model() -> DebtorModel:
    """The shipped behaviour model with engagement tripled (so every kind of answer happens among a
    couple of dozen debtors) and only the answers a workflow takes from a signal alone: paying in full,
    paying part, replying STOP. Plans and complaints involve a negotiator and an investigator, whose
    pace is the lender's: tests/lab/test_reactions.py and tests/service/test_demo_debtors.py cover them."""
    base = load_model()
    return base.model_copy(
        update={
            "engage": [e.model_copy(update={"p": min(1.0, 3 * e.p)}) for e in base.engage],
            "segments": {
                name: seg.model_copy(update={"plan": 0.0, "complain": 0.0})
                for name, seg in base.segments.items()
            },
        }
    )


async def test_debtors_who_pay_or_reply_stop_the_workflows_and_the_lab_agree(harness: Harness) -> None:
    """The same seeded debtors on both sides: after each day, whatever contact reached a debtor that
    day (a dunning text delivered, a call answered, a voicemail left) gets the model's answer, and the
    debtor acts at the day's end: a payment signal (all or part of the balance the run shows), or an
    opt-out from texts. The lab acts at the same checkpoints (``act_at``) and must send the same dunning
    contacts at the same moments, and collect the same money, from every account."""
    model = reacting_model()
    accounts, opened, load = await open_portfolio(harness, REACTING, SEED + 1, "R")
    terms = {a.account_id: AccountTerms.from_account(a) for a in accounts}

    start = await harness.now()
    reached: dict[str, int] = dict.fromkeys(terms, 0)
    read: dict[str, int] = dict.fromkeys(terms, 0)
    closed: set[str] = set()
    did: dict[str, int] = {}
    for day in range(1, REACT_DAYS + 1):
        checkpoint = start + day * DAY
        await harness.skip_to(checkpoint)
        for account in accounts:
            if account.account_id in closed:
                continue
            t = terms[account.account_id]
            dunning = [c for c in harness.sent(account) if c["purpose"] == "dunning"]
            today = [c for c in dunning[read[account.account_id] :] if c["at"] < checkpoint]
            read[account.account_id] += len(today)
            with harness.sessions.begin() as s:  # the final outcome is the attempt's (the audit says "sent")
                outcome = {x.dedupe_key: x.outcome for x in contact_attempts(s, account.account_id)}
            answers = []
            for c in today:
                final = outcome.get(c["key"])
                how = reach_of(Channel(c["channel"]), final) if final is not None else None
                if how is None:
                    continue
                reached[account.account_id] += 1
                local = c["at"].astimezone(ZoneInfo(t.zones[0]))
                answer = model.respond(
                    t.account_id, reached[account.account_id], how, local.hour, dpd_at(c["at"], t), t.profile
                )
                if answer.reaction != Reaction.NOTHING:
                    answers.append(answer)
            for n, answer in enumerate(answers):
                handle = harness.handle(account)
                did[answer.reaction.value] = did.get(answer.reaction.value, 0) + 1
                if answer.reaction == Reaction.STOP:
                    await handle.signal("opt_out", OptOut(channel=Channel.SMS, source="debtor_sms"))
                    continue
                status = await handle.query("status", result_type=AccountStatus)
                amount = (
                    status.balance
                    if answer.reaction == Reaction.PAY_FULL
                    else part(status.balance, answer.share)
                )
                reference = f"sim-{account.account_id}-{day}-{n}"
                await handle.signal(
                    "payment_received", PaymentIn(amount=amount, currency=t.currency, reference=reference)
                )
                if amount >= status.balance:
                    closed.add(account.account_id)
                    break
    end = start + REACT_DAYS * DAY  # the last checkpoint: what the debtors did there is in both runs
    await harness.skip_to(end + timedelta(minutes=1))  # the last signals taken
    assert {"pay_full", "pay_part", "stop"} <= set(did), did  # every kind of answer was exercised

    lab = Portfolio(
        CarrierTable(),
        load_agencies(harness.settings.agencies_file),
        load=load,
        debtors=model,
        act_at=lambda at: start + (((at - start) // DAY) + 1) * DAY,
    )
    for account in accounts:
        lab.open(SimAccount(terms[account.account_id], account.debtor.phone, opened[account.account_id]))
    lab.run(end)
    differ: list[str] = []
    for account in accounts:
        real = [
            (c["at"], c["channel"], c["template"])
            for c in harness.sent(account)
            if c["purpose"] == "dunning" and c["at"] < end
        ]
        sim = lab.accounts[account.account_id]
        simulated = [
            (s.at, s.channel.value, s.template)
            for s in sim.sent
            if s.purpose.value == "dunning" and s.at < end
        ]
        same = len(real) == len(simulated) and all(
            r[1:] == m[1:] and abs(r[0] - m[0]) <= SAME_MOMENT for r, m in zip(real, simulated, strict=True)
        )
        if not same:
            differ.append(_diff(account.account_id, account.debtor.phone, real, simulated))
        status = await harness.handle(account).query("status", result_type=AccountStatus)
        assert status.paid_total == sim.money.recovered, (
            account.account_id,
            status.paid_total,
            sim.money.payments,
        )
    assert not differ, "\n\n".join(differ)
    assert sum(a.money.reactions.get("pay_full", 0) for a in lab.accounts.values()) == did["pay_full"]

    for account in accounts:
        await harness.finish(account.workflow_id)
