"""How a worker is put together, shared by ``python -m workers``, the demo launcher and the tests.

Two task queues: ``collections`` runs the workflows and database activities; ``collections-contact``
runs only the provider calls, rate-limited across all workers to the sender's throughput so we
pace ourselves instead of hammering Twilio and retrying.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.cases import CaseActivities
from activities.contact import ContactActivities
from activities.deps import Deps
from activities.records import RecordActivities
from activities.visits import VisitActivities
from runtime.settings import Settings
from store.db import make_engine
from workflows.case import CaseWorkflow
from workflows.delinquency import DelinquencyWorkflow
from workflows.settlement import SettlementWorkflow
from workflows.visit import FieldVisitWorkflow

WORKFLOWS = [DelinquencyWorkflow, SettlementWorkflow, FieldVisitWorkflow, CaseWorkflow]


PURE_MODULES = ("domain", "pydantic", "pydantic_core", "phonenumbers", "annotated_types")


def sandbox_runner(*, strict: bool = True) -> SandboxedWorkflowRunner:
    """Pure, deterministic modules are passed through so each workflow run doesn't re-import them.

    ``strict=False`` also passes through our own workflow modules. Each account that wakes up
    without a cached copy then skips re-executing them in a fresh sandbox (half of a cold workflow
    task), and a cached account holds no private copy of them. The sandbox still runs every workflow,
    but a non-deterministic call *in our workflow code* (``datetime.now()``, ``random``) is no longer
    refused at run time. So the test suite and the replay check always run strict, and cover every
    path; production workers run what they proved (``COLLECT_STRICT_SANDBOX``).
    """
    modules = PURE_MODULES if strict else (*PURE_MODULES, "workflows")
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*modules)
    )


MAIN_ACTIVITY_SLOTS = 24
CONTACT_ACTIVITY_SLOTS = 8
#: Temporal's default read partitions of a task queue (``matching.numTaskqueueReadPartitions``). The
#: server splits a queue's ``max_task_queue_activities_per_second`` evenly between them, so one
#: partition dispatches only a quarter of it: a backlog drained at the sender's rate while all four
#: held sends, and its last sends (left in one or two partitions) at a half or a quarter of it.
TASK_QUEUE_PARTITIONS = 4


def build_workers(
    client: Client,
    settings: Settings,
    deps: Deps | None = None,
    *,
    executor: ThreadPoolExecutor | None = None,
    max_cached_workflows: int | None = None,
    graceful_shutdown: timedelta = timedelta(0),
    contact_slots: int = CONTACT_ACTIVITY_SLOTS,
) -> tuple[list[Worker], Deps, ThreadPoolExecutor]:
    """Both workers share one thread pool; together they never take more activities than it has
    threads, so no activity waits for a thread while its heartbeat timeout runs.

    ``graceful_shutdown`` is how long in-flight activities may finish after SIGTERM (the worker
    process gives 30 s; tests stop at once). ``contact_slots``: sends one worker makes at once (the
    strategy lab's differential test makes one at a time, so no call is ever still in flight,
    counted as abandoned by the governor's worst case, when the next one is decided)."""
    deps = deps or Deps(settings=settings, engine=make_engine(settings.database_url))
    executor = executor or ThreadPoolExecutor(
        max_workers=MAIN_ACTIVITY_SLOTS + CONTACT_ACTIVITY_SLOTS, thread_name_prefix="activity"
    )
    records = RecordActivities(deps)
    contacts = ContactActivities(deps)
    visits = VisitActivities(deps)
    cases = CaseActivities(deps)
    main = Worker(
        client,
        task_queue=settings.task_queue,
        workflows=WORKFLOWS,
        activities=[
            records.record,
            records.record_batch,
            contacts.await_outcome,
            visits.assign_visit,
            visits.update_visit,
            visits.place_account,
            visits.end_placement,
            cases.case_step,
        ],
        activity_executor=executor,
        workflow_runner=sandbox_runner(strict=settings.strict_sandbox),
        max_cached_workflows=settings.sticky_cache if max_cached_workflows is None else max_cached_workflows,
        max_concurrent_workflow_tasks=settings.workflow_task_slots,
        max_concurrent_activities=MAIN_ACTIVITY_SLOTS,
        graceful_shutdown_timeout=graceful_shutdown,
    )
    paced = Worker(
        client,
        task_queue=settings.contact_task_queue,
        activities=[contacts.send_contact],
        activity_executor=executor,
        # the sender's exact limit is the database's (store/pacing.py: every worker, every try); the
        # server's only keeps a backlog from being handed out all at once, and must let one partition
        # alone keep the sender busy
        max_task_queue_activities_per_second=settings.sender_messages_per_second * TASK_QUEUE_PARTITIONS,
        max_concurrent_activities=contact_slots,
        graceful_shutdown_timeout=graceful_shutdown,
    )
    return [main, paced], deps, executor
