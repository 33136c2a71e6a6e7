"""``python -m lab.bench [--accounts N] [--days 180] [--processes 2]``: how fast the lab runs a portfolio.

Issue 17 sets the goal: 100,000 accounts x 180 days in under 60 s on 2 cores. The synthetic portfolio
(every carrier outcome, silent callees included, so the call governor works) runs once per process on
its own share of the accounts (debtors acting as lab/debtors.toml says, unless ``--no-debtors``), each
share its own campaign (the governor judges a campaign's calls
together, so shares are split by campaign, never through one). Prints accounts/s and the goal line;
memory is the largest process's peak RSS.
"""

from __future__ import annotations

import argparse
import gc
import resource
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta

GOAL_ACCOUNTS = 100_000
GOAL_SECONDS = 60.0


def run_share(count: int, seed: int, days: int, debtors: bool = True) -> tuple[int, int, float]:
    """(accounts, contacts, peak RSS in MB) of one share, simulated in this process."""
    from domain.accounts import AccountTerms
    from domain.agencies import load_agencies
    from lab.behaviour import CarrierTable
    from lab.debtors import load_model
    from lab.engine import Portfolio, SimAccount
    from lab.synthetic import iter_synthetic_accounts

    start = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    lab = Portfolio(CarrierTable(), load_agencies(), debtors=load_model() if debtors else None)
    for account in iter_synthetic_accounts(count, seed=seed, now=start, digits=range(100), prefix=f"B{seed}"):
        lab.open(SimAccount(AccountTerms.from_account(account), account.debtor.phone, start))
    # the accounts live until the end: the collector need not scan them again, and the run makes
    # few cycles, so it collects rarely (about 8% of a run's time at the default 700 allocations);
    # this process is the bench's own, so its collector's settings are too
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    lab.run(start + timedelta(days=days))
    contacts = sum(len(a.sent) for a in lab.accounts.values())
    return count, contacts, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lab.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--accounts", type=int, default=10_000)
    p.add_argument("--days", type=int, default=180)
    p.add_argument("--processes", type=int, default=2)
    p.add_argument(
        "--no-debtors", action="store_true", help="debtors never act (every account dunned to the end)"
    )
    args = p.parse_args(argv)
    shares = [
        args.accounts // args.processes + (i < args.accounts % args.processes) for i in range(args.processes)
    ]
    began = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.processes) as pool:
        n = len(shares)
        done = list(pool.map(run_share, shares, range(1, n + 1), [args.days] * n, [not args.no_debtors] * n))
    seconds = time.perf_counter() - began
    accounts = sum(d[0] for d in done)
    contacts = sum(d[1] for d in done)
    rate = accounts / seconds
    projected = GOAL_ACCOUNTS / rate
    print(
        f"{accounts} accounts x {args.days} days in {seconds:.1f} s on {args.processes} processes: "
        f"{rate:.0f} accounts/s, {contacts} contacts ({contacts / accounts:.1f} per account), "
        f"peak {max(d[2] for d in done):.0f} MB per process"
    )
    print(
        f"goal: {GOAL_ACCOUNTS} accounts in under {GOAL_SECONDS:.0f} s -> at this rate {projected:.0f} s "
        f"{'met' if projected < GOAL_SECONDS else 'not met'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
