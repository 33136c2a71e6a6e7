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
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import platform
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table

from bench.infra import (
    ROOT,
    Stack,
    WorkerProc,
    make_accounts,
    percentile,
    running,
    stack,
    write_csv,
)

console = Console()
RESULTS = Path(__file__).resolve().parent / "results.json"
CONCURRENCY = 32  # runtime.intake.intake_accounts' default, what starter.py intake uses


async def gather_limited(
    n: int, make: Callable[[int], Awaitable[Any]], concurrency: int = CONCURRENCY
) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            await make(i)

    await asyncio.gather(*(one(i) for i in range(n)))


async def start_trivial(client: Any, task_queue: str, n: int, tag: str) -> float:
    """Seconds to start ``n`` trivial workflows with the intake's concurrency."""
    began = time.perf_counter()
    await gather_limited(
        n, lambda i: client.start_workflow("BenchTrivial", "x", id=f"raw-{tag}-{i}", task_queue=task_queue)
    )
    return time.perf_counter() - began


async def intake_csv(client: Any, settings: Any, path: Path) -> float:
    """Seconds for ``starter.py intake FILE`` (the CLI's own function, progress bar silenced)."""
    import starter

    args = argparse.Namespace(file=str(path), day_seconds=None, actor="bench")  # intake names who acts
    began = time.perf_counter()
    quiet = Console(file=io.StringIO())
    with contextlib.ExitStack() as stack_:
        stack_.enter_context(_swap(starter, "console", quiet))
        code = await starter.cmd_intake(args, settings, client)
    elapsed = time.perf_counter() - began
    if code != 0:
        raise RuntimeError(f"intake failed ({code})")
    return elapsed


@contextlib.contextmanager
def _swap(module: Any, name: str, value: Any):  # type: ignore[no-untyped-def]
    old = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, old)


# ---- 1. intake -----------------------------------------------------------------------------------
async def bench_intake(st: Stack, n: int, rounds: int = 2) -> dict[str, Any]:
    """No worker runs: this is the start path alone (parse, store with personal data, start)."""
    client = await st.client()
    settings = st.settings()
    per = max(1, n // rounds)
    raw_s = ours_s = 0.0
    for r in range(rounds):
        raw_s += await start_trivial(client, settings.task_queue, per, f"i{r}")
        path = st.workdir / f"intake-{r}.csv"
        write_csv(path, make_accounts(per, due_in_days=5, tag=f"in{r}{uuid.uuid4().hex[:4]}"))
        ours_s += await intake_csv(client, settings, path)
    total = per * rounds
    ours, raw = total / ours_s, total / raw_s
    return {
        "accounts": total,
        "concurrency": CONCURRENCY,
        "ours_per_s": round(ours, 1),
        "raw_per_s": round(raw, 1),
        "ratio": round(ours / raw, 3),
        "goal": ">= 0.8",
        "met": ours / raw >= 0.8,
    }


# ---- 2. negotiation to silence ---------------------------------------------------------------------
async def open_accounts(client: Any, settings: Any, st: Stack, n: int, tag: str) -> list[Any]:
    """``n`` accounts through the intake, due in five days: open, nothing sent during the bench."""
    accounts = make_accounts(n, due_in_days=5, tag=tag)
    await _open(client, settings, accounts)
    return accounts


async def wait_idle(
    worker: WorkerProc, *, below: float = 0.15, window: float = 3.0, limit: float = 1800
) -> float:
    """Until the worker's CPU use over ``window`` seconds drops below ``below`` cores; returns the wait."""
    began = time.perf_counter()
    while time.perf_counter() - began < limit:
        c0 = worker.cpu_seconds()
        await asyncio.sleep(window)
        if (worker.cpu_seconds() - c0) / window < below:
            break
    return time.perf_counter() - began


def raw_worker(st: Stack, task_queue: str) -> subprocess.Popen[bytes]:
    log = open(st.workdir / "raw-worker.log", "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.trivial_worker", st.address, task_queue],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=log,
    )
    assert proc.stdout is not None
    proc.stdout.readline()  # "worker up"
    return proc


async def bench_negotiation(st: Stack, n: int, samples: int, cache: int | None = None) -> dict[str, Any]:
    """``cache``: the worker's sticky cache (``COLLECT_MAX_CACHED_WORKFLOWS``; None: the default).

    An account not in the cache is replayed from its history before the update runs, in the sandbox:
    with the default cache of 2,000 and 10,000 open accounts most samples pay that.
    """
    from domain.plans import PlanKind, PlanProposal
    from runtime.settings import Settings

    client = await st.client()
    settings = st.settings()
    extra = {} if cache is None else {"COLLECT_MAX_CACHED_WORKFLOWS": str(cache)}
    worker = WorkerProc.start(settings, st.workdir / "negotiation-worker.log", **extra)
    cache = cache if cache is not None else Settings().sticky_cache  # the worker's default, as it sizes it
    raw_queue = f"raw-{uuid.uuid4().hex[:6]}"
    raw = raw_worker(st, raw_queue)
    try:
        began = time.perf_counter()
        accounts = await open_accounts(client, settings, st, n, f"ng{uuid.uuid4().hex[:4]}")
        await wait_idle(worker)
        opened = time.perf_counter() - began
        await gather_limited(
            samples,
            lambda i: client.start_workflow(
                "BenchTrivial", "x", id=f"rawn-{raw_queue}-{i}", task_queue=raw_queue
            ),
        )
        rng = random.Random(6)
        picked = rng.sample(accounts, samples)
        ours: list[float] = []
        base: list[float] = []
        for i, account in enumerate(picked):  # interleaved: one of ours, one raw, ...
            today = datetime.now(UTC).date()
            proposal = PlanProposal(kind=PlanKind.PROMISE_TO_PAY, first_due=today + timedelta(days=20))
            t0 = time.perf_counter()
            await client.get_workflow_handle(account.workflow_id).execute_update(
                "propose_settlement", proposal
            )
            ours.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            await client.get_workflow_handle(f"rawn-{raw_queue}-{i}").execute_update("poke", "x")
            base.append(time.perf_counter() - t0)
    finally:
        worker.stop()
        raw.terminate()
        raw.wait(30)
    p50, p99 = percentile(ours, 50) * 1000, percentile(ours, 99) * 1000
    r50, r99 = percentile(base, 50) * 1000, percentile(base, 99) * 1000
    return {
        "open_accounts": n,
        "max_cached_workflows": cache,
        "samples": samples,
        "open_seconds": round(opened, 1),
        "ours_p50_ms": round(p50, 1),
        "ours_p99_ms": round(p99, 1),
        "raw_p50_ms": round(r50, 1),
        "raw_p99_ms": round(r99, 1),
        "p99_ratio": round(p99 / r99, 2),
        "goal": "p99 <= 2x raw",
        "met": p99 <= 2 * r99,
    }


# ---- 3. lifecycle on the time-skipping server ----------------------------------------------------
async def bench_lifecycle(st: Stack, n: int, days: int = 180) -> dict[str, Any]:
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.testing import WorkflowEnvironment

    from runtime.devserver import test_server_binary
    from runtime.intake import intake_accounts
    from runtime.temporal import register_search_attributes
    from runtime.timeskip import skip_clock
    from store.db import make_engine, session_factory
    from workers.setup import build_workers

    settings = st.settings()
    rng = random.Random(180)
    async with await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=test_server_binary(), data_converter=pydantic_data_converter
    ) as env:
        await register_search_attributes(env.client)
        workers, _deps, executor = build_workers(env.client, settings, max_cached_workflows=2000)
        accounts = make_accounts(n, due_in_days=0, tag=f"lc{uuid.uuid4().hex[:4]}")
        for a in accounts:  # due dates spread over the first week, as a portfolio's are
            object.__setattr__(a, "due_date", a.due_date + timedelta(days=rng.randint(-3, 7)))
        async with running(workers):
            began = time.perf_counter()
            result = await intake_accounts(
                env.client,
                session_factory(make_engine(settings.database_url)),
                accounts,
                task_queue=settings.task_queue,
                contact_queue=settings.contact_task_queue,
                day_seconds=86_400,
            )
            if result.failed:
                raise RuntimeError(f"intake failed: {result.failed[:3]}")
            start = await env.get_current_time()
            await skip_clock(
                env,
                start + timedelta(days=days),
                on_day=lambda d: d % 10 or console.print(f"  day {d}: {time.perf_counter() - began:.0f} s"),
            )
            elapsed = time.perf_counter() - began
            skipped = (await env.get_current_time()) - start
            engine_cost = await history_costs(env.client, settings, accounts[:HISTORY_SAMPLE])
        executor.shutdown(wait=False)
    sent = st.carrier.store.stats()
    return {
        "histories": engine_cost,
        "accounts": n,
        "days": days,
        "policy_days_skipped": round(skipped.total_seconds() / 86_400, 1),
        "seconds": round(elapsed, 1),
        "accounts_per_s": round(n / elapsed, 2),
        "carrier_messages": sent["messages"],
        "carrier_calls": sent["calls"],
    }


HISTORY_SAMPLE = 200  # accounts whose every run is fetched and counted after the lifecycle


async def history_costs(client: Any, settings: Any, accounts: list[Any]) -> dict[str, Any]:
    """Events, activities, workflow tasks and upserts per contact, from the sample's real histories."""
    from sqlalchemy import func, select

    from bench.histories import account_histories, count, report
    from store.db import make_engine, session_factory
    from store.models import ContactAttempt

    ids = [a.account_id for a in accounts]
    with session_factory(make_engine(settings.database_url)).begin() as s:
        contacts = s.scalar(
            select(func.count()).where(
                ContactAttempt.account_id.in_(ids), ContactAttempt.provider_sid.is_not(None)
            )
        )
    pairs = await account_histories(client, [f"account-{i}" for i in ids])
    if dump := os.environ.get("BENCH_DUMP_HISTORY"):  # one account's runs, to read what a contact costs
        text = json.dumps([h.to_json_dict() for _, h in pairs[:1]])
        await asyncio.to_thread(Path(dump).write_text, text, encoding="utf-8")
    counts = count(pairs)
    return report(counts, int(contacts or 0))


# ---- 4. footprint --------------------------------------------------------------------------------
async def bench_footprint(st: Stack, counts: list[int], window: float = 20.0) -> dict[str, Any]:
    client = await st.client()
    settings = st.settings()
    worker = WorkerProc.start(settings, st.workdir / "footprint-worker.log")
    rows = []
    opened = 0
    try:
        base_rss = worker.rss_mb()
        for target in counts:
            began = time.perf_counter()
            await open_accounts(client, settings, st, target - opened, f"fp{target}")
            opened = target
            await wait_idle(worker)
            settle = time.perf_counter() - began
            c0, t0 = worker.cpu_seconds(), time.perf_counter()
            await asyncio.sleep(window)
            idle_cpu = (worker.cpu_seconds() - c0) / (time.perf_counter() - t0)
            rows.append(
                {
                    "open_accounts": target,
                    "rss_mb": round(worker.rss_mb(), 1),
                    "idle_cpu_cores": round(idle_cpu, 3),
                    "cpu_seconds_total": round(worker.cpu_seconds(), 1),
                    "intake_and_first_tasks_s": round(settle, 1),
                }
            )
            console.print(f"  footprint point: {json.dumps(rows[-1])}")  # a long run keeps what it has
    finally:
        worker.stop()
    return {"max_cached_workflows": 2000, "rss_at_start_mb": round(base_rss, 1), "points": rows}


# ---- 5. pacing -----------------------------------------------------------------------------------
#: a policy day in four real minutes: the pacing backlog falls due at most four minutes after intake
PACING_DAY_SECONDS = 240.0


async def bench_pacing(st: Stack, limit: float, seconds: float) -> dict[str, Any]:
    """A backlog of ``limit * seconds`` first reminders, all due now, then the worker starts.

    The accounts are taken in first with no worker running, so the contact queue fills at once and
    the figure is the paced worker's drain rate, not the intake's.
    """
    from domain.clock import PolicyClock

    client = await st.client()
    settings = st.settings(sender_messages_per_second=limit)
    n = int(limit * seconds)
    # One zone, and its next 10:00 (the policy's send time) four days past due: the first reminder after
    # the grace period. A step planned before intake is never sent (no catch-up), so the backlog is taken
    # in before it falls due, on a sped-up policy clock, and the worker starts once it has.
    zone = ZoneInfo("America/New_York")
    local_now = datetime.now(zone)
    ten = local_now.replace(hour=10, minute=0, second=0, microsecond=0)
    if ten <= local_now + timedelta(minutes=1):
        ten += timedelta(days=1)
    due = ten.date() - timedelta(days=4)
    accounts = make_accounts(
        n, due_in_days=(due - local_now.date()).days, zone_pick=[zone.key], tag=f"pc{uuid.uuid4().hex[:4]}"
    )
    await _open(client, settings, accounts, day_seconds=PACING_DAY_SECONDS)
    # each account's policy clock starts at its own start: the last one's is the latest to reach 10:00
    falls_due = PolicyClock(epoch=datetime.now(UTC), day_seconds=PACING_DAY_SECONDS).real_at(ten)
    await asyncio.sleep(max(0.0, (falls_due - datetime.now(UTC)).total_seconds()) + 5)
    store = st.carrier.store
    with store.lock:
        before = len(store.messages)
    samples: list[tuple[float, int]] = []
    worker = WorkerProc.start(settings, st.workdir / "pacing-worker.log")
    try:
        deadline = time.perf_counter() + seconds * 4 + 120
        while time.perf_counter() < deadline:
            with store.lock:
                count = len(store.messages) - before
            samples.append((time.perf_counter(), count))
            if count >= n:
                break
            await asyncio.sleep(0.05)
    finally:
        worker.stop()
    # steady state: from the 5th message to the last-but-5 (the ramp and the tail excluded)
    total = samples[-1][1]
    first = next(t for t, c in samples if c >= 5)
    last = next(t for t, c in samples if c >= total - 5)
    steady = (total - 10) / (last - first) if last > first else float("nan")
    with store.lock:  # the carrier's own receipt times, to the microsecond
        received = sorted(m.received_at for m in list(store.messages.values())[before:])
    peak = max_in_window(received, 1.0)
    return {
        "limit_per_s": limit,
        "backlog": n,
        "delivered": total,
        "steady_per_s": round(steady, 2),
        "ratio": round(steady / limit, 3),
        "max_in_any_1s": peak,
        "goal": ">= 0.95 of limit, never above",
        "met": steady >= 0.95 * limit and peak <= limit,
    }


def max_in_window(times: list[float], window: float) -> int:
    """The most of the sorted ``times`` inside any half-open interval ``[x, x + window)``.

    Exact: a busiest interval can always be slid right until it starts at one of the times.
    """
    peak, j = 0, 0
    for i, start in enumerate(times):
        j = max(j, i)
        while j < len(times) and times[j] < start + window:
            j += 1
        peak = max(peak, j - i)
    return peak


async def _open(client: Any, settings: Any, accounts: list[Any], day_seconds: float = 86_400) -> None:
    """The accounts through the intake (as ``starter.py intake`` does); any failure stops the benchmark."""
    from runtime.intake import intake_accounts
    from store.db import make_engine, session_factory

    result = await intake_accounts(
        client,
        session_factory(make_engine(settings.database_url)),
        accounts,
        task_queue=settings.task_queue,
        contact_queue=settings.contact_task_queue,
        day_seconds=day_seconds,
    )
    if result.failed:
        raise RuntimeError(f"intake failed: {result.failed[:3]}")


# ---- the command ---------------------------------------------------------------------------------
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
                f"p99 x{r['p99_ratio']} (goal {r['goal']}) {'✔' if r['met'] else '✘'}",
            )
        elif name == "lifecycle":
            t.add_row(
                key,
                f"{r['accounts_per_s']} accounts/s ({r['accounts']} x {r['days']} days, {r['seconds']} s)",
                "",
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
