"""Field visits and agency placements (issue 7): visits, placements, agency load, and the calls an
agency reports into the same contact ledger the caps read."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from domain.accounts import Channel, ContactOutcome
from domain.collectors import CollectorVisit
from domain.masking import mask_phone
from store.accounts import account_snapshot
from store.audit import account_clock
from store.contacts import AttemptState, mark_attempt, reserve_attempt
from store.models import PLACEMENT_STATUSES, AccountRow, PaymentRow, PlacementRow, VisitRow
from store.rows import UnknownAccount, _phone


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
    collector_id: str | None = None


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
        collector_id=row.collector_id,
    )


def agency_load(s: Session) -> tuple[dict[str, int], dict[str, int]]:
    """Open visits and active placements per agency: what :func:`domain.agencies.choose` weighs."""
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
    reason: str | None = None,
) -> VisitView:
    """Store a visit once; a retry returns the stored one unchanged (and so the same agency).

    ``reason``: why no agency took it (kept in ``cancel_reason`` of the unassigned visit)."""
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
            cancel_reason=None if agency_id else (reason or "")[:64] or None,
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
    row = s.get(VisitRow, visit_id, populate_existing=True)
    if row is None:
        return None
    return _visit_view(row, s.get(AccountRow, row.account_id))


class VisitOver(Exception):
    """The visit was reported, cancelled or escalated, or its window has ended: nobody is sent any more."""


def set_collector(
    s: Session, visit_id: str, collector_id: str, now: datetime, *, policy_now: datetime | None = None
) -> VisitView:
    """Name the person the agency sends (a later call names another: the agency may swap its people),
    while the visit is open and, given the account's ``policy_now``, before its window ends."""
    row = s.get(VisitRow, visit_id, populate_existing=True, with_for_update=True)
    if row is None:
        raise LookupError(f"no visit {visit_id!r}")
    if row.status not in OPEN_VISIT_STATUSES:
        raise VisitOver(f"visit {visit_id} is {row.status}")
    if policy_now is not None and row.window_end <= policy_now:
        raise VisitOver(f"visit {visit_id} is past its window")
    row.collector_id, row.updated_at = collector_id, now
    s.flush()
    return _visit_view(row, s.get(AccountRow, row.account_id))


def collector_visits(s: Session, agency_id: str, collector_id: str, now: datetime) -> list[CollectorVisit]:
    """The open visits of ``agency_id`` on which ``collector_id`` was named, each with its account's
    home zone and policy time (``now`` is the wall clock), for :func:`domain.collectors.confirms`."""
    rows = s.scalars(
        select(VisitRow).where(
            VisitRow.agency_id == agency_id,
            VisitRow.collector_id == collector_id,
            VisitRow.status.in_(OPEN_VISIT_STATUSES),
        )
    ).all()
    out = []
    for row in rows:
        snap = account_snapshot(s, row.account_id)
        clock = account_clock(s, row.account_id)
        out.append(
            CollectorVisit(
                account_id=row.account_id,
                status=row.status,
                window_start=row.window_start,
                window_end=row.window_end,
                zone=snap.zones[0] if snap is not None else "UTC",
                now=clock.policy_now(now) if clock is not None else now,
            )
        )
    return out


def visits_for_agency(s: Session, agency_id: str) -> list[VisitView]:
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
    if status not in PLACEMENT_STATUSES:
        raise ValueError(f"placement status {status!r} is not one of {', '.join(PLACEMENT_STATUSES)}")
    row = s.get(PlacementRow, placement_id, populate_existing=True)
    if row is None or row.status != "active":
        return
    row.status, row.end_reason, row.ended_at = status, reason[:200], now
    s.flush()


def active_placement(s: Session, account_id: str) -> PlacementView | None:
    row = s.scalars(
        select(PlacementRow)
        .where(PlacementRow.account_id == account_id, PlacementRow.status == "active")
        .execution_options(populate_existing=True)
    ).first()
    return _placement_view(s, row, personal=True) if row is not None else None


def placements_for_agency(s: Session, agency_id: str) -> list[PlacementView]:
    """The agency's active accounts, with the name and number it needs to work them (under contract)."""
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


def placement(s: Session, placement_id: str) -> PlacementView | None:
    row = s.get(PlacementRow, placement_id, populate_existing=True)
    return _placement_view(s, row) if row is not None else None


def visits_for_account(s: Session, account_id: str) -> list[VisitView]:
    acct = s.get(AccountRow, account_id)
    rows = s.scalars(
        select(VisitRow)
        .where(VisitRow.account_id == account_id)
        .order_by(VisitRow.created_at)
        .execution_options(populate_existing=True)
    ).all()
    return [_visit_view(row, acct) for row in rows]
