"""The money side: agreed plans with their instalments, the payment ledger, and the fee-waiver
approval queue of the negotiation API (issue 5)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from domain.plans import AgreedPlan, Instalment, PlanKind
from store.models import InstalmentRow, PaymentRow, PlanRow, WaiverRequestRow
from store.rows import _account_row, _json, _value


class PlanStatus(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"
    BROKEN = "broken"
    CANCELLED = "cancelled"  # the account closed while the plan ran (e.g. a complaint upheld)


class InstalmentStatus(StrEnum):
    DUE = "due"
    PAID = "paid"
    MISSED = "missed"


# ---- plans and payments --------------------------------------------------------------------------
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
    """Store a payment; False if this account already has its reference (the same payment twice).

    References are the lender's and unique per account only: two debtors may pay invoice "INV-1".
    The same reference on the same account with another amount or currency is an error, not a
    duplicate. Balances are the workflow's arithmetic (see ``update_progress``); this is the ledger.
    """
    account = _account_row(s, account_id)
    currency = currency.upper()
    if currency != account.currency:
        raise ValueError(
            f"payment currency {currency} differs from account {account_id}'s {account.currency}"
        )
    if amount_minor <= 0:
        raise ValueError("a payment must be a positive amount")

    def stored() -> PaymentRow | None:
        return s.scalars(
            select(PaymentRow).where(PaymentRow.account_id == account_id, PaymentRow.reference == reference)
        ).one_or_none()

    def same(existing: PaymentRow) -> bool:
        if (existing.amount_minor, existing.currency) != (amount_minor, currency):
            raise ValueError(f"payment reference {reference!r} is already used by a different payment")
        return False

    existing = stored()
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
        existing = stored()
        if existing is None:
            raise
        return same(existing)
    return True


# ---- negotiation API (issue 5): the fee-waiver approval queue ------------------------------------
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
