"""What every store module shares: the unknown-account error, contact-point statuses and small
private helpers that read ORM rows (an account, its contact points, its emergency contact) or
normalise values before they are written.

ORM rows never leave the ``store`` package: the helpers here are for the other store modules only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from domain.accounts import Channel
from store.models import AccountRow, ContactPoint, EmergencyContactRow


class UnknownAccount(LookupError):
    """The account is not in the database (intake has not stored it, or the id is wrong)."""


class ContactStatus(StrEnum):
    ACTIVE = "active"
    UNREACHABLE = "unreachable"
    OPTED_OUT = "opted_out"


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


def _emergency(s: Session, account_id: str) -> EmergencyContactRow | None:
    return s.get(EmergencyContactRow, account_id, populate_existing=True)


def _json(details: Mapping[str, Any] | None) -> dict[str, Any]:
    """Details as plain JSON (datetimes, enums, decimals become text) so every backend stores the same."""
    return json.loads(json.dumps(dict(details or {}), default=str, ensure_ascii=False))


def _value(enum: type[StrEnum], value: str | StrEnum, what: str) -> str:
    try:
        return enum(value).value
    except ValueError:
        allowed = ", ".join(m.value for m in enum)
        raise ValueError(f"{what} {value!r} is not one of: {allowed}") from None
