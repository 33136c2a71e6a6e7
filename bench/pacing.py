"""The pacing benchmark (issue 6, 5): SMS per second at the carrier while a backlog drains, against the
configured sender limit, and the most the carrier took in any one second.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bench.infra import Stack, WorkerProc, make_accounts
from bench.load import take_in

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
    await take_in(client, settings, accounts, day_seconds=PACING_DAY_SECONDS)
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
    if dump := os.environ.get("BENCH_DUMP_PACING"):  # the receipt times, to read where the rate goes
        await asyncio.to_thread(Path(dump).write_text, json.dumps(received), encoding="utf-8")
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
