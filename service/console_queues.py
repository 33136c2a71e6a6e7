"""The console's queues: fee waivers waiting for a supervisor, and refunds waiting for a decision.

Apart from the account page because they are about many accounts at once and belong to supervisors:
an agent's fee waiver waits at ``/console/approvals`` until a *different* person approves it (four
eyes, :class:`service.operations.FourEyes`), and money taken beyond what was owed waits at
``/console/refunds``. Every decision is a CSRF-checked form (:func:`service.console._posted`) calling
the operations layer the API calls, audited under the supervisor's name.
"""

from __future__ import annotations

import asyncio
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from domain.plans import PlanProposal
from service import operations as ops
from service import payments, plans
from service.api import audit_read
from service.console import PREFIX, _base, _posted, _who, page
from service.state import app_sessions, temporal_client
from store.accounts import account_snapshot

router = APIRouter()


# ---- the supervisors' approval queue -----------------------------------------------------------------
def _currencies(sessions: sessionmaker[Session], account_ids: set[str]) -> dict[str, str]:
    with sessions.begin() as s:
        snaps = {a: account_snapshot(s, a) for a in account_ids}
    return {a: snap.currency for a, snap in snaps.items() if snap is not None}


@router.get(f"{PREFIX}/approvals", response_class=HTMLResponse, include_in_schema=False)
async def approvals(request: Request, notice: str | None = None, error: str | None = None) -> Response:
    who = _who(request, "approve")
    if isinstance(who, Response):
        return who
    await asyncio.to_thread(audit_read, request, who.name, "console_read")
    sessions = app_sessions(request)
    queue = await asyncio.to_thread(plans.waiver_queue, sessions, status="pending")
    currencies = await asyncio.to_thread(_currencies, sessions, {v.account_id for v in queue})
    items = []
    for view in queue:
        try:
            proposal: PlanProposal | None = PlanProposal.model_validate(view.proposal)
        except ValidationError:
            proposal = None
        items.append({"view": view, "proposal": proposal, "currency": currencies.get(view.account_id)})
    ctx = _base(request, who, items=items, notice=notice, error=error)
    return page(request, "console/approvals.html", ctx)


@router.post(PREFIX + "/approvals/{request_id}/{decision}", include_in_schema=False)
async def decide(request: Request, request_id: int, decision: str) -> Response:
    if decision not in ("approve", "reject"):
        return Response(status_code=404)
    posted = await _posted(request, "approve")
    if isinstance(posted, Response):
        return posted
    who, form = posted
    sessions = app_sessions(request)
    try:
        if decision == "approve":
            plan = await plans.approve_waiver(await temporal_client(request), sessions, request_id, who.name)
            message = f"Approved: plan {plan.plan_id} agreed."
        else:
            await plans.reject_waiver(sessions, request_id, who.name, str(form.get("note", "")).strip())
            message = f"Request {request_id} rejected."
    except (
        ops.WaiverNotFound,
        ops.WaiverAlreadyDecided,
        ops.FourEyes,
        ops.PlanRejected,
        ops.PlanConflict,
        ops.AccountClosed,
    ) as exc:
        return RedirectResponse(f"{PREFIX}/approvals?error={quote(str(exc))}", status_code=303)
    return RedirectResponse(f"{PREFIX}/approvals?notice={quote(message)}", status_code=303)


# ---- the refund queue ----------------------------------------------------------------------------------
REFUND_DECISIONS = ("refunded", "applied")


@router.get(f"{PREFIX}/refunds", response_class=HTMLResponse, include_in_schema=False)
async def refunds(request: Request, notice: str | None = None, error: str | None = None) -> Response:
    """Open refunds (any reading role); supervisors resolve them here."""
    who = _who(request, "read")
    if isinstance(who, Response):
        return who
    await asyncio.to_thread(audit_read, request, who.name, "console_read")
    queue = await asyncio.to_thread(payments.refund_queue, app_sessions(request), status="open")
    ctx = _base(request, who, items=queue, decisions=REFUND_DECISIONS, notice=notice, error=error)
    return page(request, "console/refunds.html", ctx)


@router.post(PREFIX + "/refunds/{refund_id}/resolve", include_in_schema=False)
async def resolve_refund(request: Request, refund_id: int) -> Response:
    """A supervisor's decision (CSRF-checked like every console form), audited under their name."""
    posted = await _posted(request, "approve")
    if isinstance(posted, Response):
        return posted
    who, form = posted
    status = str(form.get("status", ""))
    note = str(form.get("note", "")).strip()[:1000]
    try:
        view = await asyncio.to_thread(
            payments.resolve_refund, app_sessions(request), refund_id, status, note, who.name
        )
    except (ops.RefundNotFound, ops.RefundAlreadyResolved, ops.InvalidRequest) as exc:
        return RedirectResponse(f"{PREFIX}/refunds?error={quote(str(exc))}", status_code=303)
    message = f"Refund #{view.id} {view.status}."
    return RedirectResponse(f"{PREFIX}/refunds?notice={quote(message)}", status_code=303)
