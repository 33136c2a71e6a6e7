"""The agents' inbox: work queues of cases (mine, team, overdue, escalated) and a case's page.

Every request a debtor makes is a case (``service/cases.py``); here an agent claims one, notes what was
done, and answers it. A complaint or dispute is answered by its decision (the account page's actions:
the same functions the API and the CLI call), a plan request by a plan agreed or declined; a free-text
reply or an emergency contact's lead is answered here, with what was done. Supervisors see the escalated
queue; every read and write is audited under the signed-in person's name.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from domain.cases import CaseKind
from service import cases as case_service
from service import holds, leads
from service.api import audit_read
from service.console import PREFIX, _base, _posted, _who, page
from service.operations import AccountClosed, AccountNotFound, InvalidRequest, NothingToDecide
from service.state import app_sessions, temporal_client
from store import cases as store

router = APIRouter()

#: Kinds answered on the case page itself; the others by their decision on the account's page.
ANSWERED_HERE = (CaseKind.INBOUND_TEXT, CaseKind.EMERGENCY_REPLY)
VIEWS = tuple(v.value for v in store.View)


@router.get(f"{PREFIX}/queue", response_class=HTMLResponse, include_in_schema=False)
async def queue(request: Request, view: str = "mine") -> Response:
    who = _who(request, "read")
    if isinstance(who, Response):
        return who
    chosen = store.View(view) if view in VIEWS else store.View.MINE
    await asyncio.to_thread(audit_read, request, who.name, "console_read")
    sessions = app_sessions(request)

    def read() -> tuple[list[store.CaseView], dict[str, int]]:
        with sessions.begin() as s:
            counts = {v.value: len(store.queue(s, v, who.name)) for v in store.View}
            return store.queue(s, chosen, who.name), counts

    items, counts = await asyncio.to_thread(read)
    ctx = _base(
        request, who, items=items, view=chosen.value, views=VIEWS, counts=counts, now=datetime.now(UTC)
    )
    return page(request, "console/queue.html", ctx)


@router.get(PREFIX + "/cases/{case_id}", response_class=HTMLResponse, include_in_schema=False)
async def case_page(
    request: Request, case_id: int, notice: str | None = None, error: str | None = None
) -> Response:
    who = _who(request, "read")
    if isinstance(who, Response):
        return who
    sessions = app_sessions(request)

    def read() -> tuple[store.CaseView | None, list[store.CaseEvent]]:
        with sessions.begin() as s:
            return store.case(s, case_id), store.history(s, case_id)

    found, events = await asyncio.to_thread(read)
    if found is None:
        return Response(status_code=404)
    found_leads = await asyncio.to_thread(leads.leads_of, sessions, found)  # an emergency contact's numbers
    await asyncio.to_thread(audit_read, request, who.name, "console_read", account=found.account_id)
    ctx = _base(
        request, who, case=found, events=events, notice=notice, error=error,
        answered_here=found.kind in ANSWERED_HERE, leads=found_leads,
    )  # fmt: skip
    return page(request, "console/case.html", ctx)


@router.post(PREFIX + "/cases/{case_id}/{action}", include_in_schema=False)
async def case_action(request: Request, case_id: int, action: str) -> Response:
    """``claim`` (it becomes yours), ``note`` (what you did), ``answer`` (a reply or a lead handled),
    ``decline`` / ``escalate`` (a plan request answered without a plan: the debtor is told)."""
    if action not in ("claim", "note", "answer", "decline", "escalate"):
        return Response(status_code=404)
    posted = await _posted(request, "write")
    if isinstance(posted, Response):
        return posted
    who, form = posted
    here = f"{PREFIX}/cases/{case_id}"
    text = str(form.get("text", "")).strip()
    sessions = app_sessions(request)
    with sessions.begin() as s:
        found = store.case(s, case_id)
    if found is None:
        return Response(status_code=404)
    now = datetime.now(UTC)
    if action in ("note", "answer") and not text:
        return RedirectResponse(
            f"{here}?error={quote(f'text: say what was done ({action})')}", status_code=303
        )
    if action == "claim":
        with sessions.begin() as s:
            store.claim(s, case_id, who.name, now)
        return RedirectResponse(f"{here}?notice={quote(f'{found.number} is yours')}", status_code=303)
    if action == "note":
        with sessions.begin() as s:
            store.note(s, case_id, who.name, text, now)
        return RedirectResponse(f"{here}?notice={quote('Noted')}", status_code=303)
    if action in ("decline", "escalate"):
        return await _plan_answer(request, who.name, found, action, form)
    if found.kind not in ANSWERED_HERE:
        why = f"kind: a {found.kind.value} is answered by its decision on the account's page"
        return RedirectResponse(f"{here}?error={quote(why)}", status_code=303)
    client = await temporal_client(request)
    if form.get("send") and found.account_id is not None:  # the answer is also texted to the debtor
        try:
            await holds.reply_to_debtor(client, sessions, found, text, who.name)
        except (InvalidRequest, AccountClosed, AccountNotFound) as err:
            return RedirectResponse(f"{here}?error={quote(str(err))}", status_code=303)
    first = await case_service.answer_case(client, sessions, case_id, who.name, text)
    message = f"{found.number} answered" if first else f"{found.number} had been answered already"
    return RedirectResponse(f"{here}?notice={quote(message)}", status_code=303)


async def _plan_answer(
    request: Request, person: str, found: store.CaseView, action: str, form: Any
) -> Response:
    """A plan request declined (why) or escalated (by when): ``holds.answer_plan_request``, as the API."""
    here = f"{PREFIX}/cases/{found.id}"
    if found.kind != CaseKind.PLAN_REQUEST or found.account_id is None:
        return RedirectResponse(
            f"{here}?error={quote('kind: only a plan request is declined or escalated')}", 303
        )
    try:
        days = int(str(form.get("days", "2")).strip() or "2")
    except ValueError:
        return RedirectResponse(f"{here}?error={quote('days: a whole number from 1 to 30')}", 303)
    try:
        told = await holds.answer_plan_request(
            await temporal_client(request), found.account_id,
            "declined" if action == "decline" else "escalated", person,
            reason=str(form.get("text", "")).strip(), days=days, sessions=app_sessions(request),
        )  # fmt: skip
    except InvalidRequest as err:
        return RedirectResponse(f"{here}?error={quote(str(err))}", 303)
    except (NothingToDecide, AccountClosed, AccountNotFound) as err:
        return RedirectResponse(f"{here}?error={quote(str(err))}", 303)
    return RedirectResponse(f"{here}?notice={quote(f'{found.number}: {told}')}", 303)
