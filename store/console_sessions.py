"""Console sessions on the server side: the browser holds a random id, never an API token.

Expiry is checked on every use: ``idle`` since the last request and ``absolute`` since sign-in. The
last-use time is written at most once a minute, so browsing does not write on every page.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from store.models import ConsoleSessionRow

#: how stale ``seen_at`` may be before a request writes it again
SEEN_EVERY = timedelta(minutes=1)


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class LiveSession(NamedTuple):
    token_digest: str
    principal: str
    role: str | None  # stated by the identity provider (OIDC); None: the token's role


def open_session(
    s: Session, *, token: str, principal: str, now: datetime, role: str | None = None, subject: str = ""
) -> str:
    """A new session for ``token``'s holder, or with ``role`` for someone an identity provider vouched
    for (``subject``: its issuer and subject); returns the id the cookie carries (shown once)."""
    session_id = secrets.token_urlsafe(32)
    s.add(
        ConsoleSessionRow(
            id_digest=digest(session_id),
            token_digest=digest(token) if role is None else digest(f"oidc:{subject}"),
            principal=principal,
            role=role,
            created_at=now,
            seen_at=now,
        )
    )
    return session_id


def live_session(
    s: Session, session_id: str, *, now: datetime, idle: timedelta, absolute: timedelta
) -> LiveSession | None:
    """The session behind a cookie (None: unknown, idle too long, or too old).

    An expired session is deleted on the way, so its id can never come back.
    """
    row = s.get(ConsoleSessionRow, digest(session_id))
    if row is None or not still_live(s, row, now, idle=idle, absolute=absolute):
        return None
    return LiveSession(row.token_digest, row.principal, row.role)


def still_live(s: Session, row: Any, now: datetime, *, idle: timedelta, absolute: timedelta) -> bool:
    """A session row (an operator's or a debtor's) within both expiries, its last use noted at most
    once a minute; an expired one is deleted, so its id can never come back."""
    if now - row.seen_at > idle or now - row.created_at > absolute:
        s.delete(row)
        return False
    if now - row.seen_at > SEEN_EVERY:
        row.seen_at = now
    return True


def close_session(s: Session, session_id: str) -> str | None:
    """Sign one session out; returns its operator's name (None: it was not open)."""
    row = s.get(ConsoleSessionRow, digest(session_id))
    if row is None:
        return None
    s.delete(row)
    return row.principal


def close_all(s: Session, principal: str) -> int:
    """Sign an operator out everywhere: every session of that name; how many there were."""
    ids = s.scalars(select(ConsoleSessionRow.id_digest).where(ConsoleSessionRow.principal == principal)).all()
    s.execute(delete(ConsoleSessionRow).where(ConsoleSessionRow.principal == principal))
    return len(ids)
