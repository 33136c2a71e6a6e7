"""Replies from an emergency contact: each one a case in the agents' inbox, holding the lead.

Why it is built this way:

* **A lead, never a number on file.** The person a debtor named may answer our locate text with a
  new number for the debtor ("she is on 138 1234 5678 now"). That is hearsay about someone else's
  phone, so it is never used as it is: the reply becomes an ``emergency_reply`` case (due the next
  business day, ``domain/cases.py``) with the text as written, and an agent turns it into a recorded,
  *unverified* number from the case page (``service/contact_numbers.py``), which the debtor must
  confirm with the code sent to it before anything else goes there.
* **Matched by the sender's number** against every account naming it as emergency contact, one case
  per account, opened once per message (the provider's message id), whatever else the text is: only
  the opt-out words are handled before (``service/inbound_sms.py``), and nothing is sent back.
* **Masked everywhere but the case**: the audit line names the sender and the numbers found masked;
  the case workflow Temporal runs holds no text and no number.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import HTTPException, Request
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from temporalio.service import RPCError

from domain.cases import CaseKind
from domain.masking import mask_phone
from domain.numbers import numbers_in, region_of
from service import cases as case_service
from service.state import app_sessions, app_settings
from store.accounts import account_snapshot
from store.audit import audit
from store.cases import CaseView
from store.contacts import accounts_with_emergency_phone
from store.models import CaseRow

log = logging.getLogger("humane_collect.leads")
ACTOR = "emergency_contact"


@dataclass(frozen=True)
class Lead:
    """A number found in an emergency contact's reply (the full number: for the record form only)."""

    phone: str

    @property
    def masked(self) -> str:
        return mask_phone(self.phone)


def _found_in(s: Session, account_id: str, text: str) -> list[str]:
    snap = account_snapshot(s, account_id)
    if snap is None:
        return []
    regions = [r for r in (region_of(snap.phone), region_of(snap.emergency_phone)) if r]
    return numbers_in(text, regions, leave_out={snap.phone, snap.emergency_phone or ""})


def _key(sid: str, account_id: str) -> str:
    return f"sms/{sid}/{account_id}"


def leads_of(sessions: sessionmaker[Session], case: CaseView) -> list[Lead]:
    """The numbers an emergency contact's reply offers (none for another kind of case)."""
    if case.kind != CaseKind.EMERGENCY_REPLY or case.account_id is None:
        return []
    with sessions.begin() as s:
        return [Lead(p) for p in _found_in(s, case.account_id, case.summary)]


async def emergency_reply(request: Request, phone: str, body: str, sid: str) -> list[CaseView]:
    """A text from a number some account names as its emergency contact: one case per such account
    (none when the number is nobody's emergency contact)."""
    sessions, settings = app_sessions(request), app_settings(request)
    now = datetime.now(UTC)

    def matched() -> list[tuple[str, list[str]]]:
        """Accounts naming the sender, with the numbers the text offers; a message delivered again
        (the same provider id) is left out: its case and audit line exist."""
        with sessions.begin() as s:
            return [
                (a, _found_in(s, a, body))
                for a in accounts_with_emergency_phone(s, phone)
                if s.scalar(select(CaseRow.id).where(CaseRow.source_key == _key(sid, a))) is None
            ]

    accounts = await asyncio.to_thread(matched)
    if not accounts:
        return []
    client = getattr(request.app.state, "temporal_client", None)
    opened: list[CaseView] = []
    for account_id, found in accounts:
        if client is None:  # a case has a clock (a workflow): without Temporal, say so like a signal does
            raise HTTPException(status_code=503, detail="workflow service unavailable")
        try:
            case = await case_service.open_case(
                client, sessions, settings, source_key=_key(sid, account_id), account_id=account_id,
                kind=CaseKind.EMERGENCY_REPLY, channel="sms", summary=body.strip()[:2000] or "(an empty text)",
                actor=ACTOR,
            )  # fmt: skip
        except RPCError as err:
            log.error("emergency contact's reply for %s: no case clock (%s)", account_id, err.message)
            raise HTTPException(status_code=503, detail="workflow service unavailable") from err
        opened.append(case)
        await asyncio.to_thread(_audit, sessions, account_id, now, phone, sid, case, found)
    log.info("emergency contact %s replied: %d case(s)", mask_phone(phone), len(opened))
    return opened


def _audit(
    sessions: sessionmaker[Session],
    account_id: str,
    now: datetime,
    phone: str,
    sid: str,
    case: CaseView,
    found: list[str],
) -> None:
    with sessions.begin() as s:
        audit(
            s, at=now, clock="wall", account_id=account_id, actor=ACTOR, action="inbound_sms",
            decision="emergency_reply",
            details={"from": mask_phone(phone), "sid": sid, "case": case.number, "leads": [mask_phone(p) for p in found]},
        )  # fmt: skip
