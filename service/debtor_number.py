"""The debtor updates their own number on their page: a code to the new number, keyed in here.

Why it is built this way:

* **Only a verified session** (the link or a sign-in code, then the date of birth on file) may give
  a number for the account, with the session's CSRF token on every post.
* **The new number proves itself**: it is recorded as unverified (``service/contact_numbers.py``)
  and gets a one-time code at once, by text or by a call reading it (the debtor chooses, and a text
  that cannot reach is followed by the call); until the code is keyed in here, every message keeps
  going to the number we had. The right code puts it on file and tells the account's run.
* **A number an agent recorded waits here too**: the debtor told an agent a new number, or an
  emergency contact passed one on; its code can be keyed in on this page as well as read to an agent.
* **The sign-in's limits and lock-out**: codes per number per hour, 5 wrong codes lock the number out
  for 15 minutes, every wrong code counts as a refusal of the client address.
* Both languages (``strings.toml``), the numbers shown masked, nothing about the debt on this page.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from domain.numbers import ConfirmedVia, NumberSource
from service import contact_numbers as numbers
from service import operations as ops
from service import ratelimit
from service.code_signin import PhoneProblem, _countries, _default_country, _problem, message, normalise_phone
from service.console import page
from service.debtor_signin import busy
from service.selfservice import LANGS, NO_LEAK, Texts, _lang, _lang_names, _session, _verified_post, friendly
from service.state import app_sessions, app_settings, temporal_client
from store.accounts import account_snapshot
from store.contact_changes import number_status

router = APIRouter()
PAGE = "/me/number"


def _facts(request: Request, account_id: str) -> tuple[str, str, Any] | None:
    """The account's language, the masked number on file and a pending number (None: no account)."""
    with app_sessions(request).begin() as s:
        snap = account_snapshot(s, account_id)
        if snap is None:
            return None
        status = number_status(s, account_id)
    return snap.language.value, status.masked_phone, status.pending


async def _page(
    request: Request,
    csrf: str,
    account_id: str,
    lang: str | None,
    *,
    problem: str | None = None,
    code_problem: str | None = None,
    phone: str = "",
    country: str | None = None,
    via: str = "sms",
    status_code: int = 200,
) -> HTMLResponse:
    facts = await asyncio.to_thread(_facts, request, account_id)
    if facts is None:
        return friendly(request, 404, "missing_title", "missing_body", lang or "")
    language, on_file, pending = facts
    chosen = _lang(lang, language)
    t = Texts(chosen)
    st = app_settings(request)
    listed = st.signin_countries
    context = {
        "t": t,
        "lang": chosen,
        "langs": LANGS,
        "lang_names": _lang_names(),
        "company": st.company_name,
        "callback": st.callback_number,
        "csrf": csrf,
        "on_file": on_file,
        "pending": pending,
        "pending_via": (t.number_by_voice if pending.code_via == "voice" else t.number_by_sms)
        if pending
        else "",
        "problem": problem,
        "code_problem": code_problem,
        "phone": phone,
        "via": via,
        "country": country if country in listed else _default_country(chosen, listed),
        "countries": _countries(t, listed),
    }
    response = page(request, "selfservice/number.html", context, status_code=status_code)
    response.headers.update(NO_LEAK)
    return response


def _back(lang: str, **query: str) -> RedirectResponse:
    extra = "".join(f"&{k}={v}" for k, v in query.items())
    response = RedirectResponse(f"{PAGE}?lang={lang}{extra}", status_code=303)
    response.headers.update(NO_LEAK)
    return response


@router.get(PAGE, response_class=HTMLResponse, include_in_schema=False)
async def number_page(request: Request, lang: str | None = None) -> Response:
    """The number on file, a new number waiting for its code (its code form), and a form for a new one."""
    session = _session(request, lang)
    if isinstance(session, Response):
        return session
    if not session.verified:  # the date of birth first, on the account's page
        return RedirectResponse(f"/me/account?lang={lang}" if lang else "/me/account", status_code=303)
    return await _page(request, session.csrf, session.account_id, lang)


def _number_problem(t: Texts, exc: numbers.NumberProblem, phone: str) -> str:
    if "already the number on file" in exc.reason:
        return t("number_same")
    if "emergency contact" in exc.reason:
        return t("number_own")
    if "region" in exc.reason:
        return t("number_unplaced", phone=phone)
    return t("code_phone_invalid", value=phone)


@router.post(PAGE, include_in_schema=False)
async def give_number(request: Request) -> Response:
    """A new number for the account: recorded unverified, a code sent to it at once."""
    posted = await _verified_post(request)
    if isinstance(posted, Response):
        return posted
    session, form, lang = posted
    t = Texts(lang)
    st = app_settings(request)
    typed, via = form.get("phone", ""), "voice" if form.get("via") == "voice" else "sms"
    country = form.get("country", "").upper()
    if country not in st.signin_countries:
        country = _default_country(lang, st.signin_countries)
    again: dict[str, Any] = {"phone": typed[:40], "country": country, "via": via, "status_code": 422}
    try:
        phone = normalise_phone(typed, country)
    except PhoneProblem as exc:
        return await _page(
            request, session.csrf, session.account_id, lang, problem=_problem(t, exc, typed), **again
        )
    try:
        await numbers.record_number(
            request.app, await temporal_client(request), app_sessions(request), st, session.account_id, phone,
            actor="debtor", source=NumberSource.DEBTOR, via=via,
        )  # fmt: skip
    except numbers.NumberProblem as exc:
        problem = _number_problem(t, exc, typed.strip())
        return await _page(request, session.csrf, session.account_id, lang, problem=problem, **again)
    except numbers.Busy as exc:
        return _wait(request, "code_busy_title", "code_busy_body", exc.seconds, lang)
    except numbers.CodeRefused as exc:
        return _wait(request, "code_locked_title", "code_locked_body", exc.wait, lang)
    except (ops.AccountClosed, ops.AccountNotFound):
        problem = t("unavailable", phone=st.callback_number)
        return await _page(
            request, session.csrf, session.account_id, lang, problem=problem, **{**again, "status_code": 409}
        )
    return _back(lang, sent="1")


def _wait(request: Request, title: str, body: str, seconds: int, lang: str) -> Response:
    """429 with ``Retry-After``: too many codes for the number this hour, or the number locked out."""
    response = message(request, 429, title, body, lang, minutes=max(1, (seconds + 59) // 60))
    response.headers["Retry-After"] = str(seconds)
    return response


@router.post(f"{PAGE}/code", include_in_schema=False)
async def new_code(request: Request) -> Response:
    """A new code for the number that waits (the previous one stops working)."""
    posted = await _verified_post(request)
    if isinstance(posted, Response):
        return posted
    session, form, lang = posted
    pending = await asyncio.to_thread(numbers.pending_of, app_sessions(request), session.account_id)
    if pending is None:
        return _back(lang)
    via = "voice" if form.get("via") == "voice" else "sms"
    try:
        await numbers.send_code(
            request.app, app_sessions(request), app_settings(request), session.account_id, pending.id,
            actor="debtor", via=via,
        )  # fmt: skip
    except numbers.NotPending:
        return _back(lang)
    except numbers.Busy as exc:
        return _wait(request, "code_busy_title", "code_busy_body", exc.seconds, lang)
    except numbers.CodeRefused as exc:
        return _wait(request, "code_locked_title", "code_locked_body", exc.wait, lang)
    return _back(lang, sent="1")


@router.post(f"{PAGE}/confirm", include_in_schema=False)
async def confirm(request: Request) -> Response:
    """The code keyed in: the number goes on file, and the account's page says so."""
    posted = await _verified_post(request)
    if isinstance(posted, Response):
        return posted
    session, form, lang = posted
    t = Texts(lang)
    if (wait := ratelimit.refused_too_often(request, "selfservice")) is not None:
        return busy(request, wait, lang)
    sessions = app_sessions(request)
    pending = await asyncio.to_thread(numbers.pending_of, sessions, session.account_id)
    if pending is None:
        return _back(lang)
    try:
        await numbers.confirm_number(
            await temporal_client(request), sessions, session.account_id, pending.id, form.get("code", ""),
            actor="debtor", via=ConfirmedVia.PAGE,
        )  # fmt: skip
    except numbers.NotPending:
        return _back(lang)
    except numbers.CodeRefused as exc:
        if exc.outcome == "format":
            problem, code = t("code_format"), 422
        elif exc.outcome == "wrong":
            ratelimit.refused(request, "selfservice")
            problem, code = t("code_wrong", left=exc.left), 422
        elif exc.outcome == "locked":
            ratelimit.refused(request, "selfservice")
            return _wait(request, "code_locked_title", "code_locked_body", exc.wait, lang)
        else:
            problem, code = t("number_expired"), 410
        return await _page(
            request, session.csrf, session.account_id, lang, code_problem=problem, status_code=code
        )
    response = RedirectResponse(f"/me/account?lang={lang}&done=number", status_code=303)
    response.headers.update(NO_LEAK)
    return response
