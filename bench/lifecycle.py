"""The lifecycle benchmark (issue 6, 3): accounts through 180 days on the time-skipping server, and then
what one contact cost the engine, counted from a sample of those accounts' histories (issue 18).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.infra import Stack, make_accounts, running
from bench.load import busy_cores, console, cpu_by_process


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
            began, cpu0, split0 = time.perf_counter(), busy_cores()[0], cpu_by_process()
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
            elapsed, cpu = time.perf_counter() - began, busy_cores()[0] - cpu0
            split1 = cpu_by_process()
            skipped = (await env.get_current_time()) - start
            engine_cost = await history_costs(env.client, settings, accounts[:HISTORY_SAMPLE])
        executor.shutdown(wait=False)
    sent = st.carrier.store.stats()
    contacts = max(1, sent["messages"] + sent["calls"])
    split = {k: v - split0.get(k, 0.0) for k, v in split1.items()}
    split["rest of the machine"] = cpu - sum(split.values())
    return {
        "histories": engine_cost,
        "accounts": n,
        "days": days,
        "policy_days_skipped": round(skipped.total_seconds() / 86_400, 1),
        "seconds": round(elapsed, 1),
        "accounts_per_s": round(n / elapsed, 2),
        "carrier_messages": sent["messages"],
        "carrier_calls": sent["calls"],
        # every process of the machine (worker, carrier, test server, database): what a contact costs in
        # CPU, and the rate the machine's cores would allow at that cost even with nothing ever waiting
        "machine_cpu_seconds": round(cpu, 1),
        "cpu_ms_per_contact": round(cpu * 1000 / contacts, 1),
        # which part of that bounds it: the worker's process, or the servers it stands on
        "cpu_ms_per_contact_by_process": {k: round(v * 1000 / contacts, 1) for k, v in split.items()},
        "cpu_bound_accounts_per_s": round(n / cpu * (os.cpu_count() or 1), 2),
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
