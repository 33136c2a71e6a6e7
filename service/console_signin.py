"""Signing in to the console and out of it: a server-side session per sign-in (the cookie holds its
random id only), failed sign-ins rate-limited, sign-out of one session or of every one.

Kept apart from the console's pages because it is the one part that sees API tokens.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

import httpx
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from service import oidc, ratelimit
from service.auth import COOKIE, principal_for_token
from service.console import PREFIX, _base, _posted, page
from service.state import app_sessions, app_settings
from store.console_sessions import close_all, close_session, digest, open_session

router = APIRouter()


def _safe_next(target: str | None) -> str:
    if target and target.startswith(PREFIX) and not target.startswith("//"):
        return target
    return PREFIX


def _form(request: Request, target: str, error: str | None, status_code: int = 200) -> HTMLResponse:
    sso = oidc.enabled(app_settings(request))
    context = _base(
        request, None, next=target, error=error, sso=sso, issuer=app_settings(request).oidc_issuer
    )
    return page(request, "console/login.html", context, status_code=status_code)


@router.get(f"{PREFIX}/login", response_class=HTMLResponse, include_in_schema=False)
async def login_form(request: Request, next: str | None = None) -> Response:
    return _form(request, _safe_next(next), None)


def _session_cookie(request: Request, response: Response, session_id: str) -> None:
    response.set_cookie(
        COOKIE,
        session_id,
        httponly=True,
        samesite="strict",
        secure=secure_cookie(request),
        path="/",
        max_age=app_settings(request).console_session_hours * 3600,
    )


@router.get(f"{PREFIX}/oidc/start", include_in_schema=False)
async def oidc_start(request: Request, next: str | None = None) -> Response:
    """Off to the identity provider, remembering this attempt in a signed cookie (state, nonce, PKCE)."""
    settings = app_settings(request)
    if not oidc.enabled(settings):
        return Response(status_code=404)
    try:
        url, pending = await oidc.start(request, settings, _safe_next(next))
    except httpx.HTTPError as exc:
        return _form(
            request, _safe_next(next), f"The sign-in service did not answer ({type(exc).__name__}).", 502
        )
    response = RedirectResponse(url, status_code=303)
    # Lax, not Strict: it must come back on the provider's redirect, a navigation from another site
    response.set_cookie(
        oidc.PENDING_COOKIE,
        pending,
        httponly=True,
        samesite="lax",
        secure=secure_cookie(request),
        path=oidc.CALLBACK,
        max_age=oidc.PENDING_SECONDS,
    )
    return response


@router.get(oidc.CALLBACK, include_in_schema=False)
async def oidc_callback(request: Request) -> Response:
    """The provider's answer: every check of :func:`service.oidc.finish`, then a session of our own."""
    settings = app_settings(request)
    if not oidc.enabled(settings):
        return Response(status_code=404)
    if (wait := ratelimit.refused_too_often(request, "oidc")) is not None:
        return _form(request, PREFIX, f"Too many failed sign-ins. Try again in {wait} s.", 429)
    try:
        verified = await oidc.finish(request, settings)
    except (oidc.SignInFailed, httpx.HTTPError) as exc:
        ratelimit.refused(request, "oidc")
        response = _form(request, PREFIX, f"Sign-in failed: {exc}", 401)
        response.delete_cookie(oidc.PENDING_COOKIE, path=oidc.CALLBACK)
        return response
    with app_sessions(request).begin() as s:
        if old := request.cookies.get(COOKIE):
            close_session(s, old)
        session_id = open_session(
            s,
            token="",
            principal=verified.principal.name,
            role=verified.principal.role.value,
            subject=verified.subject,
            now=datetime.now(UTC),
        )
    target = _safe_next(verified.next)
    # a page, not a redirect: the browser arrived from the provider's site, and a SameSite=Strict
    # cookie set now is sent only on a navigation that starts here
    response = HTMLResponse(
        f'<!doctype html><meta http-equiv="refresh" content="0;url={escape(target)}">'
        f'<title>Signed in</title><p>Signed in. <a href="{escape(target)}">Continue</a></p>'
    )
    _session_cookie(request, response, session_id)
    response.delete_cookie(oidc.PENDING_COOKIE, path=oidc.CALLBACK)
    return response


def secure_cookie(request: Request) -> bool:
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
    if oidc.enabled(settings):  # operators sign in with the organisation's account; tokens are for machines
        return _form(request, target, "Sign in with your organisation's account.", 403)
    keys = (f"addr:{ratelimit.client_address(request)}", f"token:{digest(token)}")
    wait = ratelimit.blocked_for(
        "console-login", settings.login_attempts_per_minute, *keys, storage=settings.rate_limit_storage
    )
    if wait is not None:
        response = _form(request, target, f"Too many failed sign-ins. Try again in {wait} s.", 429)
        response.headers["Retry-After"] = str(wait)
        return response
    principal = principal_for_token(request, token) if token else None
    if principal is None:
        ratelimit.count(
            "console-login", settings.login_attempts_per_minute, *keys, storage=settings.rate_limit_storage
        )
        return _form(request, target, "That token is not valid.", 401)
    with app_sessions(request).begin() as s:
        if old := request.cookies.get(COOKIE):
            close_session(s, old)  # a new id at every sign-in: a planted id never becomes a session
        session_id = open_session(s, token=token, principal=principal.name, now=datetime.now(UTC))
    response = RedirectResponse(target, status_code=303)
    _session_cookie(request, response, session_id)
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
