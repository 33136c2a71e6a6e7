"""The lender's subscriptions to account events, and what became of their deliveries.

An operator creates a subscription (an endpoint URL, the event types it wants, a Standard Webhooks
secret generated here and shown once), lists them, disables one, rotates its secret (the previous one
keeps signing beside the new one for :data:`ROTATION_OVERLAP`, so the lender can switch without
losing a delivery), looks at its deliveries (recent tries, failures, dead letters) and sends a dead
letter again. The figures for the metrics (:func:`figures`) come from the same tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from runtime.webhook_signature import new_secret
from store.models import EventAttemptRow, EventDeliveryRow, EventOutboxRow, EventSubscriptionRow

#: how long the previous secret still signs after a rotation (every delivery carries both signatures)
ROTATION_OVERLAP = timedelta(hours=24)


class SubscriptionNotFound(LookupError):
    pass


class DeliveryNotFound(LookupError):
    pass


class NotDead(ValueError):
    """Only a dead letter can be sent again by hand; the others are on their way."""


@dataclass(frozen=True)
class SubscriptionView:
    id: int
    url: str
    description: str
    event_types: list[str] | None
    status: str
    secret_hint: str
    created_at: datetime
    created_by: str
    rotated_at: datetime | None
    previous_secret_until: datetime | None
    disabled_at: datetime | None
    disabled_by: str | None
    pending: int = 0
    dead: int = 0
    failed_attempts: int = 0
    oldest_pending_at: datetime | None = None


@dataclass(frozen=True)
class AttemptView:
    attempt: int
    at: datetime
    status_code: int | None
    ok: bool
    error: str | None
    duration_ms: int


@dataclass(frozen=True)
class DeliveryView:
    id: int
    subscription_id: int
    event_id: str
    account_id: str
    seq: int
    type: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    last_attempt_at: datetime | None
    delivered_at: datetime | None
    recent: list[AttemptView] = field(default_factory=list)


def hint(secret: str) -> str:
    """Enough of a secret to tell two apart, never enough to sign: ``whsec_AbCd…``."""
    return secret[:10] + "…"


def _view(
    row: EventSubscriptionRow, counts: dict[str, object] | None = None, now: datetime | None = None
) -> SubscriptionView:
    c = counts or {}
    until = row.previous_until if row.previous_until and (now is None or row.previous_until > now) else None
    return SubscriptionView(
        id=row.id,
        url=row.url,
        description=row.description,
        event_types=list(row.event_types) if row.event_types is not None else None,
        status=row.status,
        secret_hint=hint(row.secret),
        created_at=row.created_at,
        created_by=row.created_by,
        rotated_at=row.rotated_at,
        previous_secret_until=until,
        disabled_at=row.disabled_at,
        disabled_by=row.disabled_by,
        pending=int(c.get("pending", 0)),  # type: ignore[call-overload]
        dead=int(c.get("dead", 0)),  # type: ignore[call-overload]
        failed_attempts=int(c.get("failed", 0)),  # type: ignore[call-overload]
        oldest_pending_at=c.get("oldest"),  # type: ignore[arg-type]
    )


def create_subscription(
    s: Session, *, url: str, event_types: list[str] | None, description: str, actor: str, now: datetime
) -> tuple[SubscriptionView, str]:
    """A new active subscription and its secret (the only time the secret is shown). It receives the
    events written from now on."""
    secret = new_secret()
    row = EventSubscriptionRow(
        url=url,
        description=description,
        event_types=event_types,
        secret=secret,
        status="active",
        created_at=now,
        created_by=actor,
    )
    s.add(row)
    s.flush()
    return _view(row, now=now), secret


def _row(s: Session, subscription_id: int, *, lock: bool = False) -> EventSubscriptionRow:
    row = s.get(EventSubscriptionRow, subscription_id, with_for_update=lock or None, populate_existing=True)
    if row is None:
        raise SubscriptionNotFound(f"no subscription {subscription_id}")
    return row


def disable_subscription(
    s: Session, subscription_id: int, *, actor: str, now: datetime
) -> tuple[SubscriptionView, bool]:
    """Stop sending to it (and routing new events to it); (view, whether it was active until now)."""
    row = _row(s, subscription_id, lock=True)
    if row.status == "disabled":
        return _view(row, now=now), False
    row.status, row.disabled_at, row.disabled_by = "disabled", now, actor
    s.flush()
    return _view(row, now=now), True


def rotate_secret(
    s: Session, subscription_id: int, *, actor: str, now: datetime
) -> tuple[SubscriptionView, str]:
    """A new secret (returned, shown once); the current one signs too until :data:`ROTATION_OVERLAP` ends."""
    row = _row(s, subscription_id, lock=True)
    secret = new_secret()
    row.previous_secret, row.previous_until = row.secret, now + ROTATION_OVERLAP
    row.secret, row.rotated_at, row.rotated_by = secret, now, actor
    s.flush()
    return _view(row, now=now), secret


def _counts(s: Session, now: datetime) -> dict[int, dict[str, object]]:
    out: dict[int, dict[str, object]] = {}
    for sub_id, status, n, oldest in s.execute(
        select(
            EventDeliveryRow.subscription_id,
            EventDeliveryRow.status,
            func.count(),
            func.min(EventOutboxRow.recorded_at),
        )
        .join(EventOutboxRow, EventOutboxRow.id == EventDeliveryRow.outbox_id)
        .where(EventDeliveryRow.status != "delivered")
        .group_by(EventDeliveryRow.subscription_id, EventDeliveryRow.status)
    ).all():
        entry = out.setdefault(sub_id, {})
        entry[status] = n
        if oldest is not None and (entry.get("oldest") is None or oldest < entry["oldest"]):  # type: ignore[operator]
            entry["oldest"] = oldest
    for sub_id, n in s.execute(
        select(EventAttemptRow.subscription_id, func.count())
        .where(EventAttemptRow.ok.is_(False))
        .group_by(EventAttemptRow.subscription_id)
    ).all():
        out.setdefault(sub_id, {})["failed"] = n
    return out


def list_subscriptions(s: Session, now: datetime) -> list[SubscriptionView]:
    """Every subscription, newest first, with its pending and dead deliveries and failed tries."""
    counts = _counts(s, now)
    rows = s.scalars(select(EventSubscriptionRow).order_by(EventSubscriptionRow.id.desc())).all()
    return [_view(r, counts.get(r.id), now) for r in rows]


def subscription(s: Session, subscription_id: int, now: datetime) -> SubscriptionView:
    return _view(_row(s, subscription_id), _counts(s, now).get(subscription_id), now)


def _delivery_view(row: EventDeliveryRow, event: EventOutboxRow, recent: list[AttemptView]) -> DeliveryView:
    return DeliveryView(
        id=row.id,
        subscription_id=row.subscription_id,
        event_id=event.event_id,
        account_id=row.account_id,
        seq=row.seq,
        type=event.type,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at if row.status == "pending" else None,
        last_status=row.last_status,
        last_error=row.last_error,
        last_attempt_at=row.last_attempt_at,
        delivered_at=row.delivered_at,
        recent=recent,
    )


def _attempts(s: Session, delivery_ids: list[int], per: int = 5) -> dict[int, list[AttemptView]]:
    out: dict[int, list[AttemptView]] = {}
    if not delivery_ids:
        return out
    rows = s.scalars(
        select(EventAttemptRow)
        .where(EventAttemptRow.delivery_id.in_(delivery_ids))
        .order_by(EventAttemptRow.delivery_id, EventAttemptRow.id.desc())
    ).all()
    for r in rows:
        listed = out.setdefault(r.delivery_id, [])
        if len(listed) < per:
            listed.append(
                AttemptView(
                    attempt=r.attempt,
                    at=r.at,
                    status_code=r.status_code,
                    ok=r.ok,
                    error=r.error,
                    duration_ms=r.duration_ms,
                )
            )
    return out


#: what the deliveries view can list: the dead letters, those whose last try failed, or the latest
DELIVERY_FILTERS = ("dead", "failing", "pending", "delivered", "recent")


def deliveries(s: Session, subscription_id: int, *, which: str, limit: int = 50) -> list[DeliveryView]:
    """A subscription's deliveries: ``dead`` letters, ``failing`` (pending after a failed try),
    ``pending``, ``delivered`` or the most ``recent`` of any status; each with its last tries."""
    _row(s, subscription_id)
    query = (
        select(EventDeliveryRow, EventOutboxRow)
        .join(EventOutboxRow, EventOutboxRow.id == EventDeliveryRow.outbox_id)
        .where(EventDeliveryRow.subscription_id == subscription_id)
    )
    if which == "failing":
        query = query.where(and_(EventDeliveryRow.status == "pending", EventDeliveryRow.attempts > 0))
    elif which in ("dead", "pending", "delivered"):
        query = query.where(EventDeliveryRow.status == which)
    elif which != "recent":
        raise ValueError(f"which: {which!r} is not one of {', '.join(DELIVERY_FILTERS)}")
    rows = s.execute(query.order_by(EventDeliveryRow.id.desc()).limit(limit)).all()
    recent = _attempts(s, [d.id for d, _ in rows])
    return [_delivery_view(d, e, recent.get(d.id, [])) for d, e in rows]


def retry_dead(s: Session, delivery_id: int, *, now: datetime) -> DeliveryView:
    """Send a dead letter again, from a first try: its stream goes on once it is answered 2xx."""
    row = s.get(EventDeliveryRow, delivery_id, with_for_update=True, populate_existing=True)
    if row is None:
        raise DeliveryNotFound(f"no delivery {delivery_id}")
    if row.status != "dead":
        raise NotDead(f"delivery {delivery_id} is {row.status}, not a dead letter")
    row.status, row.attempts, row.next_attempt_at = "pending", 0, now
    row.lease_owner, row.lease_until = None, None
    s.flush()
    event = s.get(EventOutboxRow, row.outbox_id)
    assert event is not None
    return _delivery_view(row, event, [])


@dataclass(frozen=True)
class Figures:
    """What the metrics show per subscription, and for the events not yet routed to any."""

    per_subscription: list[
        tuple[int, str, int, int, int, datetime | None]
    ]  # id, status, pending, dead, failed, oldest
    unrouted: int
    oldest_unrouted: datetime | None


def figures(s: Session, now: datetime) -> Figures:
    counts = _counts(s, now)
    subs = s.execute(
        select(EventSubscriptionRow.id, EventSubscriptionRow.status).order_by(EventSubscriptionRow.id)
    ).all()
    rows = []
    for sub_id, status in subs:
        c = counts.get(sub_id, {})
        rows.append(
            (
                sub_id,
                status,
                int(c.get("pending", 0)),  # type: ignore[call-overload]
                int(c.get("dead", 0)),  # type: ignore[call-overload]
                int(c.get("failed", 0)),  # type: ignore[call-overload]
                c.get("oldest"),
            )
        )
    unrouted, oldest = s.execute(
        select(func.count(), func.min(EventOutboxRow.recorded_at)).where(EventOutboxRow.routed.is_(False))
    ).one()
    return Figures(per_subscription=rows, unrouted=int(unrouted or 0), oldest_unrouted=oldest)  # type: ignore[arg-type]


__all__ = [
    "DELIVERY_FILTERS",
    "DeliveryNotFound",
    "DeliveryView",
    "Figures",
    "NotDead",
    "SubscriptionNotFound",
    "SubscriptionView",
    "create_subscription",
    "deliveries",
    "disable_subscription",
    "figures",
    "list_subscriptions",
    "retry_dead",
    "rotate_secret",
    "subscription",
]
