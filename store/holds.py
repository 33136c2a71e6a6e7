"""Holds on an account (dispute, pause, cease, complaint …): putting them on, lifting them, and
reading the active ones for the live gate and the account snapshot."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from domain.accounts import Channel, Hold, HoldKind
from store.models import AccountRow, HoldRow
from store.rows import _account_row, _value


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
