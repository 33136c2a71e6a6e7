"""Contacts: the send-time gate's live inputs (state and ledger), the clearance of a send, contact
point and emergency-contact statuses, and the exactly-once contact attempts with their provider
statuses."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict
from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from domain.accounts import Channel, ContactOutcome, LedgerEntry, Mode
from domain.gate import Audience, GateState, debtor_zones, zones_for_phone
from store.holds import _active_holds
from store.models import AccountRow, ContactAttempt, EmergencyContactRow
from store.rows import (
    ContactStatus,
    UnknownAccount,
    _account_row,
    _channels_with,
    _emergency,
    _phone,
    _points,
    _value,
)


class AttemptState(StrEnum):
    RESERVED = "reserved"  # recorded before the provider call; a retry finding it cannot know if it went
    ACCEPTED = "accepted"  # the provider took it (has a provider_sid)
    REJECTED = "rejected"  # the provider refused it synchronously (4xx): nothing was sent
    RETRYABLE = "retryable"  # the provider did not take it (429/5xx/network) or the gate deferred it
    INDETERMINATE = "indeterminate"  # a crash left it unknown whether it went: counted, never resent
    DENIED = "denied"  # the send-time gate refused it against live state


#: States a retry must not overwrite: each records a fact about the outside world.
FINAL_ATTEMPT_STATES = frozenset(
    {AttemptState.ACCEPTED, AttemptState.REJECTED, AttemptState.INDETERMINATE, AttemptState.DENIED}
)
#: Attempts that may have reached the debtor, so the frequency caps count them.
COUNTED_ATTEMPT_STATES = (AttemptState.ACCEPTED.value, AttemptState.INDETERMINATE.value)


# Provider status order (Twilio messages and calls). Webhooks arrive out of order; a status never
# replaces one of a higher rank ("sent" after "delivered" is ignored). Finals share the top ranks.
STATUS_RANK: dict[str, int] = {
    "accepted": 0,
    "scheduled": 0,
    "queued": 1,
    "sending": 2,
    "initiated": 2,
    "sent": 3,
    "ringing": 3,
    "in-progress": 4,
    "answered": 4,
    "delivered": 5,
    "undelivered": 5,
    "failed": 5,
    "completed": 5,
    "busy": 5,
    "no-answer": 5,
    "canceled": 5,
    "read": 6,  # only ever follows "delivered"
}


class AttemptView(BaseModel):
    """One contact attempt without the destination number (callers read that from the snapshot)."""

    model_config = ConfigDict(frozen=True)

    dedupe_key: str
    account_id: str
    channel: Channel
    purpose: str
    template: str
    state: AttemptState
    provider_sid: str | None
    provider_status: str | None
    outcome: ContactOutcome | None
    error_code: int | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None
    audience: Audience = Audience.DEBTOR
    cleared_by: int | None = None  # the try (activity attempt number) that holds the clearance
    body_digest: str | None = None  # SHA-256 of the text the clearing try sends (text_digest)


def _attempt_view(row: ContactAttempt) -> AttemptView:
    return AttemptView(
        dedupe_key=row.dedupe_key,
        account_id=row.account_id,
        channel=Channel(row.channel),
        purpose=row.purpose,
        template=row.template,
        state=AttemptState(row.state),
        provider_sid=row.provider_sid,
        provider_status=row.provider_status,
        outcome=ContactOutcome(row.outcome) if row.outcome else None,
        error_code=row.error_code,
        created_at=row.created_at,
        updated_at=row.updated_at,
        sent_at=row.sent_at,
        audience=Audience(row.audience or Audience.DEBTOR.value),
        cleared_by=row.cleared_by,
        body_digest=row.body_digest,
    )


# ---- the send-time gate's live inputs ------------------------------------------------------------
def live_gate_inputs(
    s: Session,
    account_id: str,
    since: datetime,
    *,
    now: datetime | None = None,
    exclude_key: str | None = None,
) -> tuple[GateState, list[LedgerEntry]]:
    """The contact gate's inputs read live from the database, for the check right before sending.

    Holds: not lifted (and, when ``now`` is given, not expired). Ledger: every attempt sent since
    ``since`` that may have reached the debtor (accepted or indeterminate), timed by when it went out,
    because caps count attempts, not successes, and an attempt we are unsure about must count rather
    than be repeated. Sends another try has cleared and is making right now count too, so two sends
    racing for the same account (a reminder and a visit announcement) cannot both pass a cap of one:
    the account row is locked until the caller's transaction ends (see :func:`clear_for_sending`).
    """
    state = _live_state(s, account_id, now, lock=True)
    return state, _ledger(s, account_id, Audience.DEBTOR, since, exclude_key)


def _live_state(s: Session, account_id: str, now: datetime | None, *, lock: bool = False) -> GateState:
    # FOR UPDATE on PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers
    row = s.get(AccountRow, account_id, populate_existing=True, with_for_update=lock or None)
    if row is None:
        raise UnknownAccount(f"account {account_id!r} is not in the database")
    emergency = _emergency(s, account_id)
    return GateState(
        mode=Mode(row.mode),
        holds=_active_holds(row, now),
        opted_out=_channels_with(row, ContactStatus.OPTED_OUT),
        unreachable=_channels_with(row, ContactStatus.UNREACHABLE),
        zones=debtor_zones(row.debtor.timezone, _phone(row)),
        region=row.debtor.region,
        third_party_zones=list(zones_for_phone(emergency.phone)) if emergency else None,
        third_party_status=emergency.status if emergency else "active",  # type: ignore[arg-type]
    )


def third_party_gate_inputs(
    s: Session, account_id: str, *, now: datetime | None = None, exclude_key: str | None = None
) -> tuple[GateState, list[LedgerEntry]]:
    """The gate's inputs for a message to the emergency contact: the live account (is the debtor
    still unreachable? any hold?) and *every* message that person was ever sent (the total cap)."""
    state = _live_state(s, account_id, now, lock=True)
    return state, _ledger(s, account_id, Audience.THIRD_PARTY, None, exclude_key)


def text_digest(text: str) -> str:
    """SHA-256 (hex) of a message text: what a cleared attempt stores and reconciliation compares."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def clear_for_sending(
    s: Session,
    dedupe_key: str,
    now: datetime,
    *,
    attempt: int | None = None,
    body_digest: str | None = None,
) -> bool:
    """The live gate allowed this reserved attempt: from now on it counts in every other send's caps.

    Called in the same transaction as the gate's read (which locked the account), so of two sends
    racing for one account the second always sees the first. ``sent_at`` is set while the attempt is
    still reserved; a provider refusal or a retry clears it again (:func:`mark_attempt`).
    ``attempt`` is the try that now holds the clearance (``cleared_by``): only that try may call the
    provider (:func:`holds_clearance`), so a stalled try whose retry took over sends nothing.
    ``body_digest`` is the :func:`text_digest` of the text this try sends: a retry that finds the
    clearance without a provider answer adopts only a provider record of that very text.
    """
    row = _attempt(s, dedupe_key, lock=True)
    if row is None or row.state != AttemptState.RESERVED.value or row.sent_at is not None:
        return False  # another try of this very send cleared it first: only one may call the provider
    row.sent_at = now
    row.cleared_by = attempt
    row.body_digest = body_digest
    s.flush()
    return True


def holds_clearance(s: Session, dedupe_key: str, attempt: int) -> bool:
    """Is try ``attempt`` still the one cleared to call the provider for this send?

    The fence checked right before the provider request (store/pacing.py's admission, no wait
    after it): False once a later try revoked the clearance (:func:`revoke_clearance`), voided it,
    or took it itself, and once the attempt is no longer reserved. Locks the row, so a revocation
    is ordered before or after this check, never in the middle.
    """
    row = _attempt(s, dedupe_key, lock=True)
    return (
        row is not None
        and row.state == AttemptState.RESERVED.value
        and row.sent_at is not None
        and row.cleared_by == attempt
    )


def revoke_clearance(s: Session, dedupe_key: str, now: datetime) -> AttemptView | None:
    """A retry found a clearance without a provider answer: from now on its try may not call.

    Done before the retry asks the provider, so the try that held it (stalled, not dead) either
    passed its fence before this (and its request is on its way) or is refused at it. ``sent_at``
    stays (the send still counts in the caps until the provider's answer is known); ``body_digest``
    stays for the comparison. Returns the attempt as it now is (None: no such attempt).
    """
    row = _attempt(s, dedupe_key, lock=True)
    if row is None:
        return None
    if row.state == AttemptState.RESERVED.value and row.sent_at is not None:
        row.cleared_by = None
        row.updated_at = now
        s.flush()
    return _attempt_view(row)


def void_clearance(s: Session, dedupe_key: str, now: datetime) -> AttemptView | None:
    """The provider has no record of a cleared send whose try died: it never went out, clear again.

    Returns the attempt as it now is: a final state means another try recorded the answer meanwhile.
    """
    row = _attempt(s, dedupe_key, lock=True)
    if row is None:
        return None
    if row.state == AttemptState.RESERVED.value:
        row.sent_at = None
        row.cleared_by = None
        row.body_digest = None
        row.updated_at = now
        s.flush()
    return _attempt_view(row)


def claimed_sids(s: Session, sids: Sequence[str]) -> set[str]:
    """Which of these provider SIDs an attempt of ours already owns."""
    if not sids:
        return set()
    found = s.scalars(select(ContactAttempt.provider_sid).where(ContactAttempt.provider_sid.in_(list(sids))))
    return {sid for sid in found if sid}


def _ledger(
    s: Session, account_id: str, audience: Audience, since: datetime | None, exclude_key: str | None = None
) -> list[LedgerEntry]:
    """Attempts to ``audience`` that may have reached them (or are being sent), timed by when they went out."""
    stmt = select(ContactAttempt).where(
        ContactAttempt.account_id == account_id,
        or_(
            ContactAttempt.state.in_(COUNTED_ATTEMPT_STATES),
            and_(ContactAttempt.state == AttemptState.RESERVED.value, ContactAttempt.sent_at.is_not(None)),
        ),
        ContactAttempt.audience == audience.value,
    )
    if exclude_key is not None:
        stmt = stmt.where(ContactAttempt.dedupe_key != exclude_key)
    if since is not None:
        stmt = stmt.where(ContactAttempt.sent_at >= since)
    attempts = s.scalars(stmt.order_by(ContactAttempt.sent_at, ContactAttempt.id)).all()
    return [
        LedgerEntry(
            at=a.sent_at or a.created_at,
            channel=Channel(a.channel),
            outcome=ContactOutcome(a.outcome)
            if a.outcome
            else (
                ContactOutcome.INDETERMINATE
                if a.state == AttemptState.INDETERMINATE.value
                else ContactOutcome.SENT
            ),
        )
        for a in attempts
    ]


# ---- contact points ------------------------------------------------------------------------------
def set_contact_status(
    s: Session, account_id: str, channel: Channel | str, status: ContactStatus | str, now: datetime
) -> bool:
    """Mark a channel active, unreachable or opted out; True if it changed.

    An opt-out is permanent: "a medium the consumer asked not to use is never used again", so this
    function never turns ``opted_out`` back into anything else: that takes a new, documented
    consent from the debtor, and only :func:`opt_back_in` records one.
    """
    row = _account_row(s, account_id, lock=True)
    wanted = _value(ContactStatus, status, "contact status")
    point = _points(row).get(Channel(channel))
    if point is None:
        raise ValueError(f"account {account_id} has no {Channel(channel).value} contact point")
    if point.status == wanted or point.status == ContactStatus.OPTED_OUT.value:
        return False
    point.status = wanted
    point.updated_at = now
    return True


def opt_back_in(s: Session, account_id: str, channel: Channel | str, now: datetime) -> bool:
    """The one way out of ``opted_out``: the debtor's own new consent from that address (a START
    texted from the number, whose message is in the audit log). True if the channel was opted out.

    An unreachable or active channel is left as it is: opting in says nothing about reachability.
    Holds (a cease request, a prohibited medium) are not touched either; they stop contact on their
    own, and only whoever placed them lifts them.
    """
    row = _account_row(s, account_id, lock=True)
    point = _points(row).get(Channel(channel))
    if point is None:
        raise ValueError(f"account {account_id} has no {Channel(channel).value} contact point")
    if point.status != ContactStatus.OPTED_OUT.value:
        return False
    point.status = ContactStatus.ACTIVE.value
    point.updated_at = now
    return True


def accounts_with_emergency_phone(s: Session, phone: str) -> list[str]:
    """The accounts naming ``phone`` as their emergency contact (an inbound STOP from that person)."""
    return list(
        s.scalars(
            select(EmergencyContactRow.account_id)
            .where(EmergencyContactRow.phone == phone)
            .order_by(EmergencyContactRow.account_id)
        )
    )


def set_emergency_status(s: Session, account_id: str, status: ContactStatus | str, now: datetime) -> bool:
    """Mark the emergency contact's number unreachable or opted out (never back from opted out)."""
    row = _emergency(s, account_id)
    wanted = _value(ContactStatus, status, "contact status")
    if row is None or row.status in (wanted, ContactStatus.OPTED_OUT.value):
        return False
    row.status = wanted
    row.updated_at = now
    return True


def emergency_opt_back_in(s: Session, account_id: str, now: datetime) -> bool:
    """The emergency contact texted an opt-in word after an opt-out: their number may be asked again
    (within the profile's locate caps). True if it was opted out."""
    row = _emergency(s, account_id)
    if row is None or row.status != ContactStatus.OPTED_OUT.value:
        return False
    row.status = ContactStatus.ACTIVE.value
    row.updated_at = now
    return True


# ---- contact attempts ----------------------------------------------------------------------------
def _attempt(s: Session, dedupe_key: str, *, lock: bool = False) -> ContactAttempt | None:
    stmt = select(ContactAttempt).where(ContactAttempt.dedupe_key == dedupe_key)
    if lock:
        stmt = stmt.with_for_update()
    return s.scalars(stmt.execution_options(populate_existing=True)).one_or_none()


def attempt_exists(s: Session, dedupe_key: str) -> bool:
    return (
        s.scalar(select(ContactAttempt.dedupe_key).where(ContactAttempt.dedupe_key == dedupe_key)) is not None
    )


def reserve_attempt(
    s: Session,
    *,
    dedupe_key: str,
    account_id: str,
    channel: Channel | str,
    purpose: str,
    template: str,
    to_address: str,
    now: datetime,
    audience: Audience = Audience.DEBTOR,
) -> tuple[AttemptView, bool]:
    """Reserve a contact under its dedupe key before calling the provider: ``(attempt, claimed)``.

    ``claimed`` is True when this caller now holds a fresh reservation and may call the provider: the
    row is new, or it was ``retryable`` (the provider never took it) and this call re-armed it to
    ``reserved`` — so a crash during *this* try is detected by the next one. False means another
    try got here first: the caller must act on the returned state, never send blindly.
    Concurrency-safe on both backends: the UNIQUE constraint decides, the loser re-reads.
    """
    channel_value = Channel(channel).value
    existing = _attempt(s, dedupe_key)
    if existing is None:
        try:
            with s.begin_nested():
                row = ContactAttempt(
                    dedupe_key=dedupe_key,
                    account_id=account_id,
                    channel=channel_value,
                    purpose=purpose,
                    template=template,
                    to_address=to_address,
                    state=AttemptState.RESERVED.value,
                    created_at=now,
                    updated_at=now,
                    audience=Audience(audience).value,
                )
                s.add(row)
                s.flush()
            return _attempt_view(row), True
        except IntegrityError:
            existing = _attempt(s, dedupe_key)
            if existing is None:  # not a duplicate key: e.g. the account does not exist
                raise
    if existing.account_id != account_id or existing.channel != channel_value:
        raise ValueError(f"dedupe key {dedupe_key!r} already belongs to another contact")
    if existing.state == AttemptState.RETRYABLE.value:
        claimed = s.execute(
            update(ContactAttempt)
            .where(ContactAttempt.id == existing.id, ContactAttempt.state == AttemptState.RETRYABLE.value)
            .values(state=AttemptState.RESERVED.value, to_address=to_address, updated_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        refreshed = _attempt(s, dedupe_key)
        assert refreshed is not None
        return _attempt_view(refreshed), bool(claimed)
    return _attempt_view(existing), False


def mark_attempt(
    s: Session,
    dedupe_key: str,
    *,
    state: AttemptState | str,
    provider_sid: str | None = None,
    provider_status: str | None = None,
    outcome: ContactOutcome | str | None = None,
    error_code: int | None = None,
    now: datetime,
    holder: int | None = None,
) -> AttemptView:
    """Record what became of a reserved attempt. ``None`` arguments leave fields as they are.

    A final state (accepted, rejected, indeterminate, denied) is never replaced by a different one:
    a late, stale try saying "retryable" must not reopen an attempt the provider already took.
    ``holder``: the write comes from try ``holder`` after it cleared the attempt. Once that try has
    lost the clearance (a retry revoked, voided or took it) it speaks for the attempt no more, and
    only an acceptance (the provider took its request: a fact) is still recorded.
    """
    new_state = _value(AttemptState, state, "attempt state")
    row = _attempt(s, dedupe_key, lock=holder is not None)
    if row is None:
        raise LookupError(f"no contact attempt with dedupe key {dedupe_key!r}")
    if row.state in FINAL_ATTEMPT_STATES and row.state != new_state:
        return _attempt_view(row)
    if holder is not None and new_state != AttemptState.ACCEPTED and row.cleared_by != holder:
        return _attempt_view(row)
    if new_state in (AttemptState.RETRYABLE, AttemptState.DENIED, AttemptState.REJECTED):
        row.sent_at = None  # it did not go out (a gate clearance is void): caps must not count it
        row.cleared_by = None
    elif row.sent_at is None and new_state == AttemptState.ACCEPTED:
        row.sent_at = now
    elif row.sent_at is None and new_state == AttemptState.INDETERMINATE:
        # It may have gone out when the crashed try reserved it: the last time the row was touched.
        row.sent_at = row.updated_at if row.state == AttemptState.RESERVED else now
    row.state = new_state
    if provider_sid is not None:
        row.provider_sid = provider_sid
    if provider_status is not None and STATUS_RANK.get(provider_status.lower(), 0) >= STATUS_RANK.get(
        (row.provider_status or "").lower(), -1
    ):
        row.provider_status = provider_status.lower()
    if outcome is not None and not _is_final_outcome(row.outcome):
        row.outcome = ContactOutcome(outcome).value
    if error_code is not None:
        row.error_code = error_code
    row.updated_at = now
    s.flush()
    return _attempt_view(row)


def _is_final_outcome(outcome: str | None) -> bool:
    return outcome is not None and outcome != ContactOutcome.SENT.value


def attempt_by_sid(s: Session, provider_sid: str) -> AttemptView | None:
    row = s.scalars(
        select(ContactAttempt)
        .where(ContactAttempt.provider_sid == provider_sid)
        .execution_options(populate_existing=True)
    ).one_or_none()
    return _attempt_view(row) if row is not None else None


def update_attempt_status_by_sid(
    s: Session,
    sid: str,
    provider_status: str,
    outcome: ContactOutcome | str | None,
    error_code: int | None,
    now: datetime,
) -> AttemptView | None:
    """Apply a provider status (webhook or poll); None if the sid is unknown.

    Out-of-order deliveries are ignored by :data:`STATUS_RANK`: "sent" after "delivered" changes
    nothing. A repeat of the current status may refine the outcome (e.g. answering-machine detection
    arriving after "completed"), but a final outcome is never turned back into "sent".
    """
    row = s.scalars(
        select(ContactAttempt).where(ContactAttempt.provider_sid == sid).with_for_update()
    ).one_or_none()
    if row is None:
        return None
    status = provider_status.lower()
    new_rank = STATUS_RANK.get(status, 0)
    current = (row.provider_status or "").lower()
    current_rank = STATUS_RANK.get(current, -1) if current else -1
    if new_rank < current_rank or (new_rank == current_rank and status != current):
        return _attempt_view(row)
    row.provider_status = status
    if outcome is not None:
        value = ContactOutcome(outcome).value
        if not (_is_final_outcome(row.outcome) and value == ContactOutcome.SENT.value):
            row.outcome = value
    if error_code is not None:
        row.error_code = error_code
    row.updated_at = now
    s.flush()
    return _attempt_view(row)


def contact_attempts(s: Session, account_id: str) -> list[AttemptView]:
    """Every attempt of an account, oldest first."""
    rows = s.scalars(
        select(ContactAttempt)
        .where(ContactAttempt.account_id == account_id)
        .order_by(ContactAttempt.created_at, ContactAttempt.id)
    ).all()
    return [_attempt_view(r) for r in rows]
