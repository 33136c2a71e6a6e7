"""FieldVisitWorkflow: one field visit, a child of the account's workflow.

Workflow ID ``account-<id>-visit-<n>``. It picks the agency (an activity reading the agencies' data
and load), announces the visit to the debtor by SMS with the date and window (through the same send
activity and live contact gate as every other text: quiet hours, caps, holds, opt-outs), and then
waits for one of:

* the agency's report (``report`` signal, sent by the agency API once the report is valid: the
  recording reference is required);
* the debtor proposing another day (``reschedule``), taken within the policy's limits and announced again;
* a cancellation (``cancel``): the debtor asked for a plan instead, a hold or complaint landed, the
  account was charged off;
* the report deadline passing: the visit is escalated to a supervisor (audit line) and ends.

It returns a :class:`VisitResult` to the account workflow, which acts on the outcome (a promise to
pay becomes a plan, a plan request a negotiation hold).
"""

from __future__ import annotations

import asyncio
import math
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel, ConfigDict, Field

    from domain.accounts import AccountTerms, Channel, ContactOutcome
    from domain.clock import PolicyClock
    from domain.effects import SEND_CONTACT, SendRequest, SendResult
    from domain.gate import Purpose
    from domain.policy import load_policy
    from domain.profiles import Profile, load_profile
    from domain.visits import (
        VISIT_ASSIGN,
        VISIT_UPDATE,
        Assigned,
        AssignRequest,
        RescheduleRequest,
        VisitCancel,
        VisitOutcome,
        VisitPolicy,
        VisitReport,
        VisitResult,
        VisitSlot,
        VisitUpdate,
        check_reschedule,
        slot_on,
    )

DB_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))
SEND_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    maximum_interval=timedelta(minutes=5),
    maximum_attempts=8,
    non_retryable_error_types=["ConfigurationError"],
)
#: An announcement waiting to go out is withdrawn when the visit is called off (runs before: it went).
WITHDRAW_PATCH = "visit-announcement-withdrawable"
# The announcement must reach the debtor at least this long before the window opens, or no visit.
MIN_NOTICE = timedelta(days=1)


class VisitInput(BaseModel):
    model_config = ConfigDict(frozen=True)

    visit_id: str
    terms: AccountTerms
    clock: PolicyClock
    slot: VisitSlot
    contact_queue: str = "collections-contact"
    visits: VisitPolicy | None = Field(default=None, description="The parent's pinned visit rules")
    profile: Profile | None = Field(default=None, description="The parent's pinned profile")


def visit_workflow_id(account_id: str, seq: int) -> str:
    return f"account-{account_id}-visit-{seq}"


@workflow.defn
class FieldVisitWorkflow:
    @workflow.init
    def __init__(self, start: VisitInput) -> None:
        self.start = start
        self.terms = start.terms
        # the rules the parent runs; visits started before rules were pinned read the files
        self.policy = start.visits or load_policy(start.terms.policy).visits
        self.profile = start.profile or load_profile(start.terms.profile)
        self.slot = start.slot
        self.report: VisitReport | None = None
        self.cancel_reason: str | None = None
        self.reschedule_to: RescheduleRequest | None = None
        self.reschedules = 0
        self.announcements = 0
        self.status = "scheduled"
        self.agency: Assigned | None = None
        self.sending: asyncio.Future[SendResult] | None = None  # the announcement under way

    # ---- time -------------------------------------------------------------------------------------
    def now(self) -> datetime:
        return self.start.clock.policy_now(workflow.now())

    async def wait_until(self, at: datetime) -> bool:
        """Sleep until ``at`` (policy time) or until a signal arrives; True if a signal woke us."""
        delay = self.start.clock.real_delay(self.now(), at)
        if delay <= timedelta(0):
            return self.signalled()
        delay = timedelta(milliseconds=math.ceil(delay.total_seconds() * 1000) + 1)
        try:
            await workflow.wait_condition(self.signalled, timeout=delay)
            return True
        except TimeoutError:
            return False

    def signalled(self) -> bool:
        return self.report is not None or self.cancel_reason is not None or self.reschedule_to is not None

    # ---- the run ----------------------------------------------------------------------------------
    @workflow.run
    async def run(self, start: VisitInput) -> VisitResult:
        self.agency = await workflow.execute_activity(
            VISIT_ASSIGN,
            AssignRequest(
                visit_id=start.visit_id,
                account_id=self.terms.account_id,
                region=self.terms.region,
                country=self.terms.profile,
                window_start=self.slot.start,
                window_end=self.slot.end,
                report_due=self.report_due(),
                at=self.now(),
            ),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=DB_RETRY,
            result_type=Assigned,
            summary="assign a field agency",
        )
        if self.agency.agency_id is None:
            return VisitResult(
                visit_id=start.visit_id, status="unassigned", reason="visits.no_agency_capacity"
            )
        workflow.set_current_details(self.details())

        refused = await self.announce()
        if refused is not None:
            return await self.end("cancelled", refused)
        while True:
            if self.cancel_reason is not None:
                return await self.end("cancelled", self.cancel_reason)
            if self.report is not None:
                return await self.take_report(self.report)
            if self.reschedule_to is not None:
                refused = await self.take_reschedule(self.reschedule_to)
                if refused is not None:
                    return await self.end("cancelled", refused)
                continue
            if self.now() >= self.report_due():
                return await self.escalate()
            await self.wait_until(self.report_due())

    def report_due(self) -> datetime:
        return self.slot.end + timedelta(days=self.policy.report_days)

    def details(self) -> str:
        agency = self.agency.agency_name if self.agency else "-"
        return (
            f"**field visit** {self.status} · {agency} · {self.slot.day} "
            f"{self.slot.start:%H:%M}-{self.slot.end:%H:%M} · debtor {self.terms.masked_phone}"
        )

    async def update(self, action: str, detail: str = "", **fields: object) -> None:
        await workflow.execute_activity(
            VISIT_UPDATE,
            VisitUpdate(
                visit_id=self.start.visit_id,
                account_id=self.terms.account_id,
                at=self.now(),
                action=action,
                detail=detail,
                **fields,  # type: ignore[arg-type]
            ),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=DB_RETRY,
            summary=f"visit {action}",
        )

    async def announce(self) -> str | None:
        """Text the debtor the date and window, at a lawful moment; a refusal reason if it cannot go."""
        assert self.agency is not None
        self.announcements += 1
        key = f"{self.start.visit_id}/announce-{self.announcements}"
        latest = self.slot.start - MIN_NOTICE
        while True:
            if self.cancel_reason is not None:
                return self.cancel_reason
            if self.now() > latest:
                return "visits.not_announced_in_time"
            result = await self.send_withdrawable(key)
            if result is None:
                return self.cancel_reason or "visits.cancelled"
            if result.deferred_until is not None:
                if result.deferred_until > latest:
                    return "visits.not_announced_in_time"
                await self.wait_until(result.deferred_until)
                continue
            if result.outcome in (ContactOutcome.DENIED, ContactOutcome.FAILED, ContactOutcome.UNDELIVERABLE):
                return result.rule or f"announcement.{result.outcome.value}"
            break
        self.status = "announced"
        workflow.set_current_details(self.details())
        await self.update(
            "visit_announced",
            f"{self.agency.agency_id} on {self.slot.day} {self.slot.start:%H:%M}-{self.slot.end:%H:%M}",
            status="announced",
        )
        return None

    async def send_withdrawable(self, key: str) -> SendResult | None:
        """The announcement, withdrawn (None) if the visit is called off while it waits to go out:
        a debt paid a moment ago must not be told that a visitor is coming."""
        if not workflow.patched(WITHDRAW_PATCH):
            return await self.send(key)
        self.sending = asyncio.ensure_future(self.send(key, withdrawable=True))
        try:
            return await self.sending
        except asyncio.CancelledError:
            return None
        finally:
            self.sending = None

    async def send(self, key: str, *, withdrawable: bool = False) -> SendResult:
        assert self.agency is not None
        request = SendRequest(
            dedupe_key=key,
            account_id=self.terms.account_id,
            channel=Channel.SMS,
            purpose=Purpose.DUNNING,
            template="visit_announcement",
            language=self.terms.language,
            profile=self.terms.profile,
            clock=self.start.clock,
            planned_at=self.now(),
            context={
                "agency_name": self.agency.agency_name,
                "visit_date": self.slot.day.isoformat(),
                "visit_window": f"{self.slot.start:%H:%M}-{self.slot.end:%H:%M}",
            },
        )
        try:
            return await workflow.execute_activity(
                SEND_CONTACT,
                request,
                task_queue=self.start.contact_queue,
                start_to_close_timeout=timedelta(seconds=60),
                heartbeat_timeout=timedelta(seconds=20),
                retry_policy=SEND_RETRY,
                result_type=SendResult,
                summary=f"SMS visit announcement, {self.terms.masked_phone}",
                # withdrawable: wait for the attempt to say whether it went before taking it as withdrawn
                cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED
                if withdrawable
                else workflow.ActivityCancellationType.TRY_CANCEL,
            )
        except ActivityError as err:
            cause = err.cause
            if withdrawable and (
                isinstance(cause, CancelledError)
                or (isinstance(cause, ApplicationError) and cause.type == "Cancelled")
            ):
                raise asyncio.CancelledError() from err
            return SendResult(outcome=ContactOutcome.FAILED, rule=f"provider.error: {err.cause or err}"[:64])

    async def take_reschedule(self, request: RescheduleRequest) -> str | None:
        self.reschedule_to = None
        zone = self.terms.zones[0]
        refused = check_reschedule(
            request.day, now=self.now(), zone=zone, policy=self.policy, reschedules=self.reschedules
        )
        if refused is not None:
            await self.update("visit_reschedule_refused", f"{request.day}", rule=refused, actor=request.actor)
            return None
        self.reschedules += 1
        self.slot = slot_on(request.day, zone, self.policy, self.profile)
        await self.update(
            "visit_rescheduled",
            f"to {self.slot.day} {self.slot.start:%H:%M}-{self.slot.end:%H:%M}",
            actor=request.actor,
            window_start=self.slot.start,
            window_end=self.slot.end,
            report_due=self.report_due(),
            reschedules=self.reschedules,
        )
        return await self.announce()

    async def take_report(self, report: VisitReport) -> VisitResult:
        self.status = "reported"
        await self.update(
            "visit_reported",
            report.outcome.value,
            actor=f"agency:{self.agency.agency_id if self.agency else '-'}",
            status="reported",
            outcome=report.outcome,
            recording_ref=report.recording_ref,
            notes=report.notes or None,
        )
        return VisitResult(
            visit_id=self.start.visit_id,
            status="reported",
            agency_id=self.agency.agency_id if self.agency else None,
            report=report,
        )

    async def escalate(self) -> VisitResult:
        self.status = "escalated"
        await self.update(
            "visit_report_overdue",
            f"no report from {self.agency.agency_id if self.agency else '-'} by {self.report_due():%Y-%m-%d %H:%M}; "
            "escalated to a supervisor",
            rule="visits.report_deadline",
            status="escalated",
        )
        return VisitResult(
            visit_id=self.start.visit_id,
            status="escalated",
            agency_id=self.agency.agency_id if self.agency else None,
            reason="visits.report_deadline",
        )

    async def end(self, status: str, reason: str) -> VisitResult:
        self.status = status
        await self.update(
            f"visit_{status}", reason, status=status, cancel_reason=reason[:64], rule=reason[:128]
        )
        return VisitResult(
            visit_id=self.start.visit_id,
            status=status,
            agency_id=self.agency.agency_id if self.agency else None,
            reason=reason,
        )

    # ---- signals ----------------------------------------------------------------------------------
    @workflow.signal
    def report_received(self, report: VisitReport) -> None:
        if self.report is None and self.cancel_reason is None:
            self.report = report

    @workflow.signal
    def reschedule(self, request: RescheduleRequest) -> None:
        if self.report is None:
            self.reschedule_to = request

    @workflow.signal
    def cancel(self, request: VisitCancel) -> None:
        if self.report is None and self.cancel_reason is None:
            self.cancel_reason = request.reason
            if self.sending is not None and not self.sending.done():
                self.sending.cancel()  # the announcement has not gone: withdraw it

    @workflow.query
    def state(self) -> dict[str, str]:
        return {
            "status": self.status,
            "agency": self.agency.agency_id if self.agency and self.agency.agency_id else "",
            "day": self.slot.day.isoformat(),
            "window": f"{self.slot.start:%H:%M}-{self.slot.end:%H:%M}",
        }


__all__ = ["FieldVisitWorkflow", "VisitInput", "VisitOutcome", "visit_workflow_id"]
