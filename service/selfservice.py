"""The debtor's own pages, 7x24: what is owed, what happens next and when it ends, and the plans allowed.

Why it is built this way:

* **Reached through the signed link the SMS carries, or a one-time code sent to the number on file,
  then a session** (``service/debtor_signin.py``, ``service/code_signin.py``): either opens a
  server-side session (the link leaves the address bar), and the account shows only after the
  debtor confirms the date of birth on file. Every post carries the session's CSRF token. Pages
  are ``no-store`` and send no Referer.
* **Answers "how long will they chase me?"** from the workflow's own ``status`` and ``timeline``
  queries: the stage, the next step and its date, and when contact ends (charge-off date, or the
  plan's end date), so the page cannot disagree with what the workflow will do.
* **Only the plan options the policy allows** (``domain.policy`` settlement limits): the deferral's
  last date, the instalment range, the promise window, the fee waiver on hardship evidence.
* **Two actions:** ask for a plan (the ``negotiation_requested`` signal: dunning pauses while an agent
  answers) or promise a payment date (a ``promise_to_pay`` proposal through
  ``plans.propose_settlement`` with actor ``debtor``; checked first by the same pure preview, so a
  promise outside the rules is explained instead of sent).
* **Who contacts you** (``service/debtor_contacts.py``): every contact coming up and of the last 30
  days by channel, each visit with the agency's name, licence and the collector's ID, and the way to
  the public collector check (``service/verify.py``).
* **Their own number** (``service/debtor_number.py``): a new one is confirmed by a code sent to it,
  and only then used; a number an agent recorded for them waits there for its code too.
* **No personal data beyond what the debtor needs:** no name, and only the masked phone number.
* **Both languages** (en, zh-CN) from ``templates/selfservice/strings.toml``; the account's language
  by default, ``?lang=`` to switch.
"""

from __future__ import annotations

import asyncio
import logging
import tomllib
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session, sessionmaker
from temporalio.client import WorkflowQueryFailedError, WorkflowQueryRejectedError
from temporalio.service import RPCError

from domain.accounts import HoldKind, Language, Mode
from domain.agencies import load_agencies
from domain.cases import CaseKind
from domain.money import format_minor, parse_major
from domain.plans import PlanKind, PlanProposal, add_months, split_evenly
from domain.timeline import STOPS_CONTACT, AccountStatus, Timeline
from service import accounts, cases, debtor_contacts, plans
from service import debtor_signin as signin
from service import operations as ops
from service import temporal_calls as calls
from service.checkout import provider_of
from service.checkout.choices import pay_choices
from service.console import HERE, page
from service.credit_standing import credit_lines
from service.standing import Agency as StandingAgency
from service.standing import Standing, agency_term, standing_of
from service.state import app_sessions, app_settings, temporal_client
from store.accounts import account_snapshot
from store.agencies import active_placement
from store.cases import CaseView, cases_of
from store.checkouts import CheckoutView, paid_checkouts
from store.debtor_sessions import DebtorSession, date_of_birth_on_file
from workflows.messages import NegotiationRequest

log = logging.getLogger(__name__)

router = APIRouter()

LANGS = tuple(lang.value for lang in Language)
UPCOMING_SHOWN = 6
NO_LEAK = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}


@lru_cache(maxsize=1)
def strings() -> dict[str, dict[str, str]]:
    """Every page string by language (one TOML file, so a translator edits one place)."""
    with open(HERE / "templates" / "selfservice" / "strings.toml", "rb") as fh:
        return tomllib.load(fh)


class Texts:
    """``t.key`` or ``t("key", n=3)``: a string in the page's language, English if it lacks one."""

    def __init__(self, lang: str):
        self.lang = lang
        self._own = strings().get(lang, {})
        self._en = strings()["en"]

    def __call__(self, key: str, **values: object) -> str:
        text = self._own.get(key) or self._en.get(key) or key
        return text.format(**values) if values else text

    def __getattr__(self, key: str) -> str:
        return self(key)


def _lang_names() -> dict[str, str]:
    return {code: strings()[code]["lang_name"] for code in LANGS}


def _lang(requested: str | None, account_language: str | None) -> str:
    for candidate in (requested, account_language):
        if candidate in LANGS:
            return candidate  # type: ignore[return-value]
    return "en"


def friendly(request: Request, status_code: int, title_key: str, body_key: str, lang: str) -> HTMLResponse:
    st = app_settings(request)
    t = Texts(_lang(lang, None))
    body = t(body_key, phone=st.callback_number, days=st.link_ttl_days)
    context = {
        "t": t,
        "title": t(title_key),
        "body": body,
        "company": st.company_name,
        "callback": st.callback_number,
        "langs": LANGS,
        "lang_names": _lang_names(),
    }
    response = page(request, "selfservice/message.html", context, status_code=status_code)
    response.headers.update(NO_LEAK)
    return response


def _snapshot_facts(sessions: sessionmaker[Session], account_id: str) -> tuple[str, plans.PlanTerms] | None:
    """The account's language and plan terms (the policy version it runs); the name and number it
    also holds stay here."""
    with sessions.begin() as s:
        snap = account_snapshot(s, account_id)
        if snap is None:
            return None
        return snap.language.value, plans.terms_of(s, snap)


def _standing(
    sessions: sessionmaker[Session], account_id: str, terms: plans.PlanTerms, status: AccountStatus | None
) -> Standing:
    """Where the account stands (``service/standing.py``): from the open run's ``status``, or from the
    database once the run has ended (``status`` None)."""
    policy = terms.policy_rules
    with sessions.begin() as s:
        snap = account_snapshot(s, account_id)
        assert snap is not None
        placed = active_placement(s, account_id) if status is not None else None
    agency = None
    if placed is not None:
        found = {a.id: a for a in load_agencies().agencies}.get(placed.agency_id)
        since, until = agency_term(placed.placed_at, policy.placement.max_days, terms.zone)
        agency = StandingAgency(
            name=found.name if found else placed.agency_id,
            number=found.callback_number if found else "",
            since=since,
            until=until,
        )
    return standing_of(
        mode=status.mode if status is not None else snap.mode,
        closing=status.closing if status is not None else None,
        close_reason=snap.close_reason,
        owed=status.balance if status is not None else snap.balance_minor,
        currency=snap.currency,
        run_open=status is not None,
        agency=agency,
        charged_off_on=snap.due_date + timedelta(days=policy.chargeoff_for(snap.product)),
        chargeoff_open_days=policy.chargeoff_open_days,
    )


def _options(status: AccountStatus, terms: plans.PlanTerms, t: Texts) -> list[str]:
    """The plan options this account's policy allows, in the debtor's words."""
    rules = terms.policy_rules.settlement
    money = lambda minor: format_minor(minor, status.currency)  # noqa: E731
    out = []
    last_deferral = add_months(terms.overdue_since, rules.max_deferral_months)
    if last_deferral >= status.policy_now.date():
        out.append(t("opt_deferral", date=last_deferral.isoformat()))
    if rules.max_periods >= 2:
        example = money(split_evenly(status.balance, 3)[0])
        out.append(
            t(
                "opt_reinstalment",
                max=rules.max_periods,
                min_days=rules.min_period_days,
                max_days=rules.max_period_days,
                example=example,
            )
        )
    out.append(t("opt_promise", days=rules.promise_max_days))
    if terms.fees > 0:
        out.append(t("opt_waiver", fees=money(terms.fees)))
    return out


def _upcoming(timeline: Timeline, now: datetime, t: Texts) -> list[dict[str, Any]]:
    out = []
    for entry in timeline.entries:
        if entry.at < now:
            continue
        channel = t(f"channel_{entry.channel}") if entry.channel else ""
        stage = t(f"stage_{entry.description.rsplit(' ', 1)[-1]}") if entry.kind == "stage" else ""
        out.append(
            {
                "at": entry.at,
                "kind": entry.kind,
                "text": t(f"kind_{entry.kind}", channel=channel, stage=stage)
                if f"kind_{entry.kind}" in strings()["en"]
                else entry.description,
            }
        )
        if len(out) >= UPCOMING_SHOWN:
            break
    if timeline.entries and timeline.entries[-1].kind in ("chargeoff", "plan_ends"):
        last = timeline.entries[-1]
        if not out or out[-1]["at"] != last.at:
            out.append({"at": last.at, "kind": last.kind, "text": t(f"kind_{last.kind}"), "gap": True})
    return out


def _stops(timeline: Timeline, t: Texts) -> list[str]:
    out = []
    for sentence in timeline.contact_stops_when:
        out.append(t(f"stop_{STOPS_CONTACT.index(sentence)}") if sentence in STOPS_CONTACT else sentence)
    return out


async def _render(
    request: Request,
    csrf: str,
    account_id: str,
    lang: str | None,
    *,
    done: str | None = None,
    problems: list[str] | None = None,
    promise: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    st = app_settings(request)
    sessions = app_sessions(request)
    facts = await asyncio.to_thread(_snapshot_facts, sessions, account_id)
    if facts is None:
        return friendly(request, 404, "missing_title", "missing_body", lang or "en")
    language, terms = facts
    chosen = _lang(lang, language)
    t = Texts(chosen)
    try:
        client = await temporal_client(request)
        status, timeline = await asyncio.gather(
            accounts.account_status(client, account_id, sessions=sessions),
            accounts.account_timeline(client, account_id, sessions=sessions),
        )
    except ops.AccountNotFound:
        return friendly(request, 404, "missing_title", "missing_body", chosen)
    except ops.AccountClosed:  # stored, and its run has ended: where it stands, from the database
        return await _render_ended(request, csrf, account_id, terms, t, problems, status_code)
    except (RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError, RuntimeError):
        # Temporal is out of reach (the SDK's connect error is a RuntimeError) or the run could not
        # answer: nothing about the account changed, so the debtor is told so and asked to come back,
        # not shown a server error; the log keeps the cause for the operators
        log.warning("the account page of %s could not be shown", account_id, exc_info=True)
        response = friendly(request, 503, "unavailable_title", "unavailable_body", chosen)
        response.headers["Retry-After"] = "60"
        return response
    if (status.mode == Mode.CLOSED or status.closing) and not await calls.running(client, account_id):
        # an ended run answers queries too
        return await _render_ended(request, csrf, account_id, terms, t, problems, status_code)
    standing = await asyncio.to_thread(_standing, sessions, account_id, terms, status)
    policy = terms.policy_rules
    today = status.policy_now.date()
    contacts = await asyncio.to_thread(
        debtor_contacts.contact_list,
        sessions,
        account_id,
        timeline,
        status.policy_now,
        terms.zone,
        t,
        set(strings()["en"]),
        st.company_name,
        load_agencies(st.agencies_file),
    )
    context = {
        "t": t,
        "lang": chosen,
        "langs": LANGS,
        "lang_names": _lang_names(),
        "company": st.company_name,
        "callback": st.callback_number,
        "csrf": csrf,
        "zone": terms.zone,
        "status": status,
        "timeline": timeline,
        "stage_text": t(f"stage_{status.stage.value}"),
        "upcoming": _upcoming(timeline, status.policy_now, t),
        "stops": _stops(timeline, t),
        "options": _options(status, terms, t) if status.mode == Mode.DUNNING else [],
        "requested": HoldKind.NEGOTIATION.value in status.holds,
        "can_act": status.mode == Mode.DUNNING and status.balance > 0,
        "grace": policy.settlement.grace_days,
        "promise_days": policy.settlement.promise_max_days,
        "promise": promise
        or {
            "date": (today + timedelta(days=7)).isoformat(),
            "amount": format_minor(status.balance, status.currency).split(" ", 1)[1].replace(",", ""),
        },
        "min_date": today.isoformat(),
        "max_date": (today + timedelta(days=policy.settlement.promise_max_days)).isoformat(),
        "done": done,
        "problems": problems or [],
        "standing": standing,
        "pay": pay_choices(status) if provider_of(request.app) is not None else None,
        "paid_here": await asyncio.to_thread(_paid_here, sessions, account_id),
        "fmt": format_minor,
        "requests": await asyncio.to_thread(_requests, sessions, account_id),
        "contacts": contacts,  # who contacts the debtor: every contact by channel, visits with the collector
        # what being late means for their credit: grace, the line, charges, reporting (issue 15)
        "credit": await asyncio.to_thread(
            credit_lines, sessions, account_id, today=today, language=chosen, charges=status.charges
        ),
    }
    response = page(request, "selfservice/account.html", context, status_code=status_code)
    response.headers.update(NO_LEAK)
    return response


async def _render_ended(
    request: Request,
    csrf: str,
    account_id: str,
    terms: plans.PlanTerms,
    t: Texts,
    problems: list[str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """The page of an account whose run has ended: where it stands, from the database."""
    st = app_settings(request)
    sessions = app_sessions(request)
    context = {
        "t": t,
        "lang": t.lang,
        "langs": LANGS,
        "lang_names": _lang_names(),
        "company": st.company_name,
        "callback": st.callback_number,
        "csrf": csrf,
        "zone": terms.zone,
        "standing": await asyncio.to_thread(_standing, sessions, account_id, terms, None),
        "paid_here": await asyncio.to_thread(_paid_here, sessions, account_id),
        "fmt": format_minor,
        "problems": problems or [],
    }
    response = page(request, "selfservice/standing.html", context, status_code=status_code)
    response.headers.update(NO_LEAK)
    return response


def _requests(sessions: sessionmaker[Session], account_id: str) -> list[CaseView]:
    with sessions.begin() as s:
        return cases_of(s, account_id)


def _paid_here(sessions: sessionmaker[Session], account_id: str) -> list[CheckoutView]:
    with sessions.begin() as s:
        return paid_checkouts(s, account_id)


def _here(lang: str, **query: str) -> str:
    extra = "".join(f"&{k}={quote(v)}" for k, v in query.items())
    return f"{signin.PAGE}?lang={quote(lang)}{extra}"


@router.get("/me", response_class=HTMLResponse, include_in_schema=False)
async def landing(request: Request, lang: str | None = None) -> Response:
    """The bare address (what an SMS carries when no link secret is configured): the number on file
    gets a one-time code (``service/code_signin.py``), no link needed."""
    from service.code_signin import phone_form

    return phone_form(request, lang or "")


def verification_page(
    request: Request,
    session: DebtorSession,
    lang: str | None,
    *,
    problem: str | None = None,
    left: int | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """The date-of-birth form: the only thing an unverified session sees (nothing about a debt)."""
    with app_sessions(request).begin() as s:
        on_file = date_of_birth_on_file(s, session.account_id)
        snap = account_snapshot(s, session.account_id)
        language = snap.language.value if snap is not None else None
    chosen = _lang(lang, language)  # the account's language unless the debtor chose another
    if on_file is None:  # nothing to verify against: no disclosure online
        return friendly(request, 403, "verify_unavailable_title", "verify_unavailable_body", chosen)
    st = app_settings(request)
    t = Texts(chosen)
    context = {
        "t": t,
        "lang": lang if lang in LANGS else "",
        "langs": LANGS,
        "lang_names": _lang_names(),
        "company": st.company_name,
        "callback": st.callback_number,
        "csrf": session.csrf,
        "problem": t(problem, left=left) if problem else None,
    }
    response = page(request, "selfservice/verify.html", context, status_code=status_code)
    response.headers.update(NO_LEAK)
    return response


def _session(request: Request, lang: str | None) -> DebtorSession | Response:
    found = signin.current(request)
    if found is None:
        return friendly(request, 401, "session_title", "session_body", lang or "")
    return found[1]


@router.get(signin.PAGE, response_class=HTMLResponse, include_in_schema=False)
async def account_page(request: Request, lang: str | None = None, done: str | None = None) -> Response:
    session = _session(request, lang)
    if isinstance(session, Response):
        return session
    if not session.verified:
        return verification_page(request, session, lang)
    return await _render(
        request,
        session.csrf,
        session.account_id,
        lang,
        done=done
        if done in ("requested", "promised", "cancelled", "complaint", "dispute", "number")
        else None,
    )


async def _verified_post(request: Request) -> tuple[DebtorSession, dict[str, str], str] | Response:
    """A post from a verified session with its CSRF token: (session, form, language), or the answer."""
    form = await signin.form_of(request)
    lang = _lang(form.get("lang", ""), None)
    session = _session(request, lang)
    if isinstance(session, Response):
        return session
    if not signin.csrf_ok(session, form) or not session.verified:
        return friendly(request, 403, "forged_title", "session_body", lang)
    return session, form, lang


@router.post("/me/request-plan", include_in_schema=False)
async def request_plan(request: Request) -> Response:
    """The ``negotiation_requested`` signal: dunning waits while an agent prepares a plan."""
    posted = await _verified_post(request)
    if isinstance(posted, Response):
        return posted
    session, _, lang = posted
    account_id = session.account_id
    client = await temporal_client(request)
    sessions = app_sessions(request)
    problem = Texts(lang)("unavailable", phone=app_settings(request).callback_number)
    try:
        status = await accounts.account_status(client, account_id, sessions=sessions)
        # a closing run would take the request and do nothing with it
        if status.mode != Mode.DUNNING or status.closing is not None:
            return await _render(request, session.csrf, account_id, lang, problems=[problem], status_code=409)
        # one open plan request per account: asking again (the button is disabled once asked) reuses it
        await cases.open_unless_open(
            client, sessions, app_settings(request), account_id=account_id, kind=CaseKind.PLAN_REQUEST,
            channel="page", summary="Plan requested on the self-service page", actor="debtor",
        )  # fmt: skip
        ask = NegotiationRequest(channel="self_service", note="debtor's self-service page")
        await calls.signal(client, sessions, account_id, "negotiation_requested", ask)
    except ops.AccountNotFound:
        return friendly(request, 404, "missing_title", "missing_body", lang)
    except ops.AccountClosed:
        return await _render(request, session.csrf, account_id, lang, problems=[problem], status_code=409)
    return RedirectResponse(_here(lang, done="requested"), status_code=303)


def _promise(form: dict[str, str], currency: str, t: Texts) -> tuple[PlanProposal | None, list[str]]:
    problems = []
    try:
        day = date.fromisoformat(form["date"])
    except ValueError:
        problems.append(t("error_field", field=t.promise_date))
    try:
        amount = parse_major(form["amount"], currency)
    except ValueError:
        problems.append(t("error_field", field=t.promise_amount))
    if problems:
        return None, problems
    proposal = PlanProposal(
        kind=PlanKind.PROMISE_TO_PAY, first_due=day, periods=1, amount=amount, proposed_by="debtor"
    )
    return proposal, []


@router.post("/me/promise", include_in_schema=False)
async def promise_to_pay(request: Request) -> Response:
    """A promise to pay: checked by the pure preview first, then proposed to the workflow as ``debtor``."""
    posted = await _verified_post(request)
    if isinstance(posted, Response):
        return posted
    session, form, lang = posted
    account_id = session.account_id
    values = {"date": form.get("date", "").strip(), "amount": form.get("amount", "").strip()}
    t = Texts(lang)
    client = await temporal_client(request)
    sessions = app_sessions(request)
    try:
        status = await accounts.account_status(client, account_id, sessions=sessions)
        terms = await asyncio.to_thread(plans.plan_terms, sessions, account_id)
    except ops.AccountNotFound:
        return friendly(request, 404, "missing_title", "missing_body", lang)
    except ops.AccountClosed:
        return friendly(request, 409, "missing_title", "missing_body", lang)
    proposal, problems = _promise(values, status.currency, t)
    if proposal is not None:
        preview = plans.preview_plan(status, terms, proposal)
        problems = [f"{v.message} ({v.rule})" for v in preview.violations]
    status_code = 422
    if proposal is not None and not problems:
        try:
            await plans.propose_settlement(client, account_id, proposal, "debtor", sessions=sessions)
        except ops.PlanRejected as exc:
            problems = [f"{v.message} ({v.rule})" for v in exc.violations]
        except (ops.PlanConflict, ops.AccountClosed):
            problems = [t("unavailable", phone=app_settings(request).callback_number)]
            status_code = 409
    if problems:
        return await _render(
            request,
            session.csrf,
            account_id,
            lang,
            problems=[t.rejected, *problems],
            promise=values,
            status_code=status_code,
        )
    return RedirectResponse(_here(lang, done="promised"), status_code=303)
