"""The console's page of the events to the lender: every subscription with its backlog, dead letters
and recent failures, and (supervisors) a button to send a dead letter again.

Creating, disabling and rotating a subscription are API calls (``/api/events/subscriptions``): a secret
is shown once, to the program that will use it, not on a page a browser may keep in its history.
"""

from __future__ import annotations

import asyncio
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from service import events
from service.api import audit_read
from service.console import PREFIX, _base, _posted, _who, page
from service.state import app_sessions
from store.subscriptions import DeliveryNotFound, NotDead

router = APIRouter()
#: failing and dead deliveries listed per subscription
SHOWN = 20


@router.get(f"{PREFIX}/events", response_class=HTMLResponse, include_in_schema=False)
async def events_page(request: Request, notice: str | None = None, error: str | None = None) -> Response:
    who = _who(request, "read")
    if isinstance(who, Response):
        return who
    await asyncio.to_thread(audit_read, request, who.name, "console_read")
    sessions = app_sessions(request)

    def gather() -> list[dict[str, object]]:
        return [
            {
                "sub": sub,
                "dead": events.deliveries(sessions, sub.id, "dead", SHOWN),
                "failing": events.deliveries(sessions, sub.id, "failing", SHOWN),
            }
            for sub in events.listed(sessions)
        ]

    items = await asyncio.to_thread(gather)
    return page(request, "console/events.html", _base(request, who, items=items, notice=notice, error=error))


@router.post(PREFIX + "/events/deliveries/{delivery_id}/retry", include_in_schema=False)
async def retry(request: Request, delivery_id: int) -> Response:
    posted = await _posted(request, "approve")
    if isinstance(posted, Response):
        return posted
    who, _form = posted
    try:
        view = await asyncio.to_thread(events.retry, app_sessions(request), delivery_id, who.name)
    except (DeliveryNotFound, NotDead) as exc:
        return RedirectResponse(f"{PREFIX}/events?error={quote(str(exc))}", status_code=303)
    message = f"{view.account_id} #{view.seq} ({view.type}) will be sent again."
    return RedirectResponse(f"{PREFIX}/events?notice={quote(message)}", status_code=303)
