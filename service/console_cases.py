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
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from domain.cases import CaseKind
from service import cases as case_service
from service import leads
from service.api import audit_read
from service.console import PREFIX, _base, _posted, _who, page
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
    """``claim`` (it becomes yours), ``note`` (what you did), ``answer`` (a reply or a lead handled)."""
    if action not in ("claim", "note", "answer"):
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
    if found.kind not in ANSWERED_HERE:
        why = f"kind: a {found.kind.value} is answered by its decision on the account's page"
        return RedirectResponse(f"{here}?error={quote(why)}", status_code=303)
    first = await case_service.answer_case(await temporal_client(request), sessions, case_id, who.name, text)
    message = f"{found.number} answered" if first else f"{found.number} had been answered already"
    return RedirectResponse(f"{here}?notice={quote(message)}", status_code=303)
