"""A new number for a debtor: recorded as pending, confirmed by a one-time code, only then on file.

Why it is built this way:

* **A number is a claim until its holder proves it.** An agent told a number on the phone, an
  emergency contact's reply, a debtor typing fast: any of them can be wrong, and a wrong number
  means a stranger hears about someone's debt. So a recorded number goes into ``contact_changes``,
  not into the contact points the send activity reads: nothing can text or call it for collection.
  Only the code sent to it, keyed back in (by the debtor on their page, or read to an agent on the
  phone who keys it in), moves it onto the contact points, in the same transaction as the check.
* **The sign-in's codes, not a second kind** (``store/signin_codes.py``): 6 digits from
  ``secrets``, scrypt digests, 5 minutes, only the newest, 5 wrong tries on a number within 15
  minutes lock it out. A confirmation code is bound to its record (challenge
  ``contact-change|<id>|<n>``), so it answers nowhere else, and a sign-in code never confirms.
* **One pending number per account**: recording another supersedes it (and voids its code).
* **What it confirms is kept**: who gave the number (``source``, the lead's case), who recorded it,
  who keyed the code in and where, the number it replaced, and when the account's run was told:
  the account's ``status`` reads its sentence from here (``domain/numbers.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from domain.accounts import Language, validate_e164
from domain.cases import case_number
from domain.masking import mask_phone
from domain.numbers import ConfirmedVia, NumberSource, NumberStatus, PendingNumber, how_found
from domain.zones import located
from store import signin_codes as codes
from store.accounts import update_phone
from store.audit import account_clock
from store.models import ContactChangeRow
from store.rows import _account_row, _emergency, _phone

PENDING, CONFIRMED, CANCELLED, SUPERSEDED = "pending", "confirmed", "cancelled", "superseded"


class NumberProblem(ValueError):
    """The number cannot be recorded: ``field: reason`` (the field is always ``phone``)."""

    def __init__(self, reason: str, field: str = "phone") -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class NotPending(LookupError):
    """No such number waits for a code on this account (confirmed, cancelled, superseded or unknown)."""


@dataclass(frozen=True)
class Change:
    """One recorded number (the full number: for the caller to send the code to, never to show)."""

    id: int
    account_id: str
    phone: str
    previous_phone: str | None
    status: str
    source: NumberSource
    recorded_by: str
    case_id: int | None
    code_via: str
    codes_sent: int
    created_at: datetime
    confirmed_at: datetime | None
    confirmed_by: str | None
    confirmed_via: ConfirmedVia | None
    told_at: datetime | None

    @property
    def masked(self) -> str:
        return mask_phone(self.phone)

    @property
    def case(self) -> str | None:
        return case_number(self.case_id) if self.case_id is not None else None

    def pending_view(self) -> PendingNumber:
        return PendingNumber(
            id=self.id,
            masked_phone=self.masked,
            source=self.source,
            recorded_by=self.recorded_by,
            recorded_at=self.created_at,
            case=self.case,
            codes_sent=self.codes_sent,
            code_via=self.code_via,
        )


@dataclass(frozen=True)
class CodeToSend:
    """A code issued for a pending number: where it goes, in which language, and the code itself."""

    change: Change
    code: str
    language: Language
    via: str


@dataclass(frozen=True)
class Confirmation:
    """One try of a code: ``confirmed`` (the number is on file now), ``wrong`` (``left`` tries),
    ``locked`` (until), ``expired`` (past 5 minutes, used, or a newer code was sent)."""

    outcome: Literal["confirmed", "wrong", "locked", "expired"]
    change: Change
    left: int = 0
    locked_until: datetime | None = None


def _view(row: ContactChangeRow) -> Change:
    return Change(
        id=row.id,
        account_id=row.account_id,
        phone=row.phone,
        previous_phone=row.previous_phone,
        status=row.status,
        source=NumberSource(row.source),
        recorded_by=row.recorded_by,
        case_id=row.case_id,
        code_via=row.code_via,
        codes_sent=row.codes_sent,
        created_at=row.created_at,
        confirmed_at=row.confirmed_at,
        confirmed_by=row.confirmed_by,
        confirmed_via=ConfirmedVia(row.confirmed_via) if row.confirmed_via else None,
        told_at=row.told_at,
    )


def challenge_of(change_id: int, n: int) -> str:
    """The challenge the ``n``-th code of a recorded number is bound to."""
    return f"contact-change|{change_id}|{n}"


def record(
    s: Session,
    account_id: str,
    phone: str,
    *,
    source: NumberSource,
    recorded_by: str,
    now: datetime,
    case_id: int | None = None,
    via: str = "sms",
) -> Change:
    """Record ``phone`` as the debtor's new number, pending its code; an earlier pending one is
    superseded. :class:`NumberProblem` when it is no number, is already the number on file, is the
    emergency contact's, or says nothing of where the debtor is (no zone on file either);
    :class:`~store.rows.UnknownAccount` for an account that is not stored."""
    try:
        number = validate_e164(phone)
    except ValueError as exc:
        raise NumberProblem(str(exc).removeprefix("phone ").removeprefix("phone: ")) from None
    row = _account_row(s, account_id, lock=True)
    if number == _phone(row):
        raise NumberProblem("is already the number on file")
    emergency = _emergency(s, account_id)
    if emergency is not None and emergency.phone == number:
        raise NumberProblem("is the emergency contact's number, not the debtor's")
    if reason := located(row.debtor.timezone, number):
        raise NumberProblem(reason.removeprefix("timezone is required: "))
    if via not in ("sms", "voice"):
        raise NumberProblem("choose sms or voice", field="via")
    s.execute(
        update(ContactChangeRow)
        .where(ContactChangeRow.account_id == account_id, ContactChangeRow.status == PENDING)
        .values(status=SUPERSEDED, updated_at=now)
    )
    change = ContactChangeRow(
        account_id=account_id,
        phone=number,
        previous_phone=None,
        status=PENDING,
        source=NumberSource(source).value,
        recorded_by=recorded_by[:100],
        case_id=case_id,
        code_via=via,
        codes_sent=0,
        created_at=now,
        updated_at=now,
    )
    s.add(change)
    s.flush()
    return _view(change)


def _pending_row(s: Session, account_id: str, change_id: int) -> ContactChangeRow:
    row = s.scalars(
        select(ContactChangeRow)
        .where(ContactChangeRow.id == change_id, ContactChangeRow.account_id == account_id)
        .with_for_update()
    ).one_or_none()
    if row is None or row.status != PENDING:
        raise NotPending(f"no new number #{change_id} waits for a code on account {account_id}")
    return row


def issue_code(
    s: Session, account_id: str, change_id: int, now: datetime, via: str | None = None
) -> CodeToSend:
    """A new code for the pending number (the earlier one stops working): :class:`NotPending`, or
    :class:`~store.signin_codes.LockedOut` while the number is locked out."""
    row = _pending_row(s, account_id, change_id)
    channel = via if via in ("sms", "voice") else row.code_via
    code = codes.issue_for(
        s,
        row.phone,
        channel,
        now,
        account_id=account_id,
        challenge=challenge_of(row.id, row.codes_sent + 1),
    )
    row.codes_sent += 1
    row.code_via = channel
    row.updated_at = now
    language = Language(_account_row(s, account_id).debtor.language)
    s.flush()
    return CodeToSend(change=_view(row), code=code, language=language, via=channel)


def confirm(
    s: Session,
    account_id: str,
    change_id: int,
    code: str,
    *,
    by: str,
    via: ConfirmedVia,
    now: datetime,
) -> Confirmation:
    """Try ``code`` for the pending number. The right one puts the number on every contact point of
    the debtor (``store.accounts.update_phone``: an unreachable channel is active again, an opt-out
    stays) in this transaction; a wrong one counts toward the number's lock-out."""
    row = _pending_row(s, account_id, change_id)
    if row.codes_sent == 0:
        return Confirmation("expired", _view(row))
    checked = codes.check(s, challenge_of(row.id, row.codes_sent), code, now, purpose="contact")
    if checked.outcome == "wrong":
        return Confirmation("wrong", _view(row), left=checked.left)
    if checked.outcome == "locked":
        return Confirmation("locked", _view(row), locked_until=checked.locked_until)
    if checked.outcome != "opened" or checked.account_id != account_id:
        return Confirmation("expired", _view(row))
    previous = _phone(_account_row(s, account_id, lock=True))
    try:
        update_phone(s, account_id, row.phone, now)
    except ValueError as exc:  # the debtor's zone changed meanwhile: say why, change nothing else
        raise NumberProblem(str(exc)) from None
    row.status, row.previous_phone = CONFIRMED, previous
    row.confirmed_at, row.confirmed_by, row.confirmed_via = now, by[:100], ConfirmedVia(via).value
    row.updated_at = now
    s.flush()
    return Confirmation("confirmed", _view(row))


def cancel(s: Session, account_id: str, change_id: int, now: datetime) -> Change:
    """The pending number is dropped (a wrong lead): its code stops working. :class:`NotPending`."""
    row = _pending_row(s, account_id, change_id)
    row.status, row.updated_at = CANCELLED, now  # its code answers nothing now: only pending ones are tried
    s.flush()
    return _view(row)


def told(s: Session, change_id: int, now: datetime) -> None:
    """The account's run heard of the confirmed number (its ``contact_updated`` signal was taken)."""
    s.execute(update(ContactChangeRow).where(ContactChangeRow.id == change_id).values(told_at=now))


def change(s: Session, account_id: str, change_id: int) -> Change | None:
    row = s.get(ContactChangeRow, change_id, populate_existing=True)
    return _view(row) if row is not None and row.account_id == account_id else None


def changes_of(s: Session, account_id: str) -> list[Change]:
    """Every number recorded for the account, newest first."""
    rows = s.scalars(
        select(ContactChangeRow)
        .where(ContactChangeRow.account_id == account_id)
        .order_by(ContactChangeRow.id.desc())
    )
    return [_view(r) for r in rows]


def pending_of(s: Session, account_id: str) -> Change | None:
    """The number that waits for its code, if any (at most one)."""
    return next((c for c in changes_of(s, account_id) if c.status == PENDING), None)


def confirmed_untold(s: Session, account_id: str) -> Change | None:
    """The latest confirmed number whose run was never told (Temporal was out of reach then)."""
    latest = next((c for c in changes_of(s, account_id) if c.status == CONFIRMED), None)
    return latest if latest is not None and latest.told_at is None else None


def number_status(s: Session, account_id: str) -> NumberStatus:
    """The number on file and how it was found and confirmed (``status.number`` of the API and the
    console): the latest confirmed record whose number is still the one on file, else intake's."""
    row = _account_row(s, account_id)
    on_file = _phone(row)
    changes = changes_of(s, account_id)
    pending = next((c for c in changes if c.status == PENDING), None)
    latest = next((c for c in changes if c.status == CONFIRMED and c.phone == on_file), None)
    extra = {"pending": pending.pending_view() if pending else None}
    if latest is None or latest.confirmed_at is None:
        return NumberStatus(
            masked_phone=mask_phone(on_file),
            source=NumberSource.INTAKE,
            how=how_found(NumberSource.INTAKE),
            **extra,
        )
    clock = account_clock(s, account_id)  # the day the account's own audit log gives it
    day = (clock.policy_now(latest.confirmed_at) if clock is not None else latest.confirmed_at).date()
    return NumberStatus(
        masked_phone=mask_phone(on_file),
        source=latest.source,
        how=how_found(
            latest.source,
            recorded_by=latest.recorded_by,
            case=latest.case,
            confirmed_on=day.isoformat(),
            confirmed_by=latest.confirmed_by,
            confirmed_via=latest.confirmed_via,
        ),
        recorded_by=latest.recorded_by,
        case=latest.case,
        confirmed_at=latest.confirmed_at,
        confirmed_by=latest.confirmed_by,
        confirmed_via=latest.confirmed_via,
        **extra,
    )
