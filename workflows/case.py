"""CaseWorkflow: one debtor request's clock, from opening to its answer.

Workflow ID ``case-C-<n>``, visible in the Temporal UI beside the account's own run. It sets the case's
deadlines on the engine's clock (the jurisdiction's response tier for its kind), then waits: halfway the
owner is reminded, at 80% a supervisor takes the case over, at the deadline it is marked overdue; an
``answered`` signal (sent when the case is answered, by whatever path) ends it at any point. Each step is
an activity that writes once (``store/cases.py``), so a retry or a replay changes nothing twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from domain.cases import CASE_STEP, CaseInput, CaseStep, deadlines

DB_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))


@workflow.defn(name="CaseWorkflow")
class CaseWorkflow:
    def __init__(self) -> None:
        self.done = False

    @workflow.run
    async def run(self, case: CaseInput) -> str:
        due = deadlines(case.kind, workflow.now(), case.tiers, case.zone)
        await self.step(case, "deadlines", due)
        for step, at in (("remind", due.remind_at), ("escalate", due.escalate_at), ("overdue", due.due_at)):
            if await self.answered_before(at):
                return "answered"
            await self.step(case, step)
        await workflow.wait_condition(lambda: self.done)
        return "answered late"

    @workflow.signal
    def answered(self) -> None:
        self.done = True

    async def answered_before(self, at: datetime) -> bool:
        wait = (at - workflow.now()).total_seconds()
        if wait > 0:
            try:
                await workflow.wait_condition(lambda: self.done, timeout=timedelta(seconds=wait))
            except TimeoutError:
                pass
        return self.done

    async def step(self, case: CaseInput, step: str, due=None) -> None:  # type: ignore[no-untyped-def]
        await workflow.execute_activity(
            CASE_STEP,
            CaseStep(case_id=case.case_id, step=step, at=workflow.now(), deadlines=due),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=DB_RETRY,
            summary=f"case {step}",
        )
