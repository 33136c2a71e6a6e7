"""The debtor's way in: the link of a text opens a session and leaves the address bar; the date of
birth on file unlocks the account.

Why:

* **The link is used once per visit and then gone from the URL.** ``/me/<token>`` checks the
  signature (403 forged, 410 expired or revoked), opens a server-side session (the cookie holds a
  random id, ``HttpOnly``, ``Secure`` behind https, ``SameSite=Lax`` so it survives the tap from a
  messaging app) and redirects to ``/me/account``. The access log shows ``/me/<link>`` instead of the
  token (:class:`RedactLinks`), so a log reader cannot open anybody's page.
* **Nothing about a debt before the debtor is verified** (right-party verification, issue 16): a
  phone that someone else reads, or a forwarded text, shows only a form asking for the date of birth
  on file. A wrong date says it does not match and nothing else; five close the session. An account
  without a date on file cannot be verified online: the page says to call.
* **Every post carries the session's CSRF token**, and signing out everywhere closes every session of
  the account and voids every link sent so far (``store/debtor_sessions.py``).
"""

from __future__ import annotations

import hmac
import logging
import re
from datetime import UTC, date, datetime

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session, sessionmaker

from service import links, ratelimit
from service.console_signin import secure_cookie
from service.state import app_sessions, app_settings
from store import debtor_sessions as ds
from store.audit import audit

router = APIRouter()

COOKIE = "collect_me"
PAGE = "/me/account"


def _now() -> datetime:
    return datetime.now(UTC)


def set_cookie(request: Request, response: Response, session_id: str) -> None:
    response.set_cookie(
        COOKIE,
        session_id,
        httponly=True,
        samesite="lax",
        secure=secure_cookie(request),
        path="/me",
        max_age=int(ds.ABSOLUTE.total_seconds()),
    )


def current(request: Request) -> tuple[str, ds.DebtorSession] | None:
    """The cookie's session id and its live session, if any."""
    session_id = request.cookies.get(COOKIE)
    if not session_id:
        return None
    with app_sessions(request).begin() as s:
        found = ds.live_session(s, session_id, _now())
    return (session_id, found) if found is not None else None


async def form_of(request: Request) -> dict[str, str]:
    return {k: str(v) for k, v in (await request.form()).items()}


def busy(request: Request, wait: int, lang: str) -> Response:
    """429 after too many refusals from this address (forged links, wrong dates), with ``Retry-After``."""
    from service.selfservice import friendly

    response = friendly(request, 429, "busy_title", "busy_body", lang)
    response.headers["Retry-After"] = str(wait)
    return response


def csrf_ok(found: ds.DebtorSession, form: dict[str, str]) -> bool:
    return hmac.compare_digest(found.csrf.encode(), str(form.get("csrf", "")).encode())


def open_from_link(request: Request, token: str) -> tuple[str, str] | str:
    """(account id, new session id) for a good link, else the reason: forged, expired, revoked, off."""
    secret = app_settings(request).link_secret
    if secret is None or not secret.get_secret_value():
        return "off"
    try:
        account_id, expires_at = links.opened(token, secret, now=_now())
    except links.LinkExpired:
        return "expired"
    except links.LinkForged:
        ratelimit.refused(request, "selfservice")  # guessing links: slowed per client address
        return "forged"
    issued = links.issued_at(expires_at, app_settings(request).link_ttl_days)
    with app_sessions(request).begin() as s:
        revoked = ds.links_revoked_at(s, account_id)
        if revoked is not None and issued <= revoked:
            return "expired"
        session_id = ds.open_session(s, account_id, _now())
        audit(
            s,
            at=_now(),
            clock="wall",
            account_id=account_id,
            actor="debtor",
            action="self_service",
            decision="opened",
            details={"by": "link"},
        )
    return account_id, session_id


def _verify(
    sessions: sessionmaker[Session], session_id: str, account_id: str, born: date
) -> tuple[bool, int]:
    now = _now()
    with sessions.begin() as s:
        matched, failures = ds.verify(s, session_id, born, now)
        # the try is audited (never the date keyed in)
        audit(
            s,
            at=now,
            clock="wall",
            account_id=account_id,
            actor="debtor",
            action="verify",
            decision="matched" if matched else "failed",
            details={"channel": "web"},
        )
    return matched, failures


@router.post("/me/verify", include_in_schema=False)
async def verify(request: Request) -> Response:
    """The date of birth keyed in against the one on file; the page answers nothing about a debt."""
    from service.selfservice import friendly, verification_page

    form = await form_of(request)
    lang = form.get("lang", "")
    found = current(request)
    if found is None:
        return friendly(request, 401, "session_title", "session_body", lang)
    session_id, session = found
    if not csrf_ok(session, form):
        return friendly(request, 403, "forged_title", "session_body", lang)
    if (wait := ratelimit.refused_too_often(request, "selfservice")) is not None:
        return busy(request, wait, lang)
    try:
        born = date.fromisoformat(form.get("born", "").strip())
    except ValueError:
        return verification_page(request, session, lang, problem="verify_format", status_code=422)
    matched, failures = _verify(app_sessions(request), session_id, session.account_id, born)
    if matched:
        return RedirectResponse(f"{PAGE}?lang={lang}" if lang else PAGE, status_code=303)
    ratelimit.refused(request, "selfservice")
    if failures >= ds.MAX_FAILURES:
        response = friendly(request, 403, "verify_locked_title", "verify_locked_body", lang)
        response.delete_cookie(COOKIE, path="/me")
        return response
    return verification_page(
        request, session, lang, problem="verify_failed", left=ds.MAX_FAILURES - failures, status_code=422
    )


@router.post("/me/sign-out", include_in_schema=False)
async def sign_out(request: Request) -> Response:
    from service.selfservice import friendly

    form = await form_of(request)
    found = current(request)
    if found is not None and csrf_ok(found[1], form):
        with app_sessions(request).begin() as s:
            ds.close_session(s, found[0])
    response = friendly(request, 200, "signed_out_title", "signed_out_body", form.get("lang", ""))
    response.delete_cookie(COOKIE, path="/me")
    return response


@router.post("/me/sign-out-everywhere", include_in_schema=False)
async def sign_out_everywhere(request: Request) -> Response:
    """Every session of the account closed, and every link sent so far void (the next text brings one)."""
    from service.selfservice import friendly

    form = await form_of(request)
    found = current(request)
    if found is None or not csrf_ok(found[1], form) or not found[1].verified:
        return friendly(request, 403, "forged_title", "session_body", form.get("lang", ""))
    now = _now()
    with app_sessions(request).begin() as s:
        closed = ds.revoke_everything(s, found[1].account_id, now)
        audit(
            s,
            at=now,
            clock="wall",
            account_id=found[1].account_id,
            actor="debtor",
            action="self_service",
            decision="signed_out_everywhere",
            details={"sessions": closed},
        )
    response = friendly(request, 200, "signed_out_title", "signed_out_everywhere_body", form.get("lang", ""))
    response.delete_cookie(COOKIE, path="/me")
    return response


@router.get("/me/{token}", include_in_schema=False)
async def open_link(request: Request, token: str, lang: str | None = None) -> Response:
    """The link of a text: a new session, then the account's page without the token in the address."""
    from service.selfservice import friendly

    if (wait := ratelimit.refused_too_often(request, "selfservice")) is not None:
        return busy(request, wait, lang or "")
    opened = open_from_link(request, token)
    if isinstance(opened, str):
        title, body, code = {
            "off": ("landing_title", "landing_body", 404),
            "expired": ("expired_title", "expired_body", 410),
            "forged": ("forged_title", "forged_body", 403),
        }[opened]
        return friendly(request, code, title, body, lang or "")
    _, session_id = opened
    response = RedirectResponse(f"{PAGE}?lang={lang}" if lang else PAGE, status_code=303)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    set_cookie(request, response, session_id)
    return response


# ---- the access log ---------------------------------------------------------------------------------
_LINK = re.compile(r"/me/[A-Za-z0-9][A-Za-z0-9_.-]*\.[0-9a-z]+\.[A-Za-z0-9_-]+")


class RedactLinks(logging.Filter):
    """``/me/<token>`` in uvicorn's access lines becomes ``/me/<link>``: a log is no key to a page."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_LINK.sub("/me/<link>", a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = _LINK.sub("/me/<link>", record.msg)
        return True


def install_log_redaction() -> None:
    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactLinks) for f in logger.filters):
        logger.addFilter(RedactLinks())
