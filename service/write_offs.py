"""Writing a debt off takes two supervisors (issue 16: four eyes on every money-reducing action).

The first supervisor's request waits (an audit line, ``write_off``/``requested``); a second, different
supervisor's request for the same account within :data:`CONFIRM_WITHIN` closes it, naming both. A
deceased or bankrupt debtor is a fact the law acts on at once (the automatic stay), so those closures
stay one supervisor's: a second signature would only delay stopping collection.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

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
