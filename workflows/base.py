"""Machinery both account workflows share: the policy clock, recording, contacts and common signals.

Both workflows own the same account under the same workflow ID, one at a time; whatever a debtor
can do in either (pay, opt out, change number) is handled once, here.
"""

from __future__ import annotations

import asyncio
import math
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, CancelledError

with workflow.unsafe.imports_passed_through():
    from domain.accounts import (
        FINAL_MESSAGES,
        AccountTerms,
        Carried,
        Channel,
        CloseReason,
        ContactOutcome,
        ContactRecord,
        Event,
        Hold,
        HoldKind,
        LedgerEntry,
        Mode,
    )
    from domain.agencies import CloseRequest
    from domain.cadence import dpd_at, gate_state, usable_channels
    from domain.effects import (
        AWAIT_OUTCOME,
        RECORD,
        SEND_CONTACT,
        Change,
        OutcomeRequest,
        PaymentRecord,
        SendRequest,
        SendResult,
    )
    from domain.gate import TRANSACTIONAL, Audience, Defer, Deny, PlannedContact, Purpose, decide
    from domain.money import format_minor
    from domain.plans import AgreedPlan
    from domain.policy import Policy, load_policy
    from domain.profiles import Profile, load_profile
    from domain.timeline import AccountStatus, ContactView
    from workflows import search
    from workflows.locate import third_party_gate_state
    from workflows.messages import (
        CeaseRequest,
        ComplaintDecision,
        ComplaintIn,
        ContactUpdate,
        DisputeIn,
        DisputeVerified,
        OptOut,
        OutcomeReport,
        PaymentIn,
        RunResult,
    )

KEEP_LEDGER_DAYS = 8
KEEP_EVENTS = 60
KEEP_CONTACTS = 12
FINAL_OUTCOMES = {
    ContactOutcome.DELIVERED,
    ContactOutcome.UNDELIVERABLE,
    ContactOutcome.OPTED_OUT,
    ContactOutcome.CONVERSATION,
    ContactOutcome.VOICEMAIL,
    ContactOutcome.NO_ANSWER,
    ContactOutcome.BUSY,
    ContactOutcome.FAILED,
    ContactOutcome.SILENT,
}

RECORD_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_interval=timedelta(minutes=1)
)
#: The longest a send attempt may run (start-to-close); see :meth:`AccountWorkflow.contacts_quiet`.
SEND_ATTEMPT_TIMEOUT = timedelta(seconds=60)
SEND_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
    maximum_attempts=8,
    non_retryable_error_types=["ConfigurationError"],
)


#: Part payments cancel a reminder still waiting to go out (it quotes the old balance). Runs recorded
#: before this let it go; ``workflow.patched`` keeps their replay identical.
STALE_REMINDER_PATCH = "payment-cancels-stale-reminder"
#: A signal that arrived between two sleeps wakes the next one at once (``sleep_until``).
WAKE_PATCH = "signal-between-sleeps-wakes"

# Investigation deadline for a complaint when the caller sets none (CFPB: companies answer within 15 days).
COMPLAINT_SLA_DAYS = 15


class AccountWorkflow:
    """Base of :class:`DelinquencyWorkflow` and :class:`SettlementWorkflow`."""

    mode: Mode
    terms: AccountTerms
    carried: Carried
    policy: Policy
    profile: Profile

    def _setup(self, terms: AccountTerms, carried: Carried) -> None:
        self.terms = terms
        self.carried = carried
        self.policy = load_policy(terms.policy)
        self.profile = load_profile(terms.profile)
        self.wake = False
        self.stop_contacts = False  # set the instant a plan or full payment lands; nothing new goes out
        self.contact_task: asyncio.Task[SendResult] | None = None
        #: when this run's last send (or outcome wait) ended; None: none yet, count from the run's start
        self.contact_ended_at: datetime | None = None
        self.cancelling_contacts = False  # this workflow cancelled its own send (not the run's cancel)
        self.outcome_task: asyncio.Task[SendResult] | None = None
        self.pending_payments: list[PaymentIn] = []
        self.pending_reports: list[OutcomeReport] = []
        self.seen_references: set[str] = set(carried.payment_references)
        self.confirm_opt_out = False
        self.deferred: dict[str, datetime] = {}
        self.next_label: str | None = None
        self.next_at: datetime | None = None
        self.pending_acks: list[tuple[str, str]] = []  # (dedupe key, template) owed to the debtor
        self.close_requested: CloseReason | None = None
        self.close_note: str | None = None  # why an operator closed it (written off, deceased, bankrupt)
        self.contact_channel: Channel | None = None
        self.contact_purpose: Purpose | None = None

    # ---- time -------------------------------------------------------------------------------------
    def now(self) -> datetime:
        """Policy time: what the rules see (equal to workflow time unless the demo speeds it up)."""
        return self.carried.clock.policy_now(workflow.now())

    async def sleep_until(self, policy_at: datetime) -> None:
        """Sleep until a policy instant, or until a signal sets ``wake``.

        A signal that landed while the loop was busy (writing a stage change, say) set ``wake``
        before this sleep began: it returns at once, so the loop takes what came in instead of
        sleeping through it until the next contact. Runs recorded before kept the flag cleared at
        the start (``workflow.patched``), and replay identically.
        """
        delay = self.carried.clock.real_delay(self.now(), policy_at)
        if workflow.patched(WAKE_PATCH):
            woken, self.wake = self.wake, False
            if woken or delay <= timedelta(0):
                return
        else:
            self.wake = False
            if delay <= timedelta(0):
                return
        # whole milliseconds, rounded up, so a wake-up never lands a hair before the target
        delay = timedelta(milliseconds=math.ceil(delay.total_seconds() * 1000) + 1)
        try:
            await workflow.wait_condition(lambda: self.wake, timeout=delay)
        except TimeoutError:
            pass
        self.wake = False  # taken: the loop looks at whatever set it now

    # ---- bookkeeping ------------------------------------------------------------------------------
    def event(self, kind: str, detail: str = "") -> Event:
        ev = Event(at=self.now(), kind=kind, detail=detail)
        self.carried.events = [*self.carried.events, ev][-KEEP_EVENTS:]
        return ev

    async def record(self, change: Change) -> None:
        await workflow.execute_activity(
            RECORD,
            change,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RECORD_RETRY,
            summary=f"record {change.decision or (change.mode.value if change.mode else 'progress')}",
        )

    def change(self, **fields: object) -> Change:
        return Change(account_id=self.terms.account_id, at=self.now(), **fields)  # type: ignore[arg-type]

    def trim(self) -> None:
        horizon = self.now() - timedelta(days=KEEP_LEDGER_DAYS)
        self.carried.ledger = [e for e in self.carried.ledger if e.at >= horizon]
        self.carried.holds = [h for h in self.carried.holds if h.until is None or h.until > self.now()]

    def hold_label(self) -> str:
        kinds = sorted({h.kind.value for h in self.carried.holds if h.until is None or h.until > self.now()})
        return ",".join(kinds) if kinds else "none"

    def upsert_common(self, **extra: object) -> None:
        updates = [
            search.MODE.value_set(self.mode.value),
            search.BALANCE.value_set(self.carried.balance),
            search.HOLD.value_set(self.hold_label()),
            search.JURISDICTION.value_set(self.terms.profile),
        ]
        if self.next_at is not None:
            updates.append(search.NEXT_CONTACT.value_set(self.next_at))
        else:
            updates.append(search.NEXT_CONTACT.value_unset())
        workflow.upsert_search_attributes(updates + list(extra.values()))  # type: ignore[arg-type]

    def set_details(self, line: str) -> None:
        zone_note = self.terms.zones[0]
        workflow.set_current_details(
            f"**{self.mode.value}** · {format_minor(self.carried.balance, self.terms.currency)} · "
            f"debtor {self.terms.masked_phone} ({zone_note})\n\n{line}"
        )

    def status_view(self, plan: AgreedPlan | None = None, plan_paid: int = 0) -> AccountStatus:
        now = self.now()
        dpd = dpd_at(now, self.terms)
        return AccountStatus(
            account_id=self.terms.account_id,
            mode=self.mode,
            stage=self.policy.stage_for(dpd, self.terms.product),
            dpd=dpd,
            currency=self.terms.currency,
            balance=self.carried.balance,
            paid_total=self.carried.paid_total,
            holds=[
                f"{h.kind.value}:{h.channel.value}" if h.channel else h.kind.value
                for h in self.carried.holds
                if h.until is None or h.until > now
            ],
            complaint_due=self.carried.complaint_due,
            complaint_escalated=self.carried.complaint_escalated,
            opted_out=[c.value for c in self.carried.opted_out],
            unreachable=[c.value for c in self.carried.unreachable],
            contact_lost=self.carried.contact_lost,
            next_action=self.next_label,
            next_action_at=self.next_at,
            last_contacts=[
                ContactView(at=c.at, channel=c.channel.value, template=c.template, outcome=c.outcome.value)
                for c in self.carried.last_contacts
            ],
            plan=plan,
            plan_paid=plan_paid,
            masked_phone=self.terms.masked_phone,
            policy_now=now,
        )

    @workflow.query
    def history(self) -> list[dict[str, str]]:
        return [{"at": e.at.isoformat(), "kind": e.kind, "detail": e.detail} for e in self.carried.events]

    # ---- contacts ---------------------------------------------------------------------------------
    async def contact(
        self,
        *,
        key: str,
        channel: Channel,
        purpose: Purpose,
        template: str,
        context: dict[str, str] | None = None,
        audience: Audience = Audience.DEBTOR,
    ) -> SendResult | None:
        """Plan-time gate, then the send activity (which gates again against live state).

        Returns None when the contact was cancelled because a plan or payment stopped contact.
        ``audience=THIRD_PARTY``: to the emergency contact (workflows/locate.py), with its own ledger.
        """
        contact = PlannedContact(
            channel=channel, purpose=purpose, template=template, at=self.now(), audience=audience
        )
        third_party = audience == Audience.THIRD_PARTY
        verdict = decide(
            contact,
            third_party_gate_state(self.terms, self.carried, self.mode)
            if third_party
            else gate_state(self.terms, self.carried, self.mode),
            self.carried.locate_ledger if third_party else self.carried.ledger,
            self.now(),
            self.profile,
        )
        if isinstance(verdict, Deny):
            self.event("contact_denied", f"{template} by {channel.value}: {verdict.rule}")
            await self.record(
                self.change(
                    decision="denied",
                    rule=verdict.rule,
                    events=[
                        Event(
                            at=self.now(), kind="contact_denied", detail=f"{key} {channel.value} {template}"
                        )
                    ],
                )
            )
            return SendResult(outcome=ContactOutcome.DENIED, rule=verdict.rule)
        if isinstance(verdict, Defer):
            return SendResult(outcome=ContactOutcome.DENIED, rule=verdict.rule, deferred_until=verdict.until)
        request = SendRequest(
            dedupe_key=f"{self.terms.account_id}/{key}",
            account_id=self.terms.account_id,
            channel=channel,
            purpose=purpose,
            template=template,
            language=self.terms.language,
            profile=self.terms.profile,
            clock=self.carried.clock,
            planned_at=self.now(),
            context=(context or {})
            if third_party  # nothing about the debt, not even in the request
            else {"amount": format_minor(self.carried.balance, self.terms.currency), **(context or {})},
            audience=audience,
        )
        to = f"emergency contact {self.terms.emergency_masked}" if third_party else self.terms.masked_phone
        summary = f"{channel.value.upper()} {template.replace('_', ' ')}, {self.mode.value}, {to}"
        self.contact_channel, self.contact_purpose = channel, purpose
        self.contact_task = asyncio.ensure_future(
            workflow.execute_activity(
                SEND_CONTACT,
                request,
                task_queue=self.carried.contact_queue,
                start_to_close_timeout=SEND_ATTEMPT_TIMEOUT,
                heartbeat_timeout=timedelta(seconds=20),
                retry_policy=SEND_RETRY,
                cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                summary=summary,
                result_type=SendResult,
            )
        )
        try:
            result = await self.contact_task
        except ActivityError as err:
            # withdrawn at our request: the activity reports it as cancelled, or as its own
            # "Cancelled" error when it noticed while waiting for its send slot
            withdrawn = self.cancelling_contacts and workflow.patched(STALE_REMINDER_PATCH)
            if isinstance(err.cause, CancelledError) or self.stop_contacts or withdrawn:
                self.event("contact_cancelled", f"{template} by {channel.value}")
                return None
            self.event("contact_failed", f"{template} by {channel.value}: {err.cause or err}")
            return SendResult(outcome=ContactOutcome.FAILED, rule="provider.error")
        except asyncio.CancelledError:
            # cancelled by this workflow (a plan, payment or hold landed) before the activity was even
            # scheduled: nothing went out. A cancellation of the whole run still propagates.
            if not self.cancelling_contacts:
                raise
            self.event("contact_cancelled", f"{template} by {channel.value}")
            return None
        finally:
            self.contact_task = None
            self.cancelling_contacts = False
            self.contact_ended_at = workflow.now()
        if result.deferred_until is not None:
            self.deferred[key] = result.deferred_until
            return result
        if result.outcome == ContactOutcome.SENT and result.provider_sid and not self.stop_contacts:
            result = await self.await_outcome(request, result)
        return result

    async def await_outcome(self, request: SendRequest, sent: SendResult) -> SendResult:
        """Wait for the provider's final word (webhook signal or polling), cancellable like a send."""
        assert sent.provider_sid is not None
        self.outcome_task = asyncio.ensure_future(
            workflow.execute_activity(
                AWAIT_OUTCOME,
                OutcomeRequest(
                    dedupe_key=request.dedupe_key, provider_sid=sent.provider_sid, channel=request.channel
                ),
                start_to_close_timeout=timedelta(minutes=5),
                heartbeat_timeout=timedelta(seconds=20),
                retry_policy=RetryPolicy(maximum_attempts=3),
                cancellation_type=workflow.ActivityCancellationType.TRY_CANCEL,
                summary=f"await {request.channel.value} outcome",
                result_type=SendResult,
            )
        )
        try:
            return await self.outcome_task
        except ActivityError:
            return sent
        except asyncio.CancelledError:
            if not self.cancelling_contacts:
                raise
            return sent
        finally:
            self.outcome_task = None
            self.cancelling_contacts = False
            self.contact_ended_at = workflow.now()

    def note_contact(self, key: str, channel: Channel, template: str, result: SendResult) -> None:
        if result.outcome == ContactOutcome.DENIED:
            return
        at = self.now()
        self.carried.ledger = [
            *self.carried.ledger,
            LedgerEntry(at=at, channel=channel, outcome=result.outcome),
        ]
        record = ContactRecord(
            at=at,
            channel=channel,
            template=template,
            outcome=result.outcome,
            step=key,
            provider_sid=result.provider_sid,
        )
        self.carried.last_contacts = [*self.carried.last_contacts, record][-KEEP_CONTACTS:]

    async def apply_channel_outcome(self, channel: Channel, outcome: ContactOutcome) -> bool:
        """Mark a channel unreachable or opted out; True if the account lost every channel."""
        if outcome == ContactOutcome.UNDELIVERABLE and channel not in self.carried.unreachable:
            self.carried.unreachable = [*self.carried.unreachable, channel]
            self.event("channel_unreachable", channel.value)
            await self.record(
                self.change(channel_status=(channel, "unreachable"), decision="channel_unreachable")
            )
        elif outcome == ContactOutcome.OPTED_OUT and channel not in self.carried.opted_out:
            self.carried.opted_out = [*self.carried.opted_out, channel]
            self.event("opted_out", channel.value)
            await self.record(self.change(channel_status=(channel, "opted_out"), decision="opted_out"))
        if not usable_channels(self.carried) and not self.carried.contact_lost:
            self.carried.contact_lost = True
            self.event("contact_lost", "every channel failed or is opted out")
            await self.record(self.change(decision="contact_lost"))
            return True
        return False

    def cancel_contacts(self) -> None:
        for task in (self.contact_task, self.outcome_task):
            if task is not None and not task.done():
                self.cancelling_contacts = True
                task.cancel()

    def contacts_quiet(self) -> bool:
        """Nothing this run started can still reach the debtor, not even a straggling attempt.

        No send or outcome wait is open, and the last one ended longer ago than a send attempt may
        live (its start-to-close timeout: past it the worker cancels the attempt, and the attempt
        checks for cancellation right before the provider call). Continued runs count from their
        start, since the previous run's last send may have ended just before.
        """
        if self.contact_task is not None or self.outcome_task is not None:
            return False
        since = self.contact_ended_at or workflow.info().start_time
        return workflow.now() - since >= SEND_ATTEMPT_TIMEOUT  # workflow time: attempts live in real time

    def reminder_waiting(self) -> bool:
        """A dunning send is scheduled or running and has not answered yet."""
        task = self.contact_task
        return task is not None and not task.done() and self.contact_purpose == Purpose.DUNNING

    def cancel_stale_reminder(self) -> None:
        """A part payment landed while a reminder waits to go out (a sender backlog, a slow gate).

        The reminder quotes the balance from before the payment, and while it waits the run cannot
        record the payment, so the account would show the old figure too. Cancel it: what has not
        reached the provider yet is withdrawn, the step is not spent, and the loop records the payment
        and sends the step again with the new balance. A send already at the provider finishes as
        usual (the call's outcome wait is left alone: the governor needs it).
        """
        self.cancelling_contacts = True
        assert self.contact_task is not None
        self.contact_task.cancel()

    def cancel_collection(self, channel: Channel | None = None) -> None:
        """Cancel an in-flight send if it chases the debt (on ``channel``, or any); an answer to the
        debtor (receipt, acknowledgement) goes on."""
        if self.contact_purpose in TRANSACTIONAL:
            return
        if channel is None or self.contact_channel == channel:
            self.cancel_contacts()

    async def contacts_settled(self) -> None:
        """Wait until no send is in flight: after this, nothing already started can still go out."""
        self.cancel_contacts()
        await workflow.wait_condition(lambda: self.contact_task is None and self.outcome_task is None)

    # ---- payments ---------------------------------------------------------------------------------
    async def take_payments(self) -> int:
        """Record queued payments once each; returns the amount newly applied."""
        applied = 0
        while self.pending_payments:
            payment = self.pending_payments.pop(0)
            record = PaymentRecord(
                amount=payment.amount,
                currency=payment.currency,
                reference=payment.reference,
                received_at=self.now(),
                source=payment.source,
            )
            self.carried.balance -= payment.amount
            self.carried.paid_total += payment.amount
            applied += payment.amount
            self.event("payment", f"{format_minor(payment.amount, payment.currency)} ref {payment.reference}")
            await self.record(
                self.change(
                    payment=record,
                    balance=self.carried.balance,
                    paid_total=self.carried.paid_total,
                    decision="payment",
                )
            )
        return applied

    async def drain_payments(self) -> int:
        """Apply every payment already received before this run hands over by continue-as-new.

        A new run starts with an empty queue, so a payment signalled while the run was deciding to
        hand over (to settlement, back to dunning, or into a fresh history) would otherwise be lost.
        Returns the amount applied; with nothing queued it issues no command (replay-safe).
        """
        applied = 0
        while True:
            await workflow.wait_condition(workflow.all_handlers_finished)
            if not self.pending_payments:
                return applied
            applied += await self.take_payments()

    async def send_once(
        self,
        key: str,
        purpose: Purpose,
        template: str,
        context: dict[str, str] | None = None,
        max_wait: timedelta = timedelta(days=2),
    ) -> None:
        """A transactional text (receipt, confirmation): waits for a lawful hour, never goes twice."""
        deadline = self.now() + max_wait
        while True:
            result = await self.contact(
                key=key, channel=Channel.SMS, purpose=purpose, template=template, context=context
            )
            if result is None or result.deferred_until is None or result.deferred_until > deadline:
                if result is not None:
                    self.note_contact(key, Channel.SMS, template, result)
                return
            await self.sleep_until(result.deferred_until)

    # ---- signals both workflows take ---------------------------------------------------------------
    @workflow.signal
    def payment_received(self, payment: PaymentIn) -> None:
        if payment.currency.upper() != self.terms.currency:
            workflow.logger.warning(
                "payment in %s ignored: account is in %s", payment.currency, self.terms.currency
            )
            return
        if payment.reference in self.seen_references:
            return
        self.seen_references.add(payment.reference)
        self.carried.payment_references = [*self.carried.payment_references, payment.reference]
        self.pending_payments.append(payment)
        pending = sum(p.amount for p in self.pending_payments)
        if pending >= self.carried.balance:
            # paid in full: nothing more may go out, even a send already under way
            self.stop_contacts = True
            self.cancel_contacts()
        elif self.reminder_waiting() and workflow.patched(STALE_REMINDER_PATCH):
            self.cancel_stale_reminder()
        self.wake = True

    @workflow.signal
    def opt_out(self, request: OptOut) -> None:
        if request.channel not in self.carried.opted_out:
            self.carried.opted_out = [*self.carried.opted_out, request.channel]
            self.event("opted_out", f"{request.channel.value} by {request.source}")
            if request.channel == Channel.SMS:
                self.confirm_opt_out = True
        if self.contact_task is not None:
            self.cancel_contacts()
        self.wake = True

    @workflow.signal
    def contact_updated(self, update: ContactUpdate) -> None:
        self.terms = self.terms.model_copy(
            update={"masked_phone": update.masked_phone, "zones": list(update.zones), "region": update.region}
        )
        self.carried.unreachable = []
        self.carried.contact_lost = False
        self.event("contact_updated", update.masked_phone)
        self.wake = True

    @workflow.signal
    def contact_outcome(self, report: OutcomeReport) -> None:
        self.pending_reports.append(report)
        self.wake = True

    async def take_reports(self) -> None:
        """Late provider callbacks (delivery receipts, call results) that arrived as signals."""
        while self.pending_reports:
            report = self.pending_reports.pop(0)
            key = report.dedupe_key.split("/", 1)[-1]
            for i, rec in enumerate(self.carried.last_contacts):
                if rec.step == key and rec.outcome not in FINAL_OUTCOMES:
                    self.carried.last_contacts[i] = rec.model_copy(update={"outcome": report.outcome})
                    await self.apply_channel_outcome(rec.channel, report.outcome)

    async def take_opt_out_confirmation(self) -> None:
        if self.confirm_opt_out:
            self.confirm_opt_out = False
            await self.record(self.change(channel_status=(Channel.SMS, "opted_out"), decision="opted_out"))
            await self.send_once(
                "opt-out-confirmation/sms", Purpose.OPT_OUT_CONFIRMATION, "opt_out_confirmation"
            )

    def add_hold(
        self, kind: HoldKind, reason: str, until: datetime | None = None, channel: Channel | None = None
    ) -> Hold:
        hold = Hold(kind=kind, reason=reason, since=self.now(), until=until, channel=channel)
        self.carried.holds = [h for h in self.carried.holds if (h.kind, h.channel) != (kind, channel)] + [
            hold
        ]
        return hold

    def lift(self, kind: HoldKind) -> bool:
        before = len(self.carried.holds)
        self.carried.holds = [h for h in self.carried.holds if h.kind != kind]
        return len(self.carried.holds) != before

    # ---- complaints, disputes, cease (the contact gate's holds, set by the debtor or an agent) -----
    @workflow.signal
    async def complaint_filed(self, complaint: ComplaintIn) -> None:
        """Contact stops at once (a send in flight is cancelled) until an investigator decides."""
        self.carried.complaints += 1
        days = complaint.sla_days or COMPLAINT_SLA_DAYS
        self.carried.complaint_due = self.now() + timedelta(days=days)
        self.carried.complaint_escalated = False
        hold = self.add_hold(HoldKind.COMPLAINT, f"complaint #{self.carried.complaints} ({complaint.source})")
        self.cancel_collection()
        ev = self.event(
            "complaint_filed",
            f"#{self.carried.complaints} from {complaint.source}; decision due {self.carried.complaint_due:%Y-%m-%d}",
        )
        self.pending_acks.append((f"complaint/{self.carried.complaints}/ack", "complaint_ack"))
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
    async def close(self, request: CloseRequest) -> None:
        """An operator closes the account: written off, or the debtor died or went bankrupt.

        Deceased and bankrupt stop every contact at once (total holds), final messages included.
        """
        if self.close_requested is not None or (
            self.mode == Mode.CLOSED and self.carried.placed_with is None
        ):
            return
        reason = CloseReason(request.reason)
        total = {CloseReason.DECEASED: HoldKind.DECEASED, CloseReason.BANKRUPT: HoldKind.BANKRUPTCY}.get(
            reason
        )
        self.close_note = f"{reason.value}: {request.note}" if request.note else reason.value
        self.close_requested = reason
        self.wake = True
        if total is not None:
            hold = self.add_hold(total, request.note or reason.value)
            self.cancel_contacts()
            ev = self.event("hold", f"{total.value}: every contact stops")
            await self.record(
                self.change(hold_added=hold, decision=total.value, events=[ev], actor=request.actor)
            )

    @workflow.signal
    async def complaint_resolved(self, decision: ComplaintDecision) -> None:
        if not self.lift(HoldKind.COMPLAINT):
            return  # no open complaint: a duplicate decision changes nothing
        self.carried.complaint_due = None
        ev = self.event("complaint_resolved", f"{decision.decision}: {decision.note[:200]}")
        if decision.decision == "close":
            self.close_requested = CloseReason.COMPLAINT_UPHELD
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
    async def dispute_filed(self, dispute: DisputeIn) -> None:
        """A disputed debt is not collected until it is verified (FDCPA §809(b))."""
        self.carried.disputes += 1
        hold = self.add_hold(HoldKind.DISPUTE, f"dispute #{self.carried.disputes}")
        self.cancel_collection()
        ev = self.event("dispute_filed", f"#{self.carried.disputes}")
        self.pending_acks.append((f"dispute/{self.carried.disputes}/ack", "dispute_ack"))
        self.wake = True
        await self.record(
            self.change(hold_added=hold, decision="dispute_filed", events=[ev], actor=dispute.actor)
        )

    @workflow.signal
    async def dispute_verified(self, verified: DisputeVerified) -> None:
        if not self.lift(HoldKind.DISPUTE):
            return
        ev = self.event("dispute_verified", verified.note[:200])
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
            self.pending_acks.append((f"cease/{what}/ack", "cease_ack"))
        self.wake = True
        await self.record(
            self.change(hold_added=hold, decision="cease_requested", events=[ev], actor=request.actor)
        )

    async def take_acknowledgements(self) -> None:
        """Answer each complaint/dispute/cease once, at a lawful hour; then check the complaint SLA."""
        while self.pending_acks:
            key, template = self.pending_acks.pop(0)
            await self.send_once(key, Purpose.ACKNOWLEDGEMENT, template)
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

    def bounded(self, at: datetime) -> datetime:
        """Wake no later than the open complaint's deadline, so a missed SLA is noticed on time."""
        due = self.carried.complaint_due
        if due is not None and not self.carried.complaint_escalated:
            return min(at, due)
        return at

    async def close_account(self, reason: CloseReason, detail: str) -> RunResult:
        """Close for a reason other than payment or charge-off (complaint upheld, write-off …)."""
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
        self.mode = Mode.CLOSED
        self.next_at = None
        self.upsert_common()
        self.set_details(f"closed: {detail}")
        final = FINAL_MESSAGES.get(reason)  # none where the law forbids it (bankrupt, deceased)
        if final is not None:
            await self.send_once(f"closed/{reason.value}", Purpose.RECEIPT, final)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return RunResult(
            account_id=self.terms.account_id,
            state=f"closed_{reason.value}",
            balance=self.carried.balance,
            paid_total=self.carried.paid_total,
            at=self.now(),
        )
