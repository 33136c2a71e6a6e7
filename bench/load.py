"""What more than one benchmark does, kept in one copy: starts at the intake's concurrency, accounts
taken in through the intake, the waits until a worker and the whole machine have settled, and the
console they all print to.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from rich.console import Console

from bench.infra import Stack, WorkerProc, make_accounts

console = Console()
CONCURRENCY = 32  # runtime.intake.intake_accounts' default, what starter.py intake uses


async def gather_limited(
    n: int, make: Callable[[int], Awaitable[Any]], concurrency: int = CONCURRENCY
) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            await make(i)

    await asyncio.gather(*(one(i) for i in range(n)))


async def open_accounts(client: Any, settings: Any, st: Stack, n: int, tag: str) -> list[Any]:
    """``n`` accounts through the intake, due in five days: open, nothing sent during the bench."""
    accounts = make_accounts(n, due_in_days=5, tag=tag)
    await take_in(client, settings, accounts)
    return accounts


async def take_in(client: Any, settings: Any, accounts: list[Any], day_seconds: float = 86_400) -> None:
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


async def _until_below(
    cpu_seconds: Callable[[], float], *, below: float, window: float, limit: float
) -> tuple[float, float]:
    """Until ``cpu_seconds`` (a running total) grows by less than ``below`` cores over ``window``
    seconds: (the wait, the last window's cores). The one loop both waits below share."""
    began = time.perf_counter()
    cores = float("nan")
    while time.perf_counter() - began < limit:
        c0, w0 = cpu_seconds(), time.perf_counter()
        await asyncio.sleep(window)
        cores = (cpu_seconds() - c0) / (time.perf_counter() - w0)
        if cores < below:
            break
    return time.perf_counter() - began, cores


async def wait_idle(
    worker: WorkerProc, *, below: float = 0.15, window: float = 3.0, limit: float = 1800
) -> float:
    """Until the worker's CPU use over ``window`` seconds drops below ``below`` cores; returns the wait."""
    waited, _ = await _until_below(worker.cpu_seconds, below=below, window=window, limit=limit)
    return waited


def busy_cores() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far (``/proc/stat``: every process, ours or not)."""
    with open("/proc/stat", encoding="ascii") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(fields) - idle) / tick, sum(fields) / tick


#: Where the machine's CPU goes, by process name (``/proc/<pid>/stat``'s command). This benchmark
#: process holds the worker, the intake and the carrier simulator's thread; the rest are its
#: servers. A process not listed is left out: the lifecycle counts it in "the rest of the machine".
CPU_ROLES = {"temporal-test-s": "time-skipping server", "temporal": "dev server", "postgres": "PostgreSQL"}
BENCH_PROCESS = "benchmark process (worker, carrier simulator)"


def cpu_by_process() -> dict[str, float]:
    """CPU seconds so far of this process and of each role in :data:`CPU_ROLES` (children reaped
    included, so PostgreSQL's ended backends still count), from ``/proc``; what the lifecycle splits
    its machine time into, to say which part bounds it."""
    tick = os.sysconf("SC_CLK_TCK")
    totals: dict[str, float] = {BENCH_PROCESS: 0.0}
    me = str(os.getpid())
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
                stat = f.read()
        except OSError:  # gone between the listing and the read
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        seconds = sum(int(x) for x in fields[11:15]) / tick  # utime, stime, cutime, cstime
        if pid == me:
            totals[BENCH_PROCESS] += seconds
        elif name in CPU_ROLES:
            totals[CPU_ROLES[name]] = totals.get(CPU_ROLES[name], 0.0) + seconds
    return totals


async def wait_machine_idle(
    *, below: float = 0.3, window: float = 5.0, limit: float = 600
) -> tuple[float, float]:
    """Until the whole machine uses less than ``below`` cores over ``window`` seconds: (the wait, the last
    window's cores). The worker idle is not enough: the updates are timed against the raw engine's, and
    any other load (the dev server still writing the intake's histories, another job on the machine)
    would land on both at random and blur the tail being measured."""
    return await _until_below(lambda: busy_cores()[0], below=below, window=window, limit=limit)
