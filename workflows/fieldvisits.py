"""Field visits from the dunning run: when to arrange one, and what to do with how it ended.

A visit is a child workflow (:class:`~workflows.visit.FieldVisitWorkflow`). The parent never hands
over while one runs: a child ends with its parent's run (its parent-close policy), so the run waits
for the visit to end (it always does: reported, cancelled or escalated by its report deadline) and
keeps what it reported in the state's inbox until it has acted on it.
"""

from __future__ import annotations

import asyncio
from datetime import date

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows import patches

with workflow.unsafe.imports_passed_through():
    from domain.accounts import HoldKind, Mode, Stage
    from domain.money import format_minor
    from domain.plans import PlanKind, PlanProposal
    from domain.visits import VisitCancel, VisitOutcome, VisitResult, eligibility, visit_slot
    from workflows.handlers import NEGOTIATION_WINDOW
    from workflows.negotiation import Negotiation
    from workflows.state import AccountInput
    from workflows.visit import FieldVisitWorkflow, VisitInput, visit_workflow_id

VISITS_PATCH = patches.VISITS
#: A payment in full calls a running visit off from the payment's handler.
VISIT_PAID_PATCH = patches.VISIT_PAID


class FieldVisits(Negotiation):
    """Mixed into :class:`~workflows.delinquency.DelinquencyWorkflow`."""

    def _setup(self, start: AccountInput, mode: Mode) -> None:
        super()._setup(start, mode)
        self.visit_handle: workflow.ChildWorkflowHandle | None = None  # type: ignore[type-arg]
        self.visit_task: asyncio.Future[VisitResult | None] | None = None
        self.visit_cancel: asyncio.Future[None] | None = None

    def visit_running(self) -> bool:
        return self.visit_task is not None

    async def stop_side_work(self, reason: str) -> None:
        await self.stop_visit(reason)

    def on_paid_in_full(self) -> None:
        """Paid in full: a visit under way is called off now, its announcement withdrawn if it waits,
        not after the payment's record (the announcement could go out in between)."""
        handle, task = self.visit_handle, self.visit_task
        if handle is not None and task is not None and not task.done() and self.patched(VISIT_PAID_PATCH):
            self.visit_cancel = asyncio.ensure_future(self._cancel_visit(handle, "paid"))

    async def tend_visit(self, stage: Stage, dpd: int, *, arrange: bool = True) -> None:
        """Act on a finished visit, stop one a hold or plan request overtook, or (``arrange``) arrange
        a new one."""
        if self.visit_task is not None and self.visit_task.done():
            self.state.inbox.visit_result = self.visit_task.result()
            self.visit_task, self.visit_handle = None, None
        if self.state.inbox.visit_result is not None:
            result, self.state.inbox.visit_result = self.state.inbox.visit_result, None
            await self.take_visit_result(result)
            return
        now = self.now()
        if self.visit_task is not None:
            live = [h for h in self.carried.holds if (h.until is None or h.until > now) and h.channel is None]
            if live:  # visits respect holds like every other contact; asking for a plan cancels it
                kind = live[-1].kind
                await self.stop_visit(
                    "plan_requested" if kind == HoldKind.NEGOTIATION else f"hold.{kind.value}"
                )
            return
        visits = self.policy.visits
        if (
            not arrange
            or self.stop_contacts
            or self.agreeing
            or not visits.enabled
            or self.carried.contact_lost
        ):
            return
        verdict = eligibility(
            visits,
            stage=stage,
            dpd=dpd,
            balance=self.carried.balance,
            currency=self.terms.currency,
            carried=self.carried,
            opening_balance=self.terms.balance,
            last_visit_at=self.carried.last_visit_at,
            now=now,
            region=self.terms.region,
            profile_name=self.terms.profile,
        )
        if not verdict.eligible or not self.patched(VISITS_PATCH):
            return
        self.carried.visits += 1
        self.carried.last_visit_at = now
        slot = visit_slot(now, self.terms.zones[0], visits, self.profile)
        child_id = visit_workflow_id(self.terms.account_id, self.carried.visits)
        ev = self.event("visit_arranged", f"{child_id} on {slot.day}, risk score {verdict.score}")
        await self.record(self.change(decision="visit_arranged", events=[ev]))
        self.visit_handle = await workflow.start_child_workflow(
            FieldVisitWorkflow.run,
            VisitInput(
                visit_id=child_id,
                terms=self.terms,
                clock=self.carried.clock,
                slot=slot,
                contact_queue=self.carried.contact_queue,
                visits=visits,
                profile=self.profile,
            ),
            id=child_id,
            static_summary=f"field visit {slot.day} for {self.terms.account_id} ({self.terms.masked_phone})",
        )
        self.visit_task = asyncio.ensure_future(self._visit_outcome(self.visit_handle))
        self.visit_task.add_done_callback(lambda _: setattr(self, "wake", True))

    async def _visit_outcome(self, handle) -> VisitResult | None:  # type: ignore[no-untyped-def]
        try:
            return await handle
        except Exception as err:  # the child failed or was terminated: nothing to act on
            self.event("visit_failed", str(err)[:200])
            return None

    async def stop_visit(self, reason: str) -> None:
        """Cancel the running visit (if any) and wait until it has recorded its end."""
        if self.visit_task is None or self.visit_handle is None:
            return
        if not self.visit_task.done():
            await self._cancel_visit(self.visit_handle, reason)
        result = await self.visit_task
        self.visit_task, self.visit_handle = None, None
        if result is not None:  # a report that crossed the cancellation is kept by the child, not acted on
            self.event(f"visit_{result.status}", f"{result.visit_id}: {result.reason}")

    async def _cancel_visit(self, handle: workflow.ChildWorkflowHandle, reason: str) -> None:  # type: ignore[type-arg]
        """Signal the visit to stop. It may have ended meanwhile (a payment's own cancel reached it
        first, or its report came in): the server then refuses the signal, and that is no failure of
        the account (it failed the whole run: an account lost for a visit already over)."""
        try:
            await handle.signal(FieldVisitWorkflow.cancel, VisitCancel(reason=reason[:64]))
        except ApplicationError as err:
            self.event("visit_cancel_unneeded", f"{reason[:64]}: {err.message[:120]}")

    async def take_visit_result(self, result: VisitResult | None) -> None:
        if result is None:
            return
        report = result.report
        self.event(
            f"visit_{result.status}",
            f"{result.visit_id}: {report.outcome.value if report else result.reason}",
        )
        if report is None or self.stop_contacts or self.agreeing:
            return
        if report.outcome == VisitOutcome.PROMISE_TO_PAY:
            await self.accept_promise(
                report.promise_amount or 0, report.promise_date, f"agency:{result.agency_id}"
            )
        elif report.outcome == VisitOutcome.PLAN_REQUESTED:
            until = self.now() + NEGOTIATION_WINDOW
            hold = self.add_hold(HoldKind.NEGOTIATION, "plan requested at a field visit", until=until)
            ev = self.event("negotiation_requested", f"at the visit; dunning paused until {until:%Y-%m-%d}")
            await self.record(self.change(hold_added=hold, decision="negotiation_requested", events=[ev]))

    async def accept_promise(self, amount: int, day: date | None, by: str) -> None:
        """A promise taken at the door becomes a promise-to-pay plan, if the policy allows it."""
        proposal = PlanProposal(kind=PlanKind.PROMISE_TO_PAY, first_due=day, amount=amount, proposed_by=by)
        violations = self.plan_violations(proposal)
        if violations:
            ev = self.event("promise_refused", "; ".join(f"{v.rule}: {v.message}" for v in violations)[:300])
            await self.record(
                self.change(decision="promise_refused", rule=violations[0].rule, events=[ev], actor=by)
            )
            return
        await self.agree_plan(
            proposal,
            f"promise to pay {format_minor(amount, self.terms.currency)} by {day} ({by})",
            by,
            "promise to pay taken at a field visit; switching to settlement",
        )
