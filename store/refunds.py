"""The refund queue: money received beyond what an account owed, or after it closed.

A payment is never dropped. The workflow applies what is owed and sends the rest here with its
reason ("paid beyond the balance", "closing (charged_off)"); the service sends here a payment for an
account whose workflow has already ended. An operator then refunds it to the debtor or applies it
(e.g. to a charged-off balance), and the queue keeps who decided and when.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store.models import REFUND_STATUSES, RefundRow
from store.rows import _account_row


class RefundView(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    account_id: str
    reference: str
    amount: int
    currency: str
    reason: str
    status: str
    created_at: datetime
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    note: str | None = None


def _view(row: RefundRow) -> RefundView:
    return RefundView(
        id=row.id,
        account_id=row.account_id,
        reference=row.reference,
        amount=row.amount_minor,
        currency=row.currency,
        reason=row.reason,
        status=row.status,
        created_at=row.created_at,
        resolved_at=row.resolved_at,
        resolved_by=row.resolved_by,
        note=row.note,
    )


def queue_refund(
    s: Session,
    *,
    account_id: str,
    reference: str,
    amount_minor: int,
    currency: str,
    reason: str,
    now: datetime,
) -> RefundView:
    """Queue money to refund; the same payment (account and reference) is queued once."""
    _account_row(s, account_id)
    existing = s.scalars(
        select(RefundRow).where(RefundRow.account_id == account_id, RefundRow.reference == reference)
    ).one_or_none()
    if existing is not None:
        return _view(existing)
    row = RefundRow(
        account_id=account_id,
        reference=reference,
        amount_minor=amount_minor,
        currency=currency.upper(),
        reason=reason[:500],
        status="open",
        created_at=now,
    )
    try:
        with s.begin_nested():
            s.add(row)
            s.flush()
    except IntegrityError:  # queued by a concurrent try of the same write
        row = s.scalars(
            select(RefundRow).where(RefundRow.account_id == account_id, RefundRow.reference == reference)
        ).one()
    return _view(row)


def refunds(s: Session, *, status: str | None = "open", account_id: str | None = None) -> list[RefundView]:
    query = select(RefundRow).order_by(RefundRow.id)
    if status is not None:
        query = query.where(RefundRow.status == status)
    if account_id is not None:
        query = query.where(RefundRow.account_id == account_id)
    return [_view(r) for r in s.scalars(query)]


def refund(s: Session, refund_id: int) -> RefundView | None:
    row = s.get(RefundRow, refund_id)
    return _view(row) if row is not None else None


class RefundAlreadyResolved(ValueError):
    pass


def resolve_refund(
    s: Session, refund_id: int, *, status: str, by: str, note: str | None, now: datetime
) -> RefundView:
    """An operator's decision: ``refunded`` (sent back) or ``applied`` (kept against the debt)."""
    if status not in REFUND_STATUSES or status == "open":
        raise ValueError(f"status must be 'refunded' or 'applied', not {status!r}")
    row = s.get(RefundRow, refund_id, with_for_update=True)
    if row is None:
        raise LookupError(f"no refund #{refund_id}")
    if row.status != "open":
        raise RefundAlreadyResolved(f"refund #{refund_id} is already {row.status} (by {row.resolved_by})")
    row.status, row.resolved_by, row.resolved_at, row.note = status, by, now, note
    return _view(row)


def open_totals(s: Session) -> dict[str, tuple[int, int]]:
    """Open refunds per currency: (count, minor units); what the metrics and dashboard show."""
    rows = s.execute(
        select(RefundRow.currency, func.count(), func.sum(RefundRow.amount_minor))
        .where(RefundRow.status == "open")
        .group_by(RefundRow.currency)
    )
    return {currency: (int(n), int(total or 0)) for currency, n, total in rows}
