"""Twilio webhooks (signed) turned into database facts and workflow signals; the governor for operators.

Why it is built this way:

* **Nothing unsigned changes anything.** Every route first checks ``X-Twilio-Signature`` against the
  URL Twilio signed (``public_base_url`` + path + query, see :mod:`service.signing`); a missing or
  wrong signature is answered 403 before the database or Temporal is touched.
* **The database first, then the signal.** A callback is applied to the contact attempt in one
  transaction (out-of-order and repeated statuses are absorbed by
  ``store.contacts.update_attempt_status_by_sid``, which never regresses a final outcome), then the
  account's workflow (``account-<id>``) is signalled. The send activity's live gate reads the
  database, so an opt-out protects the debtor even before the workflow hears of it; a lost signal is
  repaired by the outcome poller, which reads the same rows.
* **Unknown SIDs are a 200 no-op** (Twilio would retry or log 11200 otherwise) and are logged with the
  number masked. No phone number is ever logged in clear.
* **Blocking work off the event loop.** Database work runs in the thread pool; the handlers await only
  Temporal calls, so one slow SQLite write never stalls other webhooks.
* **A machine hears only a limited-content message.** When asynchronous machine detection reports the
  end of a voicemail greeting (``machine_end_*``), the live call is redirected (``calls(sid).update``
  through the real SDK) to TwiML that says the ``voicemail_limited`` template and hangs up: what the
  recording keeps names no debt. A person (``human``) is never redirected: they already heard the
  opening and may be in the key menu.

The Temporal client comes from ``app.state.temporal_client`` (set by whoever builds the app); without
one, database changes still happen and signals are skipped (the poller and the live gate still work).
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, ImmutableMultiDict
from temporalio.client import Client
from temporalio.service import RPCError
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client as TwilioClient
from twilio.twiml.voice_response import VoiceResponse

from activities.twilio_client import make_twilio_client
from domain.accounts import Channel, ContactOutcome, Language, Mode, workflow_id_for
from domain.gate import Audience, Purpose
from domain.masking import mask_phone
from domain.money import format_minor
from domain.outcomes import CALL_FINAL, MESSAGE_FINAL, call_outcome, message_outcome
from domain.templates import render
from runtime.settings import Settings
from service import holds, ratelimit, twiml
from service import temporal_calls as calls
from service.operations import AccountClosed, AccountNotFound
from service.signing import request_is_valid
from service.state import app_sessions, app_settings
from store import governor as governor_store
from store.accounts import account_snapshot
from store.audit import audit, audit_entries
from store.contacts import (
    AttemptView,
    attempt_by_sid,
    set_contact_status,
    set_emergency_status,
    update_attempt_status_by_sid,
)
from store.models import AccountRow
from store.rows import ContactStatus
from workflows.messages import NegotiationRequest, OptOut, OutcomeReport

log = logging.getLogger("humane_collect.webhooks")
router = APIRouter()

BASE = "/webhooks/twilio"
MESSAGE_STATUS = f"{BASE}/message-status"
CALL_STATUS = f"{BASE}/call-status"
AMD = f"{BASE}/amd"
GATHER = f"{BASE}/gather"
ACTOR = "twilio_webhook"

#: SMS error codes after which the number cannot take texts / has opted out (the issue's list).
SMS_UNREACHABLE = frozenset({30003, 30005, 30006})
SMS_OPTED_OUT = frozenset({21610})
#: AnsweredBy values (DetectMessageEnd) after which a voicemail box is recording: leave the limited message
MACHINE_END = frozenset({"machine_end_beep", "machine_end_silence", "machine_end_other"})
VOICEMAIL_TEMPLATE = "voicemail_limited"
#: outcomes that settle an attempt (the workflow is told about these only)
SETTLED = frozenset(
    set(ContactOutcome) - {ContactOutcome.SENT, ContactOutcome.DENIED, ContactOutcome.INDETERMINATE}
)

XML = "application/xml"


# ---- plumbing -------------------------------------------------------------------------------------
def _client(request: Request) -> Client | None:
    return getattr(request.app.state, "temporal_client", None)


def _twilio(request: Request) -> TwilioClient:
    """The real Twilio SDK client (``app.state.twilio_client``, built once from the settings)."""
    state = request.app.state
    client = getattr(state, "twilio_client", None)
    if client is None:
        st = app_settings(request)
        client = state.twilio_client = make_twilio_client(st.twilio_sid, st.twilio_token, st.twilio_base)
    return client


def _now() -> datetime:
    return datetime.now(UTC)


async def twilio_params(request: Request) -> ImmutableMultiDict[str, Any]:
    """The request's parameters once its signature checks out; 403 (and nothing else) otherwise."""
    params: ImmutableMultiDict[str, Any]
    if request.method == "GET":
        params = request.query_params
    else:
        params = await request.form()
    st = app_settings(request)
    if (wait := ratelimit.refused_too_often(request, "webhooks")) is not None:
        raise HTTPException(
            status_code=429, detail="too many forged requests", headers={"Retry-After": str(wait)}
        )
    if not request_is_valid(request, params, st.twilio_token, st.public_base_url):
        log.warning("refused %s %s: missing or invalid X-Twilio-Signature", request.method, request.url.path)
        ratelimit.refused(request, "webhooks")  # Twilio's own requests are signed: only forgers count
        raise HTTPException(status_code=403, detail="invalid Twilio signature")
    return params


def _int(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _xml(document: object) -> Response:
    return Response(content=str(document), media_type=XML)


def _empty() -> Response:
    """Twilio wants a 2xx; an empty TwiML document does nothing on any kind of webhook."""
    return _xml(twiml.sms_reply(None))


async def _signal(client: Client | None, account_id: str, name: str, arg: object) -> bool:
    """Signal ``account-<id>``; False (logged) if there is no client or the workflow is gone.

    Any other Temporal failure propagates (503): the database change is committed and idempotent,
    so a retried webhook finishes the job.
    """
    if client is None:
        log.info("no Temporal client: %s for %s not signalled", name, account_id)
        return False
    try:
        told = await calls.signal_workflow(client, workflow_id_for(account_id), name, arg)
    except RPCError as err:
        log.error("signal %s to %s failed: %s", name, account_id, err)
        raise HTTPException(status_code=503, detail="workflow service unavailable") from err
    if not told:  # the account's run has ended: the database holds what happened
        log.info("workflow of %s is not running: %s dropped", account_id, name)
    return told


def _audit(s: Session, account_id: str, action: str, decision: str, now: datetime, **details: Any) -> None:
    audit(
        s,
        at=now,
        clock="wall",
        account_id=account_id,
        actor=ACTOR,
        action=action,
        decision=decision,
        details=details,
    )


def _changed(before: AttemptView, after: AttemptView) -> bool:
    return (before.provider_status, before.outcome, before.error_code) != (
        after.provider_status,
        after.outcome,
        after.error_code,
    )


@dataclass
class Applied:
    """What a status callback did to the database, and what the workflow should hear (if anything)."""

    account_id: str | None = None
    report: OutcomeReport | None = None
    signals: list[tuple[str, str, object]] = field(default_factory=list)
    #: AMD only: a machine just finished its greeting on a live call, leave the limited voicemail
    voicemail: bool = False
    language: Language = Language.EN


def _report(view: AttemptView, final_status: bool, now: datetime) -> OutcomeReport | None:
    """An outcome report when a final status settled the attempt (repeats re-send the *stored* outcome)."""
    if not final_status or view.outcome not in SETTLED:
        return None
    assert view.outcome is not None
    return OutcomeReport(dedupe_key=view.dedupe_key, outcome=view.outcome, error_code=view.error_code, at=now)


def _unknown(kind: str, sid: str, to: str | None) -> None:
    log.warning("%s for unknown sid %s (to %s): ignored", kind, sid or "-", mask_phone(to))


# ---- message status -------------------------------------------------------------------------------
def _apply_message_status(
    sessions: sessionmaker[Session], sid: str, status: str, code: int | None, now: datetime
) -> Applied | None:
    final = status in MESSAGE_FINAL
    with sessions.begin() as s:
        before = attempt_by_sid(s, sid)
        if before is None:
            return None
        outcome = message_outcome(status, code) if final else None
        after = update_attempt_status_by_sid(s, sid, status, outcome, code, now)
        assert after is not None
        if _changed(before, after):
            _audit(
                s, after.account_id, "provider_status", status, now,
                sid=sid, channel="sms", outcome=after.outcome, error_code=code,
            )  # fmt: skip
        # only a status the attempt actually took: a late "undelivered" after "delivered" is ignored above
        took = final and after.provider_status == status and after.error_code == code
        if (
            took and after.audience == Audience.THIRD_PARTY
        ):  # the emergency contact's number, not the debtor's
            if code in SMS_UNREACHABLE or code in SMS_OPTED_OUT:
                status = ContactStatus.UNREACHABLE if code in SMS_UNREACHABLE else ContactStatus.OPTED_OUT
                set_emergency_status(s, after.account_id, status, now)
        elif took and code in SMS_UNREACHABLE:
            set_contact_status(s, after.account_id, Channel.SMS, ContactStatus.UNREACHABLE, now)
        elif took and code in SMS_OPTED_OUT:
            set_contact_status(s, after.account_id, Channel.SMS, ContactStatus.OPTED_OUT, now)
        return Applied(account_id=after.account_id, report=_report(after, final, now))


@router.api_route(MESSAGE_STATUS, methods=["POST", "GET"], include_in_schema=False)
async def message_status(request: Request, params: FormData = Depends(twilio_params)) -> Response:
    """SMS delivery receipts: queued → sent → delivered / undelivered / failed (with ErrorCode)."""
    sid = str(params.get("MessageSid") or params.get("SmsSid") or "")
    status = str(params.get("MessageStatus") or params.get("SmsStatus") or "").lower()
    code = _int(params.get("ErrorCode"))
    applied = await run_in_threadpool(_apply_message_status, app_sessions(request), sid, status, code, _now())
    if applied is None:
        _unknown("message status", sid, params.get("To"))
        return _empty()
    if applied.report is not None and applied.account_id:
        await _signal(_client(request), applied.account_id, "contact_outcome", applied.report)
    return _empty()


# ---- call status and machine detection -------------------------------------------------------------
def _call_facts(s: Session, account_id: str, sid: str) -> tuple[str | None, int | None]:
    """AnsweredBy and CallDuration already heard for this call (AMD and status callbacks race)."""
    answered_by: str | None = None
    duration: int | None = None
    for entry in audit_entries(s, account_id):
        if entry.actor != ACTOR or entry.details.get("sid") != sid:
            continue
        answered_by = entry.details.get("answered_by") or answered_by
        duration = (
            _int(entry.details.get("duration")) if entry.details.get("duration") is not None else duration
        )
    return answered_by, duration


def _apply_call_status(
    sessions: sessionmaker[Session],
    sid: str,
    status: str,
    answered_by: str | None,
    duration: int | None,
    now: datetime,
) -> Applied | None:
    final = status in CALL_FINAL
    with sessions.begin() as s:
        before = attempt_by_sid(s, sid)
        if before is None:
            return None
        outcome = None
        if final:
            known_by, _ = _call_facts(s, before.account_id, sid)
            outcome = call_outcome(status, answered_by or known_by, duration)
        after = update_attempt_status_by_sid(s, sid, status, outcome, None, now)
        assert after is not None
        if _changed(before, after):
            _audit(
                s, after.account_id, "provider_status", status, now,
                sid=sid, channel="voice", outcome=after.outcome, answered_by=answered_by, duration=duration,
            )  # fmt: skip
        return Applied(account_id=after.account_id, report=_report(after, final, now))


@router.api_route(CALL_STATUS, methods=["POST", "GET"], include_in_schema=False)
async def call_status(request: Request, params: FormData = Depends(twilio_params)) -> Response:
    """Call progress: initiated, ringing, in-progress, then completed / busy / no-answer / failed."""
    sid = str(params.get("CallSid") or "")
    status = str(params.get("CallStatus") or "").lower()
    answered_by = params.get("AnsweredBy") or None
    duration = _int(params.get("CallDuration"))
    applied = await run_in_threadpool(
        _apply_call_status, app_sessions(request), sid, status, answered_by, duration, _now()
    )
    if applied is None:
        _unknown("call status", sid, params.get("To"))
        return _empty()
    if applied.report is not None and applied.account_id:
        await _signal(_client(request), applied.account_id, "contact_outcome", applied.report)
    return _empty()


def _apply_amd(sessions: sessionmaker[Session], sid: str, answered_by: str, now: datetime) -> Applied | None:
    with sessions.begin() as s:
        before = attempt_by_sid(s, sid)
        if before is None:
            return None
        known_by, duration = _call_facts(s, before.account_id, sid)
        first = known_by != answered_by  # a repeated AMD callback adds nothing
        if first:
            _audit(s, before.account_id, "amd", answered_by, now, sid=sid, answered_by=answered_by)
        status = (before.provider_status or "").lower()
        if status not in CALL_FINAL:
            # the final status callback will use it; a machine still recording gets the limited message
            snap = account_snapshot(s, before.account_id)
            return Applied(
                account_id=before.account_id,
                voicemail=first and answered_by in MACHINE_END,
                language=snap.language if snap is not None else Language.EN,
            )
        if status != "completed":
            return Applied(account_id=before.account_id)
        # AMD decided after the call ended: refine the outcome (e.g. conversation -> silent)
        refined = call_outcome("completed", answered_by, duration)
        after = update_attempt_status_by_sid(s, sid, "completed", refined, None, now)
        assert after is not None
        report = _report(after, True, now) if _changed(before, after) else None
        return Applied(account_id=before.account_id, report=report)


def voicemail_twiml(settings: Settings, language: Language) -> VoiceResponse:
    """The limited-content voicemail (``voicemail_limited``: who we are, a name, a number) and hang up."""
    rendered = render(
        VOICEMAIL_TEMPLATE,
        language.value,
        purpose=Purpose.DUNNING,
        channel=Channel.VOICE,
        context={
            "company": settings.company_name,
            "agent_name": settings.agent_name,
            "callback_number": settings.callback_number,
        },
    )
    response = VoiceResponse()
    response.say(rendered.text, language=twiml.VOICE_LANG.get(language, "en-US"))
    response.hangup()
    return response


def _leave_voicemail(
    client: TwilioClient,
    sessions: sessionmaker[Session],
    settings: Settings,
    account_id: str,
    sid: str,
    language: Language,
) -> bool:
    """Redirect the live call to the limited voicemail (blocking: runs in the thread pool); audited."""
    document = str(voicemail_twiml(settings, language))
    error: str | None = None
    try:
        client.calls(sid).update(twiml=document)
    except TwilioRestException as err:  # e.g. 21220: the call ended meanwhile
        error = f"{err.status}/{err.code}"
    except (TwilioException, OSError) as err:
        error = type(err).__name__
    if error is not None:
        log.warning("limited voicemail for call %s not left: %s", sid, error)
    with sessions.begin() as s:
        _audit(
            s, account_id, "voicemail", "failed" if error else VOICEMAIL_TEMPLATE, _now(),
            sid=sid, channel="voice", template=VOICEMAIL_TEMPLATE, **({"error": error} if error else {}),
        )  # fmt: skip
    return error is None


@router.api_route(AMD, methods=["POST", "GET"], include_in_schema=False)
async def amd(request: Request, params: FormData = Depends(twilio_params)) -> Response:
    """Asynchronous answering-machine detection: human, machine_*, fax or unknown (counts as silent).

    ``machine_end_*`` on a call still in progress: the greeting is over and the box records, so the call
    is redirected to the limited-content voicemail before this webhook answers. ``human`` changes nothing
    on the call (the person already heard who is calling).
    """
    sid = str(params.get("CallSid") or "")
    answered_by = str(params.get("AnsweredBy") or "unknown").lower()
    sessions = app_sessions(request)
    applied = await run_in_threadpool(_apply_amd, sessions, sid, answered_by, _now())
    if applied is None:
        _unknown("amd", sid, params.get("To"))
        return _empty()
    if applied.voicemail and applied.account_id:
        await run_in_threadpool(
            _leave_voicemail,
            _twilio(request),
            sessions,
            app_settings(request),
            applied.account_id,
            sid,
            applied.language,
        )
    if applied.report is not None and applied.account_id:
        await _signal(_client(request), applied.account_id, "contact_outcome", applied.report)
    return _empty()


# ---- key presses ----------------------------------------------------------------------------------
@dataclass
class CallContext:
    account_id: str
    language: Language
    balance: str
    mode: Mode
    born: date | None = None  # the fact on file the callee must key in before the balance
    zone: str = "UTC"  # the debtor's calendar, for a date said on the call


def _call_context(sessions: sessionmaker[Session], sid: str) -> CallContext | None:
    with sessions.begin() as s:
        view = attempt_by_sid(s, sid)
        if view is None:
            return None
        snap = account_snapshot(s, view.account_id)
        if snap is None:
            return None
        row = s.get(AccountRow, snap.account_id)
        return CallContext(
            account_id=snap.account_id,
            language=snap.language,
            balance=format_minor(snap.balance_minor, snap.currency),
            mode=snap.mode,
            born=row.debtor.date_of_birth if row is not None else None,
            zone=snap.timezone or (snap.zones[0] if snap.zones else "UTC"),
        )


def _record_key(
    sessions: sessionmaker[Session], account_id: str, sid: str, digits: str, now: datetime
) -> bool:
    """Audit the key press; key 9 also marks voice opted out. True if that opt-out is new."""
    with sessions.begin() as s:
        _audit(s, account_id, "gather", f"key_{digits or 'none'}", now, sid=sid, channel="voice")
        if digits == "9":
            return set_contact_status(s, account_id, Channel.VOICE, ContactStatus.OPTED_OUT, now)
    return False


def _action_url(request: Request, step: str | None = None) -> str:
    base = app_settings(request).public_base_url
    url = f"{base.rstrip('/')}{GATHER}" if base else str(request.url.replace(query=None))
    return f"{url}?step={step}" if step else url


#: wrong dates of birth one call may key in before it ends (the next call starts again)
VERIFY_TRIES = 2


def _record_verification(
    sessions: sessionmaker[Session], account_id: str, sid: str, matched: bool, now: datetime
) -> int:
    """Audit the try (never the digits); how many failed on this call so far."""
    with sessions.begin() as s:
        _audit(s, account_id, "verify", "matched" if matched else "failed", now, sid=sid, channel="voice")
        return sum(
            1
            for e in audit_entries(s, account_id)
            if e.action == "verify" and e.decision == "failed" and (e.details or {}).get("sid") == sid
        )


@router.api_route(GATHER, methods=["POST", "GET"], include_in_schema=False)
async def gather(request: Request, params: FormData = Depends(twilio_params)) -> Response:
    """Keys pressed during a call: 1 plan, 2 balance, 3 complaint, 9 stop calls; anything else repeats the menu.

    Every answer starts with ``<Say>``: the callee is on the line and must never hear silence.
    """
    st = app_settings(request)
    sid = str(params.get("CallSid") or "")
    keyed = str(params.get("Digits") or "").strip()
    digits = keyed[:1]
    sessions = app_sessions(request)
    ctx = await run_in_threadpool(_call_context, sessions, sid)
    if ctx is None:
        _unknown("gather", sid, params.get("To"))
        return _xml(twiml.unknown_call(Language.EN, st.company_name, st.callback_number))
    if request.query_params.get("step") == "verify":
        # right-party verification: whoever answered keys in the date of birth on file
        expected = ctx.born.strftime("%d%m%Y") if ctx.born is not None else None
        matched = expected is not None and hmac.compare_digest(keyed.encode(), expected.encode())
        failed = await run_in_threadpool(_record_verification, sessions, ctx.account_id, sid, matched, _now())
        if matched:
            return _xml(twiml.balance(ctx.language, ctx.balance, st.company_name, _action_url(request)))
        if failed >= VERIFY_TRIES or expected is None:
            return _xml(twiml.not_verified(ctx.language, st.callback_number))
        return _xml(twiml.verify_prompt(ctx.language, _action_url(request, "verify"), again=True))
    await run_in_threadpool(_record_key, sessions, ctx.account_id, sid, digits, _now())
    client = _client(request)
    if digits == "1":
        await _signal(
            client,
            ctx.account_id,
            "negotiation_requested",
            NegotiationRequest(channel="voice", note="pressed 1 during a call"),
        )
        return _xml(twiml.plan_requested(ctx.language, st.callback_number))
    if digits == "2":
        # never to whoever answered: only after the date of birth on file is keyed in (a third party
        # must not learn of the debt), and with none on file, not on the phone at all
        if ctx.born is None:
            return _xml(twiml.balance_elsewhere(ctx.language, st.callback_number, _action_url(request)))
        return _xml(twiml.verify_prompt(ctx.language, _action_url(request, "verify")))
    if digits == "3":
        return _xml(await _complaint_by_key(request, client, ctx, sid))
    if digits == "9":
        await _signal(
            client, ctx.account_id, "opt_out", OptOut(channel=Channel.VOICE, source="debtor_keypress")
        )
        return _xml(twiml.calls_stopped(ctx.language, st.company_name))
    return _xml(twiml.menu(ctx.language, _action_url(request)))


async def _complaint_by_key(request: Request, client: Client | None, ctx: CallContext, sid: str) -> Any:
    """Key 3: the same complaint an agent files (contact stops at once, one acknowledgement by text), with
    its case in the inbox; the callee hears the case number and the deadline. Once per call."""
    st = app_settings(request)
    if client is None:
        return twiml.complaint_elsewhere(ctx.language, st.callback_number)
    try:
        case = await holds.file_complaint(
            client, ctx.account_id, "complaint made by key 3 during a call", "debtor", source="debtor",
            sessions=app_sessions(request), settings=st, channel="call", source_key=f"call/{sid}/complaint",
        )  # fmt: skip
    except (AccountClosed, AccountNotFound):
        return twiml.complaint_elsewhere(ctx.language, st.callback_number)
    if case is None:
        return twiml.complaint_elsewhere(ctx.language, st.callback_number)
    due = case.due_at.astimezone(ZoneInfo(ctx.zone)).strftime("%Y-%m-%d")
    return twiml.complaint_filed(ctx.language, case.number, due)


def _governor_reports(
    sessions: sessionmaker[Session], campaign: str | None, wall: datetime
) -> list[dict[str, Any]]:
    with sessions.begin() as s:
        names = [campaign] if campaign else governor_store.campaigns(s)
        return [governor_store.governor_report(s, name, wall).model_dump(mode="json") for name in names]


@router.get("/ops/governor", tags=["operators"])
async def governor_status(request: Request, campaign: str | None = None) -> Any:
    """The abandoned-call rate per campaign over its rolling window, whether voice is paused and until when.

    With ``?campaign=NAME``: one object ``{campaign, live_answered, abandoned, pending, rate, paused,
    paused_until, as_of, windows, …}``; without: a list, one per campaign. The windows end at the
    campaign's policy now (``as_of``: under the demo's day scaling, the policy time of its newest
    contact attempt, see ``store/governor.py``), so a 24-hour window is one policy day.
    """
    reports = await run_in_threadpool(_governor_reports, app_sessions(request), campaign, _now())
    return reports[0] if campaign else reports


__all__ = ["router"]
