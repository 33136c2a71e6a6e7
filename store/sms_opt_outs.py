"""Which numbers our sender may not text: they replied STOP (or the carrier refused with 21610) and
have not replied START since.

Why apart from the accounts' contact points: a carrier's opt-out is about a *number and a sender*
(Twilio blocks every text from our number to it until it replies START), whoever the number belongs
to; the contact point's ``opted_out`` is about a debtor's collection texts and goes back only with
the debtor's own START (:func:`store.contacts.opt_back_in`). A sign-in code the debtor asked for is sent by voice to a blocked number, and by text again
once it replied START.

Numbers stopped before this table existed are known only by their SMS contact point (inbound STOP and
the 21610 status both set it), so a number with no row here is blocked when any SMS contact point
with that address is ``opted_out``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from domain.accounts import Channel
from store.models import ContactPoint, SmsOptOutRow
from store.rows import ContactStatus


def record(s: Session, phone: str, *, opted_out: bool, source: str, now: datetime) -> bool:
    """Note STOP (``opted_out=True``) or START for ``phone``; True if that changed anything."""
    row = s.get(SmsOptOutRow, phone)
    if row is None:
        s.add(SmsOptOutRow(phone=phone, opted_out=opted_out, changed_at=now, source=source[:16]))
        return True
    if row.opted_out == opted_out:
        return False
    row.opted_out, row.changed_at, row.source = opted_out, now, source[:16]
    return True


def texts_blocked(s: Session, phone: str) -> bool:
    """True when a text from our sender to ``phone`` would be refused (it replied STOP, not START)."""
    row = s.get(SmsOptOutRow, phone)
    if row is not None:
        return row.opted_out
    stopped = s.scalar(
        select(ContactPoint.id)
        .where(
            ContactPoint.channel == Channel.SMS.value,
            ContactPoint.address == phone,
            ContactPoint.status == ContactStatus.OPTED_OUT.value,
        )
        .limit(1)
    )
    return stopped is not None
