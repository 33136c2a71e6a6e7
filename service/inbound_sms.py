"""Texts from debtors: opt-out and opt-in words, HELP and plan requests, answered once and told to the workflow.

The same rules as the status webhooks (:mod:`service.webhooks`): nothing unsigned changes anything,
the database first (an opt-out protects the debtor before the workflow hears of it), then the signal.
What is a keyword is :func:`domain.keywords.classify`'s to say (Twilio's and the CTIA's lists, in
English and Chinese); only a message that *is* a keyword counts, as with Twilio's own handling.

Every opt-out and opt-in is confirmed exactly once, and by whoever can: one account's workflow, through
the contact gate like every text (the run knows the account's language, waits for a lawful hour and
never sends twice); when no workflow can be told, this webhook's own reply, in the same words.
Behind a Messaging Service with Advanced Opt-Out, Twilio tells us which kind of keyword it applied
(``OptOutType``); that verdict wins, so the database always follows Twilio's block list. Opt-out and
opt-in words also set whether our sender may text the number at all, whoever it belongs to
(``store/sms_opt_outs.py``: a sign-in code goes by call to a blocked number).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from temporalio.client import Client

from domain.accounts import Channel, Language, Mode, validate_e164
from domain.cases import CaseKind
from domain.gate import Purpose
from domain.keywords import Intent, Keyword, classify
from domain.masking import mask_phone
from domain.templates import render
from runtime.settings import Settings
from service import cases, holds, leads, twiml
from service.links import self_service_link
from service.operations import AccountClosed, AccountNotFound
from service.state import app_sessions, app_settings
from service.webhooks import BASE, _audit, _client, _empty, _now, _signal, _xml, twilio_params
from store import cases as case_store
from store import sms_opt_outs
from store.contacts import (
    accounts_with_emergency_phone,
    emergency_opt_back_in,
    opt_back_in,
    set_contact_status,
    set_emergency_status,
)
from store.models import AccountRow, ContactPoint, Debtor
from store.rows import ContactStatus
from workflows.messages import NegotiationRequest, OptIn, OptOut

log = logging.getLogger("humane_collect.webhooks")
router = APIRouter()

INBOUND_SMS = f"{BASE}/sms"
#: How each intent is written in the audit log (``inbound_sms``); "stop" is what it always said.
AUDIT_DECISION = {
    Intent.OPT_OUT: "stop",
    Intent.OPT_IN: "start",
    Intent.HELP: "help",
    Intent.PLAN: "plan",
    Intent.COMPLAINT: "complaint",
    Intent.DISPUTE: "dispute",
    Intent.OTHER: "other",
}


def accounts_for_phone(s: Session, phone: str) -> list[tuple[str, Language, Mode]]:
    """Every account whose SMS contact point is ``phone`` (one person may owe several debts)."""
    rows = s.execute(
        select(AccountRow.account_id, Debtor.language, AccountRow.mode)
        .join(Debtor, Debtor.id == AccountRow.debtor_id)
        .join(ContactPoint, ContactPoint.debtor_id == Debtor.id)
        .where(ContactPoint.channel == Channel.SMS.value, ContactPoint.address == phone)
        .order_by(AccountRow.created_at, AccountRow.account_id)
    ).all()
    return [(account_id, Language(language), Mode(mode)) for account_id, language, mode in rows]


@dataclass
class Inbound:
    """What one inbound text was and what it changed in the database."""

    keyword: Keyword
    accounts: list[tuple[str, Language, Mode]]
    #: accounts whose SMS this text turned off / on (a repeated keyword changes none)
    changed: list[str] = field(default_factory=list)
    #: accounts naming this number as their emergency contact, whose status this text changed
    emergency_changed: list[str] = field(default_factory=list)

    @property
    def kind(self) -> Intent:
        return self.keyword.intent

    @property
    def language(self) -> Language:
        """The language of any answer: the account's (what its texts are in), else the keyword's."""
        if self.accounts:
            return self.accounts[0][1]
        return self.keyword.language or Language.EN


def _apply_inbound(
    sessions: sessionmaker[Session], phone: str, kw: Keyword, sid: str, now: datetime
) -> Inbound:
    """The database first: every account on the number, and every account naming it as emergency
    contact, in one transaction (an opt-out protects the debtor before any workflow hears of it)."""
    with sessions.begin() as s:
        if kw.intent in (Intent.OPT_OUT, Intent.OPT_IN):  # our sender's block, for any number (sign-in codes)
            opted_out = kw.intent == Intent.OPT_OUT
            sms_opt_outs.record(s, phone, opted_out=opted_out, source=kw.word or "carrier", now=now)
        found = accounts_for_phone(s, phone)
        result = Inbound(keyword=kw, accounts=found)
        decision = AUDIT_DECISION[kw.intent]
        words = {"keyword": kw.word} if kw.intent != Intent.OTHER else {}
        for account_id, _, _ in found:
            _audit(s, account_id, "inbound_sms", decision, now, sid=sid, **words)
            if kw.intent == Intent.OPT_OUT:
                changed = set_contact_status(s, account_id, Channel.SMS, ContactStatus.OPTED_OUT, now)
            elif kw.intent == Intent.OPT_IN:
                changed = opt_back_in(s, account_id, Channel.SMS, now)
            else:
                changed = False
            if changed:
                result.changed.append(account_id)
        # an emergency contact who wants no more texts gets none (the live gate reads it), and one
        # who opts back in may be asked again, within the profile's locate caps
        if kw.intent in (Intent.OPT_OUT, Intent.OPT_IN):
            for account_id in accounts_with_emergency_phone(s, phone):
                if kw.intent == Intent.OPT_OUT:
                    changed = set_emergency_status(s, account_id, ContactStatus.OPTED_OUT, now)
                    action = "emergency_contact_opted_out"
                else:
                    changed = emergency_opt_back_in(s, account_id, now)
                    action = "emergency_contact_opted_in"
                if changed:
                    result.emergency_changed.append(account_id)
                    _audit(s, account_id, "inbound_sms", action, now, sid=sid, **words)
    return result


def _e164(value: str) -> str:
    try:
        return validate_e164(value)
    except ValueError:
        return value.strip()


def help_reply(settings: Settings, found: Inbound) -> str:
    """The language pack's ``help_reply``: who we are, how to reach us, how to stop texts (the same
    opt-out words as every text of that language, the pack's footer: STOP, or 回复TD退订).

    The link is the debtor's own signed one when the number belongs to one account; for a number we
    do not know, or one shared by several accounts, it is the bare self-service address (sign-in),
    so a stranger's HELP learns nothing about anyone's debt. A stranger is answered in the language
    of the word they sent (帮助 in Chinese, HELP in English).
    """
    mine = {account_id for account_id, _, _ in found.accounts}
    url = self_service_link(settings, mine.pop()) if len(mine) == 1 else settings.self_service_url
    context = {
        "company": settings.company_name,
        "callback_number": settings.callback_number,
        "self_service_url": url,
    }
    return render(
        "help_reply",
        found.language.value,
        purpose=Purpose.ACKNOWLEDGEMENT,
        channel=Channel.SMS,
        context=context,
    ).text


def confirmation(settings: Settings, found: Inbound) -> str:
    """The language pack's opt-out or opt-in confirmation, word for word what a workflow sends (for
    when none can be told): who we are, the callback number, and the word that undoes it."""
    opt_out = found.kind == Intent.OPT_OUT
    return render(
        "opt_out_confirmation" if opt_out else "opt_in_confirmation",
        found.language.value,
        purpose=Purpose.OPT_OUT_CONFIRMATION if opt_out else Purpose.ACKNOWLEDGEMENT,
        channel=Channel.SMS,
        context={"company": settings.company_name, "callback_number": settings.callback_number},
    ).text


async def _consent_signals(client: Client | None, found: Inbound) -> bool:
    """Tell every account's workflow; the one confirmation goes to the first that can be told
    (accounts this text changed first), the others only record. True if any workflow was told."""
    stop = found.kind == Intent.OPT_OUT
    first = [a for a, _, _ in found.accounts if a in found.changed]
    rest = [a for a, _, _ in found.accounts if a not in found.changed]
    owed = True
    told_any = False
    for account_id in first + rest:
        message: OptOut | OptIn = (
            OptOut(channel=Channel.SMS, source="debtor_sms", confirm=owed, stored=True)
            if stop
            else OptIn(channel=Channel.SMS, source="debtor_sms", confirm=owed)
        )
        told = await _signal(client, account_id, "opt_out" if stop else "opt_in", message)
        told_any |= told
        owed = owed and not told
    return told_any


@router.api_route(INBOUND_SMS, methods=["POST", "GET"], include_in_schema=False)
async def inbound_sms(request: Request, params: FormData = Depends(twilio_params)) -> Response:
    """A text from a debtor (or from an emergency contact, or a stranger); see the README's table.

    Opt-out words turn SMS off in the database for every account on the number and signal
    ``opt_out``; opt-in words turn it back on and signal ``opt_in``. One account's workflow sends the
    one confirmation the rules allow; only if no workflow could be told (none running, or the number
    is only an emergency contact's) does this reply carry it, and only when the text changed
    something. A repeated keyword changes nothing and gets nothing. HELP is answered here, at once.
    """
    st = app_settings(request)
    phone = _e164(str(params.get("From") or ""))
    sid = str(params.get("MessageSid") or params.get("SmsSid") or "")
    carrier_type = str(params.get("OptOutType") or "") or None
    kw = classify(str(params.get("Body") or ""), carrier_type)
    found = await run_in_threadpool(_apply_inbound, app_sessions(request), phone, kw, sid, _now())
    if not found.accounts:
        log.info("inbound sms from unknown number %s (%s)", mask_phone(phone), found.kind.value)
    client = _client(request)
    company, callback = st.company_name, st.callback_number
    if found.kind in (Intent.OPT_OUT, Intent.OPT_IN):
        told = await _consent_signals(client, found)
        changed = bool(found.changed) or (not found.accounts and bool(found.emergency_changed))
        if changed and not told:
            return _xml(twiml.sms_reply(confirmation(st, found)))
        return _empty()
    if found.kind == Intent.HELP:
        return _xml(twiml.sms_reply(help_reply(st, found)))
    if found.kind == Intent.PLAN:
        asked = False
        for account_id, _, mode in found.accounts:
            if mode == Mode.DUNNING:
                asked |= await _signal(
                    client,
                    account_id,
                    "negotiation_requested",
                    NegotiationRequest(channel="sms", note="plan requested by text"),
                )
        if asked:
            return _xml(twiml.sms_reply(twiml.sms_text(twiml.SMS_PLAN, found.language, company, callback)))
    if found.kind in (Intent.COMPLAINT, Intent.DISPUTE):
        await _filed_by_text(request, client, found, sid)  # the workflow's acknowledgement is the answer
    elif found.kind == Intent.OTHER:
        body = str(params.get("Body") or "")
        await _for_a_person(request, client, found, body, sid)  # the debtor's own message: a case
        await leads.emergency_reply(request, phone, body, sid)  # an emergency contact's reply: a lead
    return _empty()


async def _filed_by_text(request: Request, client: Client | None, found: Inbound, sid: str) -> None:
    """COMPLAINT / 投诉 or DISPUTE / 异议: the same hold and case an agent files, for every account on the
    number that can take it; its one acknowledgement (case number, deadline) comes from its workflow."""
    if client is None:
        return
    kind = CaseKind.COMPLAINT if found.kind == Intent.COMPLAINT else CaseKind.DISPUTE
    for account_id, _, _ in found.accounts:
        if await run_in_threadpool(_noted_on_open_case, app_sessions(request), account_id, kind, sid):
            continue  # the same request again while it is open: noted on its case, nothing sent twice
        key = f"sms/{sid}/{account_id}/{found.kind.value}"  # a redelivered webhook files nothing twice
        try:
            if found.kind == Intent.COMPLAINT:
                await holds.file_complaint(
                    client, account_id, "complaint made by text", "debtor", source="debtor",
                    sessions=app_sessions(request), settings=app_settings(request), channel="sms", source_key=key,
                )  # fmt: skip
            else:
                await holds.file_dispute(
                    client, account_id, "dispute made by text", "debtor", sessions=app_sessions(request),
                    settings=app_settings(request), channel="sms", source_key=key,
                )  # fmt: skip
        except (AccountClosed, AccountNotFound) as err:
            log.info("%s by text for %s not filed: %s", found.kind.value, account_id, err)


def _noted_on_open_case(sessions: sessionmaker[Session], account_id: str, kind: CaseKind, sid: str) -> bool:
    with sessions.begin() as s:
        open_case = case_store.open_case_of(s, account_id, kind)
        if open_case is None:
            return False
        case_store.log(
            s, open_case.id, "debtor", "texted_again", f"{kind.value} by text again ({sid})", _now()
        )
        return True


async def _for_a_person(request: Request, client: Client | None, found: Inbound, body: str, sid: str) -> None:
    """A message that is no keyword reaches a person: a case in the agents' inbox per account on the
    number, answered (and, if the agent chooses, replied to by text) from the case page."""
    if client is None or not body.strip():
        return
    for account_id, _, _ in found.accounts:
        await cases.open_case(
            client, app_sessions(request), app_settings(request), source_key=f"sms/{sid}/{account_id}",
            account_id=account_id, kind=CaseKind.INBOUND_TEXT, channel="sms", summary=body, actor="debtor",
        )  # fmt: skip


__all__ = [
    "INBOUND_SMS",
    "Inbound",
    "accounts_for_phone",
    "confirmation",
    "help_reply",
    "router",
]
