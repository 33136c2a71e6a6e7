"""How a worker is put together, shared by ``python -m workers``, the demo launcher and the tests.

Two task queues: ``collections`` runs the workflows and database activities; ``collections-contact``
runs only the provider calls, rate-limited across all workers to the sender's throughput so we
pace ourselves instead of hammering Twilio and retrying.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.contact import ContactActivities
from activities.deps import Deps
from activities.records import RecordActivities
from runtime.settings import Settings
from store.db import make_engine
from workflows.delinquency import DelinquencyWorkflow
from workflows.settlement import SettlementWorkflow

WORKFLOWS = [DelinquencyWorkflow, SettlementWorkflow]


def sandbox_runner() -> SandboxedWorkflowRunner:
    """Pure, deterministic modules are passed through so each workflow run doesn't re-import them."""
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(
            "domain", "pydantic", "pydantic_core", "phonenumbers", "annotated_types"
        )
    )


def build_workers(
    client: Client,
    settings: Settings,
    deps: Deps | None = None,
    *,
    executor: ThreadPoolExecutor | None = None,
    max_cached_workflows: int = 2000,
) -> tuple[list[Worker], Deps, ThreadPoolExecutor]:
    deps = deps or Deps(settings=settings, engine=make_engine(settings.database_url))
    executor = executor or ThreadPoolExecutor(max_workers=32, thread_name_prefix="activity")
    records = RecordActivities(deps)
    contacts = ContactActivities(deps)
    main = Worker(
        client,
        task_queue=settings.task_queue,
        workflows=WORKFLOWS,
        activities=[records.record, contacts.await_outcome],
        activity_executor=executor,
        workflow_runner=sandbox_runner(),
        max_cached_workflows=max_cached_workflows,
    )
    paced = Worker(
        client,
        task_queue=settings.contact_task_queue,
        activities=[contacts.send_contact],
        activity_executor=executor,
        max_task_queue_activities_per_second=settings.sender_messages_per_second,
        max_concurrent_activities=8,
    )
    return [main, paced], deps, executor
