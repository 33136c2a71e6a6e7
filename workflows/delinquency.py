"""DelinquencyWorkflow: the dunning cadence of one account, from first reminder to charge-off.

One per account, workflow ID ``account-<id>``. An agreed plan switches this same workflow ID to
:class:`SettlementWorkflow` by continue-as-new, so a dunning run and a settlement run can never be
alive at once: that is the structural fix for "still harassed after agreeing a plan".
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.accounts import Carried, Channel, CloseReason, ContactOutcome, HoldKind, Mode, Stage
    from domain.agencies import (
        END_PLACEMENT,
        PLACE_ACCOUNT,
        EndPlacement,
        Placed,
        PlaceRequest,
        RecallRequest,
    )
    from domain.cadence import dpd_at, fallback_step, home_zone, local_date, next_action
    from domain.clock import PolicyClock
    from domain.gate import Purpose
    from domain.money import format_minor
    from domain.plans import AgreedPlan, PlanKind, PlanProposal, Violation, agree, validate_proposal
    from domain.timeline import AccountStatus, Timeline, project_dunning
    from domain.visits import VisitCancel, VisitOutcome, VisitResult, eligibility, visit_slot
    from workflows import search
    from workflows.base import RECORD_RETRY, AccountWorkflow
    from workflows.locate import LocateMixin
    from workflows.messages import (
        DelinquencyInput,
        HoldRequest,
        NegotiationRequest,
        RunResult,
        SettlementInput,
    )
    from workflows.visit import FieldVisitWorkflow, VisitInput, visit_workflow_id

NEGOTIATION_WINDOW = timedelta(days=7)
#: A plan agreed on a quiet account answers before its record is written (``agree_plan``). Runs
#: recorded before this wrote first; ``workflow.patched`` keeps their replay identical.
QUIET_PLAN_PATCH = "quiet-plan-answers-first"


@workflow.defn
class DelinquencyWorkflow(LocateMixin, AccountWorkflow):
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
        self.plan_stored: asyncio.Future[None] | None = None  # the quiet path's plan record, under way
        self.resumed_from = start.resumed_from
        # field visit (child workflow) and agency placement, issue 7
        self.visit_handle: workflow.ChildWorkflowHandle | None = None  # type: ignore[type-arg]
        self.visit_task: asyncio.Future[VisitResult | None] | None = None
        self.recall_request: RecallRequest | None = None

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
                await self.stop_visit("account_closed")
                return await self.close_account(
                    self.close_requested, self.close_note or "complaint upheld by the investigator"
                )
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
            await self.tend_visit(stage, dpd)
            locate_at = await self.tend_locate()  # contact lost: ask the emergency contact (locate.py)
            if self.settling:
                continue  # the visit's report was a promise to pay: a plan is being agreed

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
            await self.sleep_until(self.bounded(min(wait_until, locate_at or wait_until)))
            if workflow.info().is_continue_as_new_suggested() and self.visit_task is None:
                if await self.drain_payments():
                    continue  # a payment came in: it may close the account, decide again first
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
        await self.stop_visit("charged_off")
        if self.placement_due() and workflow.patched("agency-placement"):
            placed = await self.place(dpd)
            if placed is not None:
                return placed
        self.stop_contacts = True
        await self.close_charged_off(
            dpd,
            CloseReason.CHARGED_OFF,
            "charged_off",
            f"at {dpd} DPD; placement record created for agency hand-off",
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
        if self.plan_stored is not None:
            await self.plan_stored  # paid in full while a plan was being agreed: its record goes first
        await self.stop_visit("paid")
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
        if self.plan_stored is not None:
            await self.plan_stored  # a plan agreed on a quiet account: stored before anything else
        await self.stop_visit("plan_agreed")
        # a payment that arrived while the plan was being agreed counts towards the plan
        paid = await self.drain_payments()
        workflow.continue_as_new(
            SettlementInput(terms=self.terms, carried=self.carried, plan=self.plan, paid_in_plan=paid),
            workflow="SettlementWorkflow",
        )

    # ---- the negotiation switch -------------------------------------------------------------------
    @workflow.update
    async def propose_settlement(self, proposal: PlanProposal) -> AgreedPlan:
        """Accept a plan: dunning stops, the plan is stored, and only then does this answer."""
        plan = await self.agree_plan(
            proposal,
            None,
            proposal.proposed_by,
            f"plan agreed ({proposal.kind.value}); switching to settlement",
        )
        self.wake = True
        return plan

    def plan_violations(self, proposal: PlanProposal) -> list[Violation]:
        """The policy's verdict on a plan for this account today (pure: ``domain.plans``)."""
        return validate_proposal(
            proposal,
            balance=self.carried.balance,
            fees=self.terms.fees,
            overdue_since=self.terms.due_date,
            today=local_date(self.now(), self.terms),
            policy=self.policy,
        )

    async def agree_plan(
        self, proposal: PlanProposal, detail: str | None, actor: str, details_line: str
    ) -> AgreedPlan:
        """Stop dunning, store the plan, wait out any send in flight: the one way a plan is agreed."""
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
            "plan_agreed",
            detail or f"{plan.kind.value}, {len(plan.instalments)} instalment(s), ends {plan.end_date}",
        )
        stored = self.change(
            mode=Mode.SETTLEMENT, plan=plan, decision="plan_agreed", events=[ev], actor=actor
        )
        if self.visit_task is None and self.contacts_quiet() and workflow.patched(QUIET_PLAN_PATCH):
            # Nothing of ours is under way or can still be (see contacts_quiet), no field visit can
            # announce itself, and this run starts no new contact now: dunning has stopped already.
            # Answer at once; the plan is stored right after, before settlement begins.
            self.plan_stored = asyncio.ensure_future(self.record(stored))
        else:
            # Live state first: from here on the send activity's own gate refuses any dunning contact.
            await self.record(stored)
            # Then make sure nothing already under way can still reach the debtor after we answer.
            await self.contacts_settled()
        self.carried.plans_agreed += 1
        self.mode = Mode.SETTLEMENT
        self.next_at = None
        self.upsert_common()
        self.set_details(details_line)
        self.plan = plan
        return plan

    @propose_settlement.validator
    def _check_proposal(self, proposal: PlanProposal) -> None:
        if self.settling or self.plan is not None:
            raise ApplicationError("a plan is already being agreed", type="PlanConflict", non_retryable=True)
        if self.mode == Mode.CLOSED or self.carried.balance <= 0:
            raise ApplicationError("the account is closed", type="AccountClosed", non_retryable=True)
        violations = self.plan_violations(proposal)
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

    @workflow.signal
    def recall(self, request: RecallRequest) -> None:
        """Take a placed account back from its agency (it goes to another one, or is charged off)."""
        if self.carried.placed_with is not None:
            self.recall_request = request
            self.wake = True

    # ---- field visits (a child workflow) ----------------------------------------------------------
    async def tend_visit(self, stage: Stage, dpd: int) -> None:
        """Act on a finished visit, stop one a hold or plan request overtook, or arrange a new one."""
        if self.visit_task is not None and self.visit_task.done():
            result = self.visit_task.result()
            self.visit_task, self.visit_handle = None, None
            if result is not None:
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
        if self.stop_contacts or self.settling or not visits.enabled or self.carried.contact_lost:
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
        if not verdict.eligible or not workflow.patched("field-visits"):
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
            await self.visit_handle.signal(FieldVisitWorkflow.cancel, VisitCancel(reason=reason[:64]))
        result = await self.visit_task
        self.visit_task, self.visit_handle = None, None
        if result is not None:  # a report that crossed the cancellation is kept by the child, not acted on
            self.event(f"visit_{result.status}", f"{result.visit_id}: {result.reason}")

    async def take_visit_result(self, result: VisitResult) -> None:
        report = result.report
        self.event(
            f"visit_{result.status}",
            f"{result.visit_id}: {report.outcome.value if report else result.reason}",
        )
        if report is None or self.stop_contacts or self.settling:
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

    async def accept_promise(self, amount: int, day, by: str) -> None:  # type: ignore[no-untyped-def]
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

    # ---- placement with an agency at charge-off ---------------------------------------------------
    def placement_due(self) -> bool:
        rules = self.policy.placement
        minimum = rules.min_balance.get(self.terms.currency)
        return (
            rules.enabled
            and rules.at == Stage.CHARGED_OFF
            and minimum is not None
            and self.carried.balance >= minimum
        )

    def placement_id(self) -> str:
        return f"{self.terms.account_id}/placement-{len(self.carried.recalled_from) + 1}"

    async def place_with_agency(self) -> Placed:
        return await workflow.execute_activity(
            PLACE_ACCOUNT,
            PlaceRequest(
                placement_id=self.placement_id(),
                account_id=self.terms.account_id,
                region=self.terms.region,
                country=self.terms.profile,
                currency=self.terms.currency,
                balance=self.carried.balance,
                exclude=list(self.carried.recalled_from),
                at=self.now(),
            ),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RECORD_RETRY,
            result_type=Placed,
            summary="place with an agency",
        )

    async def end_placement(self, status: str, reason: str) -> None:
        await workflow.execute_activity(
            END_PLACEMENT,
            EndPlacement(placement_id=self.placement_id(), status=status, reason=reason, at=self.now()),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RECORD_RETRY,
            summary=f"placement {status}",
        )

    async def place(self, dpd: int) -> RunResult | None:
        """Charge off and place with an agency; None when no agency has room (plain charge-off then)."""
        self.stop_contacts = True
        await self.contacts_settled()
        placed = await self.place_with_agency()
        if placed.agency_id is None:
            return None
        await self.close_charged_off(
            dpd, CloseReason.PLACED, "charged_off_placed", f"at {dpd} DPD; placed with {placed.agency_id}"
        )
        return await self.while_placed(placed)

    async def close_charged_off(self, dpd: int, reason: CloseReason, decision: str, detail: str) -> None:
        """The charge-off record, placed with an agency or not: the account leaves collection here."""
        ev = self.event("charged_off", detail)
        await self.record(
            self.change(
                mode=Mode.CLOSED,
                close_reason=reason.value,
                stage=Stage.CHARGED_OFF,
                dpd=dpd,
                balance=self.carried.balance,
                decision=decision,
                events=[ev],
            )
        )
        self.mode = Mode.CLOSED
        self.next_at = None
        self.upsert_common(
            stage=search.STAGE.value_set(Stage.CHARGED_OFF.value), dpd=search.DPD.value_set(dpd)
        )

    async def while_placed(self, placed: Placed) -> RunResult:
        """The agency works the account; its payments come back here, and it can be recalled."""
        while True:
            assert placed.agency_id is not None
            self.carried.placed_with = placed.agency_id
            self.set_details(f"charged off and placed with {placed.agency_name}")
            await self.send_once(
                f"{self.placement_id()}/notice",
                Purpose.RECEIPT,
                "agency_placement",
                {"agency_name": placed.agency_name, "agency_number": placed.agency_number},
            )
            deadline = self.now() + timedelta(days=self.policy.placement.max_days)
            while True:
                await self.take_payments()
                await self.take_reports()
                await self.take_opt_out_confirmation()
                await self.take_acknowledgements()
                if self.carried.balance <= 0:
                    await self.end_placement("completed", "paid in full")
                    self.carried.placed_with = None
                    return await self.close_paid()
                if self.close_requested is not None:
                    await self.end_placement("recalled", self.close_note or self.close_requested.value)
                    self.carried.placed_with = None
                    return await self.close_account(self.close_requested, self.close_note or "closed")
                if self.recall_request is not None or self.now() >= deadline:
                    break
                await self.sleep_until(self.bounded(deadline))
            if self.recall_request is None:
                await self.end_placement("expired", f"{self.policy.placement.max_days} days placed")
                self.carried.placed_with = None
                return await self.close_account(CloseReason.WRITTEN_OFF, "placement ended; written off")
            request, self.recall_request = self.recall_request, None
            old = placed.agency_id
            await self.end_placement("recalled", request.reason)
            self.carried.recalled_from = [*self.carried.recalled_from, old]
            self.carried.placed_with = None
            ev = self.event("recalled", f"from {old}: {request.reason}")
            await self.record(self.change(decision="placement_recalled", events=[ev], actor=request.actor))
            placed = await self.place_with_agency()
            if placed.agency_id is None:
                return await self.close_account(
                    CloseReason.CHARGED_OFF, f"recalled from {old}; no other agency"
                )
            ev = self.event("placed", f"with {placed.agency_id} after recall")
            await self.record(self.change(decision="placed", events=[ev], actor=request.actor))

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
