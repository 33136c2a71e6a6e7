"""Writing a debt off takes two supervisors (issue 16: four eyes on every money-reducing action).

The first supervisor's request waits (an audit line, ``write_off``/``requested``); a second, different
supervisor's request for the same account within :data:`CONFIRM_WITHIN` closes it, naming both. A
deceased or bankrupt debtor is a fact the law acts on at once (the automatic stay), so those closures
stay one supervisor's: a second signature would only delay stopping collection.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker
from temporalio.client import Client

from domain.agencies import CloseRequest
from service import holds
from service.operations import audit_write
from store import notes
from store.audit import audit_entries

#: how long a first supervisor's write-off request waits for the second
CONFIRM_WITHIN = timedelta(days=7)
ACTION = "write_off"


def first_requester(sessions: sessionmaker[Session], account_id: str, supervisor: str) -> str | None:
    """Another supervisor's open request for this account (None: this one is the first, or the same)."""
    now = datetime.now(UTC)
    with sessions.begin() as s:
        open_by: str | None = None
        for entry in audit_entries(s, account_id):
            if entry.action != ACTION:
                continue
            if entry.decision == "requested" and now - (entry.wall_at or entry.at) <= CONFIRM_WITHIN:
                open_by = open_by or entry.actor
            elif entry.decision == "confirmed":
                open_by = None  # that request was used up
    return open_by if open_by is not None and open_by != supervisor else None


async def close_for(
    client: Client, sessions: sessionmaker[Session], account_id: str, reason: str, note: str, actor: str
) -> dict[str, str]:
    """Close for a reason the workflow cannot see, as the API (a supervisor) and the CLI (an operator
    naming themselves) both do: a write-off waits for a second person; deceased and bankrupt close at once.

    Raises :class:`service.operations.AccountNotFound` or ``AccountClosed`` (with its state)."""
    kept = await asyncio.to_thread(notes.keep, sessions, account_id, actor, "closure", note)
    order = CloseRequest(reason=reason, note=kept, actor=actor)  # type: ignore[arg-type]
    if reason == "written_off":
        await holds.ensure_open(client, sessions, account_id, "close")
        first = await asyncio.to_thread(first_requester, sessions, account_id, actor)
        if first is None:
            await audit_write(sessions, account_id, actor, ACTION, "requested", note=kept)
            return {"account_id": account_id, "reason": reason, "status": "awaiting_second_supervisor"}
        await holds.account_signal(client, sessions, account_id, "close", order, "close")
        await audit_write(sessions, account_id, actor, ACTION, "confirmed", requested_by=first)
        return {"account_id": account_id, "reason": reason, "status": "closing", "requested_by": first}
    await holds.account_signal(client, sessions, account_id, "close", order, "close")
    await audit_write(sessions, account_id, actor, "close", reason, note=kept)
    return {"account_id": account_id, "reason": reason, "status": "closing"}
