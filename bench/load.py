"""What more than one benchmark does, kept in one copy: starts at the intake's concurrency, accounts
taken in through the intake, the wait until a worker has settled, and the console they all print to.
"""

from __future__ import annotations

import asyncio
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
