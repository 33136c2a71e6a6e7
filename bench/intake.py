"""The intake benchmark (issue 6, 1): accounts started per second through ``starter.py intake``, the
CLI's own function, against trivial workflows started at the same concurrency on the same server.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time
import uuid
from pathlib import Path
from typing import Any

from rich.console import Console

from bench.infra import Stack, make_accounts, write_csv
from bench.load import CONCURRENCY, gather_limited


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
