"""Reaching the debtor from a workflow: the plan-time gate, the send activity, its outcome, and withdrawal.

Every text and call of both account workflows goes through :meth:`Contacts.contact`: the contact gate
decides on the run's view first, then the send activity decides again against the live database
right before it calls the provider. A send this run started can be withdrawn (a plan, payment or
hold landed), and nothing is handed over while one is in flight.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, CancelledError

from workflows import patches

with workflow.unsafe.imports_passed_through():
    from domain.accounts import Channel, ContactOutcome, ContactRecord, Event, LedgerEntry, Mode
    from domain.cadence import gate_state, third_party_gate_state, usable_channels
    from domain.effects import AWAIT_OUTCOME, SEND_CONTACT, OutcomeRequest, SendRequest, SendResult
    from domain.gate import TRANSACTIONAL, Allow, Audience, Defer, Deny, PlannedContact, Purpose, decide
    from domain.money import format_minor
    from workflows.base import KEEP_CONTACTS, AccountCore, AccountInput

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

#: The longest a send attempt may run (start-to-close); see :meth:`Contacts.contacts_quiet`.
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
STALE_REMINDER_PATCH = patches.STALE_REMINDER
#: ... and any other message still waiting, which is then decided again after the payment is recorded.
PAYMENTS_FIRST_PATCH = patches.PAYMENTS_FIRST
#: The lean send: the send activity also waits for the final status while its try has time left, so
#: one contact is one activity, not two (issue 18). A call still going on by then (a conversation
#: lasts minutes) or a status that is late is waited for by ``await_outcome``, as before.
LEAN_SEND_PATCH = patches.LEAN_SEND
#: How long the send activity may wait for the provider's final word (bounded by its start-to-close).
#: A text's delivery report comes in seconds; a call's final status only after the conversation, so
#: a call usually leaves it to ``await_outcome``. Short, because the wait holds a contact-queue slot.
FINAL_WAIT_SECONDS = 15.0


class Contacts(AccountCore):
    """Sends and their outcomes; mixed into both account workflows through :class:`AccountWorkflow`."""

    def _setup(self, start: AccountInput, mode: Mode) -> None:
        super()._setup(start, mode)
        self.contact_task: asyncio.Task[SendResult] | None = None
        self.outcome_task: asyncio.Task[SendResult] | None = None
        self.cancelling_contacts = False  # this workflow cancelled its own send (not the run's cancel)
        self.contact_channel: Channel | None = None
        self.contact_purpose: Purpose | None = None
        self.contact_template: str | None = None
        self.payment_withdrew = False  # a payment withdrew the message under way: decide it again

    async def contact(
        self,
        *,
        key: str,
        channel: Channel,
        purpose: Purpose,
        template: str,
        context: dict[str, str] | None = None,
        audience: Audience = Audience.DEBTOR,
        fallback: tuple[str, Channel, str] | None = None,
    ) -> SendResult | None:
        """Plan-time gate, then the send activity (which gates again against live state).

        Returns None when the contact was cancelled because a plan or payment stopped contact.
        ``audience=THIRD_PARTY``: to the emergency contact (workflows/locate.py), with its own ledger.
        ``fallback``: a call's step by text, ``(key, channel, template)``; when the plan-time gate
        allows it too, it rides on the call's request and the activity sends it if the campaign's
        governor pauses voice (``result.fallback``, already settled like a send of its own).
        """
        verdict = self.plan_time_verdict(channel, purpose, template, audience)
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
        third_party = audience == Audience.THIRD_PARTY
        backup: SendRequest | None = None
        if fallback is not None:
            fb_key, fb_channel, fb_template = fallback
            if isinstance(self.plan_time_verdict(fb_channel, purpose, fb_template, audience), Allow):
                backup = self.send_request(fb_key, fb_channel, purpose, fb_template, context, audience)
        request = self.send_request(key, channel, purpose, template, context, audience).model_copy(
            update={
                "fallback": backup,
                # empty in runs recorded before ONE_WRITE_PATCH: nothing is noted there
                "changes": self.noted,
            }
        )
        riding, self.noted = self.noted, []
        to = f"emergency contact {self.terms.emergency_masked}" if third_party else self.terms.masked_phone
        summary = f"{channel.value.upper()} {template.replace('_', ' ')}, {self.mode.value}, {to}"
        self.contact_channel, self.contact_purpose, self.contact_template = channel, purpose, template
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
            # the changes that rode on it were written only if the send was reserved: write them
            # again, to be skipped if it was (Change.unless_sent)
            self.noted = [
                c.model_copy(update={"unless_sent": request.dedupe_key}) for c in riding
            ] + self.noted
            # withdrawn at our request: the activity reports it as cancelled, or as its own
            # "Cancelled" error when it noticed while waiting for its send slot
            withdrawn = self.cancelling_contacts and self.patched(STALE_REMINDER_PATCH)
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
            self.noted = riding + self.noted  # never scheduled: nothing of it was written
            self.event("contact_cancelled", f"{template} by {channel.value}")
            return None
        finally:
            self.contact_task = None
            self.cancelling_contacts = False
            self.send_ended()
        if result.fallback is not None and backup is not None:
            settled = await self.settle(backup, fallback[0], result.fallback)  # type: ignore[index]
            result = result.model_copy(update={"fallback": settled})
        return await self.settle(request, key, result)

    async def settle(self, request: SendRequest, key: str, result: SendResult) -> SendResult:
        """What a send's answer leaves to do: note a deferral, or wait for a final status."""
        if result.deferred_until is not None:
            self.state.deferred[key] = result.deferred_until
            return result
        if result.outcome == ContactOutcome.SENT and result.provider_sid and not self.stop_contacts:
            result = await self.await_outcome(request, result)
        return result

    def plan_time_verdict(self, channel: Channel, purpose: Purpose, template: str, audience: Audience):  # type: ignore[no-untyped-def]
        """The contact gate on the run's own view of the account, at this instant."""
        third_party = audience == Audience.THIRD_PARTY
        return decide(
            PlannedContact(
                channel=channel, purpose=purpose, template=template, at=self.now(), audience=audience
            ),
            third_party_gate_state(self.terms, self.carried, self.mode)
            if third_party
            else gate_state(self.terms, self.carried, self.mode),
            self.carried.locate_ledger if third_party else self.carried.ledger,
            self.now(),
            self.profile,
        )

    def grace_context(self) -> dict[str, str]:
        """The grace period's last day, for a text that names it (a policy without grace adds nothing,
        so runs from before issue 15 send what they sent)."""
        grace = self.policy.grace_for(self.terms.product)
        if grace == 0:
            return {}
        return {"grace_until": (self.terms.due_date + timedelta(days=grace)).isoformat()}

    def send_request(
        self,
        key: str,
        channel: Channel,
        purpose: Purpose,
        template: str,
        context: dict[str, str] | None,
        audience: Audience,
    ) -> SendRequest:
        third_party = audience == Audience.THIRD_PARTY
        return SendRequest(
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
            else {
                "amount": format_minor(self.carried.balance, self.terms.currency),
                **self.grace_context(),
                **(context or {}),
            },
            audience=audience,
            profile_version=self.state.rules.profile_version,
            wait_final_seconds=FINAL_WAIT_SECONDS if self.patched(LEAN_SEND_PATCH) else 0.0,
        )

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
            self.send_ended()

    def send_ended(self) -> None:
        """Note when the last send or outcome wait ended, from the ``finally`` that closes it.

        A worker that stops drops the runs it holds, and Python closes their coroutines later, outside
        any workflow's loop: the ``finally`` runs then too, with no clock to read and no run to write to.
        """
        if workflow.in_workflow():
            self.state.last_send_ended = workflow.now()

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

    # ---- withdrawing what is under way ------------------------------------------------------------
    def cancel_contacts(self) -> None:
        for task in (self.contact_task, self.outcome_task):
            if task is not None and not task.done():
                self.cancelling_contacts = True
                task.cancel()

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

    def contacts_quiet(self) -> bool:
        """Nothing any run of this account started can still reach the debtor, not even a straggler.

        No send or outcome wait is open, and the last one ended longer ago than a send attempt may
        live (its start-to-close timeout: past it the worker cancels the attempt, and the attempt
        checks for cancellation right before the provider call). Runs handed the one state know when
        the last send ended; runs recorded before count from their own start.
        """
        if self.contact_task is not None or self.outcome_task is not None:
            return False
        since = self.state.last_send_ended or workflow.info().start_time
        return workflow.now() - since >= SEND_ATTEMPT_TIMEOUT  # workflow time: attempts live in real time

    def reminder_waiting(self) -> bool:
        """A dunning send is scheduled or running and has not answered yet."""
        task = self.contact_task
        return task is not None and not task.done() and self.contact_purpose == Purpose.DUNNING

    def message_waiting(self) -> bool:
        """Any send but a payment's own receipt is scheduled or running and has not answered yet."""
        task = self.contact_task
        return task is not None and not task.done() and self.contact_template != "payment_receipt"

    def cancel_stale_reminder(self) -> None:
        """A part payment landed while a reminder waits to go out (a sender backlog, a slow gate).

        The reminder quotes the balance from before the payment, and while it waits the run cannot
        record the payment, so the account would show the old figure too. Cancel it: what has not
        reached the provider yet is withdrawn, the step is not spent, and the loop records the payment
        and sends the step again with the new balance. A send already at the provider finishes as
        usual (the call's outcome wait is left alone: the governor needs it).
        """
        self.cancelling_contacts = True
        self.payment_withdrew = True
        assert self.contact_task is not None
        self.contact_task.cancel()

    async def send_once(
        self,
        key: str,
        purpose: Purpose,
        template: str,
        context: dict[str, str] | None = None,
        max_wait: timedelta = timedelta(days=2),
        *,
        wanted: Callable[[], str | None] | None = None,
    ) -> bool:
        """A message that goes once (a receipt, a confirmation, a placement letter, a plan reminder):
        it waits for a lawful hour, and never goes twice. True if it went.

        Payments come first. A payment that arrives while the message waits (for a lawful hour, or
        for the sender's pace) is recorded before the message is decided again: ``wanted`` then says
        why it should not go any more (a placement letter once the debt is paid, a plan reminder once
        the instalment is), and the message quotes the balance after the payment, never before it.
        """
        deadline = self.now() + max_wait
        while True:
            if self.state.inbox.payments and self.patched(PAYMENTS_FIRST_PATCH):
                await self.take_payments()
            reason = wanted() if wanted is not None else None
            if reason is not None:
                self.event("message_withdrawn", f"{template}: {reason}")
                return False
            self.payment_withdrew = False
            result = await self.contact(
                key=key, channel=Channel.SMS, purpose=purpose, template=template, context=context
            )
            if result is None:
                if self.payment_withdrew and self.patched(PAYMENTS_FIRST_PATCH):
                    continue  # withdrawn for a payment: record it, then decide again
                return False
            if result.deferred_until is None or result.deferred_until > deadline:
                self.note_contact(key, Channel.SMS, template, result)
                return result.outcome not in (ContactOutcome.DENIED, ContactOutcome.FAILED)
            await self.sleep_until(result.deferred_until)

    def deferred_until(self, key: str, now: datetime) -> datetime | None:
        """When the live gate said a step may go, if that is still ahead."""
        at = self.state.deferred.get(key)
        return at if at is not None and at > now else None
