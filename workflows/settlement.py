"""SettlementWorkflow: an agreed plan, kept or broken.

Only plan reminders go out here, and only before a due date: the gate denies every dunning
contact in settlement mode, and the workflow has no dunning code to run in the first place.
A missed instalment after the grace period switches the account back to DelinquencyWorkflow
(continue-as-new, same workflow ID, history carried); a completed plan closes the account.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.accounts import CloseReason, Mode, Stage
    from domain.cadence import dpd_at, local_date
    from domain.gate import Purpose
    from domain.money import format_minor
    from domain.timeline import AccountStatus, Timeline, instalment_deadline, project_plan, reminder_times
    from workflows import search
    from workflows.base import AccountWorkflow
    from workflows.messages import DelinquencyInput, RunResult, SettlementInput


class _Closing(Exception):
    """An investigator closed the account mid-plan: unwind the plan loop to close."""


@workflow.defn
class SettlementWorkflow(AccountWorkflow):
    @workflow.init
    def __init__(self, start: SettlementInput) -> None:
        self._setup(start.terms, start.carried)
        self.mode = Mode.SETTLEMENT
        self.plan = start.plan
        self.paid_in_plan = start.paid_in_plan

    @workflow.run
    async def run(self, start: SettlementInput) -> RunResult:
        try:
            return await self.follow_plan()
        except _Closing:
            assert self.close_requested is not None
            await self.record(self.change(plan_status="cancelled", decision="plan_cancelled"))
            return await self.close_account(
                self.close_requested, self.close_note or "complaint upheld by the investigator"
            )

    async def follow_plan(self) -> RunResult:
        plan = self.plan
        due_so_far = 0
        for inst in plan.instalments:
            due_so_far += inst.amount
            if self.paid_in_plan >= due_so_far:
                continue
            amount = format_minor(inst.amount, plan.currency)
            for days_before, at in reminder_times(self.terms, inst.due_date, self.policy):
                if not await self.wait_paid_or(
                    at, due_so_far, f"reminder: instalment {inst.seq} of {amount}"
                ):
                    break  # paid before the reminder was due: no reminder
                if local_date(self.now(), self.terms) >= inst.due_date:
                    break  # reminders only ever go out before the due date
                await self.send_once(
                    f"plan/{plan.plan_id}/{inst.seq}/reminder-{days_before}",
                    Purpose.PLAN_REMINDER,
                    "plan_reminder",
                    {"amount": amount, "due_date": inst.due_date.isoformat(), "seq": str(inst.seq)},
                )
            deadline = instalment_deadline(self.terms, inst.due_date, self.policy.settlement.grace_days)
            if await self.wait_paid_or(
                deadline, due_so_far, f"instalment {inst.seq} of {amount} due {inst.due_date}"
            ):
                return await self.break_plan(inst.seq)
            ev = self.event("instalment_paid", f"{inst.seq}/{len(plan.instalments)}")
            await self.record(
                self.change(instalment_paid=(inst.seq, inst.amount), decision="instalment_paid", events=[ev])
            )
            if self.carried.balance <= 0:
                break
            await self.maybe_continue_as_new()
        return await self.complete()

    async def wait_paid_or(self, until, due_so_far: int, label: str) -> bool:  # type: ignore[no-untyped-def]
        """Wait until ``until``; False if the plan is paid through ``due_so_far`` first."""
        self.next_at, self.next_label = until, label
        while True:
            applied = await self.take_payments()
            self.paid_in_plan += applied
            await self.take_reports()
            await self.take_opt_out_confirmation()
            await self.take_acknowledgements()
            if self.close_requested is not None:
                raise _Closing()
            if self.paid_in_plan >= due_so_far or self.carried.balance <= 0:
                return False
            if self.now() >= until:
                return True
            self.publish()
            await self.sleep_until(self.bounded(until))

    def publish(self) -> None:
        dpd = dpd_at(self.now(), self.terms)
        self.upsert_common(
            dpd=search.DPD.value_set(dpd),
            stage=search.STAGE.value_set(self.policy.stage_for(dpd, self.terms.product).value),
        )
        when = self.next_at.strftime("%Y-%m-%d %H:%M %z") if self.next_at else "-"
        paid = format_minor(self.paid_in_plan, self.plan.currency)
        total = format_minor(self.plan.total, self.plan.currency)
        self.set_details(
            f"plan **{self.plan.kind.value}**: {paid} of {total} paid\n\nnext: {self.next_label} at {when}"
        )

    async def maybe_continue_as_new(self) -> None:
        if workflow.info().is_continue_as_new_suggested():
            self.paid_in_plan += await self.drain_payments()
            workflow.continue_as_new(
                SettlementInput(
                    terms=self.terms, carried=self.carried, plan=self.plan, paid_in_plan=self.paid_in_plan
                )
            )

    async def break_plan(self, seq: int) -> RunResult:
        self.carried.broken_plans += 1
        ev = self.event(
            "plan_broken", f"instalment {seq} unpaid after {self.policy.settlement.grace_days} grace day(s)"
        )
        await self.record(
            self.change(
                mode=Mode.DUNNING,
                plan_status="broken",
                instalment_missed=seq,
                decision="plan_broken",
                events=[ev],
            )
        )
        await self.drain_payments()
        workflow.continue_as_new(
            DelinquencyInput(
                terms=self.terms, carried=self.carried, resumed_from=f"plan {self.plan.plan_id} broken"
            ),
            workflow="DelinquencyWorkflow",
        )

    async def complete(self) -> RunResult:
        if self.carried.balance - self.plan.waived > 0 and self.paid_in_plan >= self.plan.total:
            # a kept promise for part of the balance: the rest goes back to the regular schedule
            ev = self.event("promise_kept", f"{format_minor(self.paid_in_plan, self.plan.currency)} paid")
            await self.record(
                self.change(mode=Mode.DUNNING, plan_status="completed", decision="promise_kept", events=[ev])
            )
            await self.drain_payments()
            workflow.continue_as_new(
                DelinquencyInput(
                    terms=self.terms, carried=self.carried, resumed_from="promise kept, balance remains"
                ),
                workflow="DelinquencyWorkflow",
            )
        waived = min(self.plan.waived, max(self.carried.balance, 0))
        self.carried.balance = max(self.carried.balance - waived, 0)
        ev = self.event("closed", f"plan completed; {format_minor(waived, self.plan.currency)} waived")
        await self.record(
            self.change(
                mode=Mode.CLOSED,
                close_reason=CloseReason.SETTLED.value,
                plan_status="completed",
                balance=self.carried.balance,
                paid_total=self.carried.paid_total,
                decision="closed_settled",
                events=[ev],
            )
        )
        self.mode = Mode.CLOSED
        self.next_at, self.next_label = None, None
        self.upsert_common()
        self.set_details("closed: plan completed")
        await self.send_once(f"plan/{self.plan.plan_id}/completed", Purpose.RECEIPT, "plan_completed")
        await workflow.wait_condition(workflow.all_handlers_finished)
        return RunResult(
            account_id=self.terms.account_id,
            state="closed_settled",
            balance=self.carried.balance,
            paid_total=self.carried.paid_total,
            at=self.now(),
        )

    @workflow.query
    def status(self) -> AccountStatus:
        return self.status_view(plan=self.plan, plan_paid=self.paid_in_plan)

    @workflow.query
    def timeline(self) -> Timeline:
        if self.mode == Mode.CLOSED:
            return Timeline(mode=Mode.CLOSED, entries=[])
        return project_plan(
            self.terms, self.carried, self.plan, self.paid_in_plan, self.policy, self.profile, self.now()
        )


__all__ = ["SettlementWorkflow", "Stage"]
