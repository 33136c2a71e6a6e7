"""What the deliverer asks of the database: which deliveries may go now, who is sending them, and how
each try ended. Shared by any number of deliverers: every claim is a compare-and-set on a lease.

**Order per account and subscription.** A delivery may go only when it is the *head* of its stream: no
earlier event of the account is still undelivered for that subscription (pending, waiting for its next
try, leased to someone, or dead), and no earlier event of the account is still waiting to be routed.
So event n+1 never leaves before event n was answered 2xx; a dead delivery stops its stream until an
operator retries it.

**Leases, not locks held across a request.** A deliverer takes a delivery by setting ``lease_owner``
and ``lease_until`` where the lease is free (an ``UPDATE … WHERE``, one winner); it keeps it while it
sends (the HTTP timeout is shorter than the lease) and gives it back with the outcome. A deliverer
killed mid-request leaves a lease that runs out, and the next one sends that event again: at least
once, in order, the receiver de-duplicating by the event ID.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, or_, select, update
from sqlalchemy.orm import Session, aliased

from store.models import (
    EventAttemptRow,
    EventDeliveryRow,
    EventOutboxRow,
    EventSubscriptionRow,
)
from store.outbox import EventView, view

D = EventDeliveryRow


@dataclass(frozen=True)
class Claimed:
    """A delivery this deliverer holds: where it goes, signed with which secrets, and the event."""

    delivery_id: int
    subscription_id: int
    url: str
    secrets: list[str]
    failures: int
    event: EventView


def _free(now: datetime):  # type: ignore[no-untyped-def]
    return or_(D.lease_until.is_(None), D.lease_until < now)


def _heads(now: datetime):  # type: ignore[no-untyped-def]
    """Deliveries that may go now: pending, due, not leased, of an active subscription, and the head of
    their stream (see the module's docstring)."""
    earlier = aliased(EventDeliveryRow)
    blocked = exists().where(
        earlier.subscription_id == D.subscription_id,
        earlier.account_id == D.account_id,
        earlier.seq < D.seq,
        earlier.status != "delivered",
    )
    unrouted = exists().where(
        EventOutboxRow.account_id == D.account_id,
        EventOutboxRow.seq < D.seq,
        EventOutboxRow.routed.is_(False),
    )
    return (
        select(D.id, D.subscription_id, D.account_id)
        .join(EventSubscriptionRow, EventSubscriptionRow.id == D.subscription_id)
        .where(
            D.status == "pending",
            D.next_attempt_at <= now,
            _free(now),
            EventSubscriptionRow.status == "active",
            ~blocked,
            ~unrouted,
        )
    )


def _take(s: Session, delivery_id: int, owner: str, now: datetime, until: datetime) -> bool:
    done = s.execute(
        update(D)
        .where(D.id == delivery_id, D.status == "pending", _free(now))
        .values(lease_owner=owner, lease_until=until)
        .execution_options(synchronize_session=False)
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]


def claim_heads(
    s: Session,
    *,
    owner: str,
    now: datetime,
    until: datetime,
    limit: int,
    busy: set[tuple[int, str]] = frozenset(),  # type: ignore[assignment]
) -> list[tuple[int, int, str]]:
    """Take up to ``limit`` deliveries that may go now, at most one per stream, none of the streams this
    deliverer is already working on (``busy``); each as (delivery, subscription, account)."""
    rows = s.execute(_heads(now).order_by(D.next_attempt_at, D.id).limit(limit + len(busy))).all()
    taken: list[tuple[int, int, str]] = []
    streams = set(busy)
    for delivery_id, sub_id, account_id in rows:
        if len(taken) >= limit or (sub_id, account_id) in streams:
            continue
        if _take(s, delivery_id, owner, now, until):
            taken.append((int(delivery_id), int(sub_id), str(account_id)))
            streams.add((sub_id, account_id))
    return taken


def claim_next(
    s: Session, subscription_id: int, account_id: str, *, owner: str, now: datetime, until: datetime
) -> int | None:
    """The stream's next delivery, if it may go now and nobody else took it."""
    found = s.scalar(
        _heads(now)
        .where(D.subscription_id == subscription_id, D.account_id == account_id)
        .order_by(D.seq)
        .limit(1)
        .with_only_columns(D.id)
    )
    if found is not None and _take(s, found, owner, now, until):
        return int(found)
    return None


def load(s: Session, delivery_id: int, owner: str, now: datetime) -> Claimed | None:
    """The delivery this deliverer holds, ready to send; None when it lost the lease or the subscription
    was disabled meanwhile (the lease is then given back)."""
    row = s.get(D, delivery_id, populate_existing=True)
    if row is None or row.lease_owner != owner or row.status != "pending":
        return None
    sub = s.get(EventSubscriptionRow, row.subscription_id, populate_existing=True)
    if sub is None or sub.status != "active":
        row.lease_owner, row.lease_until = None, None
        return None
    secrets = [sub.secret]
    if sub.previous_secret and sub.previous_until is not None and sub.previous_until > now:
        secrets.append(sub.previous_secret)
    event = s.get(EventOutboxRow, row.outbox_id)
    assert event is not None  # a foreign key
    return Claimed(
        delivery_id=row.id,
        subscription_id=sub.id,
        url=sub.url,
        secrets=secrets,
        failures=row.attempts,
        event=view(event),
    )


def _attempt(
    s: Session,
    row: EventDeliveryRow,
    *,
    now: datetime,
    status: int | None,
    ok: bool,
    error: str | None,
    ms: int,
) -> None:
    s.add(
        EventAttemptRow(
            delivery_id=row.id,
            subscription_id=row.subscription_id,
            attempt=row.attempts + 1,
            at=now,
            status_code=status,
            ok=ok,
            error=(error or None) and error[:500],
            duration_ms=ms,
        )
    )


def delivered(s: Session, delivery_id: int, *, owner: str, now: datetime, status: int, ms: int) -> bool:
    """The endpoint answered 2xx: the delivery is done. False when this deliverer had lost the lease
    (another one took the delivery over and answers for it)."""
    row = s.get(D, delivery_id, populate_existing=True)
    if row is None:
        return False
    _attempt(s, row, now=now, status=status, ok=True, error=None, ms=ms)
    if row.lease_owner != owner or row.status != "pending":
        return False
    row.status, row.delivered_at, row.last_status, row.last_error = "delivered", now, status, None
    row.last_attempt_at, row.lease_owner, row.lease_until = now, None, None
    return True


def failed(
    s: Session,
    delivery_id: int,
    *,
    owner: str,
    now: datetime,
    status: int | None,
    error: str,
    ms: int,
    retry_at: datetime | None,
    disable: str | None = None,
) -> str:
    """A try that did not get a 2xx: ``retry_at`` the next try, None for the last one (dead letter).
    ``disable``: the endpoint asked to be left alone (410 Gone): its subscription is disabled, and the
    delivery waits as it is. Returns the delivery's status afterwards ("lost": the lease was gone)."""
    row = s.get(D, delivery_id, populate_existing=True)
    if row is None:
        return "lost"
    _attempt(s, row, now=now, status=status, ok=False, error=error, ms=ms)
    if row.lease_owner != owner or row.status != "pending":
        return "lost"
    row.attempts += 1
    row.last_status, row.last_error, row.last_attempt_at = status, error[:500], now
    row.lease_owner, row.lease_until = None, None
    if disable is not None:
        sub = s.get(EventSubscriptionRow, row.subscription_id)
        if sub is not None and sub.status == "active":
            sub.status, sub.disabled_at, sub.disabled_by = "disabled", now, disable[:200]
        row.next_attempt_at = now
        return "disabled"
    if retry_at is None:
        row.status = "dead"
        return "dead"
    row.next_attempt_at = retry_at
    return "pending"


def release(s: Session, delivery_id: int, *, owner: str) -> None:
    """Give a lease back unused (the deliverer is stopping)."""
    s.execute(
        update(D)
        .where(D.id == delivery_id, D.lease_owner == owner)
        .values(lease_owner=None, lease_until=None)
        .execution_options(synchronize_session=False)
    )


__all__ = ["Claimed", "claim_heads", "claim_next", "delivered", "failed", "load", "release"]
