"""Holds: pause, resume, complaints and disputes, and the gate every signal but a payment passes.

Apart from payments because these signals are refused by an account that cannot act on them (its run
is closing or has ended: :class:`AccountClosed` with the reason), where a payment is always taken.
:func:`account_signal` is that gate; the agency API's recall and closing orders pass it too
(:mod:`service.agency`), so an account placed with an agency takes holds and closing, not plans.
"""

from __future__ import annotations

import asyncio
import uuid

from pydantic import BaseModel
from sqlalchemy.orm import Session, sessionmaker
from temporalio.client import Client

from domain.cases import CaseKind
from runtime.settings import Settings
from service import cases
from service import temporal_calls as calls
from service.accounts import account_status
from service.operations import audit_write
from service.temporal_calls import Purpose
from store import notes
from store.cases import CaseView
from workflows.messages import ComplaintIn, DisputeIn, HoldRequest


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
    complaint = ComplaintIn(reason=ref, source=source, actor=actor)
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
    dispute = DisputeIn(reason=ref, actor=actor)
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


__all__ = [
    "account_signal",
    "ensure_open",
    "file_complaint",
    "file_dispute",
    "pause",
    "resume",
]
