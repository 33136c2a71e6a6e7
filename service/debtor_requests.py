"""The debtor complains or disputes from their own page, and sees every request they made and its deadline.

``POST /me/complaint`` and ``POST /me/dispute`` (a verified session, its CSRF token) file the same hold an
agent's would (``service/holds.py``: contact stops at once, one acknowledgement with the case number and
the deadline) and open the case in the agents' inbox. The page then lists the account's cases: number,
kind, when the answer is due, and the answer once given (``service/selfservice.py``).
"""

from __future__ import annotations

import hashlib

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from service import holds
from service import operations as ops
from service.selfservice import Texts, _here, _render, _verified_post, friendly
from service.state import app_sessions, app_settings, temporal_client

router = APIRouter()

MAX_TEXT = 2000


async def _file(request: Request, kind: str) -> Response:
    posted = await _verified_post(request)
    if isinstance(posted, Response):
        return posted
    session, form, lang = posted
    t = Texts(lang)
    account_id = session.account_id
    text = form.get("text", "").strip()
    if not text or len(text) > MAX_TEXT:
        problem = t("request_problem_text", max=MAX_TEXT)
        return await _render(request, session.csrf, account_id, lang, problems=[problem], status_code=422)
    client, sessions, settings = await temporal_client(request), app_sessions(request), app_settings(request)
    # the same words posted twice (a double click, a reload) are one case
    key = f"page/{kind}/{account_id}/{hashlib.sha256(text.encode()).hexdigest()[:24]}"
    try:
        if kind == "complaint":
            await holds.file_complaint(
                client, account_id, text, "debtor", source="debtor", sessions=sessions, settings=settings,
                channel="page", source_key=key,
            )  # fmt: skip
        else:
            await holds.file_dispute(
                client, account_id, text, "debtor", sessions=sessions, settings=settings, channel="page",
                source_key=key,
            )  # fmt: skip
    except ops.AccountNotFound:
        return friendly(request, 404, "missing_title", "missing_body", lang)
    except ops.AccountClosed:
        problem = t("unavailable", phone=settings.callback_number)
        return await _render(request, session.csrf, account_id, lang, problems=[problem], status_code=409)
    return RedirectResponse(_here(lang, done=kind), status_code=303)


@router.post("/me/complaint", include_in_schema=False)
async def complain(request: Request) -> Response:
    return await _file(request, "complaint")


@router.post("/me/dispute", include_in_schema=False)
async def dispute(request: Request) -> Response:
    return await _file(request, "dispute")
