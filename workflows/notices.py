"""What the debtor is told in answer to a request of theirs, and when (issue 14).

Seeds 001, 003 and 004 are debtors whose complaints went nowhere and whose plan requests were met by
silence, then by reminders. So every request gets a written answer, and each answer is queued in the
inbox as an :class:`~workflows.state.Ack`: the run sends what the inbox holds before it takes any
next step (:meth:`AccountWorkflow.take_inbox`), so no reminder or call can overtake it.

* A complaint's or dispute's acknowledgement names the case (when the service gave one) and the
  deadline: the complaint's decision date in the debtor's own calendar; for a dispute, that nothing
  is collected until the findings are sent.
* The decision (complaint) or the findings (dispute) go out when the hold is lifted, before
  collection resumes, with the jurisdiction's complaint route from the account's pinned profile
  (``[complaint_channel]``: the authority in the debtor's language, and its contact).
* A plan request is answered: declined (why), or escalated (by when a supervisor answers); left
  unanswered until its pause is over, the debtor is told it went to a supervisor before anything
  else reaches them. An agreed plan answers it too (``plan_confirmation``).

Every one is a transactional text (``Purpose.ACKNOWLEDGEMENT``): the contact gate lets it through a
hold that stops collection and does not count it against a frequency cap, but it waits for the
debtor's convenient hours like everything else, and a total hold (bankrupt, deceased, attorney)
or an opt-out of texts stops it.
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

from workflows import patches

with workflow.unsafe.imports_passed_through():
    from domain.accounts import HoldKind, Mode
    from domain.cadence import local_date
    from workflows.contacts import Contacts
    from workflows.messages import ReplyOut
    from workflows.state import Ack, PlanRequest

#: Every notice of issue 14 (generation 3): runs recorded before it replay as they were.
NOTICES_PATCH = patches.NOTICES

#: The template of a complaint's decision, by the investigator's decision.
DECISION_TEMPLATES = {
    "upheld": "complaint_upheld",
    "rejected": "complaint_rejected",
    "close": "complaint_closed",
    "resume": "complaint_decision",
}
#: A decision's template when the profile names no complaint route: the same text, pointing to the
#: lender's own number instead of an authority it does not have.
NO_ROUTE = {
    "complaint_upheld": "complaint_upheld_no_route",
    "complaint_rejected": "complaint_rejected_no_route",
    "complaint_closed": "complaint_closed_no_route",
    "complaint_decision": "complaint_decision_no_route",
    "dispute_findings": "dispute_findings_no_route",
}


class Notices(Contacts):
    """Which text answers which request, with what it quotes; mixed into both account workflows."""

    def tell(self, key: str, template: str, context: dict[str, str] | None = None) -> None:
        """Queue one notice: sent once (``key``), before the run's next step."""
        self.state.inbox.acks.append(Ack(key=key, template=template, context=context or {}))

    @workflow.signal
    def reply_to_debtor(self, reply: ReplyOut) -> None:
        """An agent answers a debtor's message from the inbox: one text per reply, sent once, before the
        run's next step, at a lawful hour like every other text (an opt-out or a total hold stops it)."""
        if self.mode == Mode.CLOSED and self.carried.placed_with is None:
            return
        if self.patched(NOTICES_PATCH):
            self.tell(f"reply/{reply.case_id}/{reply.seq}", "agent_reply", {"reason": reply.text})
            self.wake = True

    def local_day(self, at: datetime) -> str:
        """A deadline as the debtor reads it: the date in their home zone."""
        return local_date(at, self.terms).isoformat()

    def routed(self, template: str) -> tuple[str, dict[str, str]]:
        """A decision's template and the complaint route it names (the pinned profile's, in the
        debtor's language), or its no-route form when the profile has none."""
        channel = self.profile.complaint_channel
        if channel is None:
            return NO_ROUTE[template], {}
        return template, {
            "authority": channel.authority_in(self.terms.language.value),
            "contact": channel.contact,
        }

    # ---- complaints and disputes --------------------------------------------------------------------
    def acknowledge_complaint(self, number: int, case_id: str | None, due: datetime) -> None:
        context = {"decide_by": self.local_day(due)}
        if case_id is not None:
            self.tell(f"complaint/{number}/ack", "complaint_ack_case", {"case": case_id, **context})
        else:
            self.tell(f"complaint/{number}/ack", "complaint_ack_due", context)

    def acknowledge_dispute(self, number: int, case_id: str | None) -> None:
        if case_id is not None:
            self.tell(f"dispute/{number}/ack", "dispute_ack_case", {"case": case_id})
        else:  # its text already says nothing is collected until the findings are sent
            self.tell(f"dispute/{number}/ack", "dispute_ack")

    def tell_complaint_decision(self, number: int, decision: str) -> None:
        template, context = self.routed(DECISION_TEMPLATES[decision])
        self.tell(f"complaint/{number}/decision", template, context)

    def tell_dispute_findings(self, number: int) -> None:
        template, context = self.routed("dispute_findings")
        self.tell(f"dispute/{number}/findings", template, context)

    # ---- plan requests ------------------------------------------------------------------------------
    def open_plan_request(self, case_id: str | None, until: datetime) -> PlanRequest:
        """A new request replaces the one waiting (its pause is extended the same way)."""
        self.state.plan_requests += 1
        request = PlanRequest(
            number=self.state.plan_requests,
            case_id=case_id,
            until=until,
            plans_agreed=self.carried.plans_agreed,
        )
        self.state.plan_request = request
        return request

    def waiting_plan_request(self) -> PlanRequest | None:
        """The plan request still waiting for an answer, if any (an agreed plan answered it)."""
        request = self.state.plan_request
        if request is None or self.carried.plans_agreed > request.plans_agreed or self.mode == Mode.CLOSED:
            return None  # a placed or closed account's requests are the agency's, or moot
        return request

    def answer_due(self) -> datetime | None:
        """When a waiting plan request's pause ends: the run wakes then to tell the debtor."""
        request = self.waiting_plan_request()
        return request.until if request is not None else None

    async def take_lapsed_plan_request(self) -> None:
        """A plan request nobody answered before its pause ended: the debtor is told it went to a
        supervisor, and only then may the next reminder go (the caller sends the queue next)."""
        request = self.state.plan_request
        if request is None or self.now() < request.until:
            return
        self.state.plan_request = None
        if request.plans_agreed < self.carried.plans_agreed or self.mode == Mode.CLOSED:
            return  # answered by an agreed plan, or nothing more will be collected
        self.carried.holds = [h for h in self.carried.holds if h.kind != HoldKind.NEGOTIATION]
        case = f" (case {request.case_id})" if request.case_id else ""
        ev = self.event(
            "plan_request_lapsed",
            f"#{request.number}{case} unanswered by {request.until:%Y-%m-%d %H:%M}: passed to a supervisor",
        )
        self.tell(f"plan-request/{request.number}/lapsed", "plan_request_lapsed")
        await self.record(
            self.change(
                hold_lifted=HoldKind.NEGOTIATION,
                decision="plan_request_lapsed",
                rule="plan_request.unanswered",
                events=[ev],
                actor="workflow",
            )
        )
