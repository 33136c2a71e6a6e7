"""Signing in to the console and out of it: a server-side session per sign-in (the cookie holds its
random id only), failed sign-ins rate-limited, sign-out of one session or of every one.

Kept apart from the console's pages because it is the one part that sees API tokens.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from service import ratelimit
from service.auth import COOKIE, principal_for_token
from service.console import PREFIX, _base, _posted, page
from service.state import app_sessions, app_settings
from store.console_sessions import close_all, close_session, digest, open_session

router = APIRouter()


def _safe_next(target: str | None) -> str:
    if target and target.startswith(PREFIX) and not target.startswith("//"):
        return target
    return PREFIX


@router.get(f"{PREFIX}/login", response_class=HTMLResponse, include_in_schema=False)
async def login_form(request: Request, next: str | None = None) -> Response:
    return page(request, "console/login.html", _base(request, None, next=_safe_next(next), error=None))


def _secure(request: Request) -> bool:
    """``Secure`` when the browser talks https: directly, through the proxy uvicorn trusts
    (``--proxy-headers --forwarded-allow-ips``), or as the public URL says it does."""
    public = app_settings(request).public_base_url or ""
    return request.url.scheme == "https" or public.startswith("https://")


@router.post(f"{PREFIX}/login", include_in_schema=False)
async def login(request: Request) -> Response:
    """Sign in with an API token: a new server-side session (the cookie holds its random id only).

    Failed tries are limited per client address and per token tried; past the limit every try, right
    or wrong, waits (429 with ``Retry-After``), so guessing is slow whichever way it is spread."""
    form = await request.form()
    token = str(form.get("token", "")).strip()
    target = _safe_next(str(form.get("next", "")))
    settings = app_settings(request)
    keys = (f"addr:{ratelimit.client_address(request)}", f"token:{digest(token)}")
    wait = ratelimit.blocked_for("console-login", settings.login_attempts_per_minute, *keys)
    if wait is not None:
        context = _base(request, None, next=target, error=f"Too many failed sign-ins. Try again in {wait} s.")
        response = page(request, "console/login.html", context, status_code=429)
        response.headers["Retry-After"] = str(wait)
        return response
    principal = principal_for_token(request, token) if token else None
    if principal is None:
        ratelimit.count("console-login", settings.login_attempts_per_minute, *keys)
        context = _base(request, None, next=target, error="That token is not valid.")
        return page(request, "console/login.html", context, status_code=401)
    with app_sessions(request).begin() as s:
        if old := request.cookies.get(COOKIE):
            close_session(s, old)  # a new id at every sign-in: a planted id never becomes a session
        session_id = open_session(s, token=token, principal=principal.name, now=datetime.now(UTC))
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        session_id,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path="/",
        max_age=settings.console_session_hours * 3600,
    )
    return response


@router.post(f"{PREFIX}/logout", include_in_schema=False)
async def logout(request: Request) -> Response:
    """Sign this session out, or with ``everywhere`` every session of this operator."""
    posted = await _posted(request, "read")
    if isinstance(posted, Response):
        return posted
    who, form = posted
    with app_sessions(request).begin() as s:
        if form.get("everywhere"):
            close_all(s, who.name)
        else:
            close_session(s, request.cookies.get(COOKIE, ""))
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


__all__ = ["router"]
