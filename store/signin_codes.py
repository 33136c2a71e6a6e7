"""One-time sign-in codes: issued for a number, checked in the browser that asked, used once.

Why each rule:

* **6 digits from ``secrets``, valid 5 minutes, used once**: short enough to read off a lock screen
  or hear in a call, and a guesser gets a handful of tries at one in a million, not a brute force.
* **5 wrong tries on a number within 15 minutes lock that number out for 15 minutes** (every code of
  it void, none issued): asking for a new code does not buy new tries. Someone who knows a debtor's
  number can lock them out for a while that way; the link in our texts still opens their page.
* **Only digests are stored.** The code as scrypt (N=2^14, r=8, p=1, a random salt per code: about
  40 ms per try on one core, so a copy of the database gives up a code in hours, long after its 5
  minutes); the browser's challenge and the number as SHA-256, so the table adds no readable copy of
  a number (the contact points hold it anyway).
* **Bound to the browser that asked**: the code is checked against the challenge whose random id that
  browser's cookie holds, so a code read out on a call cannot sign in a page someone else opened.
* **One machinery, two purposes.** The same codes confirm a new number recorded for a debtor
  (``store/contact_changes.py``): a ``contact`` code is bound to that record instead of a browser,
  never answers a sign-in (nor a sign-in code a confirmation), and its wrong tries count toward the
  same lock-out of the number.
* **No account enumeration.** A number that is on no account gets a row too, with the digest of a
  random code that is never sent and whose ``account_id`` is NULL: it is hashed, stored, checked,
  counted and locked out exactly like a real one, so the answers, the tries left and the time they
  take say nothing about whether a number is on file. Such a row can never open anything.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from domain.accounts import Language, Mode
from store.console_sessions import digest
from store.debtor_sessions import links_revoked_at
from store.models import AccountRow, ContactPoint, Debtor, SigninCodeRow

DIGITS = 6
TTL = timedelta(minutes=5)
MAX_TRIES = 5
#: wrong tries count on the codes of a number issued within this window, and a lock-out lasts as long
LOCKOUT = timedelta(minutes=15)
#: rows older than this are deleted when the next code is issued (the audit log keeps what happened)
RETENTION = timedelta(days=1)
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


class LockedOut(Exception):
    """Too many wrong codes for this number: nothing is issued or accepted until ``until``."""

    def __init__(self, until: datetime) -> None:
        self.until = until
        super().__init__(f"locked out until {until.isoformat()}")


@dataclass(frozen=True)
class Issued:
    """What issuing a code gives the caller: the challenge for the browser's cookie (shown once) and,
    when the number is on file, the account and the code to send (None: send nothing)."""

    challenge: str
    code: str | None
    account_id: str | None
    language: Language
    expires_at: datetime


@dataclass(frozen=True)
class Checked:
    """The answer to one try: ``opened`` (the account), ``wrong`` (``left`` tries), ``locked`` (until),
    or ``expired`` (no such challenge, used, superseded or past its 5 minutes). ``account_id`` is for
    the audit log (None for a number on no account); only ``opened`` may act on it."""

    outcome: Literal["opened", "wrong", "locked", "expired"]
    account_id: str | None = None
    left: int = 0
    locked_until: datetime | None = None
    channel: str = ""


def phone_digest(phone: str) -> str:
    return digest(f"signin-code|{phone}")


def new_code() -> str:
    return f"{secrets.randbelow(10**DIGITS):0{DIGITS}d}"


def code_digest(code: str, salt: str) -> str:
    return hashlib.scrypt(code.encode(), salt=bytes.fromhex(salt), **_SCRYPT).hex()  # type: ignore[arg-type]


def account_for_phone(s: Session, phone: str) -> tuple[str, Language] | None:
    """The account a code for ``phone`` opens: the debtor's own number on file (an SMS or voice
    contact point, never an emergency contact), an open account before a closed one, the newest first."""
    rows = s.execute(
        select(AccountRow.account_id, Debtor.language, AccountRow.mode)
        .join(Debtor, Debtor.id == AccountRow.debtor_id)
        .join(ContactPoint, ContactPoint.debtor_id == Debtor.id)
        .where(ContactPoint.address == phone)
        .order_by(AccountRow.created_at.desc(), AccountRow.account_id)
    ).all()
    if not rows:
        return None
    open_first = sorted(rows, key=lambda r: r.mode == Mode.CLOSED.value)  # stable: newest stays first
    account_id, language, _ = open_first[0]
    return account_id, Language(language)


def _lock_of(s: Session, pd: str, now: datetime) -> datetime | None:
    until = s.scalar(
        select(func.max(SigninCodeRow.locked_until)).where(
            SigninCodeRow.phone_digest == pd, SigninCodeRow.locked_until > now
        )
    )
    if until is None:
        return None
    if isinstance(until, str):  # SQLite's MAX() may hand back the stored text
        until = datetime.fromisoformat(until)
    return until if until.tzinfo is not None else until.replace(tzinfo=UTC)


def locked_until(s: Session, phone: str, now: datetime) -> datetime | None:
    """Until when ``phone`` is locked out (None: it is not)."""
    return _lock_of(s, phone_digest(phone), now)


def _store_code(
    s: Session,
    phone: str,
    channel: str,
    now: datetime,
    *,
    account_id: str | None,
    challenge: str,
    purpose: str,
) -> str:
    """A new code row for ``phone``, bound to ``challenge``; earlier codes of the number for the same
    purpose stop working (only the newest one works). :class:`LockedOut` while the number is locked."""
    if (until := locked_until(s, phone, now)) is not None:
        raise LockedOut(until)
    s.execute(delete(SigninCodeRow).where(SigninCodeRow.created_at < now - RETENTION))
    pd = phone_digest(phone)
    s.execute(
        update(SigninCodeRow)
        .where(
            SigninCodeRow.phone_digest == pd,
            SigninCodeRow.purpose == purpose,
            SigninCodeRow.expires_at > now,
        )
        .values(expires_at=now)
    )
    code, salt = new_code(), secrets.token_hex(16)
    s.add(
        SigninCodeRow(
            challenge_digest=digest(challenge),
            phone_digest=pd,
            account_id=account_id,
            channel=channel,
            salt=salt,
            code_digest=code_digest(code, salt),
            created_at=now,
            expires_at=now + TTL,
            failures=0,
            used_at=None,
            locked_until=None,
            purpose=purpose,
        )
    )
    return code


def issue(s: Session, phone: str, channel: str, now: datetime) -> Issued:
    """A new code for ``phone`` (E.164); earlier codes of the number stop working. :class:`LockedOut`
    while the number is locked. The same work whether or not the number is on file."""
    found = account_for_phone(s, phone)
    challenge = secrets.token_urlsafe(32)
    code = _store_code(
        s, phone, channel, now, account_id=found[0] if found else None, challenge=challenge, purpose="signin"
    )
    return Issued(
        challenge=challenge,
        code=code if found else None,
        account_id=found[0] if found else None,
        language=found[1] if found else Language.EN,
        expires_at=now + TTL,
    )


def issue_for(s: Session, phone: str, channel: str, now: datetime, *, account_id: str, challenge: str) -> str:
    """A ``contact`` code for ``phone``, a number recorded for ``account_id`` and not yet on file: the
    code to send. ``challenge`` names the record it confirms (the caller's, never a browser's), so
    the code answers only there. :class:`LockedOut` while the number is locked."""
    return _store_code(s, phone, channel, now, account_id=account_id, challenge=challenge, purpose="contact")


def _tries_in_window(s: Session, pd: str, now: datetime) -> int:
    return int(
        s.scalar(
            select(func.coalesce(func.sum(SigninCodeRow.failures), 0)).where(
                SigninCodeRow.phone_digest == pd, SigninCodeRow.created_at > now - LOCKOUT
            )
        )
        or 0
    )


def check(s: Session, challenge: str, code: str, now: datetime, *, purpose: str = "signin") -> Checked:
    """Try ``code`` against the challenge of the browser's cookie. A match opens the account once;
    a miss counts against the number, and the :data:`MAX_TRIES`-th within :data:`LOCKOUT` locks it.
    ``purpose``: only a code issued for it answers (``contact``: a new number's confirmation)."""
    row = s.scalars(
        select(SigninCodeRow)
        .where(SigninCodeRow.challenge_digest == digest(challenge), SigninCodeRow.purpose == purpose)
        .with_for_update()
    ).one_or_none()
    if row is None:
        return Checked("expired")
    pd = row.phone_digest
    # every code of the number, locked for this transaction: two tries at once count as two (PostgreSQL)
    s.execute(select(SigninCodeRow.id).where(SigninCodeRow.phone_digest == pd).with_for_update())
    if (lock := _lock_of(s, pd, now)) is not None:
        return Checked("locked", locked_until=lock, channel=row.channel)
    if row.used_at is not None or row.expires_at <= now:
        return Checked("expired", channel=row.channel)
    matched = secrets.compare_digest(code_digest(code, row.salt), row.code_digest)
    if matched and row.account_id is not None:
        revoked = links_revoked_at(s, row.account_id)  # "sign out everywhere" voids codes issued before
        if purpose == "signin" and revoked is not None and row.created_at <= revoked:
            row.expires_at = now
            return Checked("expired", channel=row.channel)
        row.used_at = now
        return Checked("opened", account_id=row.account_id, channel=row.channel)
    row.failures += 1
    s.flush()
    tries = _tries_in_window(s, pd, now)
    if tries >= MAX_TRIES:
        until = now + LOCKOUT
        row.locked_until = until
        s.execute(
            update(SigninCodeRow)
            .where(SigninCodeRow.phone_digest == pd, SigninCodeRow.expires_at > now)
            .values(expires_at=now)
        )
        return Checked("locked", account_id=row.account_id, locked_until=until, channel=row.channel)
    return Checked("wrong", account_id=row.account_id, left=MAX_TRIES - tries, channel=row.channel)
