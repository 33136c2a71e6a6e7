"""SettlementWorkflow: an agreed plan, kept or broken.

Only plan reminders go out here, and only before a due date: the gate denies every dunning
contact in settlement mode, and the workflow has no dunning code to run in the first place.
A missed instalment after the grace period switches the account back to DelinquencyWorkflow
(continue-as-new, same workflow ID, history carried); a completed plan closes the account.
While a hold suspends collection (an operator pause, a complaint, a dispute, a plan request), an
instalment cannot break: its grace period starts again when the hold lifts.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow

from workflows import patches

with workflow.unsafe.imports_passed_through():
    from domain.accounts import CloseReason, Hold, HoldKind, Mode, Stage
    from domain.cadence import dpd_at, local_date
    from domain.gate import Purpose
    from domain.money import format_minor
    from domain.timeline import (
        AccountStatus,
        instalment_deadline,
        reminder_times,
    )
    from workflows import search
    from workflows.handlers import AccountWorkflow
    from workflows.messages import RunResult
    from workflows.state import AccountInput, PlanState

#: Holds that keep an instalment from breaking: collection is suspended, not refused by the debtor.
SUSPENDING = {HoldKind.PAUSE, HoldKind.COMPLAINT, HoldKind.DISPUTE, HoldKind.NEGOTIATION}
#: How long a suspended plan sleeps before it looks again when no hold says when it ends.
SUSPENDED_RECHECK = timedelta(days=7)
#: Runs recorded before a hold could suspend a break; their replay is unchanged.
SUSPEND_PATCH = patches.SUSPEND
#: Settlement hands over at any wake-up (it used to only after an instalment was paid).
WAKE_HAND_OVER_PATCH = patches.WAKE_HAND_OVER
#: The plan confirmed in writing once agreed, and its break told once (generation 2).
PLAN_NOTICES_PATCH = patches.PLAN_NOTICES


class _Closing(Exception):
    """An investigator or operator closed the account mid-plan: unwind the plan loop to close."""


@workflow.defn
class SettlementWorkflow(AccountWorkflow):
    @workflow.init
    def __init__(self, start: AccountInput) -> None:
        self._setup(start, Mode.SETTLEMENT)
        assert self.state.plan is not None, "a settlement run needs its plan"

    @property
    def plan_state(self) -> PlanState:
        assert self.state.plan is not None
        return self.state.plan

    @workflow.run
    async def run(self, start: AccountInput) -> RunResult:
        try:
            return await self.follow_plan()
        except _Closing:
            order = self.state.inbox.close
            assert order is not None
            await self.record(self.change(plan_status="cancelled", decision="plan_cancelled"))
            return await self.close_account(
                order.reason, order.note or "complaint upheld by the investigator"
            )

    async def follow_plan(self) -> RunResult:
        ps = self.plan_state
        plan = ps.plan
        await self.confirm_plan()
        due_so_far = 0
        for inst in plan.instalments:
            due_so_far += inst.amount
            if ps.paid >= due_so_far:
                if inst.seq not in ps.recorded:  # paid while the plan was being agreed or handed over
                    await self.instalment_paid(inst.seq, inst.amount)
                continue
            amount = format_minor(inst.amount, plan.currency)
            for days_before, at in reminder_times(self.terms, inst.due_date, self.policy):
                key = f"plan/{plan.plan_id}/{inst.seq}/reminder-{days_before}"
                if key in ps.reminded:
                    continue
                if not await self.wait_paid_or(
                    at, due_so_far, f"reminder: instalment {inst.seq} of {amount}"
                ):
                    break  # paid before the reminder was due: no reminder
                if local_date(self.now(), self.terms) >= inst.due_date:
                    break  # reminders only ever go out before the due date
                await self.send_once(
                    key,
                    Purpose.PLAN_REMINDER,
                    "plan_reminder",
                    {"amount": amount, "due_date": inst.due_date.isoformat(), "seq": str(inst.seq)},
                    wanted=lambda due=due_so_far: "instalment paid" if ps.paid >= due else None,
                )
                ps.reminded.append(key)
            deadline = ps.deadlines.get(inst.seq) or instalment_deadline(
                self.terms, inst.due_date, self.policy.settlement.grace_days
            )
            if await self.wait_paid_or(
                deadline, due_so_far, f"instalment {inst.seq} of {amount} due {inst.due_date}", seq=inst.seq
            ):
                return await self.break_plan(inst.seq)
            await self.instalment_paid(inst.seq, inst.amount)
            if self.carried.balance <= 0:
                break
            if workflow.info().is_continue_as_new_suggested():
                await self.hand_over("SettlementWorkflow")
        return await self.complete()

    async def confirm_plan(self) -> None:
        """The agreement in writing, once per plan (a hand-over remembers it went): the schedule's
        first instalment, the total and how many, and where to see it all. A receipt of what the debtor
        agreed, so quiet hours apply and caps do not, and a hold does not keep it back."""
        ps = self.plan_state
        plan = ps.plan
        key = f"plan/{plan.plan_id}/confirmation"
        if key in ps.reminded or not self.patched(PLAN_NOTICES_PATCH):
            return
        first = plan.instalments[0]
        ps.reminded.append(key)  # before the send: a hand-over while it waits must not send it again

        def moot() -> str | None:
            """Waiting for a lawful hour must not hold the plan up: paid meanwhile, or closing, it is moot."""
            if ps.paid >= plan.total:
                return "plan paid before its confirmation could go"
            return "account closing" if self.state.inbox.close is not None else None

        await self.send_once(
            key,
            Purpose.RECEIPT,
            "plan_confirmation",
            {
                "amount": format_minor(first.amount, plan.currency),
                "due_date": first.due_date.isoformat(),
                "total": format_minor(plan.total, plan.currency),
                "count": str(len(plan.instalments)),
            },
            wanted=moot,
        )

    async def instalment_paid(self, seq: int, amount: int) -> None:
        ev = self.event("instalment_paid", f"{seq}/{len(self.plan_state.plan.instalments)}")
        await self.record(self.change(instalment_paid=(seq, amount), decision="instalment_paid", events=[ev]))
        self.plan_state.recorded.append(seq)

    def suspending_holds(self) -> list[Hold]:
        return [h for h in self.holds_now() if h.kind in SUSPENDING and h.channel is None]

    async def wait_paid_or(
        self, until: datetime, due_so_far: int, label: str, *, seq: int | None = None
    ) -> bool:
        """Wait until ``until``; False if the plan is paid through ``due_so_far`` first.

        With ``seq`` (an instalment's deadline), True means the instalment broke; a suspending hold
        at the deadline holds it instead, and when the hold lifts the grace period starts again.
        """
        ps = self.plan_state
        self.state.next_at, self.state.next_label = until, label
        while True:
            await self.take_inbox()
            if self.state.inbox.close is not None:
                raise _Closing()
            if ps.paid >= due_so_far or self.carried.balance <= 0:
                return False
            now = self.now()
            if seq is not None and ps.suspended and not self.suspending_holds():
                ps.suspended = False
                grace = self.policy.settlement.grace_days
                until = instalment_deadline(self.terms, local_date(now, self.terms), grace)
                ps.deadlines[seq] = until
                self.state.next_at = until
                self.event(
                    "plan_resumed", f"instalment {seq}: {grace} grace day(s) again, until {until:%Y-%m-%d}"
                )
            wake_at = until
            if now >= until:
                if seq is None:
                    return True
                held = self.suspending_holds()
                if not held or not self.patched(SUSPEND_PATCH):
                    return True
                if not ps.suspended:
                    ps.suspended = True
                    kinds = ", ".join(sorted({h.kind.value for h in held}))
                    self.event("plan_suspended", f"instalment {seq} does not break while on hold ({kinds})")
                ends = [h.until for h in held if h.until is not None]
                wake_at = max(ends) if len(ends) == len(held) else now + SUSPENDED_RECHECK
            self.publish()
            slept = await self.sleep_until(self.bounded(wake_at))
            if self.should_hand_over(slept) and self.patched(WAKE_HAND_OVER_PATCH):
                await self.hand_over("SettlementWorkflow")

    def publish(self) -> None:
        dpd = dpd_at(self.now(), self.terms)
        self.upsert_common(
            dpd=search.DPD.value_set(dpd),
            stage=search.STAGE.value_set(self.policy.stage_for(dpd, self.terms.product).value),
        )
        at = self.state.next_at
        when = at.strftime("%Y-%m-%d %H:%M %z") if at else "-"
        plan = self.plan_state.plan
        paid = format_minor(self.plan_state.paid, plan.currency)
        total = format_minor(plan.total, plan.currency)
        suspended = " · on hold: it cannot break" if self.plan_state.suspended else ""
        self.set_details(
            f"plan **{plan.kind.value}**: {paid} of {total} paid{suspended}\n\n"
            f"next: {self.state.next_label} at {when}"
        )

    async def back_to_dunning(self, why: str) -> RunResult:
        """The plan is over with money still owed: the same account continues in dunning."""
        self.state.plan = None
        self.state.resumed_from = why
        self.state.mode = Mode.DUNNING
        await self.hand_over("DelinquencyWorkflow")

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
        plan = self.plan_state.plan
        if self.patched(PLAN_NOTICES_PATCH):
            # told once, what was missed and what happens next, as the first message of dunning again:
            # its caps, quiet hours and holds apply (a hold that stops collection keeps it back)
            missed = next(i for i in plan.instalments if i.seq == seq)
            self.state.mode = Mode.DUNNING
            await self.send_once(
                f"plan/{plan.plan_id}/broken",
                Purpose.DUNNING,
                "plan_broken",
                {
                    "amount": format_minor(missed.amount, plan.currency),
                    "due_date": missed.due_date.isoformat(),
                },
            )
        return await self.back_to_dunning(f"plan {plan.plan_id} broken")

    async def complete(self) -> RunResult:
        ps = self.plan_state
        plan = ps.plan
        if self.carried.balance - plan.waived > 0 and ps.paid >= plan.total:
            # a kept promise for part of the balance: the rest goes back to the regular schedule
            ev = self.event("promise_kept", f"{format_minor(ps.paid, plan.currency)} paid")
            await self.record(
                self.change(mode=Mode.DUNNING, plan_status="completed", decision="promise_kept", events=[ev])
            )
            return await self.back_to_dunning("promise kept, balance remains")
        self.state.closing = "settled"
        waived = min(plan.waived, max(self.carried.balance, 0))
        self.carried.balance = max(self.carried.balance - waived, 0)
        ev = self.event("closed", f"plan completed; {format_minor(waived, plan.currency)} waived")
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
        self.state.mode = Mode.CLOSED
        self.state.next_at, self.state.next_label = None, None
        self.upsert_common()
        self.set_details("closed: plan completed")
        await self.send_once(f"plan/{plan.plan_id}/completed", Purpose.RECEIPT, "plan_completed")
        return await self.finish("closed_settled")

    @workflow.query
    def status(self, at: datetime | None = None) -> AccountStatus:
        """``at``: the asker's wall-clock time (see ``status_view``); without it, the last task's."""
        return self.status_now(at)


__all__ = ["SettlementWorkflow", "Stage"]
