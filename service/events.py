"""The operators' side of the events to the lender: subscriptions and their deliveries, audited.

The API (``service/api_events.py``) and the console's page (``service/console_events.py``) call these,
so a subscription created, disabled or rotated, or a dead letter sent again, means the same on both and
leaves one audit line naming the person (the URL's host only: a receiver's URL may carry a token).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import urlsplit

from sqlalchemy.orm import Session, sessionmaker

from domain.lender_events import EventType
from runtime.settings import Settings
from service.operations import InvalidRequest
from store import subscriptions as store
from store.accounts import account_snapshot
from store.audit import audit
from store.outbox import EventView, account_events
from store.subscriptions import DeliveryView, SubscriptionView

MAX_URL = 2000
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_url(url: str, settings: Settings) -> str:
    """An absolute http(s) URL with a host; https only in production (the payloads carry balances)."""
    text = url.strip()
    if CONTROL.search(text) or any(c.isspace() for c in text):
        raise InvalidRequest("url", "must not contain spaces or control characters")
    try:
        parts = urlsplit(text)
        host, _port = parts.hostname, parts.port  # a malformed port or IPv6 address raises here
    except ValueError as exc:
        raise InvalidRequest("url", f"is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidRequest("url", "must be an absolute http:// or https:// URL with a host")
    if len(text) > MAX_URL:
        raise InvalidRequest("url", f"must be at most {MAX_URL} characters")
    if parts.scheme != "https" and settings.env == "production":
        raise InvalidRequest("url", "must be https:// in production")
    if parts.fragment:
        raise InvalidRequest("url", "must not have a #fragment")
    return text


def check_types(types: Sequence[str] | None) -> list[str] | None:
    """The event types a subscription wants (None: all), each one we publish, once each."""
    if types is None:
        return None
    known = {t.value for t in EventType}
    wanted = [str(getattr(t, "value", t)) for t in types]
    if not wanted:
        raise InvalidRequest("event_types", "name at least one type, or leave it out for every type")
    unknown = [t for t in wanted if t not in known]
    if unknown:
        raise InvalidRequest(
            "event_types", f"{', '.join(unknown)}: not an event type ({', '.join(sorted(known))})"
        )
    return sorted(set(wanted), key=wanted.index)


def _audit(
    s: Session, actor: str, action: str, decision: str, account_id: str | None = None, **details: object
) -> None:
    audit(
        s,
        at=datetime.now(UTC),
        clock="wall",
        account_id=account_id,
        actor=actor,
        action=action,
        decision=decision,
        details=details,
    )


def create(
    sessions: sessionmaker[Session],
    settings: Settings,
    *,
    url: str,
    event_types: Sequence[str] | None,
    description: str,
    actor: str,
) -> tuple[SubscriptionView, str]:
    """A new subscription and its secret, shown this once."""
    checked, types = check_url(url, settings), check_types(event_types)
    if CONTROL.search(description):
        raise InvalidRequest("description", "must not contain control characters")
    with sessions.begin() as s:
        view, secret = store.create_subscription(
            s,
            url=checked,
            event_types=types,
            description=description.strip(),
            actor=actor,
            now=datetime.now(UTC),
        )
        _audit(
            s, actor, "event_subscription", "created", subscription=view.id, host=urlsplit(checked).hostname
        )
    return view, secret


def disable(sessions: sessionmaker[Session], subscription_id: int, actor: str) -> SubscriptionView:
    with sessions.begin() as s:
        view, changed = store.disable_subscription(s, subscription_id, actor=actor, now=datetime.now(UTC))
        if changed:
            _audit(s, actor, "event_subscription", "disabled", subscription=subscription_id)
    return view


def rotate(sessions: sessionmaker[Session], subscription_id: int, actor: str) -> tuple[SubscriptionView, str]:
    with sessions.begin() as s:
        view, secret = store.rotate_secret(s, subscription_id, actor=actor, now=datetime.now(UTC))
        _audit(s, actor, "event_subscription", "secret_rotated", subscription=subscription_id)
    return view, secret


def retry(sessions: sessionmaker[Session], delivery_id: int, actor: str) -> DeliveryView:
    """A dead letter sent again (its stream goes on once it is answered 2xx)."""
    with sessions.begin() as s:
        view = store.retry_dead(s, delivery_id, now=datetime.now(UTC))
        _audit(
            s,
            actor,
            "event_delivery",
            "retried",
            account_id=view.account_id,
            subscription=view.subscription_id,
            delivery=delivery_id,
            event=view.event_id,
        )
    return view


def listed(sessions: sessionmaker[Session]) -> list[SubscriptionView]:
    with sessions.begin() as s:
        return store.list_subscriptions(s, datetime.now(UTC))


def one(sessions: sessionmaker[Session], subscription_id: int) -> SubscriptionView:
    with sessions.begin() as s:
        return store.subscription(s, subscription_id, datetime.now(UTC))


def deliveries(
    sessions: sessionmaker[Session], subscription_id: int, which: str, limit: int
) -> list[DeliveryView]:
    with sessions.begin() as s:
        return store.deliveries(s, subscription_id, which=which, limit=limit)


def of_account(
    sessions: sessionmaker[Session], account_id: str, after: int, limit: int
) -> list[EventView] | None:
    """The account's events in order; None when there is no such account."""
    with sessions.begin() as s:
        if account_snapshot(s, account_id) is None:
            return None
        return account_events(s, account_id, after_seq=after, limit=limit)


__all__ = [
    "check_types",
    "check_url",
    "create",
    "deliveries",
    "disable",
    "listed",
    "of_account",
    "one",
    "retry",
    "rotate",
]
