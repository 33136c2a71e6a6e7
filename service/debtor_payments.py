"""The debtor pays from their own page: choose what to pay, go to the provider, come back to a receipt.

``POST /me/pay`` (a verified session, its CSRF token) opens a checkout for the balance, the instalment
due next or an amount of the debtor's own (``service.checkout.choices``) and sends the browser to the
provider's page. ``GET /me/paid/{checkout_id}`` is where the provider sends it back: it shows the receipt
once the provider's signed webhook has completed the checkout (``service.checkout.webhook``), and says
it is waiting until then. Nothing the browser says makes a payment: only the webhook does.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from domain.accounts import Mode
from domain.money import format_minor
from service import accounts
from service import operations as ops
from service import temporal_calls as calls
from service.checkout import provider_of
from service.checkout.choices import AmountProblem, amount_for, pay_choices
from service.checkout.provider import CheckoutRequest
from service.console import page
from service.selfservice import (
    LANGS,
    NO_LEAK,
    Texts,
    _lang,
    _lang_names,
    _render,
    _session,
    _snapshot_facts,
    _verified_post,
    friendly,
    verification_page,
)
from service.state import app_sessions, app_settings, temporal_client
from store import checkouts as store
from store.audit import audit

router = APIRouter()


def _origin(request: Request) -> str:
    """Where the provider sends the debtor back: the self-service address's origin, else this request's."""
    configured = urlsplit(app_settings(request).self_service_url)
    if configured.scheme and configured.netloc:
        return f"{configured.scheme}://{configured.netloc}"
    return str(request.base_url).rstrip("/")


@router.post("/me/pay", include_in_schema=False)
async def pay(request: Request) -> Response:
    posted = await _verified_post(request)
    if isinstance(posted, Response):
        return posted
    session, form, lang = posted
    t = Texts(lang)
    account_id = session.account_id
    provider = provider_of(request.app)
    sessions = app_sessions(request)
    client = await temporal_client(request)
    unavailable = t("pay_unavailable", phone=app_settings(request).callback_number)
    if provider is None:
        return await _render(request, session.csrf, account_id, lang, problems=[unavailable], status_code=409)
    try:
        status = await accounts.account_status(client, account_id, sessions=sessions)
    except ops.AccountNotFound:
        return friendly(request, 404, "missing_title", "missing_body", lang)
    except ops.AccountClosed:
        return friendly(request, 409, "missing_title", "missing_body", lang)
    choices = pay_choices(status)
    if choices is not None and (status.mode == Mode.CLOSED or status.closing):
        if not await calls.running(client, account_id):  # an ended run answers queries too
            choices = None  # money sent now would only go to the refund queue
    if choices is None:
        return await _render(
            request, session.csrf, account_id, lang, problems=[t.pay_nothing], status_code=409
        )
    try:
        purpose, amount = amount_for(choices, form.get("what", ""), form.get("amount", ""))
    except AmountProblem as err:
        problem = t(f"pay_problem_{err.field}", reason=err.reason)
        return await _render(request, session.csrf, account_id, lang, problems=[problem], status_code=422)
    now = datetime.now(UTC)
    with sessions.begin() as s:
        opened = store.open_checkout(
            s, account_id=account_id, provider=provider.name, purpose=purpose.value,
            amount_minor=amount, currency=status.currency, now=now,
        )  # fmt: skip
    origin = _origin(request)
    description = t(
        "pay_description",
        company=app_settings(request).company_name,
        amount=format_minor(amount, status.currency),
    )
    try:
        hosted = await provider.open(
            CheckoutRequest(
                checkout_id=opened.id, account_id=account_id, amount=amount, currency=status.currency,
                description=description, language=lang,
                success_url=f"{origin}/me/paid/{opened.id}?lang={quote(lang)}",
                cancel_url=f"{origin}/me/account?lang={quote(lang)}&done=cancelled",
            )
        )  # fmt: skip
    except Exception:  # the provider is down or refused: nothing was taken, say how else to pay
        return await _render(request, session.csrf, account_id, lang, problems=[unavailable], status_code=502)
    with sessions.begin() as s:
        store.attach_session(s, opened.id, hosted.session_id)
        audit(
            s, at=now, clock="wall", account_id=account_id, actor="debtor", action="checkout_opened",
            decision=provider.name, details={"checkout_id": opened.id, "purpose": purpose.value,
                                             "amount": amount, "currency": status.currency},
        )  # fmt: skip
    return RedirectResponse(hosted.url, status_code=303)


@router.get("/me/paid/{checkout_id}", response_class=HTMLResponse, include_in_schema=False)
async def paid(request: Request, checkout_id: str, lang: str | None = None) -> Response:
    """The receipt, once the provider's webhook said paid; until then a page that looks again."""
    session = _session(request, lang)
    if isinstance(session, Response):
        return session
    if not session.verified:
        return verification_page(request, session, lang)
    sessions = app_sessions(request)
    with sessions.begin() as s:
        found = store.checkout(s, checkout_id)
    facts = await asyncio.to_thread(_snapshot_facts, sessions, session.account_id)
    chosen = _lang(lang, facts[0] if facts else None)
    if found is None or facts is None or found.account_id != session.account_id:
        return friendly(request, 404, "missing_title", "missing_body", chosen)
    client = await temporal_client(request)
    try:
        status = await accounts.account_status(client, session.account_id, sessions=sessions)
    except (ops.AccountNotFound, ops.AccountClosed):
        status = None
    settings = app_settings(request)
    zone = ZoneInfo(facts[1].zone)
    context = {
        "t": Texts(chosen),
        "lang": chosen,
        "langs": LANGS,
        "lang_names": _lang_names(),
        "company": settings.company_name,
        "callback": settings.callback_number,
        "checkout": found,
        "amount": format_minor(found.paid_minor or found.amount_minor, found.currency),
        "paid_at": found.completed_at.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")
        if found.completed_at
        else "",
        "balance": format_minor(status.balance, status.currency) if status else None,
        "closed": status is not None and status.balance <= 0,
    }
    response = page(request, "selfservice/receipt.html", context)
    response.headers.update(NO_LEAK)
    if not found.completed:
        response.headers["Refresh"] = "2"
    return response
