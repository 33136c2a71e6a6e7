"""``./collect simulate POLICY… --synthetic N | --portfolio FILE [--days 180]``: try policies on a
portfolio in seconds, without Temporal or a database.

Each policy runs over the same accounts from the same start; the report (JSON and a self-contained
HTML page) puts them side by side. Outcomes come from the carrier table (the last two digits of each
number, as in the demo and the tests; see lab/behaviour.py), and what debtors do once reached (pay,
ask for a plan, reply STOP, complain) from the seeded model in lab/debtors.toml (lab/debtors.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from domain.accounts import Account
from domain.intake import parse_portfolio_file
from domain.intake_files import FileRefused
from domain.policy import Policy, load_policy, parse_policy
from lab.compare import run_policy
from lab.debtors import load_model
from lab.report import Prices, Summary, write_html
from lab.synthetic import synthetic_accounts


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    policies: dict[str, Policy] = {}
    for given in args.policies:
        try:
            policy = _load(given)
        except ValueError as err:
            print(f"policy: {err}", file=sys.stderr)
            return 2
        if policy.name in policies:
            print(f"policy: two policies are named {policy.name!r}: give each its own name", file=sys.stderr)
            return 2
        policies[policy.name] = policy
    start = datetime.fromisoformat(args.start) if args.start else datetime.now(UTC)
    if start.tzinfo is None:
        print("--start: give a time zone, e.g. 2026-12-01T09:00:00+00:00", file=sys.stderr)
        return 2
    accounts = _accounts(args, start)
    if accounts is None:
        return 2
    prices = Prices(sms=args.sms_price, call=args.call_price)
    try:
        debtors = None if args.no_debtors else load_model(args.behaviour)
    except ValueError as err:
        print(f"--behaviour: {err}", file=sys.stderr)
        return 2
    summaries: list[Summary] = []
    for name in policies:
        began = time.perf_counter()
        progress = None if args.quiet or not sys.stderr.isatty() else _progress(name, args.days)
        summaries.append(
            run_policy(name, policies, accounts, start, args.days, prices, on_day=progress, debtors=debtors)
        )
        if progress is not None:
            print(file=sys.stderr)
        took = time.perf_counter() - began
        t = summaries[-1].totals
        print(
            f"{name}: {t.accounts} accounts, {t.contacts} contacts ({t.contacts_per_account}/account), "
            f"cost {t.cost}, {t.opted_out} opted out, {sum(t.refusals.values())} refusals, "
            f"{t.recovered_share:.1%} recovered, {t.plans} plans, {t.complaints} complaints, in {took:.1f} s",
            file=sys.stderr,
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(
        json.dumps([s.model_dump() for s in summaries], indent=1, ensure_ascii=False), encoding="utf-8"
    )
    write_html(out / "report.html", summaries, f"Strategy lab: {', '.join(policies)}")
    print(f"report: {out / 'report.html'} and {out / 'report.json'}")
    return 0


def _load(given: str) -> Policy:
    """A policy by name (``policies/<name>.toml``) or a path to a policy file (a variant being tried)."""
    path = Path(given)
    if given.endswith(".toml"):
        if not path.is_file():
            raise ValueError(f"{given}: no such file")
        return parse_policy(path.read_text(encoding="utf-8"), source=given)
    return load_policy(given)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="./collect simulate", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "policies", nargs="+", metavar="POLICY", help="policy names (policies/<name>.toml) or policy files"
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--synthetic", type=int, metavar="N", help="N seeded synthetic accounts")
    source.add_argument("--portfolio", metavar="FILE", help="a portfolio file as intake takes it (CSV, XLSX)")
    p.add_argument("--days", type=int, default=180, help="simulated days (default 180)")
    p.add_argument("--seed", type=int, default=1, help="the synthetic portfolio's seed")
    p.add_argument("--start", help="simulated start (ISO 8601 with a zone; default now)")
    p.add_argument("--sms-price", type=float, default=Prices().sms, help="cost of one text")
    p.add_argument("--call-price", type=float, default=Prices().call, help="cost of one call attempt")
    p.add_argument("--out", default="var/lab", help="directory for report.html and report.json")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--behaviour", metavar="FILE", help="what debtors do once reached (default lab/debtors.toml)"
    )
    p.add_argument(
        "--no-debtors", action="store_true", help="debtors never pay, plan, reply STOP or complain"
    )
    return p


def _accounts(args: argparse.Namespace, start: datetime) -> list[Account] | None:
    if args.synthetic is not None:
        if args.synthetic < 1:
            print("--synthetic: give at least one account", file=sys.stderr)
            return None
        return synthetic_accounts(args.synthetic, seed=args.seed, now=start)
    path = Path(args.portfolio)
    try:
        _, report = parse_portfolio_file(path.read_bytes(), name=path.name)
    except (OSError, FileRefused) as err:
        print(f"--portfolio: {err}", file=sys.stderr)
        return None
    for error in report.errors:  # reported and skipped, as intake does
        print(f"{path.name} line {error.line}: {error.field}: {error.reason}", file=sys.stderr)
    return [account for _, account in report.accounts]


def _progress(name: str, days: int) -> Callable[[int], None]:
    """A bar on the terminal, day by day, so a long run shows where it is."""

    def show(day: int) -> None:
        done = day * 40 // days
        print(f"\r{name:>12} [{'#' * done}{'.' * (40 - done)}] day {day}/{days}", end="", file=sys.stderr)

    return show


if __name__ == "__main__":
    raise SystemExit(main())
