"""``python -m bench [--only NAME ...] [--scale 0.1]``: the five benchmarks of issue 6.

Each prints a row in one rich table and goes into ``bench/results.json``. Not part of the test
suite: they take minutes and their numbers depend on the machine. Where the issue sets a goal
against the raw engine, the raw figure is measured in the same run on the same server, interleaved
in rounds, so the ratio holds on a noisy machine.

1. intake      accounts started/s through ``starter.py intake`` vs trivial workflows, same concurrency
2. negotiation propose_settlement latency with N open accounts vs a trivial update (p50/p99)
3. lifecycle   accounts through 180 days on the time-skipping server, accounts/s
4. footprint   worker RSS and CPU with N open accounts (and 10x N), sticky cache bounded
5. pacing      SMS/s at the carrier with a backlog vs the configured sender limit

Each benchmark is a module of its own (``bench/intake.py`` … ``bench/pacing.py``, what they share in
``bench/load.py``); this one is the command: the arguments, the table and ``results.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.table import Table

from bench.footprint import bench_footprint
from bench.infra import stack
from bench.intake import bench_intake
from bench.lifecycle import bench_lifecycle
from bench.load import console
from bench.negotiation import bench_negotiation
from bench.pacing import bench_pacing

RESULTS = Path(__file__).resolve().parent / "results.json"


NAMES = ["intake", "negotiation", "lifecycle", "footprint", "pacing"]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    p.add_argument("--only", action="append", choices=NAMES, help="run only this one (repeatable)")
    p.add_argument("--scale", type=float, default=1.0, help="multiply every count (0.1 for a quick run)")
    p.add_argument("--intake", type=int, default=10_000, help="accounts for the intake benchmark")
    p.add_argument("--open", type=int, default=10_000, help="open accounts for the negotiation benchmark")
    p.add_argument("--samples", type=int, default=200, help="updates measured (each side)")
    p.add_argument(
        "--negotiation-cache",
        type=int,
        default=None,
        help="the worker's sticky cache for the negotiation benchmark (default: the worker's default)",
    )
    p.add_argument("--lifecycle", type=int, default=1_000, help="accounts through 180 days")
    p.add_argument("--footprint", type=int, nargs="+", default=[10_000, 100_000], help="open-account points")
    p.add_argument("--limit", type=float, default=5.0, help="sender limit (SMS/s) for the pacing benchmark")
    p.add_argument("--pacing-seconds", type=float, default=30.0, help="backlog size in seconds at the limit")
    p.add_argument(
        "--database-url",
        default=None,
        help="app database (default: a throwaway PostgreSQL database if one is reachable, else SQLite)",
    )
    p.add_argument(
        "--sqlite", action="store_true", help="use a fresh SQLite file even if PostgreSQL is there"
    )
    p.add_argument(
        "--both-databases",
        action="store_true",
        help="run everything on PostgreSQL, then again on a fresh SQLite file (results name@database)",
    )
    p.add_argument("--out", type=Path, default=RESULTS)
    return p


def table(results: dict[str, Any]) -> Table:
    t = Table(title="humane-collect benchmarks (side by side with the raw engine)")
    t.add_column("benchmark")
    t.add_column("measured")
    t.add_column("raw engine")
    t.add_column("ratio / goal")
    for key, r in results.items():
        name = key.split("@", 1)[0]  # "intake@sqlite" with --both-databases
        if "error" in r:
            t.add_row(key, f"[red]{r['error']}[/]", "", "")
        elif name == "intake":
            t.add_row(
                key,
                f"{r['ours_per_s']} accounts/s ({r['accounts']})",
                f"{r['raw_per_s']} starts/s",
                f"{r['ratio']} (goal {r['goal']}) {'✔' if r['met'] else '✘'}",
            )
        elif name == "negotiation":
            t.add_row(
                key,
                f"p50 {r['ours_p50_ms']} ms, p99 {r['ours_p99_ms']} ms ({r['open_accounts']} open)",
                f"p50 {r['raw_p50_ms']} ms, p99 {r['raw_p99_ms']} ms",
                f"p99 x{r['p99_ratio']} (goal {r['goal']}) {'✔' if r['met'] else '✘'}"
                + (
                    f", 90% interval x{r['p99_ratio_interval'][0]}-{r['p99_ratio_interval'][1]}: {r['verdict']}; "
                    if "verdict" in r
                    else "; "
                )
                + f"p99 < 250 ms {'✔' if r['ours_p99_ms'] < 250 else '✘'}",
            )
        elif name == "lifecycle":
            t.add_row(
                key,
                f"{r['accounts_per_s']} accounts/s ({r['accounts']} x {r['days']} days, {r['seconds']} s)",
                f"{r['cpu_ms_per_contact']} ms of CPU per contact: at most "
                f"{r['cpu_bound_accounts_per_s']} accounts/s on this machine's cores"
                + "".join(f"; {k} {v} ms" for k, v in r.get("cpu_ms_per_contact_by_process", {}).items())
                if "cpu_ms_per_contact" in r
                else "",
                f"{r['carrier_messages']} SMS, {r['carrier_calls']} calls; goal 2 accounts/s "
                f"{'✔' if r['accounts_per_s'] >= 2 else '✘'}",
            )
            if h := r.get("histories"):
                per, goals = h["per_contact"], h["goals"]
                t.add_row(
                    key.replace(name, "histories", 1),
                    ", ".join(f"{per[k]} {k.replace('_', ' ')}" for k in goals) + " per contact",
                    f"{h['contacts']} contacts, {h['accounts']} accounts, {h['runs']} runs",
                    "; ".join(f"{k} ≤ {g} {'✔' if h['met'][k] else '✘'}" for k, g in goals.items()),
                )
        elif name == "footprint":
            pts = "; ".join(
                f"{p['open_accounts']}: {p['rss_mb']} MB, {p['idle_cpu_cores']} cores idle"
                for p in r["points"]
            )
            t.add_row(key, pts, "", f"sticky cache {r['max_cached_workflows']}")
        elif name == "pacing":
            t.add_row(
                key,
                f"{r['steady_per_s']} SMS/s (peak {r['max_in_any_1s']} in 1 s)",
                f"limit {r['limit_per_s']}/s",
                f"{r['ratio']} (goal {r['goal']}) {'✔' if r['met'] else '✘'}",
            )
    return t


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    if not args.both_databases:
        return await run_on(args, sqlite=args.sqlite)
    results: dict[str, Any] = {}
    for sqlite in (False, True):  # PostgreSQL (where one is reachable), then SQLite
        for name, r in (await run_on(args, sqlite=sqlite)).items():
            results[f"{name}@{r['database']}"] = r
    return results


async def run_on(args: argparse.Namespace, *, sqlite: bool) -> dict[str, Any]:
    """Every chosen benchmark on one stack (dev server, simulator, app database)."""
    names = args.only or NAMES
    s = args.scale
    results: dict[str, Any] = {}
    with stack(None if sqlite and args.both_databases else args.database_url, sqlite=sqlite) as st:
        results_db = st.database_url.split(":", 1)[0].split("+", 1)[0]
        console.print(f"app database: {results_db}")
        for name in names:
            console.print(f"[bold]{name}[/] …")
            began = time.perf_counter()
            try:
                if name == "intake":
                    results[name] = await bench_intake(st, max(10, int(args.intake * s)))
                elif name == "negotiation":
                    results[name] = await bench_negotiation(
                        st,
                        max(10, int(args.open * s)),
                        max(5, min(args.samples, int(args.open * s))),
                        cache=args.negotiation_cache,
                    )
                elif name == "lifecycle":
                    results[name] = await bench_lifecycle(st, max(5, int(args.lifecycle * s)))
                elif name == "footprint":
                    results[name] = await bench_footprint(st, [max(10, int(c * s)) for c in args.footprint])
                elif name == "pacing":
                    results[name] = await bench_pacing(st, args.limit, args.pacing_seconds * max(s, 0.2))
            except Exception as exc:  # one failed benchmark does not lose the others' numbers
                console.print_exception()
                results[name] = {"error": f"{type(exc).__name__}: {exc}"}
            results[name]["wall_seconds"] = round(time.perf_counter() - began, 1)
            results[name]["database"] = results_db
            console.print(f"  {json.dumps(results[name])}")
    return results


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    results = asyncio.run(main_async(args))
    console.print(table(results))
    now = datetime.now(UTC).isoformat(timespec="seconds")
    for r in results.values():
        r["at"] = now
    merged: dict[str, Any] = {}
    if args.only and args.out.exists():  # a partial run keeps the other benchmarks' last figures
        with contextlib.suppress(ValueError, KeyError):
            merged = json.loads(args.out.read_text(encoding="utf-8"))["results"]
    payload = {
        "at": now,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "scale": args.scale,
        "results": {**merged, **results},
    }
    args.out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    console.print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
