"""What the debtor, an agent or a provider callback can tell an account, in either mode, and how the
run acts on it.

Every handler lives here once, for both workflows. A handler never acts on the account by itself
beyond what must be instant (a hold that stops contact now, a send withdrawn): it puts what it
accepted into ``state.inbox`` and wakes the run, and the run takes the inbox at its next safe point
(:meth:`AccountWorkflow.take_inbox`). Whatever is still in the inbox at a hand-over goes with the
state to the next run.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.accounts import FINAL_MESSAGES, Channel, CloseReason, Hold, HoldKind, Mode
    from domain.agencies import CloseRequest
    from domain.gate import Purpose
    from domain.money import format_minor
    from domain.timeline import AccountStatus
    from workflows.base import LATE_PAYMENTS_PATCH
    from workflows.consent import Consent
    from workflows.contacts import FINAL_OUTCOMES, PAYMENTS_FIRST_PATCH, STALE_REMINDER_PATCH
    from workflows.messages import (
        CeaseRequest,
        ComplaintDecision,
        ComplaintIn,
        ContactUpdate,
        DisputeIn,
        DisputeVerified,
        HoldRequest,
        NegotiationAnswer,
        NegotiationRequest,
        OutcomeReport,
        PaymentIn,
        RulesUpgrade,
        RunResult,
    )
    from workflows.notices import NOTICES_PATCH
    from workflows.patches import SMS_CONSENT, SURPLUS_KEEPS_RECEIPT
    from workflows.state import Ack, CloseOrder

# Investigation deadline for a complaint when the caller sets none (CFPB: companies answer within 15 days).
COMPLAINT_SLA_DAYS = 15
#: How long dunning (or a plan's reminders) wait for an agent after the debtor asks for a plan.
NEGOTIATION_WINDOW = timedelta(days=7)


#: How a run that ended paid reports itself: a late payment cannot make these "paid" again.
PAID_LABELS = ("closed_paid", "closed_settled")


class AccountWorkflow(Consent):
    """Base of :class:`DelinquencyWorkflow` and :class:`SettlementWorkflow`: every handler, mode-aware."""

    #: what was owed when the run began to close for a reason other than payment (0: not closing so)
    owed_at_close = 0

    # ---- the inbox --------------------------------------------------------------------------------
    async def take_inbox(self) -> int:
        """Act on what handlers accepted, in a fixed order; returns the payments newly applied."""
        applied = await self.take_payments()
        await self.take_receipts()
        await self.take_reports()
        await self.take_opt_out_confirmation()
        await self.take_opt_in_confirmation()
        await self.take_acknowledgements()
        await self.take_upgrade()
        return applied

    async def take_receipts(self) -> None:
        """One text per payment that asked for a receipt: what came in and what is still owed.

        After the payments are recorded, so the balance it quotes is the one the debtor sees on the
        page. Paid in full, the closing receipt says it all and this one is withdrawn.
        """
        while self.state.inbox.receipts:
            due = self.state.inbox.receipts[0]
            await self.send_once(
                f"receipt/{due.reference}",
                Purpose.RECEIPT,
                "payment_received",
                {
                    "paid": format_minor(due.amount, self.terms.currency),
                    "balance": format_minor(self.carried.balance, self.terms.currency),
                },
                wanted=lambda: (
                    "paid in full: the closing receipt says it" if self.carried.balance <= 0 else None
                ),
            )
            self.state.inbox.receipts = self.state.inbox.receipts[1:]

    async def take_reports(self) -> None:
        """Late provider callbacks (delivery receipts, call results) that arrived as signals."""
        while self.state.inbox.reports:
            report = self.state.inbox.reports.pop(0)
            key = report.dedupe_key.split("/", 1)[-1]
            for i, rec in enumerate(self.carried.last_contacts):
                if rec.step == key and rec.outcome not in FINAL_OUTCOMES:
                    self.carried.last_contacts[i] = rec.model_copy(update={"outcome": report.outcome})
                    await self.apply_channel_outcome(rec.channel, report.outcome)

    async def take_acknowledgements(self) -> None:
        """Answer each request once, at a lawful hour, before any next step (workflows/notices.py);
        then check the complaint SLA."""
        await self.take_lapsed_plan_request()
        while self.state.inbox.acks:
            ack = self.state.inbox.acks.pop(0)
            went = await self.send_once(ack.key, Purpose.ACKNOWLEDGEMENT, ack.template, ack.context or None)
            self.event("notice", f"{ack.template}: {'sent' if went else 'not sent'}")  # history query
        due = self.carried.complaint_due
        if due is not None and not self.carried.complaint_escalated and self.now() >= due:
            self.carried.complaint_escalated = True
            ev = self.event(
                "complaint_sla_breached", f"no decision by {due:%Y-%m-%d}; escalated to a supervisor"
            )
            await self.record(
                self.change(
                    decision="complaint_escalated", rule="complaint.sla", events=[ev], actor="workflow"
                )
            )

    async def take_upgrade(self) -> None:
        """Move to the rules an operator chose, here, between two decisions (a safe point)."""
        inbox = self.state.inbox
        if inbox.upgrade is None:
            return
        rules, actor = inbox.upgrade, inbox.upgrade_actor or "operator"
        inbox.upgrade, inbox.upgrade_actor = None, None
        if rules.versions == self.state.rules.versions:
            return
        before = self.state.rules.versions
        self.state.rules = rules
        self.state.terms = self.terms.model_copy(
            update={
                "policy": rules.policy_version.split("@", 1)[0],
                "profile": rules.profile_version.split("@", 1)[0],
            }
        )
        ev = self.event("rules_upgraded", f"{before} -> {rules.versions}")
        await self.record(
            self.change(
                decision="rules_upgraded",
                rules=(rules.policy_version, rules.profile_version),
                events=[ev],
                actor=actor,
            )
        )

    def bounded(self, at: datetime) -> datetime:
        """Wake no later than the open complaint's deadline, so a missed SLA is noticed on time, nor
        than a plan request's, so the debtor hears of it the moment its pause ends."""
        due = self.carried.complaint_due
        if due is not None and not self.carried.complaint_escalated:
            at = min(at, due)
        answer = self.answer_due()
        return min(at, answer) if answer is not None else at

    # ---- holds ------------------------------------------------------------------------------------
    def add_hold(
        self, kind: HoldKind, reason: str, until: datetime | None = None, channel: Channel | None = None
    ) -> Hold:
        hold = Hold(kind=kind, reason=reason, since=self.now(), until=until, channel=channel)
        self.carried.holds = [h for h in self.carried.holds if (h.kind, h.channel) != (kind, channel)] + [
            hold
        ]
        return hold

    def lift(self, *kinds: HoldKind) -> list[HoldKind]:
        """Remove every hold of these kinds; the kinds that were there."""
        lifted = sorted({h.kind for h in self.carried.holds if h.kind in kinds})
        self.carried.holds = [h for h in self.carried.holds if h.kind not in kinds]
        return lifted

    def holds_now(self) -> list[Hold]:
        now = self.now()
        return [h for h in self.carried.holds if h.until is None or h.until > now]

    # ---- signals both workflows take --------------------------------------------------------------
    @workflow.signal
    def payment_received(self, payment: PaymentIn) -> None:
        if payment.currency.upper() != self.terms.currency:
            workflow.logger.warning(
                "payment in %s ignored: account is in %s", payment.currency, self.terms.currency
            )
            return
        if payment.reference in self.carried.payment_references:
            return
        self.carried.payment_references = [*self.carried.payment_references, payment.reference]
        self.state.inbox.payments.append(payment)
        pending = sum(p.amount for p in self.state.inbox.payments)
        if self.carried.balance <= 0 and self.patched(SURPLUS_KEEPS_RECEIPT):
            pass  # paid in full already, closing: this one is refunded, the closing receipt still goes
        elif pending >= self.carried.balance:
            # paid in full: nothing more may go out, even a send already under way
            self.stop_contacts = True
            self.payment_withdrew = self.message_waiting()
            self.cancel_contacts()
            self.on_paid_in_full()
        elif self.reminder_waiting() and self.patched(STALE_REMINDER_PATCH):
            self.cancel_stale_reminder()
        elif self.message_waiting() and self.patched(PAYMENTS_FIRST_PATCH):
            self.cancel_stale_reminder()  # any message waiting is decided again after the payment
        self.wake = True

    def on_paid_in_full(self) -> None:
        """Overridden where a run has work of its own that must stop at once (a field visit)."""

    @workflow.signal
    def contact_updated(self, update: ContactUpdate) -> None:
        self.state.terms = self.terms.model_copy(
            update={"masked_phone": update.masked_phone, "zones": list(update.zones), "region": update.region}
        )
        self.carried.unreachable = []
        self.carried.contact_lost = False
        self.event("contact_updated", update.masked_phone)
        self.wake = True

    @workflow.signal
    def contact_outcome(self, report: OutcomeReport) -> None:
        self.state.inbox.reports.append(report)
        self.wake = True

    @workflow.signal
    async def complaint_filed(self, complaint: ComplaintIn) -> None:
        """Contact stops at once (a send in flight is cancelled) until an investigator decides."""
        self.carried.complaints += 1
        days = complaint.sla_days or COMPLAINT_SLA_DAYS
        self.carried.complaint_due = self.now() + timedelta(days=days)
        self.carried.complaint_escalated = False
        hold = self.add_hold(HoldKind.COMPLAINT, f"complaint #{self.carried.complaints} ({complaint.source})")
        self.cancel_collection()
        case = f" (case {complaint.case_id})" if complaint.case_id else ""
        ev = self.event(
            "complaint_filed",
            f"#{self.carried.complaints}{case} from {complaint.source}; decision due {self.carried.complaint_due:%Y-%m-%d}",
        )
        if self.patched(NOTICES_PATCH):  # the case and the decision date, in the debtor's calendar
            self.acknowledge_complaint(self.carried.complaints, complaint.case_id, self.carried.complaint_due)
        else:
            self.state.inbox.acks.append(
                Ack(key=f"complaint/{self.carried.complaints}/ack", template="complaint_ack")
            )
        self.wake = True
        await self.record(
            self.change(hold_added=hold, decision="complaint_filed", events=[ev], actor=complaint.actor)
        )
        if complaint.source == "visit":  # a complaint about a field visit pauses the whole account
            pause = self.add_hold(HoldKind.PAUSE, "complaint about a field visit")
            ev = self.event("paused", "complaint about a field visit")
            await self.record(
                self.change(hold_added=pause, decision="paused", events=[ev], actor=complaint.actor)
            )

    @workflow.signal
    async def complaint_resolved(self, decision: ComplaintDecision) -> None:
        if not self.lift(HoldKind.COMPLAINT):
            return  # no open complaint: a duplicate decision changes nothing
        self.carried.complaint_due = None
        case = f" (case {decision.case_id})" if decision.case_id else ""
        ev = self.event("complaint_resolved", f"{decision.decision}{case}: {decision.note[:200]}")
        if self.patched(NOTICES_PATCH):  # told before any contact, the account's close included
            self.tell_complaint_decision(self.carried.complaints, decision.decision)
        if decision.decision == "close" and self.state.inbox.close is None:
            self.state.inbox.close = CloseOrder(reason=CloseReason.COMPLAINT_UPHELD)
        self.wake = True
        await self.record(
            self.change(
                hold_lifted=HoldKind.COMPLAINT,
                decision=f"complaint_{decision.decision}",
                events=[ev],
                actor=decision.actor,
            )
        )

    @workflow.signal
    async def close(self, request: CloseRequest) -> None:
        """An operator closes the account: written off, or the debtor died or went bankrupt.

        Deceased and bankrupt stop every contact at once (total holds), final messages included.
        """
        if self.state.inbox.close is not None or (
            self.mode == Mode.CLOSED and self.carried.placed_with is None
        ):
            return
        reason = CloseReason(request.reason)
        total = {CloseReason.DECEASED: HoldKind.DECEASED, CloseReason.BANKRUPT: HoldKind.BANKRUPTCY}.get(
            reason
        )
        note = f"{reason.value}: {request.note}" if request.note else reason.value
        self.state.inbox.close = CloseOrder(reason=reason, note=note)
        self.wake = True
        if total is not None:
            hold = self.add_hold(total, request.note or reason.value)
            self.cancel_contacts()
            ev = self.event("hold", f"{total.value}: every contact stops")
            await self.record(
                self.change(hold_added=hold, decision=total.value, events=[ev], actor=request.actor)
            )

    @workflow.signal
    async def dispute_filed(self, dispute: DisputeIn) -> None:
        """A disputed debt is not collected until it is verified (FDCPA §809(b))."""
        self.carried.disputes += 1
        hold = self.add_hold(HoldKind.DISPUTE, f"dispute #{self.carried.disputes}")
        self.cancel_collection()
        case = f" (case {dispute.case_id})" if dispute.case_id else ""
        ev = self.event("dispute_filed", f"#{self.carried.disputes}{case}")
        if self.patched(NOTICES_PATCH):  # the case, and that nothing is collected until the findings
            self.acknowledge_dispute(self.carried.disputes, dispute.case_id)
        else:
            self.state.inbox.acks.append(
                Ack(key=f"dispute/{self.carried.disputes}/ack", template="dispute_ack")
            )
        self.wake = True
        await self.record(
            self.change(hold_added=hold, decision="dispute_filed", events=[ev], actor=dispute.actor)
        )

    @workflow.signal
    async def dispute_verified(self, verified: DisputeVerified) -> None:
        if not self.lift(HoldKind.DISPUTE):
            return
        case = f"case {verified.case_id}: " if verified.case_id else ""
        ev = self.event("dispute_verified", f"{case}{verified.note[:200]}")
        if self.patched(NOTICES_PATCH):  # the findings reach the debtor before collection resumes
            self.tell_dispute_findings(self.carried.disputes)
        self.wake = True
        await self.record(
            self.change(
                hold_lifted=HoldKind.DISPUTE, decision="dispute_verified", events=[ev], actor=verified.actor
            )
        )

    @workflow.signal
    async def cease_requested(self, request: CeaseRequest) -> None:
        """Cease-communication (every channel) or a prohibited medium (one channel), for good."""
        what = request.channel.value if request.channel else "all"
        hold = self.add_hold(HoldKind.CEASE, f"cease {what}", channel=request.channel)
        if request.channel is None or self.contact_channel == request.channel:
            self.cancel_collection()
        ev = self.event("cease_requested", what)
        if request.channel != Channel.SMS:  # the one permitted notice, never on a medium just refused
            self.state.inbox.acks.append(Ack(key=f"cease/{what}/ack", template="cease_ack"))
        self.wake = True
        await self.record(
            self.change(hold_added=hold, decision="cease_requested", events=[ev], actor=request.actor)
        )

    @workflow.signal
    async def pause(self, request: HoldRequest) -> None:
        """An operator hold: dunning and plan reminders stop (a send in flight is withdrawn)."""
        hold = self.add_hold(HoldKind.PAUSE, request.reason)
        self.cancel_contacts()
        ev = self.event("paused", request.reason)
        self.wake = True
        await self.record(self.change(hold_added=hold, decision="paused", events=[ev], actor=request.actor))

    @workflow.signal
    async def resume(self, request: HoldRequest) -> None:
        """Lifts an operator pause and a plan request's wait, in the run and in the database alike."""
        lifted = self.lift(HoldKind.PAUSE, HoldKind.NEGOTIATION)
        if not lifted:
            return
        ev = self.event("resumed", request.reason)
        waiting = self.waiting_plan_request()
        if HoldKind.NEGOTIATION in lifted and waiting is not None:
            # an operator ended a plan request without a plan: the debtor is told, never left to
            # find out from the next reminder
            self.state.plan_request = None
            self.tell(f"plan-request/{waiting.number}/closed", "plan_request_closed")
        self.wake = True
        await self.record(
            self.change(
                hold_lifted=HoldKind.PAUSE,
                holds_lifted=lifted,
                decision="resumed",
                events=[ev],
                actor=request.actor,
            )
        )

    @workflow.signal
    async def negotiation_requested(self, request: NegotiationRequest) -> None:
        """The debtor asked for a plan (or a change to theirs): contact waits while an agent answers."""
        until = self.now() + NEGOTIATION_WINDOW
        hold = self.add_hold(HoldKind.NEGOTIATION, f"plan requested via {request.channel}", until=until)
        if self.patched(SMS_CONSENT):
            self.cancel_collection()  # an answer under way (an opt-out confirmation) still goes
        else:
            self.cancel_contacts()
        paused = "dunning" if self.mode == Mode.DUNNING else "plan reminders"
        case = f" (case {request.case_id})" if request.case_id else ""
        ev = self.event(
            "negotiation_requested", f"via {request.channel}{case}; {paused} paused until {until:%Y-%m-%d}"
        )
        if self.patched(NOTICES_PATCH):  # answered by then, or the debtor hears that it was not
            self.open_plan_request(request.case_id, until)
        self.wake = True
        await self.record(self.change(hold_added=hold, decision="negotiation_requested", events=[ev]))

    @workflow.signal
    async def negotiation_answered(self, answer: NegotiationAnswer) -> None:
        """An agent answered a plan request without a plan: declined (the pause ends now, the debtor
        is told why) or escalated (the pause lasts until ``answer_by``, the debtor is told so).

        Only a request made under :data:`NOTICES_PATCH` waits for an answer (``plan_request``).
        """
        waiting = self.waiting_plan_request()
        if waiting is None:
            workflow.logger.info("plan request answer ignored: no request is waiting for one")
            return  # answered already (a plan, an operator's resume), lapsed, or never made
        case_id = answer.case_id or waiting.case_id
        case = f" (case {case_id})" if case_id else ""
        key = f"plan-request/{waiting.number}"
        if answer.decision == "declined":
            self.lift(HoldKind.NEGOTIATION)
            self.state.plan_request = None
            self.tell(f"{key}/declined", "plan_request_declined", {"reason": answer.reason})
            ev = self.event("plan_request_declined", f"#{waiting.number}{case}: {answer.reason}")
            change = self.change(
                hold_lifted=HoldKind.NEGOTIATION,
                decision="plan_request_declined",
                events=[ev],
                actor=answer.actor,
            )
        else:
            assert answer.answer_by is not None  # NegotiationAnswer requires it
            until = answer.answer_by
            if until <= self.now():
                workflow.logger.warning("plan request escalation ignored: answer_by %s has passed", until)
                return
            hold = self.add_hold(
                HoldKind.NEGOTIATION, f"plan request #{waiting.number} escalated", until=until
            )
            escalations = waiting.escalations + 1
            self.state.plan_request = waiting.model_copy(update={"until": until, "escalations": escalations})
            self.tell(
                f"{key}/escalated-{escalations}",
                "plan_request_escalated",
                {"answer_by": self.local_day(until)},
            )
            ev = self.event(
                "plan_request_escalated",
                f"#{waiting.number}{case}: a supervisor answers by {until:%Y-%m-%d %H:%M}",
            )
            change = self.change(
                hold_lifted=HoldKind.NEGOTIATION,  # and added again with its new end, in one write
                hold_added=hold,
                decision="plan_request_escalated",
                events=[ev],
                actor=answer.actor,
            )
        self.wake = True
        await self.record(change)

    @workflow.signal
    def rules_upgraded(self, upgrade: RulesUpgrade) -> None:
        """An operator moved the account to another version of its rules; taken at the next safe point."""
        self.state.inbox.upgrade = upgrade.rules
        self.state.inbox.upgrade_actor = upgrade.actor
        self.wake = True

    # ---- closing ----------------------------------------------------------------------------------
    def still_owed(self) -> str | None:
        """For a message about money owed: why it should not go (the debt is paid), or None."""
        return "paid in full" if self.carried.balance <= 0 else None

    async def stop_side_work(self, reason: str) -> None:
        """Overridden where a run has work of its own beside contacts (a field visit): stop it."""

    async def close_paid(self) -> RunResult:
        """Paid in full: one receipt, and the account closes."""
        self.state.closing = "paid"
        self.stop_contacts = True
        if self.plan_stored is not None:
            await self.plan_stored  # paid in full while a plan was being agreed: its record goes first
        await self.stop_side_work("paid")
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
        self.state.mode = Mode.CLOSED
        self.state.next_at = None
        self.upsert_common()
        self.set_details("closed: paid in full")
        await self.send_once(
            "receipt/paid",
            Purpose.RECEIPT,
            "payment_receipt",
            {"paid": format_minor(self.carried.paid_total, self.terms.currency)},
        )
        return await self.finish("closed_paid")

    async def close_account(self, reason: CloseReason, detail: str) -> RunResult:
        """Close for a reason other than payment or charge-off (complaint upheld, write-off …)."""
        self.state.closing = reason.value
        self.owed_at_close = self.carried.balance
        self.stop_contacts = True
        await self.contacts_settled()
        ev = self.event("closed", detail)
        await self.record(
            self.change(
                mode=Mode.CLOSED,
                close_reason=reason.value,
                balance=self.carried.balance,
                paid_total=self.carried.paid_total,
                decision=f"closed_{reason.value}",
                events=[ev],
            )
        )
        self.state.mode = Mode.CLOSED
        self.state.next_at = None
        self.upsert_common()
        self.set_details(f"closed: {detail}")
        final = FINAL_MESSAGES.get(reason)  # none where the law forbids it (bankrupt, deceased)
        if final is not None:
            await self.send_once(f"closed/{reason.value}", Purpose.RECEIPT, final, wanted=self.still_owed)
        return await self.finish(f"closed_{reason.value}")

    async def finish(self, state_label: str) -> RunResult:
        """The one way a run closes the account: whatever came in while it was closing is recorded
        first, so a payment answered 202 is never dropped by a run on its way out. A late payment
        that pays the whole balance of an account closed for another reason (charged off, written
        off) gets the receipt, and the account is closed as paid: paid debts are told they are paid.
        """
        while True:
            await workflow.wait_condition(workflow.all_handlers_finished)
            if self.owed_at_close > 0 >= self.carried.balance and state_label not in PAID_LABELS:
                if self.patched(LATE_PAYMENTS_PATCH):
                    state_label = await self.paid_after_close()
                    continue
            if not self.state.inbox.payments or not self.patched(LATE_PAYMENTS_PATCH):
                break
            await self.take_payments()
        await self.flush()  # anything noted and not yet written (none in runs recorded before)
        return RunResult(
            account_id=self.terms.account_id,
            state=state_label,
            balance=self.carried.balance,
            paid_total=self.carried.paid_total,
            at=self.now(),
        )

    async def paid_after_close(self) -> str:
        ev = self.event("closed", f"paid in full after closing ({self.state.closing})")
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
        self.state.closing = CloseReason.PAID.value
        self.set_details("closed: paid in full")
        await self.send_once(
            "receipt/paid",
            Purpose.RECEIPT,
            "payment_receipt",
            {"paid": format_minor(self.carried.paid_total, self.terms.currency)},
        )
        return "closed_paid"

    def closing_order(self) -> CloseOrder | None:
        return self.state.inbox.close

    def status_now(self, at: datetime | None = None) -> AccountStatus:
        plan = self.state.plan
        return self.status_view(plan=plan.plan if plan else None, plan_paid=plan.paid if plan else 0, at=at)
