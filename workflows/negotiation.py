"""Agreeing a plan in dunning: the ``propose_settlement`` update and the one way a plan is agreed.

The update answers only when nothing of the account's can still reach the debtor: on a quiet account
at once (the plan's record follows before settlement begins), otherwise after the plan is in the
database (so a send's own live gate refuses) and every send under way has been waited out.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows import patches

with workflow.unsafe.imports_passed_through():
    from domain.accounts import Mode
    from domain.cadence import local_date
    from domain.plans import AgreedPlan, PlanProposal, Violation, agree, validate_proposal
    from workflows import charging
    from workflows.handlers import AccountWorkflow
    from workflows.state import AccountInput, PlanState

#: A plan agreed on a quiet account answers before its record is written (``agree_plan``). Runs
#: recorded before this wrote first; ``workflow.patched`` keeps their replay identical.
QUIET_PLAN_PATCH = patches.QUIET_PLAN


class Negotiation(AccountWorkflow):
    """Mixed into :class:`~workflows.delinquency.DelinquencyWorkflow`."""

    def _setup(self, start: AccountInput, mode: Mode) -> None:
        super()._setup(start, mode)
        self.agreeing = False  # an update is agreeing a plan right now (the handler is still running)

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

    @propose_settlement.validator
    def _check_proposal(self, proposal: PlanProposal) -> None:
        if self.agreeing or self.state.plan is not None:
            raise ApplicationError("a plan is already being agreed", type="PlanConflict", non_retryable=True)
        refusal = self.refuses_plans()
        if refusal is not None:
            raise ApplicationError(refusal, type="AccountClosed", non_retryable=True)
        violations = self.plan_violations(proposal)
        if violations:
            raise ApplicationError(
                "plan breaks policy: " + "; ".join(f"{v.rule}: {v.message}" for v in violations),
                [v.model_dump() for v in violations],
                type="PlanRejected",
                non_retryable=True,
            )

    def refuses_plans(self) -> str | None:
        """Why no plan can be agreed now, or None: an account closed, closing or placed takes none."""
        if self.carried.placed_with is not None:
            return (
                f"the account is placed with {self.carried.placed_with}: a plan is agreed through the agency"
            )
        if self.mode == Mode.CLOSED or self.carried.balance <= 0:
            return "the account is closed"
        if self.state.closing is not None:
            return f"the account is being closed ({self.state.closing})"
        if self.state.inbox.close is not None:
            return f"the account is being closed ({self.state.inbox.close.reason.value})"
        if sum(p.amount for p in self.state.inbox.payments) >= self.carried.balance:
            return "the account is paid in full"
        return None

    def plan_violations(self, proposal: PlanProposal) -> list[Violation]:
        """The policy's verdict on a plan for this account today (pure: ``domain.plans``)."""
        return validate_proposal(
            proposal,
            balance=charging.owed_now(self.state, self.now()),  # what the status query shows
            fees=self.terms.fees + charging.due(self.state),  # intake fees and charges since
            overdue_since=self.terms.due_date,
            today=local_date(self.now(), self.terms),
            policy=self.policy,
        )

    async def agree_plan(
        self, proposal: PlanProposal, detail: str | None, actor: str, details_line: str
    ) -> AgreedPlan:
        """Stop dunning, store the plan, wait out any send in flight: the one way a plan is agreed."""
        self.agreeing = True
        self.stop_contacts = True
        now = self.now()
        added = charging.catch_up(self.state, now)  # the plan covers the charges of every ended day
        if added is not None:
            self.event("charges", added)
        plan = agree(
            proposal,
            plan_id=f"{self.terms.account_id}-plan-{self.carried.plans_agreed + 1}",
            currency=self.terms.currency,
            balance=self.carried.balance,
            fees=self.terms.fees + charging.due(self.state),  # intake fees and charges since
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
        quiet = self.visit_running() is False and self.contacts_quiet()
        if quiet and self.patched(QUIET_PLAN_PATCH):
            # Nothing of ours is under way or can still be (see contacts_quiet), no field visit can
            # announce itself, and this run starts no new contact now: dunning has stopped already.
            # Answer at once; the plan is stored right after, before settlement begins.
            self.plan_stored = asyncio.ensure_future(self.record(stored))
            written = False
        else:
            # Live state first: from here on the send activity's own gate refuses any dunning contact.
            await self.record(stored)
            # Then make sure nothing already under way can still reach the debtor after we answer.
            await self.contacts_settled()
            written = True
        self.carried.plans_agreed += 1
        self.state.mode = Mode.SETTLEMENT
        self.state.next_at = None
        self.upsert_common()
        self.set_details(details_line)
        self.state.plan = PlanState(plan=plan, stored=written)
        return plan

    def visit_running(self) -> bool:
        """Overridden where field visits exist: a visit could still announce itself."""
        return False
