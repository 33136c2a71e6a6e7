"""Payments the debtor started from their own page, from the choice to the provider's signed "paid".

A checkout row is written before the debtor leaves for the provider, so the provider's webhook can be
matched to the account it pays (and nothing but the provider's word completes it). Completion is once:
the first webhook stores the provider's payment ID and what was taken; a replay finds it done.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import CheckoutRow


@dataclass(frozen=True)
class CheckoutView:
    id: str
    account_id: str
    provider: str
    provider_session_id: str | None
    purpose: str
    amount_minor: int
    currency: str
    created_at: datetime
    completed_at: datetime | None
    payment_id: str | None
    paid_minor: int | None

    @property
    def completed(self) -> bool:
        return self.completed_at is not None


def _view(row: CheckoutRow) -> CheckoutView:
    return CheckoutView(
        id=row.id,
        account_id=row.account_id,
        provider=row.provider,
        provider_session_id=row.provider_session_id,
        purpose=row.purpose,
        amount_minor=row.amount_minor,
        currency=row.currency,
        created_at=row.created_at,
        completed_at=row.completed_at,
        payment_id=row.payment_id,
        paid_minor=row.paid_minor,
    )


def open_checkout(
    s: Session,
    *,
    account_id: str,
    provider: str,
    purpose: str,
    amount_minor: int,
    currency: str,
    now: datetime,
) -> CheckoutView:
    """A new checkout with an unguessable id (it is in the address the provider sends the debtor back to)."""
    row = CheckoutRow(
        id=secrets.token_urlsafe(24),
        account_id=account_id,
        provider=provider,
        purpose=purpose,
        amount_minor=amount_minor,
        currency=currency,
        created_at=now,
    )
    s.add(row)
    s.flush()
    return _view(row)


def attach_session(s: Session, checkout_id: str, provider_session_id: str) -> None:
    """The provider's own id for the checkout, which its webhook names."""
    row = s.get(CheckoutRow, checkout_id)
    if row is None:
        raise KeyError(checkout_id)
    row.provider_session_id = provider_session_id


def checkout(s: Session, checkout_id: str) -> CheckoutView | None:
    row = s.get(CheckoutRow, checkout_id)
    return _view(row) if row is not None else None


def by_provider_session(s: Session, provider: str, provider_session_id: str) -> CheckoutView | None:
    row = s.scalars(
        select(CheckoutRow).where(
            CheckoutRow.provider == provider, CheckoutRow.provider_session_id == provider_session_id
        )
    ).first()
    return _view(row) if row is not None else None


def complete(s: Session, checkout_id: str, *, payment_id: str, paid_minor: int, now: datetime) -> bool:
    """Mark the checkout paid, once. False when it already was (a replayed webhook).

    Row-locked so that two deliveries of the same event racing each other complete it once.
    """
    row = s.scalars(select(CheckoutRow).where(CheckoutRow.id == checkout_id).with_for_update()).first()
    if row is None:
        raise KeyError(checkout_id)
    if row.completed_at is not None:
        return False
    row.completed_at, row.payment_id, row.paid_minor = now, payment_id, paid_minor
    return True


def paid_checkouts(s: Session, account_id: str, limit: int = 10) -> list[CheckoutView]:
    """The account's completed checkouts, newest first: the receipts its page lists."""
    rows = s.scalars(
        select(CheckoutRow)
        .where(CheckoutRow.account_id == account_id, CheckoutRow.completed_at.is_not(None))
        .order_by(CheckoutRow.completed_at.desc())
        .limit(limit)
    )
    return [_view(r) for r in rows]
