"""Repository functions: small, typed, idempotent reads and writes of the application database.

Every function takes a :class:`~sqlalchemy.orm.Session` inside the caller's transaction
(``with sessions.begin() as s:``) and never commits, so one activity's writes land together or not at
all. Every write is safe to repeat: Temporal retries activities, and a retry after a commit whose
acknowledgement was lost must change nothing. ORM rows never leave this module; callers get domain
models, the pydantic views defined here, or plain values.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from domain.accounts import (
    Account,
    Channel,
    CloseReason,
    ContactOutcome,
    Hold,
    HoldKind,
    Language,
    LedgerEntry,
    Mode,
    Product,
    Stage,
    validate_e164,
)
from domain.gate import Audience, GateState, debtor_zones, zones_for_phone
from domain.plans import AgreedPlan, Instalment, PlanKind
from store.models import (
    AccountRow,
    AuditRow,
    ContactAttempt,
    ContactPoint,
    Debtor,
    EmergencyContactRow,
    HoldRow,
    InstalmentRow,
    PaymentRow,
    PlanRow,
)


class UnknownAccount(LookupError):
    """The account is not in the database (intake has not stored it, or the id is wrong)."""


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


class ContactStatus(StrEnum):
    ACTIVE = "active"
    UNREACHABLE = "unreachable"
    OPTED_OUT = "opted_out"


class PlanStatus(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"
    BROKEN = "broken"
    CANCELLED = "cancelled"  # the account closed while the plan ran (e.g. a complaint upheld)


class InstalmentStatus(StrEnum):
    DUE = "due"
    PAID = "paid"
    MISSED = "missed"


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


# ---- views returned to callers ------------------------------------------------------------------
class AccountSnapshot(BaseModel):
    """The live account as the send activity, the API and the CLI need it (personal data included)."""

    model_config = ConfigDict(frozen=True)

    account_id: str
    name: str
    phone: str
    timezone: str | None
    zones: list[str]
    language: Language
    region: str | None
    product: Product
    currency: str
    opening_balance_minor: int
    balance_minor: int
    fees_minor: int
    paid_minor: int
    due_date: date
    profile: str
    policy: str
    mode: Mode
    close_reason: str | None
    stage: Stage | None
    dpd: int | None
    holds: list[Hold]
    opted_out: list[Channel]
    unreachable: list[Channel]
    created_at: datetime
    updated_at: datetime
    emergency_name: str | None = None
    emergency_phone: str | None = None
    emergency_status: str | None = None


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


class AuditEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    at: datetime
    account_id: str | None
    actor: str
    action: str
    decision: str
    rule: str | None
    details: dict[str, Any]


# ---- helpers --------------------------------------------------------------------------------------
def _account_row(s: Session, account_id: str, *, lock: bool = False) -> AccountRow:
    stmt = select(AccountRow).where(AccountRow.account_id == account_id)
    if lock:  # PostgreSQL: serialise read-modify-write of one account; SQLite transactions are serial anyway
        stmt = stmt.with_for_update(of=AccountRow)
    row = s.scalars(stmt).one_or_none()
    if row is None:
        raise UnknownAccount(f"account {account_id!r} is not in the database")
    return row


def _points(row: AccountRow) -> dict[Channel, ContactPoint]:
    return {Channel(p.channel): p for p in row.debtor.contact_points}


def _phone(row: AccountRow) -> str:
    points = _points(row)
    point = points.get(Channel.SMS) or points.get(Channel.VOICE)
    return point.address if point is not None else ""


def _channels_with(row: AccountRow, status: ContactStatus) -> list[Channel]:
    return sorted((c for c, p in _points(row).items() if p.status == status.value), key=list(Channel).index)


def _hold(row: HoldRow) -> Hold:
    return Hold(
        kind=HoldKind(row.kind),
        reason=row.reason,
        since=row.since,
        channel=Channel(row.channel) if row.channel else None,
        until=row.until,
    )


def _active_holds(row: AccountRow, now: datetime | None = None) -> list[Hold]:
    return [
        _hold(h)
        for h in row.holds
        if h.lifted_at is None and (now is None or h.until is None or h.until > now)
    ]


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
    )


def _json(details: Mapping[str, Any] | None) -> dict[str, Any]:
    """Details as plain JSON (datetimes, enums, decimals become text) so every backend stores the same."""
    return json.loads(json.dumps(dict(details or {}), default=str, ensure_ascii=False))


def _value(enum: type[StrEnum], value: str | StrEnum, what: str) -> str:
    try:
        return enum(value).value
    except ValueError:
        allowed = ", ".join(m.value for m in enum)
        raise ValueError(f"{what} {value!r} is not one of: {allowed}") from None


# ---- accounts -------------------------------------------------------------------------------------
def _intake_fields(account: Account) -> dict[str, object]:
    d = account.debtor
    return {
        "name": d.name,
        "phone": d.phone,
        "timezone": d.timezone,
        "language": d.language.value,
        "region": d.region,
        "product": account.product.value,
        "currency": account.currency,
        "balance": account.balance,
        "fees": account.fees,
        "due_date": account.due_date,
        "profile": account.profile,
        "policy": account.policy,
        "emergency_name": account.emergency.name if account.emergency else None,
        "emergency_phone": account.emergency.phone if account.emergency else None,
    }


def _emergency(s: Session, account_id: str) -> EmergencyContactRow | None:
    return s.get(EmergencyContactRow, account_id, populate_existing=True)


def _stored_fields(row: AccountRow) -> dict[str, object]:
    """What intake stored (opening balance, not the live balance that payments move)."""
    session = Session.object_session(row)
    emergency = _emergency(session, row.account_id) if session is not None else None
    return {
        "emergency_name": emergency.name if emergency else None,
        "emergency_phone": emergency.phone if emergency else None,
        "name": row.debtor.name,
        "phone": _phone(row),
        "timezone": row.debtor.timezone,
        "language": row.debtor.language,
        "region": row.debtor.region,
        "product": row.product,
        "currency": row.currency,
        "balance": row.opening_balance_minor,
        "fees": row.fees_minor,
        "due_date": row.due_date,
        "profile": row.profile,
        "policy": row.policy,
    }


def _check_same(row: AccountRow, account: Account) -> None:
    stored, given = _stored_fields(row), _intake_fields(account)
    differing = [field for field in given if stored[field] != given[field]]
    if differing:
        raise ValueError(
            f"account {account.account_id} already exists with different {', '.join(differing)}; "
            "nothing was changed (a correction is an operator action, not a re-run of intake)"
        )


def _debtor_values(account: Account) -> dict[str, Any]:
    d = account.debtor
    return {"name": d.name, "language": d.language.value, "timezone": d.timezone, "region": d.region}


def _contact_point_values(debtor_id: int, account: Account, now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "debtor_id": debtor_id,
            "channel": channel.value,
            "address": account.debtor.phone,
            "status": ContactStatus.ACTIVE.value,
            "updated_at": now,
        }
        for channel in Channel
    ]


def _account_values(debtor_id: int, account: Account, now: datetime) -> dict[str, Any]:
    return {
        "account_id": account.account_id,
        "debtor_id": debtor_id,
        "product": account.product.value,
        "currency": account.currency,
        "opening_balance_minor": account.balance,
        "balance_minor": account.balance,
        "fees_minor": account.fees,
        "paid_minor": 0,
        "due_date": account.due_date,
        "profile": account.profile,
        "policy": account.policy,
        "mode": Mode.DUNNING.value,
        "close_reason": None,
        "stage": None,
        "dpd": None,
        "created_at": now,
        "updated_at": now,
    }


def _emergency_values(account: Account, now: datetime) -> dict[str, Any] | None:
    if account.emergency is None:
        return None
    return {
        "account_id": account.account_id,
        "name": account.emergency.name,
        "phone": account.emergency.phone,
        "status": ContactStatus.ACTIVE.value,
        "updated_at": now,
    }


def upsert_account(s: Session, account: Account, now: datetime) -> bool:
    """Store an account from intake: True if created, False if it was already there with the same data.

    Re-running intake is harmless; a row whose data differs from what is stored raises ``ValueError``
    naming the fields and writes nothing, because silently overwriting a debt's terms (or a debtor's
    number) from a stale file is worse than asking an operator. Two concurrent intakes of the same
    account create it once.
    """
    existing = s.get(AccountRow, account.account_id)
    if existing is not None:
        _check_same(existing, account)
        return False
    try:
        with s.begin_nested():
            debtor = Debtor(**_debtor_values(account))
            s.add(debtor)
            s.flush()
            s.add_all(ContactPoint(**v) for v in _contact_point_values(debtor.id, account, now))
            s.add(AccountRow(**_account_values(debtor.id, account, now)))
            s.flush()
            if (emergency := _emergency_values(account, now)) is not None:
                s.add(EmergencyContactRow(**emergency))
                s.flush()
    except IntegrityError:
        # Another transaction stored the same account id first: compare with what it stored.
        existing = s.get(AccountRow, account.account_id, populate_existing=True)
        if existing is None:
            raise
        _check_same(existing, account)
        return False
    return True


def store_accounts(s: Session, accounts: Sequence[Account], now: datetime) -> int:
    """Store a batch from intake in a handful of statements; how many were new.

    The same rows as :func:`upsert_account` row by row, for the intake's speed: one read of what
    is already stored, then one multi-row insert per table. Anything unusual (an account stored
    with other data, the same id twice, a concurrent intake) raises, the caller's transaction rolls
    back, and the caller falls back to :func:`upsert_account` one account at a time, which names it.
    """
    ids = [a.account_id for a in accounts]
    if len(set(ids)) != len(ids):
        raise ValueError("the same account id twice in one batch")
    stored = {
        row.account_id: row for row in s.scalars(select(AccountRow).where(AccountRow.account_id.in_(ids)))
    }
    for account in accounts:
        if account.account_id in stored:
            _check_same(stored[account.account_id], account)
    new = [a for a in accounts if a.account_id not in stored]
    if not new:
        return 0
    debtor_ids = s.scalars(
        insert(Debtor).returning(Debtor.id, sort_by_parameter_order=True), [_debtor_values(a) for a in new]
    ).all()
    pairs = list(zip(debtor_ids, new, strict=True))
    s.execute(insert(ContactPoint), [v for d, a in pairs for v in _contact_point_values(d, a, now)])
    s.execute(insert(AccountRow), [_account_values(d, a, now) for d, a in pairs])
    emergencies = [v for a in new if (v := _emergency_values(a, now)) is not None]
    if emergencies:
        s.execute(insert(EmergencyContactRow), emergencies)
    return len(new)


def account_snapshot(s: Session, account_id: str) -> AccountSnapshot | None:
    """The live account (None if unknown): what is true *now*, not what the workflow last planned on."""
    row = s.get(AccountRow, account_id, populate_existing=True)
    if row is None:
        return None
    d = row.debtor
    phone = _phone(row)
    emergency = _emergency(s, account_id)
    return AccountSnapshot(
        account_id=row.account_id,
        name=d.name,
        phone=phone,
        timezone=d.timezone,
        zones=debtor_zones(d.timezone, phone),
        language=Language(d.language),
        region=d.region,
        product=Product(row.product),
        currency=row.currency,
        opening_balance_minor=row.opening_balance_minor,
        balance_minor=row.balance_minor,
        fees_minor=row.fees_minor,
        paid_minor=row.paid_minor,
        due_date=row.due_date,
        profile=row.profile,
        policy=row.policy,
        mode=Mode(row.mode),
        close_reason=row.close_reason,
        stage=Stage(row.stage) if row.stage else None,
        dpd=row.dpd,
        holds=_active_holds(row),
        opted_out=_channels_with(row, ContactStatus.OPTED_OUT),
        unreachable=_channels_with(row, ContactStatus.UNREACHABLE),
        created_at=row.created_at,
        updated_at=row.updated_at,
        emergency_name=emergency.name if emergency else None,
        emergency_phone=emergency.phone if emergency else None,
        emergency_status=emergency.status if emergency else None,
    )


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


def clear_for_sending(s: Session, dedupe_key: str, now: datetime) -> bool:
    """The live gate allowed this reserved attempt: from now on it counts in every other send's caps.

    Called in the same transaction as the gate's read (which locked the account), so of two sends
    racing for one account the second always sees the first. ``sent_at`` is set while the attempt is
    still reserved; a provider refusal or a retry clears it again (:func:`mark_attempt`).
    """
    row = _attempt(s, dedupe_key, lock=True)
    if row is None or row.state != AttemptState.RESERVED.value or row.sent_at is not None:
        return False  # another try of this very send cleared it first: only one may call the provider
    row.sent_at = now
    s.flush()
    return True


def void_clearance(s: Session, dedupe_key: str, now: datetime) -> None:
    """The provider has no record of a cleared send whose try died: it never went out, clear again."""
    row = _attempt(s, dedupe_key, lock=True)
    if row is not None and row.state == AttemptState.RESERVED.value:
        row.sent_at = None
        row.updated_at = now
        s.flush()


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


def set_mode(
    s: Session,
    account_id: str,
    mode: Mode | str,
    *,
    close_reason: CloseReason | str | None = None,
    now: datetime,
) -> None:
    """Which workflow owns the account. The send-time gate reads this, so a settlement stops dunning here."""
    row = _account_row(s, account_id, lock=True)
    row.mode = _value(Mode, mode, "mode")
    row.close_reason = (
        _value(CloseReason, close_reason, "close_reason")
        if row.mode == Mode.CLOSED.value and close_reason is not None
        else None
    )
    row.updated_at = now


def update_progress(
    s: Session,
    account_id: str,
    *,
    stage: Stage | str | None,
    dpd: int | None,
    balance_minor: int | None,
    paid_minor: int | None,
    now: datetime,
) -> None:
    """Record where collection stands; ``None`` leaves a field as it is. Values are absolute (retry-safe)."""
    row = _account_row(s, account_id, lock=True)
    if stage is not None:
        row.stage = _value(Stage, stage, "stage")
    if dpd is not None:
        row.dpd = dpd
    if balance_minor is not None:
        row.balance_minor = balance_minor
    if paid_minor is not None:
        row.paid_minor = paid_minor
    row.updated_at = now


# ---- holds and contact points ---------------------------------------------------------------------
def add_hold(s: Session, account_id: str, hold: Hold) -> bool:
    """Put a hold on; False if an active hold of the same kind (and channel) is already on.

    Holds of one kind do not stack: one lift must end the pause, and a retried write must not add
    a second hold that nobody will ever lift.
    """
    row = _account_row(s, account_id, lock=True)
    channel = hold.channel.value if hold.channel else None
    for existing in row.holds:
        if existing.lifted_at is None and existing.kind == hold.kind.value and existing.channel == channel:
            return False
    s.add(
        HoldRow(
            account_id=account_id,
            kind=hold.kind.value,
            reason=hold.reason,
            channel=channel,
            since=hold.since,
            until=hold.until,
            lifted_at=None,
        )
    )
    s.flush()
    s.expire(row, ["holds"])
    return True


def lift_hold(s: Session, account_id: str, kind: HoldKind | str, now: datetime) -> bool:
    """Lift every active hold of ``kind`` (kept as history); False if none was on."""
    _account_row(s, account_id)
    result = s.execute(
        update(HoldRow)
        .where(
            HoldRow.account_id == account_id,
            HoldRow.kind == _value(HoldKind, kind, "hold kind"),
            HoldRow.lifted_at.is_(None),
        )
        .values(lifted_at=now)
        .execution_options(synchronize_session="fetch")
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def set_contact_status(
    s: Session, account_id: str, channel: Channel | str, status: ContactStatus | str, now: datetime
) -> bool:
    """Mark a channel active, unreachable or opted out; True if it changed.

    An opt-out is permanent: "a medium the consumer asked not to use is never used again", so this
    function never turns ``opted_out`` back into anything else (that would take a new, documented
    consent, which is not a status flip).
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


def update_phone(s: Session, account_id: str, e164: str, now: datetime) -> bool:
    """A new number for the debtor on every channel; True if it changed.

    A new number clears ``unreachable`` (that was a fact about the old number) but keeps an opt-out:
    opting out follows the person and the medium, not the handset.
    """
    number = validate_e164(e164)
    row = _account_row(s, account_id, lock=True)
    changed = False
    for point in _points(row).values():
        if point.address == number:
            continue
        point.address = number
        if point.status == ContactStatus.UNREACHABLE.value:
            point.status = ContactStatus.ACTIVE.value
        point.updated_at = now
        changed = True
    if changed:
        row.updated_at = now
    return changed


# ---- contact attempts -----------------------------------------------------------------------------
def _attempt(s: Session, dedupe_key: str, *, lock: bool = False) -> ContactAttempt | None:
    stmt = select(ContactAttempt).where(ContactAttempt.dedupe_key == dedupe_key)
    if lock:
        stmt = stmt.with_for_update()
    return s.scalars(stmt.execution_options(populate_existing=True)).one_or_none()


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
) -> AttemptView:
    """Record what became of a reserved attempt. ``None`` arguments leave fields as they are.

    A final state (accepted, rejected, indeterminate, denied) is never replaced by a different one:
    a late, stale try saying "retryable" must not reopen an attempt the provider already took.
    """
    new_state = _value(AttemptState, state, "attempt state")
    row = _attempt(s, dedupe_key)
    if row is None:
        raise LookupError(f"no contact attempt with dedupe key {dedupe_key!r}")
    if row.state in FINAL_ATTEMPT_STATES and row.state != new_state:
        return _attempt_view(row)
    if new_state in (AttemptState.RETRYABLE, AttemptState.DENIED, AttemptState.REJECTED):
        row.sent_at = None  # it did not go out (a gate clearance is void): caps must not count it
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


# ---- plans and payments ---------------------------------------------------------------------------
def save_plan(s: Session, account_id: str, plan: AgreedPlan) -> bool:
    """Store an agreed plan and its schedule; False if ``plan_id`` is already stored (a retried write)."""
    existing = s.get(PlanRow, plan.plan_id)
    if existing is not None:
        if existing.account_id != account_id:
            raise ValueError(
                f"plan {plan.plan_id} belongs to account {existing.account_id}, not {account_id}"
            )
        return False
    account = _account_row(s, account_id)
    if plan.currency.upper() != account.currency:
        raise ValueError(f"plan currency {plan.currency} differs from the account's {account.currency}")
    try:
        with s.begin_nested():
            s.add(
                PlanRow(
                    plan_id=plan.plan_id,
                    account_id=account_id,
                    kind=PlanKind(plan.kind).value,
                    currency=account.currency,
                    total_minor=plan.total,
                    waived_minor=plan.waived,
                    status=PlanStatus.ACTIVE.value,
                    agreed_at=plan.agreed_at,
                    proposed_by=plan.proposed_by,
                    approver=plan.approver,
                    hardship_evidence=plan.hardship_evidence,
                    details={"end_date": plan.end_date.isoformat(), "periods": len(plan.instalments)},
                    updated_at=plan.agreed_at,
                )
            )
            s.flush()
            s.add_all(
                InstalmentRow(
                    plan_id=plan.plan_id,
                    seq=i.seq,
                    due_date=i.due_date,
                    amount_minor=i.amount,
                    paid_minor=0,
                    status=InstalmentStatus.DUE.value,
                )
                for i in plan.instalments
            )
            s.flush()
    except IntegrityError:
        if s.get(PlanRow, plan.plan_id, populate_existing=True) is None:
            raise
        return False
    return True


def active_plan_id(s: Session, account_id: str) -> str | None:
    """The account's active plan (the latest agreed, should there ever be two)."""
    return s.scalars(
        select(PlanRow.plan_id)
        .where(PlanRow.account_id == account_id, PlanRow.status == PlanStatus.ACTIVE.value)
        .order_by(PlanRow.agreed_at.desc(), PlanRow.plan_id.desc())
        .limit(1)
    ).first()


def plan_instalments(s: Session, plan_id: str) -> list[tuple[Instalment, int, InstalmentStatus]]:
    """The schedule with what was paid: ``(instalment, paid_minor, status)`` in order."""
    rows = s.scalars(
        select(InstalmentRow).where(InstalmentRow.plan_id == plan_id).order_by(InstalmentRow.seq)
    )
    return [
        (
            Instalment(seq=r.seq, due_date=r.due_date, amount=r.amount_minor),
            r.paid_minor,
            InstalmentStatus(r.status),
        )
        for r in rows
    ]


def set_plan_status(s: Session, plan_id: str, status: PlanStatus | str, now: datetime) -> None:
    row = s.get(PlanRow, plan_id)
    if row is None:
        raise LookupError(f"no plan {plan_id!r}")
    value = _value(PlanStatus, status, "plan status")
    if row.status != value:
        row.status = value
        row.updated_at = now


def mark_instalment(
    s: Session, plan_id: str, seq: int, *, paid_minor: int, status: InstalmentStatus | str
) -> None:
    """Record an instalment paid or missed.

    Paid amounts only grow (``max``), so a retry or a late "missed" with 0 cannot erase a payment;
    a paid instalment stays paid, while a missed one can still be paid late.
    """
    value = _value(InstalmentStatus, status, "instalment status")
    row = s.get(InstalmentRow, (plan_id, seq))
    if row is None:
        raise LookupError(f"plan {plan_id!r} has no instalment {seq}")
    row.paid_minor = max(row.paid_minor, paid_minor)
    if row.status != InstalmentStatus.PAID.value:
        row.status = value


def record_payment(
    s: Session,
    *,
    account_id: str,
    amount_minor: int,
    currency: str,
    reference: str,
    received_at: datetime,
    source: str,
) -> bool:
    """Store a payment; False if its reference is already stored (the same payment delivered twice).

    The same reference with a different account, amount or currency is an error, not a duplicate.
    Balances are the workflow's arithmetic (see :func:`update_progress`); this is the payment ledger.
    """
    account = _account_row(s, account_id)
    currency = currency.upper()
    if currency != account.currency:
        raise ValueError(
            f"payment currency {currency} differs from account {account_id}'s {account.currency}"
        )
    if amount_minor <= 0:
        raise ValueError("a payment must be a positive amount")

    def same(existing: PaymentRow) -> bool:
        if (existing.account_id, existing.amount_minor, existing.currency) != (
            account_id,
            amount_minor,
            currency,
        ):
            raise ValueError(f"payment reference {reference!r} is already used by a different payment")
        return False

    existing = s.scalars(select(PaymentRow).where(PaymentRow.reference == reference)).one_or_none()
    if existing is not None:
        return same(existing)
    try:
        with s.begin_nested():
            s.add(
                PaymentRow(
                    account_id=account_id,
                    amount_minor=amount_minor,
                    currency=currency,
                    reference=reference,
                    received_at=received_at,
                    source=source,
                )
            )
            s.flush()
    except IntegrityError:
        existing = s.scalars(select(PaymentRow).where(PaymentRow.reference == reference)).one_or_none()
        if existing is None:
            raise
        return same(existing)
    return True


# ---- audit ----------------------------------------------------------------------------------------
def audit(
    s: Session,
    *,
    at: datetime,
    account_id: str | None,
    actor: str,
    action: str,
    decision: str,
    rule: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> bool:
    """Append one decision to the audit log (who decided what, under which rule, when); False if present.

    An identical line (same moment, actor, action, decision, rule and details) is written once: it can
    only come from a retried activity whose first commit went through, and a compliance log that shows
    one contact twice is wrong. Distinct events differ at least in their time or details.
    """
    clean = _json(details)
    candidates = s.scalars(
        select(AuditRow).where(
            AuditRow.account_id.is_(None) if account_id is None else AuditRow.account_id == account_id,
            AuditRow.at == at,
            AuditRow.actor == actor,
            AuditRow.action == action,
            AuditRow.decision == decision,
        )
    ).all()
    if any(c.rule == rule and (c.details or {}) == clean for c in candidates):
        return False
    s.add(
        AuditRow(
            at=at,
            account_id=account_id,
            actor=actor,
            action=action,
            decision=decision,
            rule=rule,
            details=clean,
        )
    )
    s.flush()
    return True


def audit_entries(s: Session, account_id: str) -> list[AuditEntry]:
    """An account's audit log in the order things happened."""
    rows = s.scalars(
        select(AuditRow).where(AuditRow.account_id == account_id).order_by(AuditRow.at, AuditRow.id)
    ).all()
    return [
        AuditEntry(
            id=r.id,
            at=r.at,
            account_id=r.account_id,
            actor=r.actor,
            action=r.action,
            decision=r.decision,
            rule=r.rule,
            details=dict(r.details or {}),
        )
        for r in rows
    ]


__all__ = [
    "COUNTED_ATTEMPT_STATES",
    "FINAL_ATTEMPT_STATES",
    "STATUS_RANK",
    "AccountSnapshot",
    "AttemptState",
    "AttemptView",
    "AuditEntry",
    "ContactStatus",
    "InstalmentStatus",
    "PlanStatus",
    "UnknownAccount",
    "account_snapshot",
    "active_plan_id",
    "add_hold",
    "attempt_by_sid",
    "audit",
    "audit_entries",
    "contact_attempts",
    "lift_hold",
    "live_gate_inputs",
    "mark_attempt",
    "mark_instalment",
    "plan_instalments",
    "record_payment",
    "reserve_attempt",
    "save_plan",
    "set_contact_status",
    "set_mode",
    "set_plan_status",
    "update_attempt_status_by_sid",
    "update_phone",
    "update_progress",
    "upsert_account",
]


def purge_expired_audit(
    s: Session, now: datetime, retention_years: Mapping[str, int], *, dry_run: bool = False
) -> dict[str, int]:
    """Delete audit lines older than their profile's retention (CN 5 years, US 3 …); counts per profile.

    Retention is a floor set by law (kept at least this long) and a ceiling set by data-protection
    rules (not kept much longer), so the operator runs this on a schedule. Accounts of a profile not
    in ``retention_years`` are never touched.
    """
    counts: dict[str, int] = {}
    for profile, years in sorted(retention_years.items()):
        cutoff = now - timedelta(days=round(365.25 * years))
        ids = select(AccountRow.account_id).where(AccountRow.profile == profile)
        expired = select(func.count(AuditRow.id)).where(AuditRow.account_id.in_(ids), AuditRow.at < cutoff)
        counts[profile] = s.scalar(expired) or 0
        if not dry_run and counts[profile]:
            s.execute(delete(AuditRow).where(AuditRow.account_id.in_(ids), AuditRow.at < cutoff))
    return counts


# ---- negotiation API (issue 5): the fee-waiver approval queue -------------------------------------
from store.models import WaiverRequestRow  # noqa: E402  (kept with the functions that use it)


class WaiverRequestView(BaseModel):
    """A fee-waiver plan waiting for (or past) a supervisor's decision."""

    model_config = ConfigDict(frozen=True)

    id: int
    account_id: str
    proposal: dict[str, Any]
    requested_by: str
    requested_at: datetime
    status: str
    decided_by: str | None
    decided_at: datetime | None
    plan_id: str | None
    note: str | None


def _waiver_view(row: Any) -> WaiverRequestView:
    return WaiverRequestView(
        id=row.id,
        account_id=row.account_id,
        proposal=dict(row.proposal or {}),
        requested_by=row.requested_by,
        requested_at=row.requested_at,
        status=row.status,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        plan_id=row.plan_id,
        note=row.note,
    )


def add_waiver_request(
    s: Session, *, account_id: str, proposal: Mapping[str, Any], requested_by: str, now: datetime
) -> WaiverRequestView:
    """Queue a waiver plan; an identical pending request by the same agent is returned, not duplicated."""
    clean = _json(proposal)
    for row in s.scalars(
        select(WaiverRequestRow).where(
            WaiverRequestRow.account_id == account_id,
            WaiverRequestRow.status == "pending",
            WaiverRequestRow.requested_by == requested_by,
        )
    ).all():
        if (row.proposal or {}) == clean:
            return _waiver_view(row)
    row = WaiverRequestRow(
        account_id=account_id,
        proposal=clean,
        requested_by=requested_by,
        requested_at=now,
        status="pending",
    )
    s.add(row)
    s.flush()
    return _waiver_view(row)


def waiver_requests(
    s: Session, *, status: str | None = None, account_id: str | None = None
) -> list[WaiverRequestView]:
    """The queue, oldest first, optionally only one status and/or one account."""
    query = select(WaiverRequestRow).order_by(WaiverRequestRow.requested_at, WaiverRequestRow.id)
    if status is not None:
        query = query.where(WaiverRequestRow.status == status)
    if account_id is not None:
        query = query.where(WaiverRequestRow.account_id == account_id)
    return [_waiver_view(r) for r in s.scalars(query).all()]


def waiver_request(s: Session, request_id: int) -> WaiverRequestView | None:
    row = s.get(WaiverRequestRow, request_id, populate_existing=True)
    return _waiver_view(row) if row is not None else None


def decide_waiver_request(
    s: Session,
    request_id: int,
    *,
    status: str,
    decided_by: str,
    now: datetime,
    plan_id: str | None = None,
    note: str | None = None,
) -> bool:
    """Close a pending request (approved/rejected); False if it was not pending (already decided)."""
    result = s.execute(
        update(WaiverRequestRow)
        .where(WaiverRequestRow.id == request_id, WaiverRequestRow.status == "pending")
        .values(status=status, decided_by=decided_by, decided_at=now, plan_id=plan_id, note=note)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


# ---- field visits, agency placement and the dashboard (issue 7) ------------------------------------
class VisitView(BaseModel):
    model_config = ConfigDict(frozen=True)

    visit_id: str
    account_id: str
    agency_id: str | None
    status: str
    window_start: datetime
    window_end: datetime
    report_due: datetime
    reschedules: int
    outcome: str | None
    recording_ref: str | None
    cancel_reason: str | None
    masked_phone: str = "-"


class PlacementView(BaseModel):
    model_config = ConfigDict(frozen=True)

    placement_id: str
    account_id: str
    agency_id: str
    status: str
    currency: str
    placed_balance_minor: int
    collected_minor: int
    balance_minor: int
    placed_at: datetime
    ended_at: datetime | None
    end_reason: str | None
    debtor_name: str = ""
    phone: str = ""


OPEN_VISIT_STATUSES = ("scheduled", "announced")


def _visit_view(row: Any, acct: AccountRow | None = None) -> VisitView:
    from domain.masking import mask_phone

    return VisitView(
        visit_id=row.visit_id,
        account_id=row.account_id,
        agency_id=row.agency_id,
        status=row.status,
        window_start=row.window_start,
        window_end=row.window_end,
        report_due=row.report_due,
        reschedules=row.reschedules,
        outcome=row.outcome,
        recording_ref=row.recording_ref,
        cancel_reason=row.cancel_reason,
        masked_phone=mask_phone(_phone(acct)) if acct is not None else "-",
    )


def agency_load(s: Session) -> tuple[dict[str, int], dict[str, int]]:
    """Open visits and active placements per agency: what :func:`domain.agencies.choose` weighs."""
    from store.models import PlacementRow, VisitRow

    visits = dict(
        s.execute(
            select(VisitRow.agency_id, func.count())
            .where(VisitRow.status.in_(OPEN_VISIT_STATUSES), VisitRow.agency_id.is_not(None))
            .group_by(VisitRow.agency_id)
        ).all()
    )
    placed = dict(
        s.execute(
            select(PlacementRow.agency_id, func.count())
            .where(PlacementRow.status == "active")
            .group_by(PlacementRow.agency_id)
        ).all()
    )
    return visits, placed  # type: ignore[return-value]


def create_visit(
    s: Session,
    *,
    visit_id: str,
    account_id: str,
    agency_id: str | None,
    window_start: datetime,
    window_end: datetime,
    report_due: datetime,
    now: datetime,
) -> VisitView:
    """Store a visit once; a retry returns the stored one unchanged (and so the same agency)."""
    from store.models import VisitRow

    row = s.get(VisitRow, visit_id)
    if row is None:
        row = VisitRow(
            visit_id=visit_id,
            account_id=account_id,
            agency_id=agency_id,
            status="scheduled" if agency_id else "unassigned",
            window_start=window_start,
            window_end=window_end,
            report_due=report_due,
            reschedules=0,
            created_at=now,
            updated_at=now,
        )
        s.add(row)
        s.flush()
    return _visit_view(row)


def update_visit(s: Session, visit_id: str, now: datetime, **fields: Any) -> VisitView:
    """Set the given fields (status, outcome, recording_ref, notes, cancel_reason, window, reschedules).

    A visit that reached an end (reported, cancelled) keeps its end: a late duplicate changes nothing.
    """
    from store.models import VisitRow

    row = s.get(VisitRow, visit_id, populate_existing=True)
    if row is None:
        raise LookupError(f"no visit {visit_id!r}")
    if row.status in ("reported", "cancelled") and fields.get("status") not in (None, row.status):
        return _visit_view(row)
    for key, value in fields.items():
        if value is not None:
            setattr(row, key, value)
    row.updated_at = now
    s.flush()
    return _visit_view(row)


def visit(s: Session, visit_id: str) -> VisitView | None:
    from store.models import VisitRow

    row = s.get(VisitRow, visit_id, populate_existing=True)
    if row is None:
        return None
    return _visit_view(row, s.get(AccountRow, row.account_id))


def visits_for_agency(s: Session, agency_id: str) -> list[VisitView]:
    from store.models import VisitRow

    rows = s.scalars(
        select(VisitRow).where(VisitRow.agency_id == agency_id).order_by(VisitRow.window_start)
    ).all()
    return [_visit_view(row, s.get(AccountRow, row.account_id)) for row in rows]


def _placement_view(s: Session, row: Any, *, personal: bool = False) -> PlacementView:
    """``collected_minor``: payments the agency reported (source ``agency:<id>``) since placement."""
    acct = s.get(AccountRow, row.account_id)
    collected = s.scalar(
        select(func.coalesce(func.sum(PaymentRow.amount_minor), 0)).where(
            PaymentRow.account_id == row.account_id,
            PaymentRow.source == f"agency:{row.agency_id}",
            PaymentRow.received_at >= row.placed_at,
        )
    )
    return PlacementView(
        placement_id=row.placement_id,
        account_id=row.account_id,
        agency_id=row.agency_id,
        status=row.status,
        currency=row.currency,
        placed_balance_minor=row.placed_balance_minor,
        collected_minor=int(collected or 0),
        balance_minor=acct.balance_minor if acct else 0,
        placed_at=row.placed_at,
        ended_at=row.ended_at,
        end_reason=row.end_reason,
        debtor_name=acct.debtor.name if (personal and acct) else "",
        phone=_phone(acct) if (personal and acct) else "",
    )


def create_placement(
    s: Session,
    *,
    placement_id: str,
    account_id: str,
    agency_id: str,
    currency: str,
    balance_minor: int,
    now: datetime,
) -> PlacementView:
    from store.models import PlacementRow

    row = s.get(PlacementRow, placement_id)
    if row is None:
        row = PlacementRow(
            placement_id=placement_id,
            account_id=account_id,
            agency_id=agency_id,
            status="active",
            currency=currency,
            placed_balance_minor=balance_minor,
            collected_minor=0,
            placed_at=now,
        )
        s.add(row)
        s.flush()
    return _placement_view(s, row)


def end_placement(s: Session, placement_id: str, status: str, reason: str, now: datetime) -> None:
    """Recall, expire or complete a placement; an ended one stays as it ended."""
    from store.models import PLACEMENT_STATUSES, PlacementRow

    if status not in PLACEMENT_STATUSES:
        raise ValueError(f"placement status {status!r} is not one of {', '.join(PLACEMENT_STATUSES)}")
    row = s.get(PlacementRow, placement_id, populate_existing=True)
    if row is None or row.status != "active":
        return
    row.status, row.end_reason, row.ended_at = status, reason[:200], now
    s.flush()


def active_placement(s: Session, account_id: str) -> PlacementView | None:
    from store.models import PlacementRow

    row = s.scalars(
        select(PlacementRow)
        .where(PlacementRow.account_id == account_id, PlacementRow.status == "active")
        .execution_options(populate_existing=True)
    ).first()
    return _placement_view(s, row, personal=True) if row is not None else None


def placements_for_agency(s: Session, agency_id: str) -> list[PlacementView]:
    """The agency's active accounts, with the name and number it needs to work them (under contract)."""
    from store.models import PlacementRow

    rows = s.scalars(
        select(PlacementRow)
        .where(PlacementRow.agency_id == agency_id, PlacementRow.status == "active")
        .order_by(PlacementRow.placed_at)
    ).all()
    return [_placement_view(s, r, personal=True) for r in rows]


def record_agency_call(
    s: Session,
    *,
    account_id: str,
    agency_id: str,
    reference: str,
    channel: Channel,
    outcome: ContactOutcome,
    at: datetime,
) -> bool:
    """An agency's call or text, in the same ledger the caps read; the agency's reference counts once."""
    key = f"{account_id}/agency/{agency_id}/{reference}"
    row = s.get(AccountRow, account_id)
    if row is None:
        raise UnknownAccount(f"account {account_id!r} is not in the database")
    _attempt_row, claimed = reserve_attempt(
        s,
        dedupe_key=key,
        account_id=account_id,
        channel=channel,
        purpose="dunning",
        template=f"agency:{agency_id}",
        to_address=_phone(row),
        now=at,
    )
    if not claimed:
        return False
    mark_attempt(s, key, state=AttemptState.ACCEPTED, outcome=outcome, now=at)
    return True


class DashboardData(BaseModel):
    """Everything the reporting dashboard draws, read in one transaction."""

    model_config = ConfigDict(frozen=True)

    funnel: list[tuple[str, int]]
    closed: list[tuple[str, int]]
    currency: str  # recovery is shown in the portfolio's main currency (money is never summed across them)
    recovery: list[tuple[date, int, int]]  # week start, collected minor units, cumulative
    opening_total: int
    outcomes: dict[str, dict[str, int]]  # channel -> outcome -> count
    silent: list[tuple[date, int, int]]  # day, silent calls, answered calls
    settlements: dict[str, int]
    holds: list[tuple[str, int]]
    complaints: dict[str, int]  # within_sla, overdue, escalated, resolved
    visits: dict[str, int]
    placements: dict[str, int]


STAGE_ORDER = ("pre_due", "early", "middle", "late", "charged_off")


def dashboard_data(s: Session, now: datetime, *, weeks: int = 12, days: int = 30) -> DashboardData:
    from store.models import PlacementRow, VisitRow

    funnel_rows = dict(
        s.execute(
            select(AccountRow.stage, func.count())
            .where(AccountRow.mode != Mode.CLOSED.value)
            .group_by(AccountRow.stage)
        ).all()
    )
    funnel = [(stage, int(funnel_rows.get(stage, 0))) for stage in STAGE_ORDER]
    closed = sorted(
        (str(reason or "closed"), int(n))
        for reason, n in s.execute(
            select(AccountRow.close_reason, func.count())
            .where(AccountRow.mode == Mode.CLOSED.value)
            .group_by(AccountRow.close_reason)
        ).all()
    )
    by_currency = s.execute(
        select(AccountRow.currency, func.count()).group_by(AccountRow.currency).order_by(func.count().desc())
    ).first()
    currency = by_currency[0] if by_currency else "USD"
    opening_total = int(
        s.scalar(
            select(func.coalesce(func.sum(AccountRow.opening_balance_minor), 0)).where(
                AccountRow.currency == currency
            )
        )
        or 0
    )
    start = (now - timedelta(weeks=weeks)).date()
    start -= timedelta(days=start.weekday())
    buckets: dict[date, int] = {start + timedelta(weeks=i): 0 for i in range(weeks + 1)}
    before = 0
    for amount, received in s.execute(
        select(PaymentRow.amount_minor, PaymentRow.received_at).where(PaymentRow.currency == currency)
    ).all():
        day = received.date()
        if day < start:
            before += amount
            continue
        week = day - timedelta(days=day.weekday())
        buckets[week] = buckets.get(week, 0) + amount
    recovery, running = [], before
    for week in sorted(buckets):
        running += buckets[week]
        recovery.append((week, buckets[week], running))

    outcomes: dict[str, dict[str, int]] = {}
    for channel, outcome, n in s.execute(
        select(ContactAttempt.channel, ContactAttempt.outcome, func.count())
        .where(ContactAttempt.state.in_(COUNTED_ATTEMPT_STATES))
        .group_by(ContactAttempt.channel, ContactAttempt.outcome)
    ).all():
        outcomes.setdefault(channel, {})[outcome or "sent"] = int(n)

    since = now - timedelta(days=days)
    per_day: dict[date, list[int]] = {(since + timedelta(days=i + 1)).date(): [0, 0] for i in range(days)}
    for outcome, sent_at in s.execute(
        select(ContactAttempt.outcome, ContactAttempt.sent_at).where(
            ContactAttempt.channel == Channel.VOICE.value,
            ContactAttempt.sent_at >= since,
            ContactAttempt.outcome.in_([ContactOutcome.SILENT.value, ContactOutcome.CONVERSATION.value]),
        )
    ).all():
        cell = per_day.setdefault(sent_at.date(), [0, 0])
        cell[1] += 1
        if outcome == ContactOutcome.SILENT.value:
            cell[0] += 1
    silent = [(day, v[0], v[1]) for day, v in sorted(per_day.items())]

    plan_counts = dict(s.execute(select(PlanRow.status, func.count()).group_by(PlanRow.status)).all())
    rejected = int(
        s.scalar(
            select(func.count(AuditRow.id)).where(AuditRow.decision.in_(["plan_rejected", "waiver_rejected"]))
        )
        or 0
    )
    accepted = int(sum(plan_counts.values()))
    settlements = {
        "proposed": accepted + rejected,
        "accepted": accepted,
        "kept": int(plan_counts.get("completed", 0)),
        "broken": int(plan_counts.get("broken", 0)),
    }

    hold_rows = s.scalars(select(HoldRow).where(HoldRow.lifted_at.is_(None))).all()
    live = [h for h in hold_rows if h.until is None or h.until > now]
    kinds: dict[str, int] = {}
    for h in live:
        kinds[h.kind] = kinds.get(h.kind, 0) + 1
    holds = sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))
    escalated_accounts = set(
        s.scalars(select(AuditRow.account_id).where(AuditRow.decision == "complaint_escalated")).all()
    )
    complaints = {"within_sla": 0, "overdue": 0, "escalated": 0, "resolved": 0}
    for h in s.scalars(select(HoldRow).where(HoldRow.kind == HoldKind.COMPLAINT.value)).all():
        if h.lifted_at is not None:
            complaints["resolved"] += 1
        elif h.account_id in escalated_accounts:
            complaints["escalated"] += 1
        elif now > h.since + timedelta(days=15):
            complaints["overdue"] += 1
        else:
            complaints["within_sla"] += 1
    visits = {
        str(k): int(v)
        for k, v in s.execute(select(VisitRow.status, func.count()).group_by(VisitRow.status)).all()
    }
    placements = {
        str(k): int(v)
        for k, v in s.execute(select(PlacementRow.status, func.count()).group_by(PlacementRow.status)).all()
    }
    return DashboardData(
        funnel=funnel,
        closed=closed,
        currency=currency,
        recovery=recovery,
        opening_total=opening_total,
        outcomes=outcomes,
        silent=silent,
        settlements=settlements,
        holds=holds,
        complaints=complaints,
        visits=visits,
        placements=placements,
    )


def placement(s: Session, placement_id: str) -> PlacementView | None:
    from store.models import PlacementRow

    row = s.get(PlacementRow, placement_id, populate_existing=True)
    return _placement_view(s, row) if row is not None else None


def visits_for_account(s: Session, account_id: str) -> list[VisitView]:
    from store.models import VisitRow

    acct = s.get(AccountRow, account_id)
    rows = s.scalars(
        select(VisitRow)
        .where(VisitRow.account_id == account_id)
        .order_by(VisitRow.created_at)
        .execution_options(populate_existing=True)
    ).all()
    return [_visit_view(row, acct) for row in rows]


def latest_event_at(s: Session) -> datetime | None:
    """The newest audit line's time: policy time runs ahead of the wall clock in a sped-up demo."""
    return s.scalar(select(func.max(AuditRow.at)))
