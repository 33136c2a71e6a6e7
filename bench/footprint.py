"""The footprint benchmark (issue 6, 4): the worker's RSS and idle CPU with N open accounts (and 10x N),
its sticky cache bounded, each point printed as it is measured.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from bench.infra import Stack, WorkerProc
from bench.load import console, open_accounts, wait_idle


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
