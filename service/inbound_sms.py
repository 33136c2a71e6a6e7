"""Texts from debtors: STOP words, HELP and plan requests, answered on the spot and told to the workflow.

The same rules as the status webhooks (:mod:`service.webhooks`): nothing unsigned changes anything,
the database first (an opt-out protects the debtor before the workflow hears of it), then the signal.
Only a message that *is* a keyword counts, as with Twilio's own opt-out handling.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from domain.accounts import Channel, Language, Mode, validate_e164
from domain.gate import Purpose
from domain.masking import mask_phone
from domain.templates import render
from runtime.settings import Settings
from service import leads, twiml
from service.links import self_service_link
from service.state import app_sessions, app_settings
from service.webhooks import BASE, _audit, _client, _empty, _now, _signal, _xml, twilio_params
from store import sms_opt_outs
from store.contacts import (
    accounts_with_emergency_phone,
    set_contact_status,
    set_emergency_status,
)
from store.models import AccountRow, ContactPoint, Debtor
from store.rows import ContactStatus
from workflows.messages import NegotiationRequest, OptOut

log = logging.getLogger("humane_collect.webhooks")
router = APIRouter()

INBOUND_SMS = f"{BASE}/sms"
#: Twilio's standard opt-out words (and the CTIA list); a message that is exactly one of these stops SMS.
#: "TD"/"退订" are the opt-out replies Chinese carriers and our zh-CN texts name ("回复TD退订").
STOP_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT", "TD", "退订"}
)
HELP_WORDS = frozenset({"HELP", "INFO"})
#: Twilio's opt-in words: our sender may text the number again (collection texts stay as they were)
START_WORDS = frozenset({"START", "UNSTOP", "YES"})
PLAN_WORDS = frozenset({"1", "PLAN", "协商"})


def keyword(body: str) -> str:
    """The message reduced to what keyword matching compares: NFKC, trimmed, trailing punctuation gone,
    upper case (``" stop. "`` → ``STOP``, ``"１"`` → ``1``). Only a message that *is* a keyword counts,
    as with Twilio's own opt-out handling: "please don't stop calling" is not an opt-out."""
    text = unicodedata.normalize("NFKC", body or "").strip()
    text = re.sub(r"[\s.!?。！？,，]+$", "", text)
    return text.upper()


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
    kind: str  # stop, help, plan, other
    accounts: list[tuple[str, Language, Mode]]
    newly_opted_out: list[str] = field(default_factory=list)

    @property
    def language(self) -> Language:
        return self.accounts[0][1] if self.accounts else Language.EN


def _apply_inbound(
    sessions: sessionmaker[Session], phone: str, word: str, sid: str, now: datetime
) -> Inbound:
    kind = (
        "stop"
        if word in STOP_WORDS
        else "help"
        if word in HELP_WORDS
        else "plan"
        if word in PLAN_WORDS
        else "start"
        if word in START_WORDS
        else "other"
    )
    with sessions.begin() as s:
        if kind in ("stop", "start"):  # the carrier's block of our sender, for any number (sign-in codes)
            sms_opt_outs.record(s, phone, opted_out=kind == "stop", source=word, now=now)
        found = accounts_for_phone(s, phone)
        result = Inbound(kind=kind, accounts=found)
        for account_id, _, _ in found:
            _audit(s, account_id, "inbound_sms", kind, now, sid=sid, length=len(word))
            if kind == "stop" and set_contact_status(
                s, account_id, Channel.SMS, ContactStatus.OPTED_OUT, now
            ):
                result.newly_opted_out.append(account_id)
        if kind == "stop":  # an emergency contact who wants no more texts gets none (the gate reads it)
            for account_id in accounts_with_emergency_phone(s, phone):
                if set_emergency_status(s, account_id, ContactStatus.OPTED_OUT, now):
                    _audit(s, account_id, "inbound_sms", "emergency_contact_opted_out", now, sid=sid)
    return result


def _e164(value: str) -> str:
    try:
        return validate_e164(value)
    except ValueError:
        return value.strip()


def help_reply(settings: Settings, found: Inbound) -> str:
    """The language pack's ``help_reply``: who we are, how to reach us, how to stop texts.

    The link is the debtor's own signed one when the number belongs to one account; for a number we
    do not know, or one shared by several accounts, it is the bare self-service address (sign-in),
    so a stranger's HELP learns nothing about anyone's debt.
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


@router.api_route(INBOUND_SMS, methods=["POST", "GET"], include_in_schema=False)
async def inbound_sms(request: Request, params: FormData = Depends(twilio_params)) -> Response:
    """A text from a debtor: STOP words, START words, HELP, or a plan request ("1", "PLAN", "协商").

    STOP marks SMS opted out in the database for every account on that number (the live gate stops
    texts at once) and signals ``opt_out``; the workflow sends the one confirmation the rules allow
    (it confirms only the first time). Only if no workflow could be told (none running) does this
    reply carry the confirmation itself, and only on the first STOP. A repeated STOP gets nothing.
    STOP and START also set whether our sender may text the number at all (``store/sms_opt_outs.py``):
    START lifts that block, so a sign-in code goes by text again; a debtor's collection texts stay off.
    """
    st = app_settings(request)
    phone = _e164(str(params.get("From") or ""))
    sid = str(params.get("MessageSid") or params.get("SmsSid") or "")
    word = keyword(str(params.get("Body") or ""))
    found = await run_in_threadpool(_apply_inbound, app_sessions(request), phone, word, sid, _now())
    if not found.accounts:
        log.info("inbound sms from unknown number %s (%s)", mask_phone(phone), found.kind)
    client = _client(request)
    company, callback = st.company_name, st.callback_number
    if found.kind == "stop":
        told = False
        for account_id, _, _ in found.accounts:
            told |= await _signal(
                client, account_id, "opt_out", OptOut(channel=Channel.SMS, source="debtor_sms")
            )
        if found.newly_opted_out and not told:
            return _xml(twiml.sms_reply(twiml.sms_text(twiml.SMS_STOPPED, found.language, company, callback)))
        return _empty()
    if found.kind == "help":
        return _xml(twiml.sms_reply(help_reply(st, found)))
    if found.kind == "plan":
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
    if found.kind == "other":  # an emergency contact's reply: a lead for the agents' inbox (service/leads.py)
        await leads.emergency_reply(request, phone, str(params.get("Body") or ""), sid)
    return _empty()


# ---- operators ------------------------------------------------------------------------------------

__all__ = [
    "HELP_WORDS",
    "INBOUND_SMS",
    "PLAN_WORDS",
    "START_WORDS",
    "STOP_WORDS",
    "accounts_for_phone",
    "help_reply",
    "keyword",
    "router",
]
