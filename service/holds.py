"""Holds: pause, resume, complaints and disputes and their decisions, cease, opt-out and recall, and
the gate every signal but a payment passes.

Apart from payments because these signals are refused by an account that cannot act on them (its run
is closing or has ended: :class:`AccountClosed` with the reason), where a payment is always taken.
:func:`account_signal` is that gate; the agency API's recall and closing orders pass it too
(:mod:`service.agency`), so an account placed with an agency takes holds and closing, not plans.

The API, the console and the command line all call these functions with the name of the person who
acts, so each action means the same whichever screen sent it and leaves the same audit line.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel
from sqlalchemy.orm import Session, sessionmaker
from temporalio.client import Client

from domain.accounts import Channel, HoldKind
from domain.agencies import RecallRequest
from domain.cases import CaseKind
from runtime.settings import Settings
from service import cases
from service import temporal_calls as calls
from service.accounts import account_status
from service.operations import InvalidRequest, NothingToDecide, NotPlaced, audit_write
from service.temporal_calls import Purpose
from store import cases as case_store
from store import notes
from store.cases import CaseView
from workflows.messages import (
    ANSWER_REASON_MAX,
    CeaseRequest,
    ComplaintDecision,
    ComplaintIn,
    DisputeIn,
    DisputeVerified,
    HoldRequest,
    NegotiationAnswer,
    OptOut,
    ReplyOut,
)


async def _reference(
    sessions: sessionmaker[Session] | None, account_id: str, actor: str, kind: str, text: str
) -> str:
    """The free text into the database, its reference into the signal (never the text itself)."""
    if sessions is None:
        return f"{kind} (text not recorded)"
    return await asyncio.to_thread(notes.keep, sessions, account_id, actor, kind, text)


# ---- holds, complaints, disputes, closing ----------------------------------------------------------
async def account_signal(
    client: Client,
    sessions: sessionmaker[Session] | None,
    account_id: str,
    name: str,
    arg: BaseModel,
    purpose: Purpose,
) -> None:
    """A signal other than a payment, sent only if the account can act on it.

    A run that is closing (or has ended) would take a signal and do nothing: :class:`AccountClosed`
    with the reason instead. An account placed with an agency takes holds and closing (the agency's
    calls go through the same gate), not plans.
    """
    await ensure_open(client, sessions, account_id, purpose)
    await calls.signal(client, sessions, account_id, name, arg)


async def ensure_open(
    client: Client, sessions: sessionmaker[Session] | None, account_id: str, purpose: Purpose
) -> None:
    """:class:`AccountClosed` (with the reason) unless the account can act on ``purpose`` now."""
    status = await account_status(client, account_id, sessions=sessions)
    closed = await calls.closed_state(client, sessions, account_id, status, purpose)
    if closed is not None:
        raise closed


async def pause(
    client: Client, account_id: str, reason: str, actor: str, *, sessions: sessionmaker[Session] | None = None
) -> None:
    """An operator hold: contact stops (an in-flight send is cancelled) until :func:`resume`."""
    ref = await _reference(sessions, account_id, actor, "pause", reason)
    await account_signal(client, sessions, account_id, "pause", HoldRequest(reason=ref, actor=actor), "hold")
    await audit_write(sessions, account_id, actor, "pause", "signalled", reason=ref)


async def resume(
    client: Client, account_id: str, reason: str, actor: str, *, sessions: sessionmaker[Session] | None = None
) -> None:
    ref = await _reference(sessions, account_id, actor, "resume", reason)
    await account_signal(client, sessions, account_id, "resume", HoldRequest(reason=ref, actor=actor), "hold")
    await audit_write(sessions, account_id, actor, "resume", "signalled", reason=ref)


async def file_complaint(
    client: Client,
    account_id: str,
    reason: str,
    actor: str,
    *,
    source: str = "agent",
    sessions: sessionmaker[Session] | None = None,
    settings: Settings | None = None,
    channel: str = "api",
    source_key: str | None = None,
) -> CaseView | None:
    """Contact stops at once; the debtor gets one acknowledgement; a decision is due within the SLA.

    With ``settings`` (every caller but a bare library use) the complaint is also a case in the agents'
    inbox, with its number and deadline (``service/cases.py``); the case is returned.
    """
    await ensure_open(client, sessions, account_id, "hold")
    case = await _case(
        client, sessions, settings, account_id, CaseKind.COMPLAINT, channel, reason, actor, source_key
    )
    ref = await _reference(sessions, account_id, actor, "complaint", reason)
    complaint = ComplaintIn(reason=ref, source=source, actor=actor, case_id=case.number if case else None)
    await calls.signal(client, sessions, account_id, "complaint_filed", complaint)  # open: checked above
    await audit_write(
        sessions, account_id, actor, "complaint", "signalled", reason=ref, source=source,
        case=case.number if case else None,
    )  # fmt: skip
    return case


async def file_dispute(
    client: Client,
    account_id: str,
    reason: str,
    actor: str,
    *,
    sessions: sessionmaker[Session] | None = None,
    settings: Settings | None = None,
    channel: str = "api",
    source_key: str | None = None,
) -> CaseView | None:
    """No collection while the debt is disputed; one acknowledgement; a case, as for a complaint."""
    await ensure_open(client, sessions, account_id, "hold")
    case = await _case(
        client, sessions, settings, account_id, CaseKind.DISPUTE, channel, reason, actor, source_key
    )
    ref = await _reference(sessions, account_id, actor, "dispute", reason)
    dispute = DisputeIn(reason=ref, actor=actor, case_id=case.number if case else None)
    await calls.signal(client, sessions, account_id, "dispute_filed", dispute)  # open: checked above
    await audit_write(
        sessions, account_id, actor, "dispute", "signalled", reason=ref, case=case.number if case else None
    )
    return case


async def _case(
    client: Client,
    sessions: sessionmaker[Session] | None,
    settings: Settings | None,
    account_id: str,
    kind: CaseKind,
    channel: str,
    text: str,
    actor: str,
    source_key: str | None,
) -> CaseView | None:
    if settings is None or sessions is None:
        return None
    key = source_key or f"{channel}/{kind.value}/{account_id}/{uuid.uuid4().hex}"
    return await cases.open_case(
        client, sessions, settings, source_key=key, account_id=account_id, kind=kind,
        channel=channel, summary=text, actor=actor,
    )  # fmt: skip


# ---- decisions on an open complaint or dispute ------------------------------------------------------
async def _decidable(
    client: Client, sessions: sessionmaker[Session] | None, account_id: str, kind: HoldKind
) -> None:
    """:class:`AccountClosed` unless the account can take a hold's lifting now; :class:`NothingToDecide`
    unless a ``kind`` hold is open (the workflow would take the signal and silently ignore it)."""
    status = await account_status(client, account_id, sessions=sessions)
    closed = await calls.closed_state(client, sessions, account_id, status, "hold")
    if closed is not None:
        raise closed
    if kind.value not in status.holds:
        raise NothingToDecide(f"{account_id} has no open {kind.value} to decide")


async def resolve_complaint(
    client: Client,
    account_id: str,
    decision: Literal["upheld", "rejected", "close", "resume"],
    note: str,
    actor: str,
    *,
    sessions: sessionmaker[Session] | None = None,
) -> None:
    """The investigator's decision, texted to the debtor (with the jurisdiction's escalation route) before
    anything else: ``upheld`` or ``rejected`` (collection resumes after that text), ``close`` (upheld: the
    account closes as ``complaint_upheld``), ``resume`` (no verdict given). Each lifts the complaint hold
    and answers the complaint's case."""
    await _decidable(client, sessions, account_id, HoldKind.COMPLAINT)
    ref = await _reference(sessions, account_id, actor, "complaint_decision", note) if note.strip() else ""
    case = await _open_of(sessions, account_id, CaseKind.COMPLAINT)
    order = ComplaintDecision(decision=decision, note=ref, actor=actor, case_id=case.number if case else None)
    await calls.signal(client, sessions, account_id, "complaint_resolved", order)
    await audit_write(sessions, account_id, actor, "complaint_decision", decision, note=ref)
    if sessions is not None:  # the complaint's case is answered by its decision
        answer = {
            "upheld": "upheld: the debtor was told, collection resumes",
            "rejected": "not upheld: the debtor was told, collection resumes",
            "resume": "not upheld: collection resumes",
            "close": "upheld: the account is closed",
        }[decision]
        await cases.answer_open(client, sessions, account_id, CaseKind.COMPLAINT, actor, answer)


async def verify_dispute(
    client: Client, account_id: str, note: str, actor: str, *, sessions: sessionmaker[Session] | None = None
) -> None:
    """The debt's verification was sent to the debtor: the dispute hold lifts and collection may resume."""
    await _decidable(client, sessions, account_id, HoldKind.DISPUTE)
    ref = await _reference(sessions, account_id, actor, "dispute_verification", note) if note.strip() else ""
    case = await _open_of(sessions, account_id, CaseKind.DISPUTE)
    verified = DisputeVerified(note=ref, actor=actor, case_id=case.number if case else None)
    await calls.signal(client, sessions, account_id, "dispute_verified", verified)
    await audit_write(sessions, account_id, actor, "dispute_verification", "verified", note=ref)
    if sessions is not None:  # the dispute's case is answered by the verification sent
        await cases.answer_open(client, sessions, account_id, CaseKind.DISPUTE, actor, "verification sent")


async def _open_of(
    sessions: sessionmaker[Session] | None, account_id: str, kind: CaseKind
) -> CaseView | None:
    if sessions is None:
        return None

    def find() -> CaseView | None:
        with sessions.begin() as s:
            return case_store.open_case_of(s, account_id, kind)

    return await asyncio.to_thread(find)


# ---- a plan request answered without a plan ------------------------------------------------------------
async def answer_plan_request(
    client: Client,
    account_id: str,
    decision: Literal["declined", "escalated"],
    actor: str,
    *,
    reason: str = "",
    days: int = 2,
    sessions: sessionmaker[Session] | None = None,
) -> str:
    """A plan request answered without a plan: ``declined`` (the pause ends; the debtor is told why, in
    at most 80 characters) or ``escalated`` (the pause lasts ``days`` more days of the account's own clock
    and the debtor is told by when a supervisor answers). The request's case is answered, or escalated.
    An agreed plan is the other answer (``propose_settlement``)."""
    status = await account_status(client, account_id, sessions=sessions)
    closed = await calls.closed_state(client, sessions, account_id, status, "hold")
    if closed is not None:
        raise closed
    if HoldKind.NEGOTIATION.value not in status.holds:
        raise NothingToDecide(f"{account_id} has no plan request waiting for an answer")
    case = await _open_of(sessions, account_id, CaseKind.PLAN_REQUEST)
    number = case.number if case else None
    if decision == "declined":
        if not reason.strip() or len(reason) > ANSWER_REASON_MAX:
            raise InvalidRequest("reason", f"required when declined, {ANSWER_REASON_MAX} characters at most")
        ref = await _reference(sessions, account_id, actor, "plan_request_declined", reason)
        answer = NegotiationAnswer(decision="declined", reason=ref, actor=actor, case_id=number)
        told = f"declined: {reason}"
    else:
        if not 1 <= days <= 30:
            raise InvalidRequest("days", "from 1 to 30")
        by = status.policy_now + timedelta(days=days)
        answer = NegotiationAnswer(decision="escalated", answer_by=by, actor=actor, case_id=number)
        told = f"escalated: a supervisor answers by {by:%Y-%m-%d}"
    await calls.signal(client, sessions, account_id, "negotiation_answered", answer)
    await audit_write(sessions, account_id, actor, "plan_request_answer", decision, case=number)
    if case is not None and sessions is not None:
        if decision == "declined":
            await cases.answer_case(client, sessions, case.id, actor, told)
        else:
            now = datetime.now(UTC)

            def escalate() -> None:
                with sessions.begin() as s:
                    case_store.escalate(s, case.id, now, actor=actor, why=told)

            await asyncio.to_thread(escalate)
    return told


# ---- an agent's reply to a debtor's message ----------------------------------------------------------
async def reply_to_debtor(
    client: Client, sessions: sessionmaker[Session], case: CaseView, text: str, actor: str
) -> None:
    """Text the debtor an agent's answer to their message: through the account's run and its contact
    gate (lawful hours, opt-outs, holds), once per reply; the words stay in the database."""
    if case.account_id is None:
        raise InvalidRequest("case", f"{case.number} has no account to reply to (an unknown number)")
    if not text.strip() or len(text) > ANSWER_REASON_MAX:
        raise InvalidRequest("text", f"a reply texted to the debtor is 1 to {ANSWER_REASON_MAX} characters")
    await ensure_open(client, sessions, case.account_id, "hold")
    ref = await _reference(sessions, case.account_id, actor, "reply", text)

    def sequence() -> int:
        with sessions.begin() as s:
            seq = 1 + sum(1 for e in case_store.history(s, case.id) if e.action == "replied")
            case_store.log(s, case.id, actor, "replied", text, datetime.now(UTC))
            return seq

    seq = await asyncio.to_thread(sequence)
    reply = ReplyOut(case_id=case.number, seq=seq, text=ref, actor=actor)
    await calls.signal(client, sessions, case.account_id, "reply_to_debtor", reply)
    await audit_write(sessions, case.account_id, actor, "reply", "signalled", case=case.number, seq=seq)


# ---- stopping contact for good, and taking an account back from its agency ----------------------------
async def cease(
    client: Client,
    account_id: str,
    channel: Channel | None,
    actor: str,
    *,
    sessions: sessionmaker[Session] | None = None,
) -> None:
    """Cease-communication (``channel`` None: every channel) or a prohibited medium (one), for good."""
    request = CeaseRequest(channel=channel, actor=actor)
    await account_signal(client, sessions, account_id, "cease_requested", request, "hold")
    await audit_write(
        sessions, account_id, actor, "cease", "signalled", channel=channel.value if channel else "all"
    )


async def opt_out(
    client: Client,
    account_id: str,
    channel: Channel,
    actor: str,
    *,
    sessions: sessionmaker[Session] | None = None,
) -> None:
    """The debtor opted out of a channel by another way than a reply (a call, a letter), recorded by a
    person. Sent to a closing run too: its final message must not go on a channel the debtor refused."""
    await calls.signal(client, sessions, account_id, "opt_out", OptOut(channel=channel, source=actor))
    await audit_write(sessions, account_id, actor, "opt_out", "signalled", channel=channel.value)


async def recall(
    client: Client,
    account_id: str,
    reason: str,
    actor: str,
    *,
    sessions: sessionmaker[Session] | None = None,
) -> str:
    """Take a placed account back from its agency (it goes to another one, or closes as charged off);
    the agency it was recalled from. :class:`NotPlaced` when no agency holds it."""
    agency = await asyncio.to_thread(_placed_with, sessions, account_id)
    if agency is None:
        raise NotPlaced(f"account {account_id!r} is not placed")
    order = RecallRequest(reason=reason, actor=actor)
    await account_signal(client, sessions, account_id, "recall", order, "close")
    await audit_write(sessions, account_id, actor, "recall", "signalled", reason=reason, agency=agency)
    return agency


def _placed_with(sessions: sessionmaker[Session] | None, account_id: str) -> str | None:
    if sessions is None:
        return None
    with sessions.begin() as s:
        return calls.placed_with(s, account_id)


__all__ = [
    "account_signal",
    "cease",
    "ensure_open",
    "file_complaint",
    "file_dispute",
    "opt_out",
    "pause",
    "recall",
    "resolve_complaint",
    "resume",
    "verify_dispute",
]
