"""Plans: an account's plan terms, the pure preview, proposing a settlement, and the fee-waiver queue.

Apart from the other operations because a plan is the one write that is a workflow *update* judged by
the workflow's validator (``propose_settlement`` answers only once dunning has stopped), and the one
with a queue of its own: an agent proposes a fee waiver, a supervisor approves or rejects it.

* **Preview is pure.** :func:`preview_plan` runs ``domain.plans`` on the status the workflow answered,
  so the console's plan builder shows the schedule and the broken rules before anything is sent, and
  the workflow's own validator (same functions) has the last word.
* **The policy version the account runs** (:func:`terms_of`, ``store.rules``) judges the preview, not
  the file on disk, so preview and validator agree after the policy file is edited.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session, sessionmaker
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from domain.accounts import AccountTerms
from domain.cases import CaseKind
from domain.plans import (
    AgreedPlan,
    Instalment,
    PlanKind,
    PlanProposal,
    Violation,
    plan_total,
    schedule,
    validate_proposal,
)
from domain.policy import Policy, load_policy
from domain.timeline import AccountStatus
from service import temporal_calls as calls
from service.accounts import account_status
from service.operations import (
    FOUR_EYES_RULE,
    AccountClosed,
    AccountNotFound,
    FourEyes,
    InvalidRequest,
    PlanConflict,
    PlanRejected,
    WaiverAlreadyDecided,
    WaiverNotFound,
    audit_write,
)
from store import notes
from store import rules as rule_store
from store.accounts import AccountSnapshot, account_snapshot
from store.audit import audit
from store.ledger import (
    WaiverRequestView,
    add_waiver_request,
    decide_waiver_request,
    waiver_request,
    waiver_requests,
)

#: the waiver rule only a supervisor's approval satisfies (checked again when it is approved)
APPROVER_RULE = "waiver.requires_approver"


# ---- terms and views ---------------------------------------------------------------------------------
class PlanTerms(BaseModel):
    """What plan validation needs beyond the live status: fees, overdue date, home zone, policy.

    ``rules`` is the policy version the account's workflow runs (``store.rules``), so a preview and
    the workflow's validator judge alike after the policy file is edited; without it, the file's.
    """

    model_config = ConfigDict(frozen=True)

    fees: int = Field(ge=0)
    overdue_since: date
    zone: str
    policy: str = "default"
    policy_version: str | None = None
    rules: Policy | None = Field(default=None, exclude=True, repr=False)

    @classmethod
    def from_snapshot(cls, snapshot: AccountSnapshot, rules: Policy | None = None) -> PlanTerms:
        return cls(
            fees=snapshot.fees_minor,
            overdue_since=snapshot.due_date,
            zone=snapshot.zones[0],
            policy=snapshot.policy,
            policy_version=snapshot.policy_version,
            rules=rules,
        )

    @property
    def policy_rules(self) -> Policy:
        return self.rules or load_policy(self.policy)

    @classmethod
    def from_terms(cls, terms: AccountTerms) -> PlanTerms:
        return cls(fees=terms.fees, overdue_since=terms.due_date, zone=terms.zones[0], policy=terms.policy)


class PlanPreview(BaseModel):
    """The schedule a proposal would give and every rule it breaks, without sending anything."""

    kind: PlanKind
    currency: str
    total: int = Field(description="Minor units to collect")
    waived: int = 0
    instalments: list[Instalment]
    end_date: date | None
    violations: list[Violation]
    acceptable: bool = Field(description="No rule broken: the workflow would agree it")
    needs_approval: bool = Field(
        default=False, description="A fee waiver without an approver: it must go to a supervisor"
    )


def terms_of(s: Session, snapshot: AccountSnapshot) -> PlanTerms:
    """The account's plan terms with the policy version its workflow runs (not the file on disk)."""
    return PlanTerms.from_snapshot(snapshot, rule_store.policy(s, snapshot.policy_version, snapshot.policy))


def plan_terms(sessions: sessionmaker[Session], account_id: str) -> PlanTerms:
    """Fees, overdue date, zone and policy of an account, from the database (for :func:`preview_plan`)."""
    with sessions.begin() as s:
        snapshot = account_snapshot(s, account_id)
        if snapshot is None:
            raise AccountNotFound(account_id)
        return terms_of(s, snapshot)


# ---- plans -----------------------------------------------------------------------------------------
def preview_plan(
    status: AccountStatus, terms: PlanTerms, proposal: PlanProposal, policy: Policy | None = None
) -> PlanPreview:
    """The schedule and the broken rules of ``proposal`` against the live status; no side effect.

    "Today" is the workflow's policy time (``status.policy_now``) in the debtor's home zone, exactly
    what the workflow's validator uses, so a clean preview is accepted unless the account moved on;
    the policy is the version the account runs (``terms.rules``) unless one is given.
    """
    policy = policy or terms.policy_rules
    today = status.policy_now.astimezone(ZoneInfo(terms.zone)).date()
    violations = validate_proposal(
        proposal,
        balance=status.balance,
        fees=terms.fees + (status.charges.charges_due if status.charges else 0),
        overdue_since=terms.overdue_since,
        today=today,
        policy=policy,
    )
    total = plan_total(proposal, status.balance)
    items = schedule(proposal, total) if total > 0 else []
    return PlanPreview(
        kind=proposal.kind,
        currency=status.currency,
        total=total,
        waived=proposal.waiver,
        instalments=items,
        end_date=items[-1].due_date if items else None,
        violations=violations,
        acceptable=not violations,
        needs_approval=any(v.rule == APPROVER_RULE for v in violations),
    )


def _violations(details: Sequence[Any]) -> list[Violation]:
    raw = details[0] if details else []
    out = []
    for item in raw if isinstance(raw, list) else []:
        try:
            out.append(Violation.model_validate(item))
        except ValueError:
            continue
    return out


async def propose_settlement(
    client: Client,
    account_id: str,
    proposal: PlanProposal,
    actor: str,
    *,
    sessions: sessionmaker[Session] | None = None,
) -> AgreedPlan:
    """The workflow update ``propose_settlement``: answers only once dunning has stopped.

    ``proposed_by`` becomes ``actor``. Raises :class:`PlanRejected` (policy), :class:`PlanConflict`
    (a plan is already agreed), :class:`AccountClosed` (the run ended, is closing, or the account is
    placed: the validator's own reason) or :class:`AccountNotFound`.
    """
    proposal = proposal.model_copy(update={"proposed_by": actor})
    evidence = proposal.hardship_evidence
    if sessions is not None and evidence and not notes.REFERENCE.match(evidence):
        # what someone typed about a debtor's hardship stays in the database (store/notes.py)
        ref = await asyncio.to_thread(notes.keep, sessions, account_id, actor, "hardship_evidence", evidence)
        proposal = proposal.model_copy(update={"hardship_evidence": ref})
    try:
        plan: AgreedPlan = await calls.update(
            client, sessions, account_id, "propose_settlement", proposal, AgreedPlan
        )
    except AccountClosed as err:
        await audit_write(sessions, account_id, actor, "plan_proposed", "conflict", reason=err.reason)
        raise
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        kind = cause.type if isinstance(cause, ApplicationError) else None
        if kind == "PlanRejected":
            assert isinstance(cause, ApplicationError)
            violations = _violations(cause.details) or [
                Violation(rule="plan.rejected", message=cause.message)
            ]
            await audit_write(
                sessions, account_id, actor, "plan_proposed", "rejected",
                rule=",".join(v.rule for v in violations), kind=proposal.kind.value,
            )  # fmt: skip
            raise PlanRejected(violations) from err
        message = getattr(cause, "message", None) or str(cause)
        # PlanConflict, or a settlement run that has no such update
        await audit_write(sessions, account_id, actor, "plan_proposed", "conflict", reason=message)
        raise PlanConflict(message) from err
    await audit_write(
        sessions, account_id, actor, "plan_proposed", "agreed",
        plan_id=plan.plan_id, kind=plan.kind.value, total=plan.total, approver=plan.approver,
    )  # fmt: skip
    if sessions is not None:  # a plan agreed answers the debtor's plan request, if one is open
        from service import cases

        await cases.answer_open(
            client, sessions, account_id, CaseKind.PLAN_REQUEST, actor, f"plan {plan.plan_id} agreed"
        )
    return plan


# ---- fee waivers: agent proposes, supervisor approves -----------------------------------------------
async def request_waiver(
    client: Client,
    sessions: sessionmaker[Session],
    account_id: str,
    proposal: PlanProposal,
    actor: str,
) -> WaiverRequestView:
    """Queue a fee-waiver plan for a supervisor; every rule but the approval must already hold."""
    if proposal.kind != PlanKind.FEE_WAIVER:
        raise InvalidRequest("kind", "only a fee_waiver plan goes through the approval queue")
    status = await account_status(client, account_id, sessions=sessions)
    closed = await calls.closed_state(client, sessions, account_id, status, "plan")
    if closed is not None:  # nothing reaches the workflow here: its validator cannot refuse it for us
        raise closed
    terms = await asyncio.to_thread(plan_terms, sessions, account_id)
    proposal = proposal.model_copy(update={"approver": None, "proposed_by": actor})
    preview = preview_plan(status, terms, proposal)
    broken = [v for v in preview.violations if v.rule != APPROVER_RULE]
    if broken:
        await audit_write(
            sessions, account_id, actor, "waiver_requested", "rejected", rule=",".join(v.rule for v in broken)
        )
        raise PlanRejected(broken)

    def store() -> WaiverRequestView:
        with sessions.begin() as s:
            view = add_waiver_request(
                s,
                account_id=account_id,
                proposal=proposal.model_dump(mode="json"),
                requested_by=actor,
                now=datetime.now(UTC),
            )
            audit(
                s,
                at=datetime.now(UTC),
                clock="wall",
                account_id=account_id,
                actor=actor,
                action="waiver_requested",
                decision="queued",
                details={"request_id": view.id, "waiver": proposal.waiver},
            )
            return view

    return await asyncio.to_thread(store)


def waiver_queue(
    sessions: sessionmaker[Session], *, status: str | None = "pending", account_id: str | None = None
) -> list[WaiverRequestView]:
    with sessions.begin() as s:
        return waiver_requests(s, status=status, account_id=account_id)


def _pending(sessions: sessionmaker[Session], request_id: int) -> WaiverRequestView:
    with sessions.begin() as s:
        view = waiver_request(s, request_id)
    if view is None:
        raise WaiverNotFound(f"waiver request {request_id} not found")
    if view.status != "pending":
        raise WaiverAlreadyDecided(f"waiver request {request_id} is already {view.status}")
    return view


async def approve_waiver(
    client: Client, sessions: sessionmaker[Session], request_id: int, supervisor: str
) -> AgreedPlan:
    """The supervisor approves: the plan goes to the workflow with ``approver`` = the supervisor."""
    view = await asyncio.to_thread(_pending, sessions, request_id)
    if view.requested_by == supervisor:
        await audit_write(
            sessions,
            view.account_id,
            supervisor,
            "waiver_approved",
            "refused",
            rule=FOUR_EYES_RULE,
            request_id=request_id,
        )
        raise FourEyes(
            f"{FOUR_EYES_RULE}: {supervisor} requested waiver {request_id} and may not approve it; "
            "another supervisor must"
        )
    proposal = PlanProposal.model_validate(view.proposal).model_copy(update={"approver": supervisor})
    try:
        plan = await propose_settlement(
            client, view.account_id, proposal, view.requested_by, sessions=sessions
        )
    except PlanRejected as err:
        # the account moved on (a payment, a date passed): this request can never be agreed as it is
        await asyncio.to_thread(_decide, sessions, view, "rejected", supervisor, None, str(err))
        raise
    # PlanConflict leaves it pending: a concurrent approval may be agreeing this very plan right now
    await asyncio.to_thread(_decide, sessions, view, "approved", supervisor, plan.plan_id, None)
    return plan


async def reject_waiver(
    sessions: sessionmaker[Session], request_id: int, supervisor: str, note: str = ""
) -> WaiverRequestView:
    view = await asyncio.to_thread(_pending, sessions, request_id)
    await asyncio.to_thread(_decide, sessions, view, "rejected", supervisor, None, note or "rejected")
    return await asyncio.to_thread(_reload, sessions, request_id)


def _reload(sessions: sessionmaker[Session], request_id: int) -> WaiverRequestView:
    with sessions.begin() as s:
        view = waiver_request(s, request_id)
    if view is None:
        raise WaiverNotFound(f"waiver request {request_id} not found")
    return view


def _decide(
    sessions: sessionmaker[Session],
    view: WaiverRequestView,
    status: str,
    supervisor: str,
    plan_id: str | None,
    note: str | None,
) -> None:
    now = datetime.now(UTC)
    with sessions.begin() as s:
        if not decide_waiver_request(
            s, view.id, status=status, decided_by=supervisor, now=now, plan_id=plan_id, note=note
        ):
            raise WaiverAlreadyDecided(f"waiver request {view.id} was decided meanwhile")
        audit(
            s,
            at=now,
            clock="wall",
            account_id=view.account_id,
            actor=supervisor,
            action="waiver_decided",
            decision=status,
            details={"request_id": view.id, "plan_id": plan_id, "note": note},
        )


__all__ = [
    "APPROVER_RULE",
    "PlanPreview",
    "PlanTerms",
    "approve_waiver",
    "plan_terms",
    "preview_plan",
    "propose_settlement",
    "reject_waiver",
    "request_waiver",
    "terms_of",
    "waiver_queue",
]
