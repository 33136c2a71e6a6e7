"""The agency API: field-visit reports, placed accounts, and the operator's recall and closing actions.

An agency authenticates with its own token (role ``agency``, the principal's name is the agency id
from ``policies/agencies.toml``) and sees only its own visits and placements. Its calls go through
the same contact gate and the same ledger as ours (``POST /agency/placements/{id}/calls`` answers 409
with the rule when the call may not be made now, so its calls count toward the same caps), and its
payments are signalled to the account's workflow like any other.

Debtor-side and operator actions on a visit or placement (another day, a plan instead, recall,
closing for a reason) need an agent's or a supervisor's token.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from domain.accounts import Channel, ContactOutcome, Mode, workflow_id_for
from domain.agencies import CloseRequest, RecallRequest
from domain.gate import Defer, Deny, PlannedContact, Purpose, decide
from domain.profiles import load_profile
from domain.visits import RescheduleRequest, VisitCancel, VisitReport
from service.auth import Principal, require
from service.state import app_sessions
from store import repo
from workflows.messages import NegotiationRequest, PaymentIn

router = APIRouter(tags=["agency"])

AgencyCaller = Annotated[Principal, Depends(require("agency_report"))]
Agent = Annotated[Principal, Depends(require("write"))]
Supervisor = Annotated[Principal, Depends(require("approve"))]


def _now() -> datetime:
    return datetime.now(UTC)


async def _signal(request: Request, workflow_id: str, name: str, arg: object) -> None:
    client: Client | None = getattr(request.app.state, "temporal_client", None)
    if client is None:
        raise HTTPException(status_code=503, detail="workflow service not configured")
    try:
        await client.get_workflow_handle(workflow_id).signal(name, arg)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise HTTPException(status_code=409, detail=f"{workflow_id} is not running") from err
        raise HTTPException(status_code=503, detail="workflow service unavailable") from err


# ---- field visits -------------------------------------------------------------------------------
def _own_visit(request: Request, visit_id: str, agency: str | None) -> repo.VisitView:
    with app_sessions(request).begin() as s:
        visit = repo.visit(s, visit_id)
    if visit is None or (agency is not None and visit.agency_id != agency):
        raise HTTPException(status_code=404, detail=f"no visit {visit_id!r}")
    return visit


@router.get("/agency/visits")
def agency_visits(request: Request, who: AgencyCaller) -> list[dict[str, Any]]:
    """The agency's visits: account, window, status (masked number only: the visit is at the door)."""
    with app_sessions(request).begin() as s:
        return [v.model_dump(mode="json") for v in repo.visits_for_agency(s, who.name)]


@router.post("/agency/visits/{visit_id}/report", status_code=202)
async def report_visit(
    request: Request, visit_id: str, report: VisitReport, who: AgencyCaller
) -> dict[str, str]:
    """The agency's report. 422 names the field (e.g. ``recording_ref`` is required); 409 once the visit ended."""
    visit = _own_visit(request, visit_id, who.name)
    if visit.status not in repo.OPEN_VISIT_STATUSES:
        raise HTTPException(status_code=409, detail=f"visit {visit_id} is {visit.status}")
    await _signal(request, visit_id, "report_received", report.model_copy(update={"agency_id": who.name}))
    return {"visit_id": visit_id, "outcome": report.outcome.value, "status": "accepted"}


class RescheduleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    day: date = Field(description="The day the debtor proposes (their own calendar)")


@router.post("/visits/{visit_id}/reschedule", status_code=202)
async def reschedule_visit(request: Request, visit_id: str, body: RescheduleIn, who: Agent) -> dict[str, str]:
    """The debtor proposed another day (by phone or reply); the visit workflow checks it against policy."""
    visit = _own_visit(request, visit_id, None)
    if visit.status not in repo.OPEN_VISIT_STATUSES:
        raise HTTPException(status_code=409, detail=f"visit {visit_id} is {visit.status}")
    await _signal(request, visit_id, "reschedule", RescheduleRequest(day=body.day, actor=who.name))
    return {"visit_id": visit_id, "proposed": body.day.isoformat()}


@router.post("/visits/{visit_id}/plan-instead", status_code=202)
async def plan_instead(request: Request, visit_id: str, who: Agent) -> dict[str, str]:
    """The debtor asked for a payment plan instead: the account pauses for the negotiation, the visit is off."""
    visit = _own_visit(request, visit_id, None)
    if visit.status not in repo.OPEN_VISIT_STATUSES:
        raise HTTPException(status_code=409, detail=f"visit {visit_id} is {visit.status}")
    await _signal(
        request,
        workflow_id_for(visit.account_id),
        "negotiation_requested",
        NegotiationRequest(channel="visit", note=f"instead of {visit_id}"),
    )
    return {"visit_id": visit_id, "status": "cancelling"}


@router.post("/visits/{visit_id}/cancel", status_code=202)
async def cancel_visit(request: Request, visit_id: str, who: Supervisor) -> dict[str, str]:
    visit = _own_visit(request, visit_id, None)
    await _signal(request, visit.visit_id, "cancel", VisitCancel(reason=f"cancelled by {who.name}"[:64]))
    return {"visit_id": visit_id, "status": "cancelling"}


# ---- placed accounts ----------------------------------------------------------------------------
def _own_placement(request: Request, account_id: str, agency: str) -> repo.PlacementView:
    with app_sessions(request).begin() as s:
        placed = repo.active_placement(s, account_id)
    if placed is None or placed.agency_id != agency:
        raise HTTPException(status_code=404, detail=f"account {account_id!r} is not placed with {agency}")
    return placed


@router.get("/agency/placements")
def agency_placements(request: Request, who: AgencyCaller) -> list[dict[str, Any]]:
    """The agency's active accounts with the name and number it needs (under its contract)."""
    with app_sessions(request).begin() as s:
        return [p.model_dump(mode="json") for p in repo.placements_for_agency(s, who.name)]


class AgencyCall(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reference: str = Field(
        min_length=1, max_length=100, description="The agency's own id of the call: counts once"
    )
    channel: Channel = Channel.VOICE
    outcome: ContactOutcome = Field(
        default=ContactOutcome.SENT, description="sent (about to dial) or the call's outcome"
    )


@router.post("/agency/placements/{account_id}/calls", status_code=201)
def agency_call(request: Request, account_id: str, call: AgencyCall, who: AgencyCaller) -> dict[str, Any]:
    """Ask the contact gate before calling; an allowed call is entered in the account's ledger at once.

    409 with ``rule`` (and ``until`` when it is a matter of waiting) when the call may not be made now:
    quiet hours, holds, opt-outs and the frequency caps, counting our contacts and every agency's.
    """
    _own_placement(request, account_id, who.name)
    now = _now()
    with app_sessions(request).begin() as s:
        snap = repo.account_snapshot(s, account_id)
        assert snap is not None
        state, ledger = repo.live_gate_inputs(s, account_id, since=now - timedelta(days=8), now=now)
        # the lender closed its own collection at placement; the agency collects under the same rules
        state = state.model_copy(update={"mode": Mode.DUNNING})
        verdict = decide(
            PlannedContact(
                channel=call.channel, purpose=Purpose.DUNNING, template=f"agency:{who.name}", at=now
            ),
            state,
            ledger,
            now,
            load_profile(snap.profile),
        )
        if isinstance(verdict, Deny | Defer):
            repo.audit(
                s,
                at=now,
                account_id=account_id,
                actor=f"agency:{who.name}",
                action="agency_call",
                decision="denied" if isinstance(verdict, Deny) else "deferred",
                rule=verdict.rule,
                details={"reference": call.reference},
            )
        else:
            repo.record_agency_call(
                s,
                account_id=account_id,
                agency_id=who.name,
                reference=call.reference,
                channel=call.channel,
                outcome=call.outcome,
                at=now,
            )
    if isinstance(verdict, Deny):
        raise HTTPException(status_code=409, detail={"rule": verdict.rule})
    if isinstance(verdict, Defer):
        raise HTTPException(
            status_code=409, detail={"rule": verdict.rule, "until": verdict.until.isoformat()}
        )
    return {"account_id": account_id, "reference": call.reference, "allowed": True}


class AgencyPayment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: int = Field(gt=0, description="Minor units")
    currency: str = Field(min_length=3, max_length=3)
    reference: str = Field(min_length=1, max_length=100)


@router.post("/agency/placements/{account_id}/payments", status_code=202)
async def agency_payment(
    request: Request, account_id: str, payment: AgencyPayment, who: AgencyCaller
) -> dict[str, Any]:
    """A payment the agency collected: it flows into the account's workflow (the reference counts once)."""
    placed = _own_placement(request, account_id, who.name)
    if payment.currency.upper() != placed.currency:
        raise HTTPException(
            status_code=422, detail=f"currency: the account is in {placed.currency}, not {payment.currency}"
        )
    await _signal(
        request,
        workflow_id_for(account_id),
        "payment_received",
        PaymentIn(
            amount=payment.amount,
            currency=placed.currency,
            reference=f"{who.name}:{payment.reference}",
            source=f"agency:{who.name}",
        ),
    )
    return {"account_id": account_id, "amount": payment.amount, "status": "accepted"}


@router.post("/placements/{account_id}/recall", status_code=202)
async def recall(request: Request, account_id: str, body: RecallRequest, who: Supervisor) -> dict[str, str]:
    with app_sessions(request).begin() as s:
        placed = repo.active_placement(s, account_id)
    if placed is None:
        raise HTTPException(status_code=404, detail=f"account {account_id!r} is not placed")
    await _signal(request, workflow_id_for(account_id), "recall", body.model_copy(update={"actor": who.name}))
    return {"account_id": account_id, "recalled_from": placed.agency_id}


@router.post("/accounts/{account_id}/closure", status_code=202)
async def close_account(
    request: Request, account_id: str, body: CloseRequest, who: Supervisor
) -> dict[str, str]:
    """Close for a reason: written off, deceased or bankrupt (the last two send no final message)."""
    await _signal(request, workflow_id_for(account_id), "close", body.model_copy(update={"actor": who.name}))
    return {"account_id": account_id, "reason": body.reason}
