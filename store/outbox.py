"""The transactional outbox: the lender's events, written in the transaction of the state change.

The ``record`` activity (and a send's reservation, which writes what rode on it) applies a
:class:`~domain.effects.Change` through :func:`activities.records.apply_change`; that function asks
:func:`prepare` first (what the account looked like before) and :func:`publish` last (the events the
change means, :func:`domain.lender_events.draft_events`), all in one transaction. So an event exists
exactly when its state change was committed: a write that fails leaves neither, and a change retried
after its commit finds its ``change_key`` and writes nothing again.

Each account's events are numbered 1, 2, 3 … (``event_streams.last_seq``), under the account row's
lock: two writes for one account at once (a signal handler's and the main loop's) queue on it, so the
numbers have no gaps and no duplicates, and the event numbered n+1 is committed after n.

:func:`route` hands new events to the subscriptions (one ``event_deliveries`` row per subscription that
wants the type); the deliverer (``workers/events.py``) calls it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from domain.effects import Change
from domain.lender_events import Before, Draft, change_key, draft_events, line_after, may_publish
from store.models import (
    AccountRow,
    ContactPoint,
    EventDeliveryRow,
    EventOutboxRow,
    EventStreamRow,
    EventSubscriptionRow,
    HoldRow,
    PaymentRow,
    PlacementRow,
    PlanRow,
)

#: the namespace of our event IDs: uuid5 of the change's key and the event's place in it, so a change
#: drafted again (never written twice, see ``change_key``) would get the very same IDs
EVENT_NAMESPACE = uuid.UUID("6f3e0d52-3c1b-4f0e-9a51-9c4a8a1e2b7d")


@dataclass(frozen=True)
class Prepared:
    """A change about to be applied, the account as it was, and the change's key."""

    change: Change
    key: str
    before: Before


def prepare(s: Session, change: Change) -> Prepared | None:
    """Read what the events depend on before the change is applied; None when it cannot mean an event
    (most writes: a balance, a contact outcome), or when its events were written by an earlier try.

    Locks the account row first (PostgreSQL; SQLite transactions are serial anyway): the account's
    next sequence number is taken under that lock in :func:`publish`."""
    if not may_publish(change):
        return None
    acct = change.account_id
    row = s.execute(
        select(AccountRow.currency, AccountRow.mode, AccountRow.close_reason, AccountRow.debtor_id)
        .where(AccountRow.account_id == acct)
        .with_for_update()
    ).one_or_none()
    if row is None:
        return None  # the store refuses the change itself, naming the account
    key = change_key(change)
    if s.scalar(select(exists().where(EventOutboxRow.account_id == acct, EventOutboxRow.change_key == key))):
        return None
    stream = s.get(EventStreamRow, acct)
    return Prepared(change=change, key=key, before=_before(s, change, row, stream))


def _before(s: Session, change: Change, row: Any, stream: EventStreamRow | None) -> Before:
    acct = change.account_id
    facts: dict[str, Any] = {
        "currency": row.currency,
        "mode": row.mode,
        "close_reason": row.close_reason,
        "line_frozen": bool(stream.line_frozen) if stream is not None else False,
    }
    if change.plan is not None or change.plan_status is not None:
        plan = (
            s.get(PlanRow, change.plan.plan_id)
            if change.plan is not None
            else s.scalars(
                select(PlanRow)
                .where(PlanRow.account_id == acct, PlanRow.status == "active")
                .order_by(PlanRow.agreed_at.desc(), PlanRow.plan_id.desc())
                .limit(1)
            ).first()
        )
        if plan is not None:
            facts["plan_id"], facts["plan_status"] = plan.plan_id, plan.status
    if change.payment is not None:
        facts["payment_known"] = bool(
            s.scalar(
                select(
                    exists().where(
                        PaymentRow.account_id == acct, PaymentRow.reference == change.payment.reference
                    )
                )
            )
        )
    if change.hold_added is not None or change.hold_lifted is not None or change.holds_lifted:
        held = s.execute(
            select(HoldRow.kind, HoldRow.channel).where(
                HoldRow.account_id == acct, HoldRow.lifted_at.is_(None)
            )
        ).all()
        facts["active_holds"] = frozenset((kind, channel) for kind, channel in held)
    if change.channel_status is not None:
        points = s.execute(
            select(ContactPoint.channel, ContactPoint.status).where(ContactPoint.debtor_id == row.debtor_id)
        ).all()
        facts["channel_statuses"] = {channel: status for channel, status in points}
    if change.decision == "placed" or change.close_reason == "placed":
        placed = s.execute(
            select(PlacementRow.agency_id, PlacementRow.placement_id)
            .where(PlacementRow.account_id == acct, PlacementRow.status == "active")
            .order_by(PlacementRow.placed_at.desc())
            .limit(1)
        ).first()
        if placed is not None:
            facts["agency_id"], facts["placement_id"] = placed.agency_id, placed.placement_id
    return Before(**facts)


def publish(s: Session, prepared: Prepared | None, *, now: datetime | None = None) -> list[str]:
    """Write the change's events after it was applied, numbered after the account's last; their IDs."""
    if prepared is None:
        return []
    drafts = draft_events(prepared.change, prepared.before)
    if not drafts:
        return []
    acct = prepared.change.account_id
    wall = now or datetime.now(UTC)
    stream = s.get(EventStreamRow, acct)
    if stream is None:
        stream = EventStreamRow(account_id=acct, last_seq=0, line_frozen=False, updated_at=wall)
        s.add(stream)
    ids = []
    for i, draft in enumerate(drafts):
        event_id = str(uuid.uuid5(EVENT_NAMESPACE, f"{prepared.key}/{i}"))
        stream.last_seq += 1
        s.add(_row(event_id, acct, stream.last_seq, draft, prepared, wall))
        ids.append(event_id)
    stream.line_frozen = line_after(drafts, prepared.before)
    stream.updated_at = wall
    s.flush()
    return ids


def _row(
    event_id: str, acct: str, seq: int, draft: Draft, prepared: Prepared, wall: datetime
) -> EventOutboxRow:
    return EventOutboxRow(
        event_id=event_id,
        account_id=acct,
        seq=seq,
        type=draft.type.value,
        occurred_at=prepared.change.at,
        recorded_at=wall,
        data=draft.data,
        change_key=prepared.key,
        routed=False,
    )


# ---- routing: the outbox to each subscription ----------------------------------------------------------
def route(s: Session, now: datetime, *, limit: int = 500) -> int:
    """Give each event not routed yet a delivery row per active subscription that wants its type, in
    outbox order; the number of events routed. Rows another deliverer is routing are skipped
    (PostgreSQL ``SKIP LOCKED``); a subscription created later gets the events written after it."""
    rows = s.scalars(
        select(EventOutboxRow)
        .where(EventOutboxRow.routed.is_(False))
        .order_by(EventOutboxRow.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if not rows:
        return 0
    subscriptions = s.execute(
        select(EventSubscriptionRow.id, EventSubscriptionRow.event_types).where(
            EventSubscriptionRow.status == "active"
        )
    ).all()
    for event in rows:
        for sub_id, types in subscriptions:
            if types is None or event.type in types:
                s.add(
                    EventDeliveryRow(
                        subscription_id=sub_id,
                        outbox_id=event.id,
                        account_id=event.account_id,
                        seq=event.seq,
                        status="pending",
                        attempts=0,
                        next_attempt_at=now,
                        created_at=now,
                    )
                )
        event.routed = True
    s.flush()
    return len(rows)


@dataclass(frozen=True)
class EventView:
    """An event as the API and the deliverer see it (the body sent is built from this)."""

    event_id: str
    account_id: str
    seq: int
    type: str
    occurred_at: datetime
    recorded_at: datetime
    data: dict[str, Any]

    def body(self) -> dict[str, Any]:
        """The JSON the lender receives: the event's ID, type, account, sequence, time and data."""
        return {
            "id": self.event_id,
            "type": self.type,
            "account_id": self.account_id,
            "sequence": self.seq,
            "occurred_at": self.occurred_at.isoformat().replace("+00:00", "Z"),
            "data": self.data,
        }


def view(row: EventOutboxRow) -> EventView:
    return EventView(
        event_id=row.event_id,
        account_id=row.account_id,
        seq=row.seq,
        type=row.type,
        occurred_at=row.occurred_at,
        recorded_at=row.recorded_at,
        data=dict(row.data),
    )


def account_events(s: Session, account_id: str, *, after_seq: int = 0, limit: int = 500) -> list[EventView]:
    """An account's events in order (``after_seq``: only the later ones)."""
    rows = s.scalars(
        select(EventOutboxRow)
        .where(EventOutboxRow.account_id == account_id, EventOutboxRow.seq > after_seq)
        .order_by(EventOutboxRow.seq)
        .limit(limit)
    ).all()
    return [view(r) for r in rows]


__all__ = ["EventView", "Prepared", "account_events", "prepare", "publish", "route", "view"]
