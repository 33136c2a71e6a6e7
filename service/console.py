"""The agent console: server-rendered pages over the same operations as the REST API.

Why it is built this way:

* **Same token, same rules as the API.** An agent signs in with their API token, which opens a
  session kept on the server; the ``collect_session`` cookie (httponly, SameSite=Strict, Secure behind
  https) holds only its random id, so a role means the same on a page and on the API, and every write
  is audited by the operations layer (:mod:`service.operations`) under the agent's name. The API does
  not accept the cookie (:mod:`service.access`).
* **CSRF.** A cookie is sent by the browser on its own, so every form carries a token derived from
  the session's id (HMAC, not guessable without it) and a POST without the right one is refused.
  SameSite=Strict is the second fence.
* **Preview before submit.** The plan builder posts to a preview that runs the pure
  ``plans.preview_plan`` (the functions the workflow's validator runs) and shows the instalment
  schedule and every broken rule by name; nothing reaches the workflow until the agent submits. A
  few lines of JavaScript refresh the preview as the form changes; without JavaScript the Preview
  button does the same with a full page.
* **Masked phone only.** The pages show what the workflow's ``status`` query answers (a masked
  number) and the contact attempts without their destination; no page reads the debtor's name or number.

This module holds the search, the account page and its plan builder; the account's other actions
(holds, complaint and dispute decisions, cease, recall, close, reopen) are in
:mod:`service.console_actions`, the supervisors' waiver and refund queues in :mod:`service.console_queues`.
Shared page plumbing (templates, filters, static files, the sign-in check and CSRF, the Temporal client
and database sessions) lives here; those modules and :mod:`service.selfservice` use it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker
from starlette.datastructures import FormData
from temporalio.service import RPCError

from domain.accounts import HoldKind, Mode, Stage
from domain.money import exponent, format_minor, parse_major
from domain.plans import PlanKind, PlanProposal, Violation
from service import accounts, plans, write_offs
from service import operations as ops
from service import temporal_calls as calls
from service.api import audit_read
from service.auth import COOKIE, Principal, identify
from service.state import app_sessions, app_settings, temporal_client
from store.audit import latest_entries

router = APIRouter()

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=str(HERE / "templates"))
PREFIX = "/console"
TIMELINE_SHOWN = 14
#: the latest decisions the account page lists, and the audit lines it leaves to other places
DECISIONS_SHOWN = 12
NOT_DECISIONS = frozenset({"console_read", "api_read", "contact"})


# ---- page plumbing (shared with service.selfservice) -------------------------------------------------
def _money(amount: int | None, currency: str | None) -> str:
    if amount is None:
        return "-"
    return format_minor(amount, currency or "USD")


def _when(value: datetime | date | None, fmt: str = "%Y-%m-%d %H:%M", zone: str | None = None) -> str:
    """A date, or a time in ``zone`` (the debtor's home zone: what "10:00" means to them) with its offset."""
    if value is None:
        return "-"
    if isinstance(value, datetime):
        if zone:
            value = value.astimezone(ZoneInfo(zone))
        return value.strftime(fmt + " %z").strip()
    return value.isoformat()


def _major(amount: int | None, currency: str) -> str:
    """Minor units as an editable major-unit number ("1234.50"), for form defaults."""
    if amount is None:
        return ""
    exp = exponent(currency)
    whole, frac = divmod(amount, 10**exp) if exp else (amount, 0)
    return f"{whole}.{frac:0{exp}d}" if exp else str(whole)


templates.env.filters["money"] = _money
templates.env.filters["when"] = _when
templates.env.filters["major"] = _major
templates.env.filters["label"] = lambda value: str(getattr(value, "value", value) or "-").replace("_", " ")


@router.get("/static/{name}", include_in_schema=False)
async def static_file(name: str) -> Response:
    """The stylesheet and the script, from this package (no CDN); only files that exist in it."""
    allowed = {p.name: p for p in STATIC_DIR.iterdir() if p.is_file()}
    path = allowed.get(name)
    if path is None:
        return Response(status_code=404)
    return FileResponse(path, headers={"Cache-Control": "public, max-age=300"})


def page(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def error_page(request: Request, status_code: int, title: str, message: str, **extra: Any) -> HTMLResponse:
    context = {"title": title, "message": message, **extra}
    return page(request, "console/error.html", context, status_code=status_code)


# ---- login, CSRF ------------------------------------------------------------------------------------
def csrf_token(request: Request) -> str:
    """Bound to the session's token: a page of another site can neither read nor compute it."""
    token = request.cookies.get(COOKIE, "")
    return hmac.new(token.encode(), b"humane-collect/console/csrf", hashlib.sha256).hexdigest()[:40]


def _csrf_ok(request: Request, form: FormData) -> bool:
    sent = str(form.get("csrf", ""))
    return bool(request.cookies.get(COOKIE)) and hmac.compare_digest(
        sent.encode(), csrf_token(request).encode()
    )


def _login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"{PREFIX}/login?next={quote(target)}", status_code=303)


def _who(request: Request, action: str) -> Principal | Response:
    """The logged-in principal allowed to ``action``, or the response to send instead."""
    principal = identify(request)
    if principal is None:
        return _login_redirect(request)
    if not principal.may(action):
        return error_page(
            request,
            403,
            "Not allowed",
            f"Your role ({principal.role.value}) may not {action} here.",
            principal=principal,
        )
    return principal


async def _posted(request: Request, action: str) -> tuple[Principal, FormData] | Response:
    who = _who(request, action)
    if isinstance(who, Response):
        return who
    form = await request.form()
    if not _csrf_ok(request, form):
        return error_page(
            request,
            403,
            "Form expired",
            "This form was not sent from your console session. Reload the page and try again.",
            principal=who,
        )
    return who, form


def _base(request: Request, principal: Principal | None, **context: Any) -> dict[str, Any]:
    return {
        "principal": principal,
        "csrf": csrf_token(request) if principal else "",
        "company": app_settings(request).company_name,
        **context,
    }


# ---- search -----------------------------------------------------------------------------------------
def _int(value: str | None, field: str, errors: list[str]) -> int | None:
    if value is None or not value.strip():
        return None
    try:
        return int(value.strip())
    except ValueError:
        errors.append(f"{field}: {value!r} is not a whole number")
        return None


def _minor(value: str | None, field: str, errors: list[str], currency: str = "USD") -> int | None:
    if value is None or not value.strip():
        return None
    try:
        return parse_major(value, currency)
    except ValueError as exc:
        errors.append(f"{field}: {exc}")
        return None


@router.get(PREFIX, response_class=HTMLResponse, include_in_schema=False)
async def search_page(request: Request) -> Response:
    who = _who(request, "read")
    if isinstance(who, Response):
        return who
    await asyncio.to_thread(audit_read, request, who.name, "console_read")
    q = request.query_params
    errors: list[str] = []
    stage = q.get("stage") or None
    mode = q.get("mode") or None
    hold = q.get("hold") or None
    if stage is not None and stage not in Stage.__members__.values():
        errors.append(f"stage: {stage!r} is not a stage")
    if mode is not None and mode not in Mode.__members__.values():
        errors.append(f"mode: {mode!r} is not a mode")
    if hold is not None and hold not in {"none", "any", *HoldKind.__members__.values()}:
        errors.append(f"hold: {hold!r} is not a hold kind")
    filters = {
        "stage": stage,
        "mode": mode,
        "hold": hold,
        "dpd_min": _int(q.get("dpd_min"), "dpd_min", errors),
        "dpd_max": _int(q.get("dpd_max"), "dpd_max", errors),
        "balance_min": _minor(q.get("balance_min"), "balance_min", errors),
        "balance_max": _minor(q.get("balance_max"), "balance_max", errors),
    }
    searched = any(
        k in q for k in ("stage", "mode", "hold", "dpd_min", "dpd_max", "balance_min", "balance_max")
    )
    results: list[accounts.AccountSummary] = []
    query_text = ""
    if searched and not errors:
        query_text = accounts.visibility_query(**filters)
        try:
            results = await accounts.find_accounts(
                await temporal_client(request), **filters, limit=100, sessions=app_sessions(request)
            )
        except RPCError as exc:
            errors.append(f"search failed: {exc.message}")
    context = _base(
        request,
        who,
        q=q,
        stages=[s.value for s in Stage],
        modes=[m.value for m in Mode],
        holds=["none", "any", *(h.value for h in HoldKind)],
        results=results,
        searched=searched,
        errors=errors,
        query_text=query_text,
    )
    return page(request, "console/search.html", context, status_code=422 if errors else 200)


@router.get(f"{PREFIX}/open", include_in_schema=False)
async def open_account(request: Request, account_id: str = "") -> Response:
    who = _who(request, "read")
    if isinstance(who, Response):
        return who
    account_id = account_id.strip()
    if not ops.ACCOUNT_ID.match(account_id):
        return error_page(
            request, 422, "No such account", f"{account_id!r} is not an account id.", principal=who
        )
    return RedirectResponse(f"{PREFIX}/accounts/{quote(account_id)}", status_code=303)


# ---- the account page and the plan builder -----------------------------------------------------------
async def _account_context(request: Request, account_id: str) -> dict[str, Any]:
    client = await temporal_client(request)
    sessions = app_sessions(request)
    status, timeline, history, terms = await asyncio.gather(
        accounts.account_status(client, account_id, sessions=sessions),
        accounts.account_timeline(client, account_id, sessions=sessions),
        asyncio.to_thread(accounts.contact_history, sessions, account_id),
        asyncio.to_thread(plans.plan_terms, sessions, account_id),
    )
    entries = timeline.entries
    shown = entries[:TIMELINE_SHOWN]
    hidden = len(entries) - len(shown)
    if hidden > 0:
        shown = [*shown[:-1], entries[-1]] if len(shown) > 1 else shown
    waivers = await asyncio.to_thread(plans.waiver_queue, sessions, status="pending", account_id=account_id)
    running = await calls.running(client, account_id)
    return {
        **await asyncio.to_thread(_recorded, sessions, account_id),
        "running": running,
        "status": status,
        "timeline": timeline,
        "timeline_entries": shown,
        "timeline_hidden": max(hidden, 0),
        "history": list(reversed(history)),
        "terms": terms,
        "waivers": waivers,
        "kinds": [k.value for k in PlanKind],
        "today": status.policy_now.date(),
    }


def _recorded(sessions: sessionmaker[Session], account_id: str) -> dict[str, Any]:
    """What the database knows beside the workflow: the latest decisions and who made them (reads and
    contact lines left out: the contact history shows those), the agency holding the account, and a
    write-off waiting for its second supervisor."""
    with sessions.begin() as s:
        entries = latest_entries(s, account_id, leave_out=NOT_DECISIONS, limit=DECISIONS_SHOWN)
        agency = calls.placed_with(s, account_id)
    return {
        "decisions": entries,
        "placed_with": agency,
        "write_off_by": write_offs.first_requester(sessions, account_id, ""),
    }


def _plan_form(form: FormData | None, status: Any) -> dict[str, str]:
    """The builder's field values: what was posted, or defaults (a 3-part re-instalment from today)."""
    if form is None:
        return {
            "kind": "reinstalment",
            "first_due": status.policy_now.date().isoformat(),
            "periods": "3",
            "period_days": "30",
            "amount": "",
            "waiver": "",
            "hardship_evidence": "",
        }
    keys = ("kind", "first_due", "periods", "period_days", "amount", "waiver", "hardship_evidence")
    return {k: str(form.get(k, "")).strip() for k in keys}


def _proposal(values: dict[str, str], currency: str) -> tuple[PlanProposal | None, list[Violation]]:
    """The form as a proposal, or the fields that are wrong (as violations, so the page shows them alike)."""
    problems: list[Violation] = []

    def bad(field: str, message: str) -> None:
        problems.append(Violation(rule=f"form.{field}", message=message))

    data: dict[str, Any] = {"kind": values["kind"], "first_due": values["first_due"]}
    if values["kind"] not in PlanKind.__members__.values():
        bad("kind", f"{values['kind']!r} is not a plan kind")
    for field in ("periods", "period_days"):
        if values[field]:
            try:
                data[field] = int(values[field])
            except ValueError:
                bad(field, f"{values[field]!r} is not a whole number")
    for field in ("amount", "waiver"):
        if values[field]:
            try:
                data[field] = parse_major(values[field], currency)
            except ValueError as exc:
                bad(field, str(exc))
    if values["hardship_evidence"]:
        data["hardship_evidence"] = values["hardship_evidence"]
    if data.get("kind") in (PlanKind.DEFERRAL, PlanKind.PROMISE_TO_PAY):
        data["periods"] = 1
    if problems:
        return None, problems
    try:
        return PlanProposal.model_validate(data), []
    except ValidationError as exc:
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "form"
            bad(field, err["msg"])
        return None, problems


def _preview(status: Any, terms: plans.PlanTerms, values: dict[str, str]) -> dict[str, Any]:
    proposal, problems = _proposal(values, status.currency)
    if proposal is None:
        return {"preview": None, "problems": problems, "blocking": problems}
    preview = plans.preview_plan(status, terms, proposal)
    blocking = [v for v in preview.violations if v.rule != plans.APPROVER_RULE]
    return {"preview": preview, "problems": preview.violations, "blocking": blocking}


async def _account_page(
    request: Request,
    who: Principal,
    account_id: str,
    *,
    form: FormData | None = None,
    with_preview: bool = False,
    notice: str | None = None,
    problems: list[Violation] | None = None,
    errors: list[str] | None = None,
    failed: str | None = None,
    status_code: int = 200,
) -> Response:
    """The account page; ``errors`` say why the action ``failed`` was refused (its form shows again,
    open and filled in as it was posted)."""
    actions = {"errors": errors or [], "failed": failed, "posted": form if failed else None}
    try:
        context = await _account_context(request, account_id)
    except ops.AccountClosed as exc:
        if exc.snapshot is None or exc.running:
            return _unavailable(request, who, exc)
        return await _closed_page(request, who, exc, actions, status_code)
    except ops.AccountNotFound as exc:
        return _unavailable(request, who, exc)
    if failed:
        form = None  # the plan builder keeps its defaults when another form was refused
    values = _plan_form(form, context["status"])
    result: dict[str, Any] = {"preview": None, "problems": problems or [], "blocking": problems or []}
    if with_preview or problems:
        result = _preview(context["status"], context["terms"], values)
        if problems:
            result["problems"], result["blocking"] = problems, problems
    ctx = _base(
        request, who, account_id=account_id, values=values, notice=notice, **context, **result, **actions
    )
    return page(request, "console/account.html", ctx, status_code=status_code)


async def _closed_page(
    request: Request, who: Principal, exc: ops.AccountClosed, actions: dict[str, Any], status_code: int
) -> HTMLResponse:
    """An account whose run Temporal no longer keeps (past the namespace's retention): what is stored,
    its decisions, and (for a supervisor) reopening it."""
    recorded = await asyncio.to_thread(_recorded, app_sessions(request), exc.account_id)
    ctx = _base(request, who, account_id=exc.account_id, snapshot=exc.snapshot, **recorded, **actions)
    return page(request, "console/closed.html", ctx, status_code=status_code)


def _unavailable(
    request: Request, who: Principal, exc: ops.AccountNotFound | ops.AccountClosed
) -> HTMLResponse:
    """404 for an account that does not exist; 409 with the reason for one that exists but cannot take
    this (its run ended, is closing, or an agency holds it)."""
    if isinstance(exc, ops.AccountNotFound):
        return error_page(
            request, 404, "No such account", f"There is no account {exc.account_id}.", principal=who
        )
    return error_page(request, 409, "Account closed", f"Account {exc}.", principal=who)


#: what the page says after an action (by key: a redirect carries no text of its own to show)
NOTICES = {
    "plan_agreed": "Plan agreed: dunning has stopped and the account is in settlement.",
    "waiver_queued": "Fee waiver sent to a supervisor for approval; nothing changes until it is approved.",
    "paused": "Account paused: no contact until it is resumed.",
    "resumed": "Account resumed.",
    "complaint_filed": "Complaint filed: contact has stopped until it is decided; the debtor is told once.",
    "complaint_resume": "Complaint decided, not upheld: the hold is lifted and collection resumes.",
    "complaint_rejected": "Complaint decided, not upheld: the debtor is told first, with the regulator's "
    "route; then collection resumes.",
    "complaint_upheld": "Complaint decided, upheld: the debtor is told first, with the regulator's route; "
    "then collection resumes.",
    "complaint_close": "Complaint upheld: the hold is lifted and the account is closing.",
    "dispute_filed": "Dispute filed: no collection until the debt is verified; the debtor is told once.",
    "dispute_verified": "Dispute verified: the hold is lifted and collection may resume.",
    "ceased": "Contact stopped for good on that channel (a notice goes once, never on a refused medium).",
    "recalled": "Recalled from the agency: the account goes to another agency or closes as charged off.",
    "write_off_requested": "Write-off requested: nothing changes until a different supervisor confirms it "
    "(within 7 days).",
    "closing": "Closing: the account is being closed for the reason given.",
    "reopened": "Reopened: a fresh dunning run from the stored balance under the current rules.",
    "number_recorded": "New number recorded, unverified: a code went to it. It is used only once the debtor "
    "keys the code in on their page or reads it to you.",
    "number_code_sent": "A new code went to the number that waits (the previous one no longer works).",
    "number_confirmed": "Number confirmed: it is on file now and contact resumes on it.",
    "number_cancelled": "The number that waited was dropped; nothing was sent to it but its code.",
}


@router.get(PREFIX + "/accounts/{account_id}", response_class=HTMLResponse, include_in_schema=False)
async def account_page(request: Request, account_id: str, notice: str | None = None) -> Response:
    who = _who(request, "read")
    if isinstance(who, Response):
        return who
    await asyncio.to_thread(audit_read, request, who.name, "console_read")
    return await _account_page(request, who, account_id, notice=NOTICES.get(notice or ""))


@router.post(PREFIX + "/accounts/{account_id}/plan/preview", include_in_schema=False)
async def plan_preview(request: Request, account_id: str, fragment: int = 0) -> Response:
    """The schedule and the policy verdict of the builder's values; ``fragment=1`` for the script."""
    posted = await _posted(request, "write")
    if isinstance(posted, Response):
        return posted
    who, form = posted
    if not fragment:
        return await _account_page(request, who, account_id, form=form, with_preview=True)
    client = await temporal_client(request)
    sessions = app_sessions(request)
    try:
        status = await accounts.account_status(client, account_id, sessions=sessions)
        terms = await asyncio.to_thread(plans.plan_terms, sessions, account_id)
    except ops.AccountNotFound:
        return Response("no such account", status_code=404)
    except ops.AccountClosed as exc:
        return Response(str(exc), status_code=409)
    ctx = _base(request, who, status=status, **_preview(status, terms, _plan_form(form, status)))
    return page(request, "console/_plan_result.html", ctx)


@router.post(PREFIX + "/accounts/{account_id}/plan", include_in_schema=False)
async def plan_submit(request: Request, account_id: str) -> Response:
    """Send the plan to the workflow (a fee waiver goes to the supervisors' queue instead)."""
    posted = await _posted(request, "write")
    if isinstance(posted, Response):
        return posted
    who, form = posted
    client = await temporal_client(request)
    sessions = app_sessions(request)
    try:
        status = await accounts.account_status(client, account_id, sessions=sessions)
    except (ops.AccountNotFound, ops.AccountClosed) as exc:
        return _unavailable(request, who, exc)
    proposal, problems = _proposal(_plan_form(form, status), status.currency)
    if proposal is None:
        return await _account_page(request, who, account_id, form=form, problems=problems, status_code=422)
    # the same pure check as the preview first: a plan that breaks policy never reaches the workflow
    # (whose validator runs the same functions and still has the last word)
    terms = await asyncio.to_thread(plans.plan_terms, sessions, account_id)
    preview = plans.preview_plan(status, terms, proposal)
    blocking = [v for v in preview.violations if v.rule != plans.APPROVER_RULE]
    if blocking:
        return await _account_page(request, who, account_id, form=form, problems=blocking, status_code=422)
    try:
        if proposal.kind == PlanKind.FEE_WAIVER:
            await plans.request_waiver(client, sessions, account_id, proposal, who.name)
            notice = "waiver_queued"
        else:
            await plans.propose_settlement(client, account_id, proposal, who.name, sessions=sessions)
            notice = "plan_agreed"
    except ops.PlanRejected as exc:
        return await _account_page(
            request, who, account_id, form=form, problems=exc.violations, status_code=422
        )
    except (ops.PlanConflict, ops.AccountClosed) as exc:
        message = exc.reason if isinstance(exc, ops.AccountClosed) else str(exc)
        conflict = [Violation(rule="plan.conflict", message=message)]
        return await _account_page(request, who, account_id, form=form, problems=conflict, status_code=409)
    return RedirectResponse(f"{PREFIX}/accounts/{quote(account_id)}?notice={notice}", status_code=303)
