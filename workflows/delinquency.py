"""DelinquencyWorkflow: the dunning cadence of one account, from first reminder to charge-off.

One per account, workflow ID ``account-<id>``. An agreed plan switches this same workflow ID to
:class:`SettlementWorkflow` by continue-as-new, so a dunning run and a settlement run can never be
alive at once: that is the structural fix for "still harassed after agreeing a plan".
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.accounts import Carried, Channel, CloseReason, ContactOutcome, HoldKind, Mode, Stage
    from domain.cadence import dpd_at, fallback_step, home_zone, local_date, next_action
    from domain.clock import PolicyClock
    from domain.gate import Purpose
    from domain.money import format_minor
    from domain.plans import AgreedPlan, PlanProposal, agree, validate_proposal
    from domain.timeline import AccountStatus, Timeline, project_dunning
    from workflows import search
    from workflows.base import AccountWorkflow
    from workflows.messages import (
        DelinquencyInput,
        HoldRequest,
        NegotiationRequest,
        RunResult,
        SettlementInput,
    )

NEGOTIATION_WINDOW = timedelta(days=7)


@workflow.defn
class DelinquencyWorkflow(AccountWorkflow):
    @workflow.init
    def __init__(self, start: DelinquencyInput) -> None:
        carried = start.carried or Carried(
            clock=PolicyClock(epoch=workflow.now(), day_seconds=start.day_seconds),
            balance=start.terms.balance,
            contact_queue=start.contact_queue,
        )
        self._setup(start.terms, carried)
        self.mode = Mode.DUNNING
        self.plan: AgreedPlan | None = None
        self.settling = False
        self.resumed_from = start.resumed_from

    # ---- the run ----------------------------------------------------------------------------------
    @workflow.run
    async def run(self, start: DelinquencyInput) -> RunResult:
        if start.carried is None:
            self.event("opened", f"{self.terms.product.value}, due {self.terms.due_date}")
            await self.record(
                self.change(mode=Mode.DUNNING, decision="opened", events=[self.carried.events[-1]])
            )
        elif start.resumed_from:
            ev = self.event("dunning_resumed", start.resumed_from)
            await self.record(self.change(mode=Mode.DUNNING, decision="dunning_resumed", events=[ev]))

        while True:
            if self.settling:
                await workflow.wait_condition(lambda: self.plan is not None)
                return await self.switch_to_settlement()
            await self.take_payments()
            await self.take_reports()
            await self.take_opt_out_confirmation()
            await self.take_acknowledgements()
            if self.carried.balance <= 0:
                return await self.close_paid()
            if self.close_requested is not None:
                return await self.close_account(self.close_requested, "complaint upheld by the investigator")
            if self.settling:
                continue

            now = self.now()
            dpd = dpd_at(now, self.terms)
            stage = self.policy.stage_for(dpd, self.terms.product)
            if stage != self.carried.stage:
                await self.enter_stage(stage, dpd)
            if stage == Stage.CHARGED_OFF:
                return await self.charge_off(dpd)
            self.trim()

            action = next_action(self.terms, self.carried, self.policy, self.profile, now)
            if action.skipped:
                self.carried.done_steps = [*self.carried.done_steps, *action.skipped]
            step = action.step
            wait_until = action.at
            if step is not None and step.key in self.deferred and self.deferred[step.key] > now:
                wait_until = self.deferred[step.key]  # the live gate said later (e.g. an agency's calls)
            self.next_at = action.at if action.kind == "contact" else None
            self.next_label = (
                f"{step.channel.value.upper()} {step.template.replace('_', ' ')}" if step else action.kind
            )
            self.publish(dpd, stage)

            if step is not None and wait_until <= now and not self.stop_contacts:
                await self.do_step(step, stage)
                continue
            await self.sleep_until(self.bounded(wait_until))
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(DelinquencyInput(terms=self.terms, carried=self.carried))

    async def do_step(self, step, stage: Stage) -> None:  # type: ignore[no-untyped-def]
        result = await self.contact(
            key=step.key,
            channel=step.channel,
            purpose=Purpose.DUNNING,
            template=step.template,
            context={"stage": stage.value},
        )
        if result is None:
            return  # cancelled by a plan or payment: the step is not spent
        if result.deferred_until is not None:
            return
        self.carried.done_steps = [*self.carried.done_steps, step.key]
        self.deferred.pop(step.key, None)
        self.note_contact(step.key, step.channel, step.template, result)
        if result.rule is not None and result.rule.startswith("governor.") and step.channel == Channel.VOICE:
            alt = fallback_step(self.policy, step.dpd, step.channel, self.carried, step)
            if alt is not None:  # voice paused for the campaign: the same step by SMS instead
                self.event("fallback", f"voice paused ({result.rule}), trying {alt.channel.value}")
                await self.do_step(alt, stage)
            return
        if result.outcome in (ContactOutcome.UNDELIVERABLE, ContactOutcome.OPTED_OUT):
            lost = await self.apply_channel_outcome(step.channel, result.outcome)
            if not lost and result.outcome == ContactOutcome.UNDELIVERABLE:
                alt = fallback_step(self.policy, step.dpd, step.channel, self.carried, step)
                if alt is not None:
                    self.event("fallback", f"{step.channel.value} undeliverable, trying {alt.channel.value}")
                    await self.do_step(alt, stage)

    def publish(self, dpd: int, stage: Stage) -> None:
        self.upsert_common(dpd=search.DPD.value_set(dpd), stage=search.STAGE.value_set(stage.value))
        when = (
            self.next_at.astimezone(self.terms_zone()).strftime("%Y-%m-%d %H:%M %z") if self.next_at else "-"
        )
        lost = " · contact lost" if self.carried.contact_lost else ""
        self.set_details(f"stage **{stage.value}**, {dpd} DPD{lost}\n\nnext: {self.next_label} at {when}")

    def terms_zone(self):  # type: ignore[no-untyped-def]
        # domain.cadence runs passed through the sandbox, so its ZoneInfo is the real class
        return home_zone(self.terms)

    async def enter_stage(self, stage: Stage, dpd: int) -> None:
        previous = self.carried.stage
        self.carried.stage = stage
        ev = self.event("stage", f"{previous.value if previous else 'start'} -> {stage.value} at {dpd} DPD")
        await self.record(
            self.change(stage=stage, dpd=dpd, balance=self.carried.balance, events=[ev], decision="stage")
        )

    async def charge_off(self, dpd: int) -> RunResult:
        self.stop_contacts = True
        ev = self.event("charged_off", f"at {dpd} DPD; placement record created for agency hand-off")
        await self.record(
            self.change(
                mode=Mode.CLOSED,
                close_reason=CloseReason.CHARGED_OFF.value,
                stage=Stage.CHARGED_OFF,
                dpd=dpd,
                balance=self.carried.balance,
                decision="charged_off",
                events=[ev],
            )
        )
        self.mode = Mode.CLOSED
        self.next_at = None
        self.upsert_common(
            stage=search.STAGE.value_set(Stage.CHARGED_OFF.value), dpd=search.DPD.value_set(dpd)
        )
        self.set_details(f"charged off at {dpd} DPD and placed")
        await workflow.wait_condition(workflow.all_handlers_finished)
        return RunResult(
            account_id=self.terms.account_id,
            state="charged_off",
            balance=self.carried.balance,
            paid_total=self.carried.paid_total,
            at=self.now(),
        )

    async def close_paid(self) -> RunResult:
        self.stop_contacts = True
        await self.contacts_settled()
        ev = self.event("closed", "paid in full")
        await self.record(
            self.change(
                mode=Mode.CLOSED,
                close_reason=CloseReason.PAID.value,
                balance=0,
                paid_total=self.carried.paid_total,
                decision="closed_paid",
                events=[ev],
            )
        )
        self.mode = Mode.CLOSED
        self.next_at = None
        self.upsert_common()
        self.set_details("closed: paid in full")
        await self.send_once(
            "receipt/paid",
            Purpose.RECEIPT,
            "payment_receipt",
            {"paid": format_minor(self.carried.paid_total, self.terms.currency)},
        )
        await workflow.wait_condition(workflow.all_handlers_finished)
        return RunResult(
            account_id=self.terms.account_id,
            state="closed_paid",
            balance=self.carried.balance,
            paid_total=self.carried.paid_total,
            at=self.now(),
        )

    async def switch_to_settlement(self) -> RunResult:
        assert self.plan is not None
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(
            SettlementInput(terms=self.terms, carried=self.carried, plan=self.plan),
            workflow="SettlementWorkflow",
        )

    # ---- the negotiation switch -------------------------------------------------------------------
    @workflow.update
    async def propose_settlement(self, proposal: PlanProposal) -> AgreedPlan:
        """Accept a plan: dunning stops, the plan is stored, and only then does this answer."""
        self.settling = True
        self.stop_contacts = True
        now = self.now()
        plan = agree(
            proposal,
            plan_id=f"{self.terms.account_id}-plan-{self.carried.plans_agreed + 1}",
            currency=self.terms.currency,
            balance=self.carried.balance,
            fees=self.terms.fees,
            overdue_since=self.terms.due_date,
            agreed_at=now,
            today=local_date(now, self.terms),
            policy=self.policy,
        )
        ev = self.event(
            "plan_agreed", f"{plan.kind.value}, {len(plan.instalments)} instalment(s), ends {plan.end_date}"
        )
        # Live state first: from here on the send activity's own gate refuses any dunning contact.
        await self.record(
            self.change(
                mode=Mode.SETTLEMENT,
                plan=plan,
                decision="plan_agreed",
                events=[ev],
                actor=proposal.proposed_by,
            )
        )
        # Then make sure nothing already under way can still reach the debtor after we answer.
        await self.contacts_settled()
        self.carried.plans_agreed += 1
        self.mode = Mode.SETTLEMENT
        self.next_at = None
        self.upsert_common()
        self.set_details(f"plan agreed ({plan.kind.value}); switching to settlement")
        self.plan = plan
        self.wake = True
        return plan

    @propose_settlement.validator
    def _check_proposal(self, proposal: PlanProposal) -> None:
        if self.settling or self.plan is not None:
            raise ApplicationError("a plan is already being agreed", type="PlanConflict", non_retryable=True)
        if self.mode == Mode.CLOSED or self.carried.balance <= 0:
            raise ApplicationError("the account is closed", type="AccountClosed", non_retryable=True)
        violations = validate_proposal(
            proposal,
            balance=self.carried.balance,
            fees=self.terms.fees,
            overdue_since=self.terms.due_date,
            today=local_date(self.now(), self.terms),
            policy=self.policy,
        )
        if violations:
            raise ApplicationError(
                "plan breaks policy: " + "; ".join(f"{v.rule}: {v.message}" for v in violations),
                [v.model_dump() for v in violations],
                type="PlanRejected",
                non_retryable=True,
            )

    # ---- signals ----------------------------------------------------------------------------------
    @workflow.signal
    async def negotiation_requested(self, request: NegotiationRequest) -> None:
        """The debtor asked for a plan: dunning waits while an agent answers, then resumes by itself."""
        until = self.now() + NEGOTIATION_WINDOW
        hold = self.add_hold(HoldKind.NEGOTIATION, f"plan requested via {request.channel}", until=until)
        self.cancel_contacts()
        ev = self.event(
            "negotiation_requested", f"via {request.channel}; dunning paused until {until:%Y-%m-%d}"
        )
        self.wake = True
        await self.record(self.change(hold_added=hold, decision="negotiation_requested", events=[ev]))

    @workflow.signal
    async def pause(self, request: HoldRequest) -> None:
        hold = self.add_hold(HoldKind.PAUSE, request.reason)
        self.cancel_contacts()
        ev = self.event("paused", request.reason)
        self.wake = True
        await self.record(self.change(hold_added=hold, decision="paused", events=[ev], actor=request.actor))

    @workflow.signal
    async def resume(self, request: HoldRequest) -> None:
        before = len(self.carried.holds)
        self.carried.holds = [
            h for h in self.carried.holds if h.kind not in (HoldKind.PAUSE, HoldKind.NEGOTIATION)
        ]
        if len(self.carried.holds) == before:
            return
        ev = self.event("resumed", request.reason)
        self.wake = True
        await self.record(
            self.change(hold_lifted=HoldKind.PAUSE, decision="resumed", events=[ev], actor=request.actor)
        )

    # ---- queries ----------------------------------------------------------------------------------
    @workflow.query
    def status(self) -> AccountStatus:
        return self.status_view()

    @workflow.query
    def timeline(self) -> Timeline:
        if self.mode == Mode.CLOSED:
            return Timeline(mode=Mode.CLOSED, entries=[])
        return project_dunning(self.terms, self.carried, self.policy, self.profile, self.now())


__all__ = ["Channel", "DelinquencyWorkflow"]
