"""Free text operators and debtors type (a complaint's reason, a pause's why) kept in the database.

Workflows get a reference (``note #17``) instead of the text: a reason can name a person, a number or
an illness, and a workflow's history is kept by Temporal and shown by its UI, where the application's
access rules and the audit log do not reach. The text is an audit line of its own (``action="note"``),
readable by whoever may read the account, and it goes with the audit log's retention.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from store.models import AuditRow
from store.rows import _json

REFERENCE = re.compile(r"^note #(\d+)$")


def keep(sessions: sessionmaker[Session], account_id: str, actor: str, kind: str, text: str) -> str:
    """Store ``text`` (a ``kind`` of note: complaint, dispute, pause …); the reference to signal."""
    if not text.strip():
        return text
    with sessions.begin() as s:
        row = AuditRow(
            at=datetime.now(UTC),
            account_id=account_id,
            actor=actor,
            action="note",
            decision=kind,
            details=_json({"text": text}),
        )
        s.add(row)
        s.flush()
        return f"note #{row.id}"


def text_of(s: Session, account_id: str, reference: str) -> str | None:
    """The text a reference stands for, on this account only (None: not a reference, or not found)."""
    found = REFERENCE.match(reference or "")
    if found is None:
        return None
    row = s.get(AuditRow, int(found.group(1)))
    if row is None or row.account_id != account_id or row.action != "note":
        return None
    return str((row.details or {}).get("text", ""))
