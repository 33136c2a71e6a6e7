"""The public ``/verify`` page: "is this person at my door really collecting for you?"

Anyone may ask, without signing in (a debtor, a relative, a neighbour), so the page is built to help
them and nobody else:

* **Only yes or no.** Yes: the collector ID belongs to a person the named agency is sending to one of
  our accounts now (a visit scheduled or announced whose window has not ended, the agency's licence
  covering that day; :func:`domain.collectors.confirms`). Otherwise one and the same "we cannot
  confirm this person; call us at <number>": unknown agency, unknown or malformed ID, a finished or
  cancelled visit, an expired licence. Never an account, a name, an address or a time.
* **The same shape and the same time for every answer.** One template, one status code (200); the
  lookup runs the same query whether or not the agency exists, and the answer is held until
  :data:`ANSWER_SECONDS` after the request arrived, so neither the page nor the clock tells a known ID
  from an unknown one.
* **Rate-limited per client address** (``service/ratelimit.py``, ``refusals_per_minute``, like the
  other public debtor pages): every check counts, so trying IDs one after another is slow.
* **Audited**: a yes is written to the account's audit log (the lender sees that someone checked its
  visitor); a no is written without an account, with the reason, so impostors leave a trace.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session, sessionmaker

from domain.agencies import AgencyBook, find_agency, load_agencies
from domain.collectors import Answer, confirms, typed_collector_id
from service import debtor_signin as signin
from service import ratelimit
from service.console import page
from service.selfservice import LANGS, NO_LEAK, Texts, _lang_names
from service.state import app_sessions, app_settings
from store.agencies import collector_visits
from store.audit import audit

router = APIRouter()

PATH = "/verify"
SCOPE = "verify"
#: Every answer leaves no sooner than this after the request arrived (the lookup takes milliseconds).
ANSWER_SECONDS = 0.5
#: What a person may type in a field (longer input is cut: nothing we know is longer).
MAX_TYPED = 100


def _language(request: Request, asked: str | None) -> str:
    """The language asked for, else the browser's (Chinese for any ``zh``), else English."""
    if asked in LANGS:
        return asked  # type: ignore[return-value]
    accepted = request.headers.get("accept-language", "").lower()
    return "zh-CN" if accepted.startswith("zh") else "en"


def _page(
    request: Request,
    lang: str,
    *,
    answer: Answer | None = None,
    typed: dict[str, str] | None = None,
    agency_name: str = "",
    collector: str = "",
    status_code: int = 200,
    busy: int | None = None,
) -> HTMLResponse:
    st = app_settings(request)
    context = {
        "t": Texts(lang),
        "lang": lang,
        "langs": LANGS,
        "lang_names": _lang_names(),
        "company": st.company_name,
        "callback": st.callback_number,
        "agencies": [a.name for a in load_agencies(st.agencies_file).agencies],
        "typed": typed or {"collector_id": "", "agency": ""},
        "answer": answer,
        "agency_name": agency_name,
        "collector": collector,
        "busy": busy,
    }
    response = page(request, "selfservice/check.html", context, status_code=status_code)
    response.headers.update(NO_LEAK)
    if busy is not None:
        response.headers["Retry-After"] = str(busy)
    return response


@router.get(PATH, response_class=HTMLResponse, include_in_schema=False)
async def check_form(request: Request, lang: str | None = None) -> Response:
    return _page(request, _language(request, lang))


def answer_for(
    sessions: sessionmaker[Session], book: AgencyBook, agency_text: str, collector_text: str
) -> Answer:
    """Look the collector up and audit the answer. The same query runs for an agency nobody knows
    (an id that matches no row), so an unknown agency costs what a known one does."""
    agency = find_agency(book, agency_text)
    collector = typed_collector_id(collector_text)
    now = datetime.now(UTC)
    with sessions.begin() as s:
        visits = collector_visits(s, agency.id if agency else "", collector or "", now)
        answer = confirms(agency, collector, visits)
        audit(
            s,
            at=now,
            clock="wall",
            account_id=answer.account_id,
            actor="public",
            action="collector_check",
            decision="confirmed" if answer.confirmed else "not_confirmed",
            rule=None if answer.confirmed else answer.reason,
            details={"agency": agency.id if agency else None, "collector_id": collector},
        )
    return answer


@router.post(PATH, response_class=HTMLResponse, include_in_schema=False)
async def check(request: Request) -> Response:
    """Yes or "we cannot confirm", in one shape and no sooner than :data:`ANSWER_SECONDS`."""
    loop = asyncio.get_running_loop()
    arrived = loop.time()
    form = await signin.form_of(request)
    lang = _language(request, form.get("lang"))
    st = app_settings(request)
    keys = (f"addr:{ratelimit.client_address(request)}",)
    if (
        wait := ratelimit.blocked_for(SCOPE, st.refusals_per_minute, *keys, storage=st.rate_limit_storage)
    ) is not None:
        return _page(request, lang, status_code=429, busy=wait)
    ratelimit.count(SCOPE, st.refusals_per_minute, *keys, storage=st.rate_limit_storage)
    typed = {
        "collector_id": form.get("collector_id", "")[:MAX_TYPED],
        "agency": form.get("agency", "")[:MAX_TYPED],
    }
    book = load_agencies(st.agencies_file)
    answer = await asyncio.to_thread(
        answer_for, app_sessions(request), book, typed["agency"], typed["collector_id"]
    )
    agency = find_agency(book, typed["agency"]) if answer.confirmed else None
    await asyncio.sleep(max(0.0, ANSWER_SECONDS - (loop.time() - arrived)))
    return _page(
        request,
        lang,
        answer=answer,
        typed=typed,
        agency_name=agency.name if agency else "",
        collector=typed_collector_id(typed["collector_id"]) or "",
    )
