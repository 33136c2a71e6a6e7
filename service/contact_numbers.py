"""A new number for a lost debtor: record it, send it a code, and put it on file only once confirmed.

One set of functions for the API (``service/api_numbers.py``), the console (the account page's
``number`` actions, a lead's case page) and the debtor's own page (``service/debtor_number.py``), so
each path records, sends, confirms and audits the same way. Why it is built this way:

* **Nothing is contacted on a claim.** A number recorded here waits in ``contact_changes``
  (``store/contact_changes.py``); the send activity reads only the contact points, so no reminder,
  call or visit announcement can reach it. The only thing it gets is the code, sent at once (the
  debtor or the agent is waiting) by text, or by a call reading it where texts cannot reach
  (``service/code_sender.py``), and it says nothing about a debt.
* **Database first, then the run.** The right code writes the number onto the contact points in the
  same transaction; only then is the account's run told (``contact_updated`` with the masked number
  and its zones: Temporal never sees the number), which ends locating and lifts ``contact_lost``, and
  the next contact goes to the new number. If Temporal is out of reach the number is on file anyway
  (the live gate reads it) and the same confirmation asked again tells the run.
* **Limits are the sign-in's**: codes per number per hour (``COLLECT_SIGNIN_CODES_PER_NUMBER_PER_HOUR``,
  one count with sign-in codes), 5 wrong codes on a number within 15 minutes lock it out.
* **Every step is audited under a person's name** (``contact_point``: recorded, code_requested,
  confirmed, code_wrong, code_locked, cancelled), the numbers masked.
* **A lead is answered when it is acted on**: recording a number from an emergency contact's reply
  answers that case with what was done; the number still waits for its code like any other.
"""

from __future__ import annotations

import asyncio
import logging
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker
from temporalio.client import Client

from domain.accounts import validate_e164, workflow_id_for
from domain.cases import CaseKind
from domain.masking import mask_phone
from domain.numbers import ConfirmedVia, NumberSource
from domain.zones import debtor_zones
from runtime.settings import Settings
from service import cases as case_service
from service import code_sender, ratelimit
from service import temporal_calls as calls
from service.holds import ensure_open
from service.operations import AccountNotFound
from store import cases as case_store
from store import contact_changes as changes
from store import signin_codes as codes
from store.accounts import account_snapshot
from store.audit import audit
from store.contact_changes import Change, NotPending, NumberProblem
from store.models import AccountRow
from workflows.messages import ContactUpdate

log = logging.getLogger("humane_collect.numbers")

__all__ = ["Busy", "Change", "CodeRefused", "NotPending", "NumberProblem"]


class Busy(Exception):
    """Too many codes for this number this hour: wait ``seconds`` (429 with ``Retry-After``)."""

    def __init__(self, seconds: int) -> None:
        self.seconds = seconds
        super().__init__(f"too many codes for this number: wait {seconds} s")


class CodeRefused(Exception):
    """The code did not confirm the number: ``wrong`` (``left`` tries), ``locked`` (until),
    ``expired`` (used, past its 5 minutes, or a newer one was sent) or ``format`` (not 6 digits)."""

    def __init__(self, outcome: str, *, left: int = 0, locked_until: datetime | None = None) -> None:
        self.outcome, self.left, self.locked_until = outcome, left, locked_until
        super().__init__(self.sentence())

    def sentence(self) -> str:
        if self.outcome == "wrong":
            return f"code: that code is not right; tries left: {self.left}"
        if self.outcome == "locked":
            until = f" until {self.locked_until:%H:%M} UTC" if self.locked_until else ""
            return f"code: too many wrong codes; this number takes none{until}"
        if self.outcome == "format":
            return "code: enter the 6 digits"
        return "code: that code no longer works (5 minutes, once, only the newest): send a new one"

    @property
    def wait(self) -> int:
        if self.locked_until is None:
            return 0
        return max(1, int((self.locked_until - datetime.now(UTC)).total_seconds()) + 1)


@dataclass(frozen=True)
class Sent:
    """A number recorded (or asked for a new code): the record and when its code stops working."""

    change: Change
    expires_at: datetime
    via: str


def _now() -> datetime:
    return datetime.now(UTC)


def _line(s: Session, account_id: str, actor: str, decision: str, now: datetime, **details: Any) -> None:
    audit(
        s, at=now, clock="wall", account_id=account_id, actor=actor, action="contact_point",
        decision=decision, details={k: v for k, v in details.items() if v is not None},
    )  # fmt: skip


def _take(settings: Settings, phone: str) -> None:
    """One code's place in the number's hourly count (shared with sign-in codes); :class:`Busy`."""
    key = f"number:{codes.phone_digest(phone)}"
    wait = ratelimit.take_hourly(
        "signin_code", {key: settings.signin_codes_per_number_per_hour}, storage=settings.rate_limit_storage
    )
    if wait is not None:
        raise Busy(wait)


def _known(s: Session, account_id: str) -> None:
    if s.get(AccountRow, account_id) is None:
        raise AccountNotFound(account_id)


def _lead(s: Session, account_id: str, case_id: int | None) -> case_store.CaseView | None:
    if case_id is None:
        return None
    found = case_store.case(s, case_id)
    if found is None or found.account_id != account_id or found.kind != CaseKind.EMERGENCY_REPLY:
        raise NumberProblem(f"C-{case_id} is no emergency contact's reply about this account", field="case")
    return found


def _deliver(
    app: FastAPI, settings: Settings, sessions: sessionmaker[Session], sent: changes.CodeToSend, actor: str
) -> None:
    delivery = code_sender.Delivery(
        sent.change.account_id,
        sent.change.phone,
        sent.code,
        sent.language,
        sent.via,
        kind="contact",
        actor=actor,
    )
    code_sender.deliver_now(app, settings, sessions, delivery)


async def record_number(
    app: FastAPI,
    client: Client,
    sessions: sessionmaker[Session],
    settings: Settings,
    account_id: str,
    phone: str,
    *,
    actor: str,
    source: NumberSource,
    via: str = "sms",
    case_id: int | None = None,
) -> Sent:
    """Record ``phone`` as the debtor's new number, unverified, and send it a code.

    :class:`NumberProblem` (the field and why), :class:`Busy`, :class:`CodeRefused` ``locked``,
    ``AccountNotFound``, ``AccountClosed`` (a closed or closing account takes no new number)."""
    try:
        number = validate_e164(phone)
    except ValueError as exc:
        raise NumberProblem(str(exc).removeprefix("phone ")) from None
    await ensure_open(client, sessions, account_id, "hold")
    now = _now()

    def write() -> tuple[changes.CodeToSend, case_store.CaseView | None]:
        with sessions.begin() as s:
            lead = _lead(s, account_id, case_id)
            change = changes.record(
                s, account_id, number, source=source, recorded_by=actor, now=now, case_id=case_id, via=via
            )
            try:
                sent = changes.issue_code(s, account_id, change.id, now, via)
            except codes.LockedOut as exc:
                raise CodeRefused("locked", locked_until=exc.until) from None
            _line(
                s, account_id, actor, "recorded", now, to=change.masked, source=source.value, via=via,
                change=change.id, case=lead.number if lead else None,
            )  # fmt: skip
            return sent, lead

    _take(settings, number)
    sent, lead = await asyncio.to_thread(write)
    _deliver(app, settings, sessions, sent, actor)
    if lead is not None:
        how = "a call" if sent.via == "voice" else "text"
        text = (
            f"Recorded {sent.change.masked} as the debtor's new number, unverified; a code went to it by "
            f"{how}. It is used only once the debtor confirms it."
        )
        await case_service.answer_case(client, sessions, lead.id, actor, text)
    return Sent(change=sent.change, expires_at=now + codes.TTL, via=sent.via)


async def send_code(
    app: FastAPI,
    sessions: sessionmaker[Session],
    settings: Settings,
    account_id: str,
    change_id: int,
    *,
    actor: str,
    via: str | None = None,
) -> Sent:
    """A new code for the pending number (the previous one stops working): :class:`NotPending`,
    :class:`Busy`, :class:`CodeRefused` ``locked``."""
    now = _now()

    def pending() -> Change:
        with sessions.begin() as s:
            _known(s, account_id)
            found = changes.change(s, account_id, change_id)
            if found is None or found.status != changes.PENDING:
                raise NotPending(f"no new number #{change_id} waits for a code on account {account_id}")
            return found

    _take(settings, (await asyncio.to_thread(pending)).phone)

    def write() -> changes.CodeToSend:
        with sessions.begin() as s:
            try:
                sent = changes.issue_code(s, account_id, change_id, now, via)
            except codes.LockedOut as exc:
                raise CodeRefused("locked", locked_until=exc.until) from None
            _line(
                s,
                account_id,
                actor,
                "code_requested",
                now,
                to=sent.change.masked,
                via=sent.via,
                change=change_id,
            )
            return sent

    sent = await asyncio.to_thread(write)
    _deliver(app, settings, sessions, sent, actor)
    return Sent(change=sent.change, expires_at=now + codes.TTL, via=sent.via)


def _digits(code: str) -> str:
    text = re.sub(r"[\s\-]", "", unicodedata.normalize("NFKC", code or ""))
    if not re.fullmatch(rf"\d{{{codes.DIGITS}}}", text):
        raise CodeRefused("format")
    return text


async def confirm_number(
    client: Client | None,
    sessions: sessionmaker[Session],
    account_id: str,
    change_id: int,
    code: str,
    *,
    actor: str,
    via: ConfirmedVia,
) -> Change:
    """The code keyed in (by the debtor on the page, or by the agent the debtor read it to): the number
    goes on file and the account's run is told. :class:`CodeRefused`, :class:`NotPending`.

    Asked again for a number already confirmed, it answers the same (a retried request changes
    nothing), and tells the run if it was confirmed while Temporal was out of reach."""
    now = _now()

    def confirmed() -> Change | None:
        with sessions.begin() as s:
            _known(s, account_id)
            found = changes.change(s, account_id, change_id)
            return found if found is not None and found.status == changes.CONFIRMED else None

    if (done := await asyncio.to_thread(confirmed)) is not None:
        return done if done.told_at is not None else await _tell(client, sessions, done)
    digits = _digits(code)

    def write() -> changes.Confirmation:
        with sessions.begin() as s:
            tried = changes.confirm(s, account_id, change_id, digits, by=actor, via=via, now=now)
            c = tried.change
            if tried.outcome == "confirmed":
                _line(
                    s, account_id, actor, "confirmed", now, to=c.masked, previous=mask_phone(c.previous_phone),
                    via=via.value, change=c.id, source=c.source.value,
                )  # fmt: skip
            elif tried.outcome == "wrong":
                _line(s, account_id, actor, "code_wrong", now, to=c.masked, left=tried.left, change=c.id)
            elif tried.outcome == "locked":
                _line(s, account_id, actor, "code_locked", now, to=c.masked, change=c.id)
            else:
                _line(s, account_id, actor, "code_expired", now, to=c.masked, change=c.id)
            return tried

    tried = await asyncio.to_thread(write)
    if tried.outcome != "confirmed":
        raise CodeRefused(tried.outcome, left=tried.left, locked_until=tried.locked_until)
    return await _tell(client, sessions, tried.change)


async def _tell(client: Client | None, sessions: sessionmaker[Session], change: Change) -> Change:
    """``contact_updated`` to the account's run: the masked number and its zones, never the number.
    The record as it is afterwards (``told_at`` set once the run took the signal)."""

    def update() -> ContactUpdate:
        with sessions.begin() as s:
            snap = account_snapshot(s, change.account_id)
            if snap is None:
                raise AccountNotFound(change.account_id)
            return ContactUpdate(
                masked_phone=mask_phone(snap.phone),
                zones=debtor_zones(snap.timezone, snap.phone),
                region=snap.region,
            )

    if client is None:
        return change
    message = await asyncio.to_thread(update)
    if not await calls.signal_workflow(
        client, workflow_id_for(change.account_id), "contact_updated", message
    ):
        log.info(
            "%s has no running workflow: its new number %s is on file only", change.account_id, change.masked
        )
        return change

    def mark() -> Change:
        with sessions.begin() as s:
            changes.told(s, change.id, _now())
            return changes.change(s, change.account_id, change.id) or change

    return await asyncio.to_thread(mark)


async def cancel_number(
    sessions: sessionmaker[Session], account_id: str, change_id: int, *, actor: str
) -> Change:
    """Drop the pending number (a wrong lead, a mistyped number): :class:`NotPending`."""
    now = _now()

    def write() -> Change:
        with sessions.begin() as s:
            _known(s, account_id)
            dropped = changes.cancel(s, account_id, change_id, now)
            _line(s, account_id, actor, "cancelled", now, to=dropped.masked, change=change_id)
            return dropped

    return await asyncio.to_thread(write)


def numbers_of(sessions: sessionmaker[Session], account_id: str) -> list[Change]:
    """Every number recorded for the account, newest first; :class:`AccountNotFound`."""
    with sessions.begin() as s:
        if account_snapshot(s, account_id) is None:
            raise AccountNotFound(account_id)
        return changes.changes_of(s, account_id)


def pending_of(sessions: sessionmaker[Session], account_id: str) -> Change | None:
    with sessions.begin() as s:
        return changes.pending_of(s, account_id)
