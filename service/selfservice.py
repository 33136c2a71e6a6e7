"""The debtor's own pages, 7x24: what is owed, what happens next and when it ends, and the plans allowed.

Why it is built this way:

* **Reached only by the signed link the SMS carries** (``/me/<token>``, :mod:`service.links`). The
  token is the capability: a forged or altered one gets a friendly 403 page, an expired one a 410 page
  that says how to get a new one, and neither reveals whether the account exists. The token also
  stands in for a CSRF token on the two buttons: another site cannot post to a URL it does not know.
  Pages are ``no-store`` and send no Referer, so the token does not leak into caches or other sites.
* **Answers "how long will they chase me?"** from the workflow's own ``status`` and ``timeline``
  queries: the stage, the next step and its date, and when contact ends (charge-off date, or the
  plan's end date), so the page cannot disagree with what the workflow will do.
* **Only the plan options the policy allows** (``domain.policy`` settlement limits): the deferral's
  last date, the instalment range, the promise window, the fee waiver on hardship evidence.
* **Two actions:** ask for a plan (the ``negotiation_requested`` signal: dunning pauses while an agent
  answers) or promise a payment date (a ``promise_to_pay`` proposal through
  ``plans.propose_settlement`` with actor ``debtor``; checked first by the same pure preview, so a
  promise outside the rules is explained instead of sent).
* **No personal data beyond what the debtor needs:** no name, and only the masked phone number.
* **Both languages** (en, zh-CN) from ``templates/selfservice/strings.toml``; the account's language
  by default, ``?lang=`` to switch.
"""

from __future__ import annotations

import asyncio
import tomllib
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session, sessionmaker

from domain.accounts import HoldKind, Language, Mode
from domain.money import format_minor, parse_major
from domain.plans import PlanKind, PlanProposal, add_months, split_evenly
from domain.timeline import STOPS_CONTACT, AccountStatus, Timeline
from service import accounts, links, plans, ratelimit
from service import operations as ops
from service import temporal_calls as calls
from service.console import HERE, page
from service.state import app_sessions, app_settings, temporal_client
from store.accounts import account_snapshot
from workflows.messages import NegotiationRequest

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


def _friendly(request: Request, status_code: int, title_key: str, body_key: str, lang: str) -> HTMLResponse:
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


def _account_for(request: Request, token: str, lang: str | None) -> str | HTMLResponse:
    """The account the link opens, or the friendly page to answer instead (403 forged, 410 expired)."""
    secret = app_settings(request).link_secret
    if secret is None or not secret.get_secret_value():
        return _friendly(request, 404, "landing_title", "landing_body", lang or "en")
    if (wait := ratelimit.refused_too_often(request, "selfservice")) is not None:
        busy = _friendly(request, 429, "busy_title", "busy_body", lang or "en")
        busy.headers["Retry-After"] = str(wait)
        return busy
    try:
        return links.verify(token, secret, now=datetime.now(UTC))
    except links.LinkExpired:
        return _friendly(request, 410, "expired_title", "expired_body", lang or "en")
    except links.LinkForged:
        ratelimit.refused(request, "selfservice")  # guessing links: slowed per client address
        return _friendly(request, 403, "forged_title", "forged_body", lang or "en")


def _snapshot_facts(sessions: sessionmaker[Session], account_id: str) -> tuple[str, plans.PlanTerms] | None:
    """The account's language and plan terms (the policy version it runs); the name and number it
    also holds stay here."""
    with sessions.begin() as s:
        snap = account_snapshot(s, account_id)
        if snap is None:
            return None
        return snap.language.value, plans.terms_of(s, snap)


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
    token: str,
    account_id: str,
    lang: str | None,
    *,
    done: str | None = None,
    problems: list[str] | None = None,
    promise: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    st = app_settings(request)
    client = await temporal_client(request)
    sessions = app_sessions(request)
    facts = await asyncio.to_thread(_snapshot_facts, sessions, account_id)
    if facts is None:
        return _friendly(request, 404, "missing_title", "missing_body", lang or "en")
    language, terms = facts
    chosen = _lang(lang, language)
    t = Texts(chosen)
    try:
        status, timeline = await asyncio.gather(
            accounts.account_status(client, account_id, sessions=sessions),
            accounts.account_timeline(client, account_id, sessions=sessions),
        )
    except ops.AccountNotFound:
        return _friendly(request, 404, "missing_title", "missing_body", chosen)
    except ops.AccountClosed:  # stored, but its run is gone: nothing to show but that
        return _friendly(request, 409, "missing_title", "missing_body", chosen)
    policy = terms.policy_rules
    today = status.policy_now.date()
    context = {
        "t": t,
        "lang": chosen,
        "langs": LANGS,
        "lang_names": _lang_names(),
        "company": st.company_name,
        "callback": st.callback_number,
        "token": token,
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
    }
    response = page(request, "selfservice/account.html", context, status_code=status_code)
    response.headers.update(NO_LEAK)
    return response


def _here(token: str, lang: str, **query: str) -> str:
    extra = "".join(f"&{k}={quote(v)}" for k, v in query.items())
    return f"/me/{quote(token)}?lang={quote(lang)}{extra}"


@router.get("/me", response_class=HTMLResponse, include_in_schema=False)
async def landing(request: Request, lang: str | None = None) -> Response:
    """The bare address (what an SMS carries when no link secret is configured)."""
    return _friendly(request, 200, "landing_title", "landing_body", _lang(lang, None))


@router.get("/me/{token}", response_class=HTMLResponse, include_in_schema=False)
async def account_page(
    request: Request, token: str, lang: str | None = None, done: str | None = None
) -> Response:
    account_id = _account_for(request, token, lang)
    if isinstance(account_id, Response):
        return account_id
    return await _render(
        request, token, account_id, lang, done=done if done in ("requested", "promised") else None
    )


@router.post("/me/{token}/request-plan", include_in_schema=False)
async def request_plan(request: Request, token: str) -> Response:
    """The ``negotiation_requested`` signal: dunning waits while an agent prepares a plan."""
    form = await request.form()
    lang = _lang(str(form.get("lang", "")), None)
    account_id = _account_for(request, token, lang)
    if isinstance(account_id, Response):
        return account_id
    client = await temporal_client(request)
    sessions = app_sessions(request)
    problem = Texts(lang)("unavailable", phone=app_settings(request).callback_number)
    try:
        status = await accounts.account_status(client, account_id, sessions=sessions)
        # a closing run would take the request and do nothing with it
        if status.mode != Mode.DUNNING or status.closing is not None:
            return await _render(request, token, account_id, lang, problems=[problem], status_code=409)
        ask = NegotiationRequest(channel="self_service", note="debtor's self-service page")
        await calls.signal(client, sessions, account_id, "negotiation_requested", ask)
    except ops.AccountNotFound:
        return _friendly(request, 404, "missing_title", "missing_body", lang)
    except ops.AccountClosed:
        return await _render(request, token, account_id, lang, problems=[problem], status_code=409)
    return RedirectResponse(_here(token, lang, done="requested"), status_code=303)


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


@router.post("/me/{token}/promise", include_in_schema=False)
async def promise_to_pay(request: Request, token: str) -> Response:
    """A promise to pay: checked by the pure preview first, then proposed to the workflow as ``debtor``."""
    form = await request.form()
    lang = _lang(str(form.get("lang", "")), None)
    account_id = _account_for(request, token, lang)
    if isinstance(account_id, Response):
        return account_id
    values = {"date": str(form.get("date", "")).strip(), "amount": str(form.get("amount", "")).strip()}
    t = Texts(lang)
    client = await temporal_client(request)
    sessions = app_sessions(request)
    try:
        status = await accounts.account_status(client, account_id, sessions=sessions)
        terms = await asyncio.to_thread(plans.plan_terms, sessions, account_id)
    except ops.AccountNotFound:
        return _friendly(request, 404, "missing_title", "missing_body", lang)
    except ops.AccountClosed:
        return _friendly(request, 409, "missing_title", "missing_body", lang)
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
            token,
            account_id,
            lang,
            problems=[t.rejected, *problems],
            promise=values,
            status_code=status_code,
        )
    return RedirectResponse(_here(token, lang, done="promised"), status_code=303)
