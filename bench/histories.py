"""What one contact costs the engine: history events, activities, workflow tasks and search-attribute
upserts, counted from an account's real histories (every run of its continue-as-new chain).

Why from histories: they are what the server stores, what a replay walks through after a cache
eviction and what Temporal Cloud bills as actions. Issue 18 sets the goals per contact (a message or
call that reached the carrier) over a 180-day lifecycle of the default policy: at most 12 events,
1.5 activities, 2 workflow tasks and 1 upsert.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory

#: goals per contact (issue 18)
GOALS = {"events": 12.0, "activities": 1.5, "workflow_tasks": 2.0, "upserts": 1.0}


@dataclass(frozen=True)
class HistoryCounts:
    """Totals over a set of account histories (all runs of each)."""

    accounts: int
    runs: int
    events: int
    activities: int
    workflow_tasks: int
    upserts: int
    timers: int
    signals: int
    by_activity: dict[str, int]

    def per(self, contacts: int) -> dict[str, float]:
        n = max(contacts, 1)
        return {
            "events": round(self.events / n, 2),
            "activities": round(self.activities / n, 2),
            "workflow_tasks": round(self.workflow_tasks / n, 2),
            "upserts": round(self.upserts / n, 2),
        }


def count(histories: Iterable[tuple[str, WorkflowHistory]]) -> HistoryCounts:
    """Count the events that matter in ``(account_id, history)`` pairs (one pair per run)."""
    kinds: Counter[int] = Counter()
    activities: Counter[str] = Counter()
    accounts: set[str] = set()
    runs = 0
    for account_id, history in histories:
        accounts.add(account_id)
        runs += 1
        for event in history.events:
            kinds[event.event_type] += 1
            if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                activities[event.activity_task_scheduled_event_attributes.activity_type.name] += 1
    return HistoryCounts(
        accounts=len(accounts),
        runs=runs,
        events=sum(kinds.values()),
        activities=kinds[EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED],
        workflow_tasks=kinds[EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED],
        upserts=kinds[EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES],
        timers=kinds[EventType.EVENT_TYPE_TIMER_STARTED],
        signals=kinds[EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED],
        by_activity=dict(activities.most_common()),
    )


async def account_runs(client: Client, workflow_id: str, limit: int = 1000) -> list[WorkflowHistory]:
    """Every run of one workflow id, oldest first: from the newest run back along each run's
    ``continued_execution_run_id`` (works on the time-skipping server, which has no visibility list)."""
    runs: list[WorkflowHistory] = []
    run_id: str | None = None
    while len(runs) < limit:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        runs.append(history)
        started = history.events[0].workflow_execution_started_event_attributes
        run_id = started.continued_execution_run_id or None
        if run_id is None:
            break
    return list(reversed(runs))


async def account_histories(client: Client, workflow_ids: Iterable[str]) -> list[tuple[str, WorkflowHistory]]:
    pairs: list[tuple[str, WorkflowHistory]] = []
    for workflow_id in workflow_ids:
        pairs.extend((workflow_id, h) for h in await account_runs(client, workflow_id))
    return pairs


def report(counts: HistoryCounts, contacts: int) -> dict[str, Any]:
    """What the benchmark prints: totals, per contact and per account, and each goal met or not."""
    per_contact = counts.per(contacts)
    return {
        "accounts": counts.accounts,
        "runs": counts.runs,
        "contacts": contacts,
        "per_contact": per_contact,
        "per_account": {
            k: round(v / max(counts.accounts, 1), 1)
            for k, v in {
                "events": counts.events,
                "activities": counts.activities,
                "workflow_tasks": counts.workflow_tasks,
                "upserts": counts.upserts,
                "runs": counts.runs,
            }.items()
        },
        "activities_by_type": counts.by_activity,
        "goals": GOALS,
        "met": {k: per_contact[k] <= goal for k, goal in GOALS.items()},
    }


__all__ = ["GOALS", "HistoryCounts", "account_histories", "account_runs", "count", "report"]
