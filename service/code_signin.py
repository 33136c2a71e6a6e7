"""Sign-in without a fresh link: the number on file gets a one-time code, the code opens a session.

Why it is built this way:

* **Any hour, no link needed.** A debtor who lost our text, opted out of texts or holds an expired
  link types their number at ``/me`` and gets a code at once, by text or by a call that reads it out
  (``service/code_sender.py``); the code opens the same server-side session a link opens, so the date
  of birth on file is asked next and everything after it is unchanged.
* **Why the date of birth still applies**: a code proves that someone holds the phone, which is what
  a link proves too. Phones are shared, lent and passed on with their numbers, and the right-party
  check exists for exactly the person who reads someone else's phone.
* **Nothing tells whether a number is on file.** The answer to "send me a code" is the same redirect
  and the same page ("if this number is on file, a code is on its way") for every well-formed
  number; a number on no account gets a decoy code that is stored, checked, counted and locked out
  like a real one (``store/signin_codes.py``), and the sending runs after the answer has gone. Pages
  before the code never use the account's language or anything else of it.
* **Limits**: codes per number and per client address per hour (``COLLECT_SIGNIN_CODES_PER_*``, one
  count whether or not the number is known), 5 wrong tries per number then a 15-minute lock-out, and
  wrong codes count as refusals of the client address like forged links do.
* **The code works only in the browser that asked**: its challenge is a random id in an HttpOnly,
  ``SameSite=Strict`` cookie (``/me/code`` only), so a page of another site can neither submit a code
  nor sign a victim's browser into someone else's account.
* **The number typed is read in the country chosen on the form** (``COLLECT_SIGNIN_COUNTRIES``; a
  number with its ``+`` code in any), with ``phonenumbers``; a malformed one is a form error that
  names the field and what is wrong with it.
"""

from __future__ import annotations

import asyncio
import re
import unicodedata
from datetime import UTC, datetime

import phonenumbers
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session, sessionmaker

from service import code_sender, ratelimit
from service import debtor_signin as signin
from service.console import page
from service.console_signin import secure_cookie
from service.selfservice import LANGS, NO_LEAK, Texts, _lang, _lang_names, strings
from service.state import app_sessions, app_settings
from store import debtor_sessions as ds
from store import signin_codes as codes
from store.audit import audit

router = APIRouter()

CHALLENGE = "collect_me_code"
CODE_PAGE = "/me/code"
_ALLOWED = re.compile(r"^[+\d\s().\-/]+$")


class PhoneProblem(ValueError):
    """A number that cannot be read: ``missing``, ``invalid`` (not a number) or ``digits`` (too many
    or too few for ``country``)."""

    def __init__(self, reason: str, country: str = "") -> None:
        self.reason = reason
        self.country = country
        super().__init__(f"phone: {reason}")


def normalise_phone(raw: str, country: str) -> str:
    """The E.164 form of a number keyed in as people do (spaces, dashes, brackets, full-width digits,
    with or without the ``+`` code); read in ``country`` when it has no ``+`` code."""
    text = unicodedata.normalize("NFKC", raw or "").strip()
    if not text:
        raise PhoneProblem("missing", country)
    if not _ALLOWED.match(text):  # letters are no part of a mobile number (phonenumbers would map them)
        raise PhoneProblem("invalid", country)
    try:
        parsed = phonenumbers.parse(text, country)
    except phonenumbers.NumberParseException:
        raise PhoneProblem("invalid", country) from None
    region = phonenumbers.region_code_for_country_code(parsed.country_code)
    if not phonenumbers.is_possible_number(parsed):
        raise PhoneProblem("digits", region if region != "ZZ" else country)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _now() -> datetime:
    return datetime.now(UTC)


def _country_name(t: Texts, code: str) -> str:
    key = f"country_{code}"
    return t(key) if key in strings()["en"] else code


def _countries(t: Texts, listed: list[str]) -> list[dict[str, str]]:
    return [
        {"code": c, "label": f"{_country_name(t, c)} (+{phonenumbers.country_code_for_region(c)})"}
        for c in listed
    ]


def _default_country(lang: str, listed: list[str]) -> str:
    return "CN" if lang == "zh-CN" and "CN" in listed else listed[0]


def _chosen(lang: str | None) -> str:
    """The language the debtor picked ("" if none: the form fields then carry none on)."""
    return lang if lang in LANGS else ""


def _context(request: Request, lang: str, **extra: object) -> dict[str, object]:
    """``lang``: the one picked, or "" (the page is then in English; nothing before the code may use
    the account's language, it would tell that the number is on file)."""
    st = app_settings(request)
    return {
        "t": Texts(_lang(lang, None)),
        "lang": _chosen(lang),
        "langs": LANGS,
        "lang_names": _lang_names(),
        "company": st.company_name,
        "callback": st.callback_number,
        **extra,
    }


def _html(request: Request, name: str, context: dict[str, object], status_code: int) -> HTMLResponse:
    response = page(request, name, context, status_code=status_code)
    response.headers.update(NO_LEAK)
    return response


def phone_form(
    request: Request,
    lang: str,
    *,
    problem: str | None = None,
    phone: str = "",
    country: str | None = None,
    via: str = "sms",
    status_code: int = 200,
) -> HTMLResponse:
    """``/me``: the number on file, the country it is read in, text or call."""
    listed = app_settings(request).signin_countries
    t = Texts(_lang(lang, None))
    context = _context(
        request,
        lang,
        problem=problem,
        phone=phone,
        via=via,
        country=country if country in listed else _default_country(_lang(lang, None), listed),
        countries=_countries(t, listed),
        or_link=t("code_or_link", phone=app_settings(request).callback_number),
    )
    return _html(request, "selfservice/landing.html", context, status_code)


def message(
    request: Request, status_code: int, title: str, body: str, lang: str, **values: object
) -> HTMLResponse:
    """A page that only says something (expired, locked, wait), with the way back to a new code."""
    t = Texts(_lang(lang, None))
    text = t(body, phone=app_settings(request).callback_number, **values)
    return _html(
        request, "selfservice/message.html", _context(request, lang, title=t(title), body=text), status_code
    )


def _minutes(seconds: float) -> int:
    return max(1, int(seconds + 59) // 60)


def _problem(t: Texts, exc: PhoneProblem, typed: str) -> str:
    if exc.reason == "missing":
        return t("code_phone_missing")
    if exc.reason == "digits":
        return t("code_phone_digits", value=typed.strip(), country=_country_name(t, exc.country))
    return t("code_phone_invalid", value=typed.strip())


def _issue(sessions: sessionmaker[Session], phone: str, via: str, now: datetime) -> codes.Issued:
    with sessions.begin() as s:
        return codes.issue(s, phone, via, now)


@router.post(CODE_PAGE, include_in_schema=False)
async def ask_for_code(request: Request) -> Response:
    """Send a code to the number typed if it is on file; the same answer whether or not it is."""
    form = await signin.form_of(request)
    lang = _chosen(form.get("lang"))
    t = Texts(_lang(lang, None))
    st = app_settings(request)
    typed = form.get("phone", "")
    country = form.get("country", "").upper()
    if country not in st.signin_countries:
        country = _default_country(t.lang, st.signin_countries)
    via = "voice" if form.get("via") == "voice" else "sms"
    try:
        phone = normalise_phone(typed, country)
    except PhoneProblem as exc:
        return phone_form(
            request,
            lang,
            problem=_problem(t, exc, typed),
            phone=typed[:40],
            country=country,
            via=via,
            status_code=422,
        )
    limits = {
        f"number:{codes.phone_digest(phone)}": st.signin_codes_per_number_per_hour,
        f"addr:{ratelimit.client_address(request)}": st.signin_codes_per_address_per_hour,
    }
    if (wait := ratelimit.take_hourly("signin_code", limits, storage=st.rate_limit_storage)) is not None:
        response = message(request, 429, "code_busy_title", "code_busy_body", lang, minutes=_minutes(wait))
        response.headers["Retry-After"] = str(wait)
        return response
    now = _now()
    try:
        issued = await asyncio.to_thread(_issue, app_sessions(request), phone, via, now)
    except codes.LockedOut as exc:
        wait = int((exc.until - now).total_seconds()) + 1
        response = message(
            request, 429, "code_locked_title", "code_locked_body", lang, minutes=_minutes(wait)
        )
        response.headers["Retry-After"] = str(wait)
        return response
    delivery = (
        code_sender.Delivery(issued.account_id, phone, issued.code, issued.language, via)
        if issued.code is not None and issued.account_id is not None
        else None
    )
    response = RedirectResponse(
        f"{CODE_PAGE}?lang={lang}" if lang else CODE_PAGE,
        status_code=303,
        background=code_sender.after_answer(request, phone, via, delivery),
    )
    response.set_cookie(
        CHALLENGE,
        issued.challenge,
        httponly=True,
        samesite="strict",
        secure=secure_cookie(request),
        path=CODE_PAGE,
        max_age=int(codes.TTL.total_seconds()),
    )
    response.headers.update(NO_LEAK)
    return response


@router.get(CODE_PAGE, response_class=HTMLResponse, include_in_schema=False)
async def code_page(request: Request, lang: str | None = None) -> Response:
    """Where the code is typed in; without a code asked for in this browser, back to ``/me``."""
    chosen = _chosen(lang)
    if not request.cookies.get(CHALLENGE):
        return RedirectResponse(f"/me?lang={chosen}" if chosen else "/me", status_code=303)
    return _html(request, "selfservice/code.html", _context(request, chosen, problem=None), 200)


def _check(
    sessions: sessionmaker[Session], challenge: str, code: str, now: datetime
) -> tuple[codes.Checked, str]:
    """The try, its audit line and, for the right code, the new session's id (else "")."""
    with sessions.begin() as s:
        checked = codes.check(s, challenge, code, now)
        session_id = ""
        if checked.outcome == "opened" and checked.account_id is not None:
            session_id = ds.open_session(s, checked.account_id, now)
            audit(
                s,
                at=now,
                clock="wall",
                account_id=checked.account_id,
                actor="debtor",
                action="self_service",
                decision="opened",
                details={"by": "code", "via": checked.channel},
            )
        elif checked.outcome in ("wrong", "locked"):
            audit(
                s,
                at=now,
                clock="wall",
                account_id=checked.account_id,  # None: a number on no account
                actor="debtor",
                action="signin_code",
                decision=checked.outcome,
                details={"left": checked.left} if checked.outcome == "wrong" else {},
            )
    return checked, session_id


@router.post(f"{CODE_PAGE}/verify", include_in_schema=False)
async def verify_code(request: Request) -> Response:
    """The code typed against the one this browser asked for: a session, or what went wrong."""
    form = await signin.form_of(request)
    lang = _chosen(form.get("lang"))
    t = Texts(_lang(lang, None))
    challenge = request.cookies.get(CHALLENGE, "")
    if (wait := ratelimit.refused_too_often(request, "selfservice")) is not None:
        return signin.busy(request, wait, lang)
    if not challenge:
        return message(request, 410, "code_expired_title", "code_expired_body", lang)
    code = re.sub(r"[\s\-]", "", unicodedata.normalize("NFKC", form.get("code", "")))
    if not re.fullmatch(rf"\d{{{codes.DIGITS}}}", code):
        context = _context(request, lang, problem=t("code_format"))
        return _html(request, "selfservice/code.html", context, 422)
    checked, session_id = await asyncio.to_thread(_check, app_sessions(request), challenge, code, _now())
    if checked.outcome == "opened":
        response: Response = RedirectResponse(
            f"{signin.PAGE}?lang={lang}" if lang else signin.PAGE, status_code=303
        )
        response.headers.update(NO_LEAK)
        signin.set_cookie(request, response, session_id)
    elif checked.outcome == "wrong":
        ratelimit.refused(request, "selfservice")
        context = _context(request, lang, problem=t("code_wrong", left=checked.left))
        return _html(request, "selfservice/code.html", context, 422)
    elif checked.outcome == "locked":
        ratelimit.refused(request, "selfservice")
        until = checked.locked_until or _now()
        wait = int((until - _now()).total_seconds()) + 1
        response = message(
            request, 429, "code_locked_title", "code_locked_body", lang, minutes=_minutes(wait)
        )
        response.headers["Retry-After"] = str(wait)
    else:
        response = message(request, 410, "code_expired_title", "code_expired_body", lang)
    response.delete_cookie(CHALLENGE, path=CODE_PAGE)
    return response
