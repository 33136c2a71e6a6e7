"""Accounts and intake: storing accounts (one by one or in batches), the live account snapshot, and
the account-level writes of collection (mode, progress, a new phone number)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from domain.accounts import Account, Channel, CloseReason, Hold, Language, Mode, Product, Stage, validate_e164
from domain.zones import debtor_zones, located
from store.holds import _active_holds
from store.models import AccountRow, ContactPoint, Debtor, EmergencyContactRow
from store.rows import ContactStatus, _account_row, _channels_with, _emergency, _phone, _points, _value


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
    #: the pinned rule versions the account's workflow runs (``store.rules``); None before versions
    policy_version: str | None = None
    profile_version: str | None = None
    #: the champion/challenger variant intake put it in (``domain.strategy``); None: in none
    variant: str | None = None


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
    if row.variant is not None:  # the strategy chose its policy, and a promotion may since have changed it
        del stored["policy"], given["policy"]
    differing = [field for field in given if stored[field] != given[field]]
    if differing:
        raise ValueError(
            f"account {account.account_id} already exists with different {', '.join(differing)}; "
            "nothing was changed (a correction is an operator action, not a re-run of intake)"
        )


def _debtor_values(account: Account) -> dict[str, Any]:
    d = account.debtor
    return {
        "name": d.name,
        "language": d.language.value,
        "timezone": d.timezone,
        "region": d.region,
        "date_of_birth": d.date_of_birth,
    }


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


def _account_values(
    debtor_id: int, account: Account, now: datetime, variant: str | None = None
) -> dict[str, Any]:
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
        "variant": variant,
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


def upsert_account(s: Session, account: Account, now: datetime, *, variant: str | None = None) -> bool:
    """Store an account from intake: True if created, False if it was already there with the same data.

    Re-running intake is harmless; a row whose data differs from what is stored raises ``ValueError``
    naming the fields and writes nothing, because silently overwriting a debt's terms (or a debtor's
    number) from a stale file is worse than asking an operator. Two concurrent intakes of the same
    account create it once. ``variant``: the champion/challenger variant a new account is stored in
    (an account in one is not refused for another policy: the strategy chose it, not the file).
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
            s.add(AccountRow(**_account_values(debtor.id, account, now, variant)))
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


def store_accounts(
    s: Session, accounts: Sequence[Account], now: datetime, variants: Mapping[str, str] | None = None
) -> int:
    """Store a batch from intake in a handful of statements; how many were new.

    The same rows as :func:`upsert_account` row by row, for the intake's speed: one read of what
    is already stored, then one multi-row insert per table. Anything unusual (an account stored
    with other data, the same id twice, a concurrent intake) raises, the caller's transaction rolls
    back, and the caller falls back to :func:`upsert_account` one account at a time, which names it.
    ``variants``: account id -> the variant a new account is stored in.
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
    variants = variants or {}
    s.execute(insert(AccountRow), [_account_values(d, a, now, variants.get(a.account_id)) for d, a in pairs])
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
        policy_version=row.policy_version,
        profile_version=row.profile_version,
        variant=row.variant,
    )


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


def update_phone(s: Session, account_id: str, e164: str, now: datetime) -> bool:
    """A new number for the debtor on every channel; True if it changed.

    A new number clears ``unreachable`` (that was a fact about the old number) but keeps an opt-out:
    opting out follows the person and the medium, not the handset.
    """
    number = validate_e164(e164)
    row = _account_row(s, account_id, lock=True)
    if reason := located(row.debtor.timezone, number):
        raise ValueError(reason)
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


class StoredState(BaseModel):
    """What intake needs to know of an account already stored before it starts its workflow."""

    model_config = ConfigDict(frozen=True)

    account_id: str
    mode: Mode
    close_reason: str | None
    policy_version: str | None
    profile_version: str | None
    variant: str | None = None


def stored_states(s: Session, account_ids: Sequence[str]) -> dict[str, StoredState]:
    """Mode, close reason and pinned versions of those of these accounts that are stored."""
    if not account_ids:
        return {}
    rows = s.execute(
        select(
            AccountRow.account_id,
            AccountRow.mode,
            AccountRow.close_reason,
            AccountRow.policy_version,
            AccountRow.profile_version,
            AccountRow.variant,
        ).where(AccountRow.account_id.in_(list(account_ids)))
    )
    return {
        aid: StoredState(
            account_id=aid,
            mode=Mode(mode),
            close_reason=reason,
            policy_version=pv,
            profile_version=fv,
            variant=variant,
        )
        for aid, mode, reason, pv, fv, variant in rows
    }
