"""What an agent can do to an account, once: shared by the REST API and the agent console.

Why a layer of its own:

* **One behaviour, two front ends.** The API (``service/api.py``) and the console pages call these
  functions, so a payment, a plan or a hold means the same thing whichever screen sent it, and each is
  audited the same way (when given ``sessions``) with the name of the person who did it.
* **Temporal errors become domain errors.** An unknown workflow is :class:`AccountNotFound`, a plan
  the workflow's validator refuses is :class:`PlanRejected` with every broken rule, a plan that cannot
  be agreed right now (one is already agreed, the account is closed) is :class:`PlanConflict`. The
  front ends map them to 404 / 422 / 409 without knowing Temporal.
* **Search is Temporal visibility** on the typed search attributes of ``workflows/search.py``, the very
  filters an operator types in the Temporal UI; the database only adds the currency.
* **Preview is pure.** :func:`preview_plan` runs ``domain.plans`` on the status the workflow answered,
  so the console's plan builder shows the schedule and the broken rules before anything is sent, and
  the workflow's own validator (same functions) has the last word.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session, sessionmaker
from temporalio.client import Client, WorkflowExecution, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from domain.accounts import AccountTerms, HoldKind, Mode, Stage, workflow_id_for
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
from domain.plans import PlanRejected as _DomainPlanRejected
from domain.policy import Policy, load_policy
from domain.timeline import AccountStatus, Timeline
from store import repo
from store.repo import AccountSnapshot, AttemptView, WaiverRequestView
from workflows import search
from workflows.messages import ComplaintIn, DisputeIn, HoldRequest, PaymentIn

WORKFLOW_TYPES = ("DelinquencyWorkflow", "SettlementWorkflow")
PREFIX = workflow_id_for("")
MAX_LIMIT = 500
#: the waiver rule only a supervisor's approval satisfies (checked again when it is approved)
APPROVER_RULE = "waiver.requires_approver"
#: what an account id may look like (the API's path pattern and the console's check are this one)
ACCOUNT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


# ---- errors the front ends map to HTTP statuses ----------------------------------------------------
class AccountNotFound(LookupError):
    """No workflow ``account-<id>``: the id is wrong or intake never started it (API: 404)."""

    def __init__(self, account_id: str):
        self.account_id = account_id
        super().__init__(f"account {account_id} not found")


class PlanRejected(_DomainPlanRejected):
    """The plan breaks policy; ``violations`` names every rule (API: 422)."""


class PlanConflict(Exception):
    """The plan cannot be agreed now: one is already agreed or being agreed, or the account is closed (409)."""


class InvalidRequest(ValueError):
    """A well-formed request the account cannot take, e.g. a payment in another currency (422)."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}")


class WaiverNotFound(LookupError):
    """No waiver request with this id (404)."""


class WaiverAlreadyDecided(Exception):
    """The waiver request was approved or rejected already (409)."""


# ---- views -----------------------------------------------------------------------------------------
class AccountSummary(BaseModel):
    """One search hit: what the Temporal UI's columns show, as typed search attributes."""

    model_config = ConfigDict(frozen=True)

    account_id: str
    mode: Mode | None = None
    stage: Stage | None = Field(default=None, description="None until the first workflow task ran")
    dpd: int | None = Field(default=None, description="Days past due")
    balance: int | None = Field(default=None, description="Minor units")
    currency: str | None = Field(default=None, description="From the application database")
    hold: str = Field(default="none", description="Comma-separated active hold kinds, or 'none'")
    next_contact: datetime | None = None
    jurisdiction: str | None = None


class PlanTerms(BaseModel):
    """What plan validation needs beyond the live status: fees, overdue date, home zone, policy."""

    model_config = ConfigDict(frozen=True)

    fees: int = Field(ge=0)
    overdue_since: date
    zone: str
    policy: str = "default"

    @classmethod
    def from_snapshot(cls, snapshot: AccountSnapshot) -> PlanTerms:
        return cls(
            fees=snapshot.fees_minor,
            overdue_since=snapshot.due_date,
            zone=snapshot.zones[0],
            policy=snapshot.policy,
        )

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


# ---- plumbing --------------------------------------------------------------------------------------
def _handle(client: Client, account_id: str) -> Any:
    return client.get_workflow_handle(workflow_id_for(account_id))


def _not_found(err: BaseException) -> bool:
    return isinstance(err, RPCError) and err.status == RPCStatusCode.NOT_FOUND


async def _audit(
    sessions: sessionmaker[Session] | None,
    account_id: str,
    actor: str,
    action: str,
    decision: str,
    rule: str | None = None,
    **details: Any,
) -> None:
    """One audit line per write, naming who did it (off the event loop: SQLite writes block)."""
    if sessions is None:
        return

    def write() -> None:
        with sessions.begin() as s:
            repo.audit(
                s,
                at=datetime.now(UTC),
                account_id=account_id,
                actor=actor,
                action=action,
                decision=decision,
                rule=rule,
                details=details,
            )

    await asyncio.to_thread(write)


async def _signal(client: Client, account_id: str, name: str, arg: BaseModel) -> None:
    try:
        await _handle(client, account_id).signal(name, arg)
    except RPCError as err:
        if _not_found(err):
            raise AccountNotFound(account_id) from err
        raise


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


# ---- reading ---------------------------------------------------------------------------------------
def visibility_query(
    *,
    stage: Stage | str | None = None,
    mode: Mode | str | None = None,
    hold: str | None = None,
    dpd_min: int | None = None,
    dpd_max: int | None = None,
    balance_min: int | None = None,
    balance_max: int | None = None,
) -> str:
    """The list filter, in the Temporal UI's own syntax (an operator can paste it there).

    ``hold``: ``none`` (no hold), ``any`` (some hold), or a hold kind (``pause`` …; matched exactly
    on the server when it is the only hold, and refined in :func:`find_accounts` otherwise).
    """
    types = ", ".join(_quote(t) for t in WORKFLOW_TYPES)
    parts = [f"WorkflowType IN ({types})", "ExecutionStatus = 'Running'"]
    if stage is not None:
        parts.append(f"{search.STAGE.name} = {_quote(Stage(stage).value)}")
    if mode is not None:
        parts.append(f"{search.MODE.name} = {_quote(Mode(mode).value)}")
    if hold is not None:
        if hold == "none":
            parts.append(f"{search.HOLD.name} = 'none'")
        else:
            parts.append(f"{search.HOLD.name} != 'none'")
            if hold != "any":
                HoldKind(hold)  # a ValueError names a kind that does not exist
    for name, op, value in (
        (search.DPD.name, ">=", dpd_min),
        (search.DPD.name, "<=", dpd_max),
        (search.BALANCE.name, ">=", balance_min),
        (search.BALANCE.name, "<=", balance_max),
    ):
        if value is not None:
            parts.append(f"{name} {op} {int(value)}")
    return " AND ".join(parts)


def _summary(execution: WorkflowExecution) -> AccountSummary:
    attrs = execution.typed_search_attributes
    mode = attrs.get(search.MODE)
    stage = attrs.get(search.STAGE)
    return AccountSummary(
        account_id=execution.id.removeprefix(PREFIX),
        mode=Mode(mode) if mode in Mode.__members__.values() else None,
        stage=Stage(stage) if stage in Stage.__members__.values() else None,
        dpd=attrs.get(search.DPD),
        balance=attrs.get(search.BALANCE),
        hold=attrs.get(search.HOLD) or "none",
        next_contact=attrs.get(search.NEXT_CONTACT),
        jurisdiction=attrs.get(search.JURISDICTION),
    )


def _currencies(sessions: sessionmaker[Session], ids: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    with sessions.begin() as s:
        for account_id in ids:
            snapshot = repo.account_snapshot(s, account_id)
            if snapshot is not None:
                out[account_id] = snapshot.currency
    return out


async def find_accounts(
    client: Client,
    *,
    stage: Stage | str | None = None,
    mode: Mode | str | None = None,
    hold: str | None = None,
    dpd_min: int | None = None,
    dpd_max: int | None = None,
    balance_min: int | None = None,
    balance_max: int | None = None,
    limit: int = 50,
    sessions: sessionmaker[Session] | None = None,
) -> list[AccountSummary]:
    """Accounts whose live run matches every filter (Temporal visibility; eventually consistent).

    With ``sessions`` each hit also carries its currency from the application database.
    """
    limit = max(1, min(limit, MAX_LIMIT))
    query = visibility_query(
        stage=stage,
        mode=mode,
        hold=hold,
        dpd_min=dpd_min,
        dpd_max=dpd_max,
        balance_min=balance_min,
        balance_max=balance_max,
    )
    out: list[AccountSummary] = []
    async for execution in client.list_workflows(query, page_size=min(limit, 100)):
        hit = _summary(execution)
        if hold not in (None, "none", "any") and hold not in hit.hold.split(","):
            continue
        out.append(hit)
        if len(out) >= limit:
            break
    if sessions is not None and out:
        currencies = await asyncio.to_thread(_currencies, sessions, [h.account_id for h in out])
        out = [h.model_copy(update={"currency": currencies.get(h.account_id)}) for h in out]
    return out


async def _query(client: Client, account_id: str, name: str, result_type: type[Any]) -> Any:
    try:
        return await _handle(client, account_id).query(name, result_type=result_type)
    except RPCError as err:
        if _not_found(err):
            raise AccountNotFound(account_id) from err
        raise


async def account_status(client: Client, account_id: str) -> AccountStatus:
    """The workflow's ``status`` query: mode, stage, DPD, balance, holds, next action, plan."""
    return await _query(client, account_id, "status", AccountStatus)  # type: ignore[no-any-return]


async def account_timeline(client: Client, account_id: str) -> Timeline:
    """The workflow's ``timeline`` query: everything that happens if nothing changes."""
    return await _query(client, account_id, "timeline", Timeline)  # type: ignore[no-any-return]


def contact_history(sessions: sessionmaker[Session], account_id: str) -> list[AttemptView]:
    """Every contact attempt from the application database, oldest first (no phone numbers)."""
    with sessions.begin() as s:
        if repo.account_snapshot(s, account_id) is None:
            raise AccountNotFound(account_id)
        return repo.contact_attempts(s, account_id)


def plan_terms(sessions: sessionmaker[Session], account_id: str) -> PlanTerms:
    """Fees, overdue date, zone and policy of an account, from the database (for :func:`preview_plan`)."""
    with sessions.begin() as s:
        snapshot = repo.account_snapshot(s, account_id)
    if snapshot is None:
        raise AccountNotFound(account_id)
    return PlanTerms.from_snapshot(snapshot)


# ---- plans -----------------------------------------------------------------------------------------
def preview_plan(
    status: AccountStatus, terms: PlanTerms, proposal: PlanProposal, policy: Policy | None = None
) -> PlanPreview:
    """The schedule and the broken rules of ``proposal`` against the live status; no side effect.

    "Today" is the workflow's policy time (``status.policy_now``) in the debtor's home zone, exactly
    what the workflow's validator uses, so a clean preview is accepted unless the account moved on.
    """
    policy = policy or load_policy(terms.policy)
    today = status.policy_now.astimezone(ZoneInfo(terms.zone)).date()
    violations = validate_proposal(
        proposal,
        balance=status.balance,
        fees=terms.fees,
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
    (a plan is already agreed or the account is closed) or :class:`AccountNotFound`.
    """
    proposal = proposal.model_copy(update={"proposed_by": actor})
    try:
        plan: AgreedPlan = await _handle(client, account_id).execute_update(
            "propose_settlement", proposal, result_type=AgreedPlan
        )
    except RPCError as err:
        if _not_found(err):
            raise AccountNotFound(account_id) from err
        raise
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        kind = cause.type if isinstance(cause, ApplicationError) else None
        if kind == "PlanRejected":
            assert isinstance(cause, ApplicationError)
            violations = _violations(cause.details) or [
                Violation(rule="plan.rejected", message=cause.message)
            ]
            await _audit(
                sessions, account_id, actor, "plan_proposed", "rejected",
                rule=",".join(v.rule for v in violations), kind=proposal.kind.value,
            )  # fmt: skip
            raise PlanRejected(violations) from err
        message = getattr(cause, "message", None) or str(cause)
        # PlanConflict / AccountClosed, or a settlement run that has no such update
        await _audit(sessions, account_id, actor, "plan_proposed", "conflict", reason=message)
        raise PlanConflict(message) from err
    await _audit(
        sessions, account_id, actor, "plan_proposed", "agreed",
        plan_id=plan.plan_id, kind=plan.kind.value, total=plan.total, approver=plan.approver,
    )  # fmt: skip
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
    status = await account_status(client, account_id)
    terms = await asyncio.to_thread(plan_terms, sessions, account_id)
    proposal = proposal.model_copy(update={"approver": None, "proposed_by": actor})
    preview = preview_plan(status, terms, proposal)
    broken = [v for v in preview.violations if v.rule != APPROVER_RULE]
    if broken:
        await _audit(
            sessions, account_id, actor, "waiver_requested", "rejected", rule=",".join(v.rule for v in broken)
        )
        raise PlanRejected(broken)

    def store() -> WaiverRequestView:
        with sessions.begin() as s:
            view = repo.add_waiver_request(
                s,
                account_id=account_id,
                proposal=proposal.model_dump(mode="json"),
                requested_by=actor,
                now=datetime.now(UTC),
            )
            repo.audit(
                s,
                at=datetime.now(UTC),
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
        return repo.waiver_requests(s, status=status, account_id=account_id)


def _pending(sessions: sessionmaker[Session], request_id: int) -> WaiverRequestView:
    with sessions.begin() as s:
        view = repo.waiver_request(s, request_id)
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
        view = repo.waiver_request(s, request_id)
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
        if not repo.decide_waiver_request(
            s, view.id, status=status, decided_by=supervisor, now=now, plan_id=plan_id, note=note
        ):
            raise WaiverAlreadyDecided(f"waiver request {view.id} was decided meanwhile")
        repo.audit(
            s,
            at=now,
            account_id=view.account_id,
            actor=supervisor,
            action="waiver_decided",
            decision=status,
            details={"request_id": view.id, "plan_id": plan_id, "note": note},
        )


# ---- signals -----------------------------------------------------------------------------------------
async def record_payment(
    client: Client,
    account_id: str,
    amount_minor: int,
    currency: str,
    reference: str,
    actor: str,
    *,
    sessions: sessionmaker[Session] | None = None,
) -> None:
    """A payment signal; the workflow counts each ``reference`` once (a retried call pays nothing twice)."""
    status = await account_status(client, account_id)
    if currency.upper() != status.currency:
        raise InvalidRequest("currency", f"the account is in {status.currency}, not {currency.upper()}")
    payment = PaymentIn(amount=amount_minor, currency=status.currency, reference=reference, source=actor)
    await _signal(client, account_id, "payment_received", payment)
    await _audit(
        sessions, account_id, actor, "payment_reported", "signalled",
        amount=amount_minor, currency=status.currency, reference=reference,
    )  # fmt: skip


async def pause(
    client: Client, account_id: str, reason: str, actor: str, *, sessions: sessionmaker[Session] | None = None
) -> None:
    """An operator hold: contact stops (an in-flight send is cancelled) until :func:`resume`."""
    await _signal(client, account_id, "pause", HoldRequest(reason=reason, actor=actor))
    await _audit(sessions, account_id, actor, "pause", "signalled", reason=reason)


async def resume(
    client: Client, account_id: str, reason: str, actor: str, *, sessions: sessionmaker[Session] | None = None
) -> None:
    await _signal(client, account_id, "resume", HoldRequest(reason=reason, actor=actor))
    await _audit(sessions, account_id, actor, "resume", "signalled", reason=reason)


async def file_complaint(
    client: Client,
    account_id: str,
    reason: str,
    actor: str,
    *,
    source: str = "agent",
    sessions: sessionmaker[Session] | None = None,
) -> None:
    """Contact stops at once; the debtor gets one acknowledgement; a decision is due within the SLA."""
    await _signal(
        client, account_id, "complaint_filed", ComplaintIn(reason=reason, source=source, actor=actor)
    )
    await _audit(sessions, account_id, actor, "complaint", "signalled", reason=reason, source=source)


async def file_dispute(
    client: Client, account_id: str, reason: str, actor: str, *, sessions: sessionmaker[Session] | None = None
) -> None:
    """No collection while the debt is disputed; one acknowledgement."""
    await _signal(client, account_id, "dispute_filed", DisputeIn(reason=reason, actor=actor))
    await _audit(sessions, account_id, actor, "dispute", "signalled", reason=reason)


__all__ = [
    "ACCOUNT_ID",
    "APPROVER_RULE",
    "AccountNotFound",
    "AccountSummary",
    "InvalidRequest",
    "PlanConflict",
    "PlanPreview",
    "PlanRejected",
    "PlanTerms",
    "WaiverAlreadyDecided",
    "WaiverNotFound",
    "account_status",
    "account_timeline",
    "approve_waiver",
    "contact_history",
    "file_complaint",
    "file_dispute",
    "find_accounts",
    "pause",
    "plan_terms",
    "preview_plan",
    "propose_settlement",
    "record_payment",
    "reject_waiver",
    "request_waiver",
    "resume",
    "visibility_query",
    "waiver_queue",
]
