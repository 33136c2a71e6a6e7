"""The debtor's sessions on their own pages, and the revocation of an account's links.

A signed link from a text opens a session and leaves the address bar: from then on the browser
holds a random id (its SHA-256 is the row's key, so a copy of the database opens nothing), and the
link is needed no more. A session shows nothing about a debt until the debtor has confirmed their
date of birth (:func:`verify`); :data:`MAX_FAILURES` wrong tries close it. Signing out everywhere
closes every session of the account and voids every link issued before that moment.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from store.console_sessions import digest, still_live
from store.models import AccountRow, DebtorSessionRow, LinkRevocationRow

IDLE = timedelta(minutes=30)
ABSOLUTE = timedelta(hours=12)
#: wrong dates of birth a session may key in before it is closed (a new link starts again)
MAX_FAILURES = 5


@dataclass(frozen=True)
class DebtorSession:
    account_id: str
    csrf: str
    verified: bool
    failures: int


def open_session(s: Session, account_id: str, now: datetime) -> str:
    """A new, unverified session for the account; the id the cookie carries (shown once)."""
    session_id = secrets.token_urlsafe(32)
    s.add(
        DebtorSessionRow(
            id_digest=digest(session_id),
            account_id=account_id,
            csrf=secrets.token_urlsafe(24),
            created_at=now,
            seen_at=now,
            verified_at=None,
            failures=0,
        )
    )
    return session_id


def live_session(s: Session, session_id: str, now: datetime) -> DebtorSession | None:
    """The session behind a cookie; None when unknown, idle too long or too old (then deleted)."""
    row = s.get(DebtorSessionRow, digest(session_id))
    if row is None or not still_live(s, row, now, idle=IDLE, absolute=ABSOLUTE):
        return None
    return DebtorSession(row.account_id, row.csrf, row.verified_at is not None, row.failures)


def date_of_birth_on_file(s: Session, account_id: str) -> date | None:
    row = s.get(AccountRow, account_id)
    return row.debtor.date_of_birth if row is not None else None


def verify(s: Session, session_id: str, born: date, now: datetime) -> tuple[bool, int]:
    """Compare the keyed-in date with the one on file: (matched, failures so far). A session that
    reaches :data:`MAX_FAILURES` is closed; so is one whose account has no date on file to match."""
    row = s.get(DebtorSessionRow, digest(session_id))
    if row is None:
        return False, MAX_FAILURES
    on_file = date_of_birth_on_file(s, row.account_id)
    if on_file is not None and secrets.compare_digest(on_file.isoformat(), born.isoformat()):
        row.verified_at = now
        row.failures = 0
        return True, 0
    row.failures += 1
    failures = row.failures
    if failures >= MAX_FAILURES:
        s.delete(row)
    return False, failures


def close_session(s: Session, session_id: str) -> None:
    s.execute(delete(DebtorSessionRow).where(DebtorSessionRow.id_digest == digest(session_id)))


def revoke_everything(s: Session, account_id: str, now: datetime) -> int:
    """Every session of the account closed and every link issued so far void; how many sessions."""
    closed = s.execute(delete(DebtorSessionRow).where(DebtorSessionRow.account_id == account_id)).rowcount
    row = s.get(LinkRevocationRow, account_id)
    if row is None:
        s.add(LinkRevocationRow(account_id=account_id, revoked_at=now))
    else:
        row.revoked_at = now
    return int(closed or 0)


def links_revoked_at(s: Session, account_id: str) -> datetime | None:
    row = s.get(LinkRevocationRow, account_id)
    return row.revoked_at if row is not None else None
