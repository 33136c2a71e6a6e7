"""A thousand accounts through half a year in the lab, checked against the law.

The lab sends what the workflows send (``tests/workflows/test_simulation.py`` proves it on the same
accounts through Temporal), so what holds here holds for the product, over many more accounts and
every outcome of the carrier table, silent callees included (the call governor at work).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from domain.accounts import AccountTerms, Channel, ContactOutcome
from domain.agencies import load_agencies
from domain.gate import Purpose
from domain.governor import NO_REDIAL_FLOOR
from domain.profiles import load_profile
from lab.behaviour import CarrierTable
from lab.engine import HoldChange, Portfolio, SimAccount
from lab.synthetic import synthetic_accounts
from tests.lab.laws import caps_kept, quiet_hours_broken

ACCOUNTS = 1_000
DAYS = 180
SEED = 20261205
BEGIN = datetime(2026, 12, 5, 3, 36, tzinfo=UTC)


def run_portfolio(count: int = ACCOUNTS) -> tuple[Portfolio, dict[str, tuple[datetime, datetime]]]:
    accounts = synthetic_accounts(count, seed=SEED, now=BEGIN, digits=range(100))
    lab = Portfolio(CarrierTable(), load_agencies())
    for account in accounts:
        lab.open(SimAccount(AccountTerms.from_account(account), account.debtor.phone, BEGIN))
    rng = random.Random(SEED)
    holds: dict[str, tuple[datetime, datetime]] = {}
    for idx in rng.sample(range(count), count // 4):
        account_id = accounts[idx].account_id
        paused = BEGIN + timedelta(days=rng.randint(5, 90), hours=rng.randint(0, 23))
        resumed = paused + timedelta(days=rng.randint(1, 20))
        lab.hold(HoldChange(at=paused, account_id=account_id, pause=True))
        lab.hold(HoldChange(at=resumed, account_id=account_id, pause=False))
        holds[account_id] = (paused, resumed)
    lab.run(BEGIN + timedelta(days=DAYS))
    return lab, holds


def test_a_thousand_accounts_half_a_year_nothing_unlawful() -> None:
    lab, holds = run_portfolio()
    total = 0
    for account_id, a in lab.accounts.items():
        profile = load_profile(a.terms.profile)
        zones = a.terms.zones
        total += len(a.sent)
        assert quiet_hours_broken([s.at for s in a.sent], profile, zones) == [], account_id
        dunning = [s for s in a.sent if s.purpose == Purpose.DUNNING]
        assert caps_kept([(s.at, s.channel.value) for s in dunning], profile, zones) == [], account_id
        if account_id in holds:
            paused, resumed = holds[account_id]
            assert not [s for s in dunning if paused <= s.at < resumed], account_id
        # a channel that failed for good, or that the debtor opted out of, is never used again
        for channel in Channel:
            gone = [s.at for s in a.sent if s.channel == channel and s.outcome in _GONE]
            if gone:
                assert not [s for s in a.sent if s.channel == channel and s.at > gone[0]], account_id
        # after an abandoned (silent) call, no call to that number for 72 hours
        calls = [s for s in a.sent if s.channel == Channel.VOICE]
        for abandoned in (c for c in calls if c.outcome == ContactOutcome.SILENT):
            assert not [c for c in calls if abandoned.at < c.at < abandoned.at + NO_REDIAL_FLOOR], account_id
        # nothing chases the debt once it is charged off (the placement letter is not a reminder)
        if a.ended_at is not None:
            assert not [s for s in dunning if s.at >= a.ended_at], account_id
    assert total >= ACCOUNTS * 10  # the run really collected


def test_the_same_seed_is_the_same_run() -> None:
    first, _ = run_portfolio(200)
    second, _ = run_portfolio(200)
    assert {k: a.sent for k, a in first.accounts.items()} == {k: a.sent for k, a in second.accounts.items()}


_GONE = {ContactOutcome.UNDELIVERABLE, ContactOutcome.OPTED_OUT}
