"""The agency API: field-visit reports, placed accounts, and the operator's recall and closing actions.

An agency authenticates with its own token (role ``agency``, the principal's name is the agency id
from ``policies/agencies.toml``) and sees only its own visits and placements. Its calls go through
the same contact gate and the same ledger as ours (``POST /agency/placements/{id}/calls`` answers 409
with the rule when the call may not be made now, so its calls count toward the same caps), and its
payments go through ``payments.record_payment`` like any other: signalled to a running account, and
recorded and queued for refund (409) once the account's run has ended, never lost.

Calls to account workflows go through the operations layer (:mod:`service.holds`,
:mod:`service.payments`) and :mod:`service.temporal_calls`, and the router maps their errors like the
API's (:class:`service.api.OperationsErrors`): an unknown account 404, one that can no longer take the
write 409 with its state and the reason.

Before a visit the agency names the person it sends (``PUT /agency/visits/{id}/collector``): the
debtor's page shows that collector ID with the window, the agency's name and licence, and the public
``/verify`` page confirms it while the visit is open (:mod:`service.verify`).

Debtor-side and operator actions on a visit or placement (another day, a plan instead, recall,
closing for a reason) need an agent's or a supervisor's token.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from temporalio.client import Client

from domain.accounts import Channel, ContactOutcome, Mode
from domain.agencies import CloseRequest, RecallRequest
from domain.collectors import CollectorId
from domain.gate import Defer, Deny, PlannedContact, Purpose, decide
from domain.money import MAX_PAYMENT_MINOR
from domain.profiles import load_profile
from domain.visits import RescheduleRequest, VisitCancel, VisitReport
from service import holds, payments, write_offs
from service import temporal_calls as calls
from service.api import OperationsErrors, Temporal
from service.auth import Principal, require
from service.state import app_sessions
from store import agencies
from store.accounts import account_snapshot
from store.audit import account_clock, audit
from store.contacts import live_gate_inputs
from store.models import PlacementRow
from workflows.messages import NegotiationRequest

router = APIRouter(tags=["agency"], route_class=OperationsErrors)

AgencyCaller = Annotated[Principal, Depends(require("agency_report"))]
Agent = Annotated[Principal, Depends(require("write"))]
Supervisor = Annotated[Principal, Depends(require("approve"))]


def _now() -> datetime:
    return datetime.now(UTC)


async def _signal_visit(client: Client, visit_id: str, name: str, arg: object) -> None:
    """A field visit's own workflow (``visit_id``); 409 once it has ended."""
    if not await calls.signal_workflow(client, visit_id, name, arg):
        raise HTTPException(status_code=409, detail=f"{visit_id} is not running")


# ---- field visits -------------------------------------------------------------------------------
def _own_visit(request: Request, visit_id: str, agency: str | None) -> agencies.VisitView:
    with app_sessions(request).begin() as s:
        visit = agencies.visit(s, visit_id)
    if visit is None or (agency is not None and visit.agency_id != agency):
        raise HTTPException(status_code=404, detail=f"no visit {visit_id!r}")
    return visit


@router.get("/agency/visits")
def agency_visits(request: Request, who: AgencyCaller) -> list[dict[str, Any]]:
    """The agency's visits: account, window, status (masked number only: the visit is at the door)."""
    with app_sessions(request).begin() as s:
        return [v.model_dump(mode="json") for v in agencies.visits_for_agency(s, who.name)]


@router.post("/agency/visits/{visit_id}/report", status_code=202)
async def report_visit(
    request: Request, visit_id: str, report: VisitReport, who: AgencyCaller, client: Temporal
) -> dict[str, str]:
    """The agency's report. 422 names the field (e.g. ``recording_ref`` is required); 409 once the visit ended."""
    visit = _own_visit(request, visit_id, who.name)
    if visit.status not in agencies.OPEN_VISIT_STATUSES:
        raise HTTPException(status_code=409, detail=f"visit {visit_id} is {visit.status}")
    report = report.model_copy(update={"agency_id": who.name})
    await _signal_visit(client, visit_id, "report_received", report)
    return {"visit_id": visit_id, "outcome": report.outcome.value, "status": "accepted"}


class CollectorIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    collector_id: CollectorId = Field(
        description="The badge ID of the person the agency sends: 3 to 32 letters, digits or hyphens"
    )


@router.put("/agency/visits/{visit_id}/collector")
def name_collector(request: Request, visit_id: str, body: CollectorIn, who: AgencyCaller) -> dict[str, Any]:
    """Name the collector the agency sends to this visit (again to send someone else), before its
    window ends. 422 names ``collector_id`` when its format is wrong; 409 once the visit is over."""
    visit = _own_visit(request, visit_id, who.name)
    now = _now()
    with app_sessions(request).begin() as s:
        clock = account_clock(s, visit.account_id)  # the window is on the account's clock
        try:
            named = agencies.set_collector(
                s, visit_id, body.collector_id, now, policy_now=clock.policy_now(now) if clock else now
            )
        except agencies.VisitOver as over:
            raise HTTPException(status_code=409, detail=str(over)) from None
        audit(
            s,
            at=now,
            clock="wall",
            account_id=visit.account_id,
            actor=f"agency:{who.name}",
            action="visit_collector",
            decision="collector_named",
            details={"visit": visit_id, "collector_id": body.collector_id},
        )
    return {
        "visit_id": visit_id,
        "collector_id": named.collector_id,
        "window_start": named.window_start.isoformat(),
        "window_end": named.window_end.isoformat(),
    }


class RescheduleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    day: date = Field(description="The day the debtor proposes (their own calendar)")


@router.post("/visits/{visit_id}/reschedule", status_code=202)
async def reschedule_visit(
    request: Request, visit_id: str, body: RescheduleIn, who: Agent, client: Temporal
) -> dict[str, str]:
    """The debtor proposed another day (by phone or reply); the visit workflow checks it against policy."""
    visit = _own_visit(request, visit_id, None)
    if visit.status not in agencies.OPEN_VISIT_STATUSES:
        raise HTTPException(status_code=409, detail=f"visit {visit_id} is {visit.status}")
    await _signal_visit(client, visit_id, "reschedule", RescheduleRequest(day=body.day, actor=who.name))
    return {"visit_id": visit_id, "proposed": body.day.isoformat()}


@router.post("/visits/{visit_id}/plan-instead", status_code=202)
async def plan_instead(request: Request, visit_id: str, who: Agent, client: Temporal) -> dict[str, str]:
    """The debtor asked for a payment plan instead: the account pauses for the negotiation, the visit is off."""
    visit = _own_visit(request, visit_id, None)
    if visit.status not in agencies.OPEN_VISIT_STATUSES:
        raise HTTPException(status_code=409, detail=f"visit {visit_id} is {visit.status}")
    ask = NegotiationRequest(channel="visit", note=f"instead of {visit_id}")
    await holds.account_signal(
        client, app_sessions(request), visit.account_id, "negotiation_requested", ask, "plan"
    )
    return {"visit_id": visit_id, "status": "cancelling"}


@router.post("/visits/{visit_id}/cancel", status_code=202)
async def cancel_visit(request: Request, visit_id: str, who: Supervisor, client: Temporal) -> dict[str, str]:
    visit = _own_visit(request, visit_id, None)
    cancel = VisitCancel(reason=f"cancelled by {who.name}"[:64])
    await _signal_visit(client, visit.visit_id, "cancel", cancel)
    return {"visit_id": visit_id, "status": "cancelling"}


# ---- placed accounts ----------------------------------------------------------------------------
def _own_placement(request: Request, account_id: str, agency: str) -> agencies.PlacementView:
    with app_sessions(request).begin() as s:
        placed = agencies.active_placement(s, account_id)
    if placed is None or placed.agency_id != agency:
        raise HTTPException(status_code=404, detail=f"account {account_id!r} is not placed with {agency}")
    return placed


@router.get("/agency/placements")
def agency_placements(request: Request, who: AgencyCaller) -> list[dict[str, Any]]:
    """The agency's active accounts with the name and number it needs (under its contract)."""
    with app_sessions(request).begin() as s:
        return [p.model_dump(mode="json") for p in agencies.placements_for_agency(s, who.name)]


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
        snap = account_snapshot(s, account_id)
        assert snap is not None
        state, ledger = live_gate_inputs(s, account_id, since=now - timedelta(days=8), now=now)
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
            audit(
                s,
                at=now,
                clock="wall",
                account_id=account_id,
                actor=f"agency:{who.name}",
                action="agency_call",
                decision="denied" if isinstance(verdict, Deny) else "deferred",
                rule=verdict.rule,
                details={"reference": call.reference},
            )
        else:
            agencies.record_agency_call(
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

    amount: int = Field(gt=0, le=MAX_PAYMENT_MINOR, description="Minor units")
    currency: str = Field(min_length=3, max_length=3)
    reference: str = Field(min_length=1, max_length=100)


def _held_by(request: Request, account_id: str, agency: str) -> None:
    """404 unless the agency holds the account or held it (what it collected before a recall or the
    account's closing still counts: it is recorded, and refunded if the account no longer owes it)."""
    with app_sessions(request).begin() as s:
        held = s.scalars(
            select(PlacementRow.placement_id)
            .where(PlacementRow.account_id == account_id, PlacementRow.agency_id == agency)
            .limit(1)
        ).first()
    if held is None:
        raise HTTPException(status_code=404, detail=f"account {account_id!r} is not placed with {agency}")


@router.post("/agency/placements/{account_id}/payments", status_code=202)
async def agency_payment(
    request: Request, account_id: str, payment: AgencyPayment, who: AgencyCaller, client: Temporal
) -> dict[str, Any]:
    """A payment the agency collected (the reference counts once): it flows into the account's workflow;
    once the account's run has ended it is recorded and queued for refund, and the answer is 409."""
    _held_by(request, account_id, who.name)
    taken = await payments.record_payment(
        client,
        account_id,
        payment.amount,
        payment.currency,
        f"{who.name}:{payment.reference}",
        f"agency:{who.name}",
        sessions=app_sessions(request),
    )
    return {
        "account_id": account_id,
        "amount": payment.amount,
        "status": "accepted",
        "closing": taken.closing,
        "note": taken.note,
    }


@router.post("/placements/{account_id}/recall", status_code=202)
async def recall(
    request: Request, account_id: str, body: RecallRequest, who: Supervisor, client: Temporal
) -> dict[str, str]:
    """404 when no agency holds the account; the agency it was taken from otherwise."""
    agency = await holds.recall(client, account_id, body.reason, who.name, sessions=app_sessions(request))
    return {"account_id": account_id, "recalled_from": agency}


@router.post("/accounts/{account_id}/closure", status_code=202)
async def close_account(
    request: Request, account_id: str, body: CloseRequest, who: Supervisor, client: Temporal
) -> dict[str, str]:
    """Close for a reason: written off, deceased or bankrupt (the last two send no final message).

    A write-off takes two supervisors: the first request answers ``awaiting_second_supervisor`` and
    changes nothing, a different supervisor's request closes it (:mod:`service.write_offs`).
    404 for an unknown account; 409 with its state once it is closed or closing (a placed account can
    still be closed: its agency's placement ends)."""
    return await write_offs.close_for(
        client, app_sessions(request), account_id, body.reason, body.note, who.name
    )
