"""The API's routes for the events to the lender's systems: subscriptions, deliveries, an account's events.

Supervisors (the ``approve`` grant) create, disable and rotate subscriptions and send dead letters again;
every reading role lists them and looks at deliveries. A subscription's secret is in the answer to its
creation and to a rotation, and nowhere else (lists show ``secret_hint``).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from fastapi import HTTPException, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from domain.lender_events import EventType
from service import events
from service.api import (
    ACCOUNT_RESPONSES,
    AUTH_RESPONSES,
    NOT_JSON,
    AccountId,
    Approver,
    AppSettings,
    Reader,
    Sessions,
    Strict,
    api_router,
)
from store.subscriptions import DeliveryNotFound, NotDead, SubscriptionNotFound

router = api_router()
TAG = "events"
SubscriptionId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The subscription's number")]
DeliveryId = Annotated[int, Path(ge=1, le=2**62, description="The delivery's number")]
NOT_FOUND_SUB: dict[int | str, dict[str, Any]] = {
    **AUTH_RESPONSES,
    404: {"description": "No such subscription"},
}


class SubscriptionRequest(Strict):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "url": "https://lender.example.com/hooks/collections",
                    "event_types": ["line_frozen", "line_restored", "charged_off"],
                    "description": "card platform: freeze and restore lines",
                }
            ]
        },
    )

    url: str = Field(
        min_length=1, max_length=2000, description="Where the events are POSTed (https in production)"
    )
    event_types: list[EventType] | None = Field(
        default=None, min_length=1, description="The types wanted; leave it out for every type"
    )
    description: str = Field(default="", max_length=200)


class Subscription(BaseModel):
    id: int
    url: str
    description: str
    event_types: list[str] | None = Field(description="None: every type")
    status: Literal["active", "disabled"]
    secret_hint: str = Field(description="The start of the signing secret, to tell two apart")
    created_at: datetime
    created_by: str
    rotated_at: datetime | None
    previous_secret_until: datetime | None = Field(
        description="After a rotation: the old secret also signs until then"
    )
    disabled_at: datetime | None
    disabled_by: str | None
    pending: int = Field(description="Deliveries not yet answered 2xx (the backlog)")
    dead: int = Field(description="Dead letters: each stops its account's events to this subscription")
    failed_attempts: int
    oldest_pending_at: datetime | None = Field(description="When the oldest undelivered event was written")


class WithSecret(Subscription):
    secret: str = Field(
        description="whsec_…: shown this once; verify each delivery's webhook-signature with it"
    )


class Attempt(BaseModel):
    attempt: int
    at: datetime
    status_code: int | None
    ok: bool
    error: str | None
    duration_ms: int


class Delivery(BaseModel):
    id: int
    subscription_id: int
    event_id: str
    account_id: str
    seq: int
    type: str
    status: Literal["pending", "delivered", "dead"]
    attempts: int = Field(description="Failed tries since the last (re)start")
    next_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    last_attempt_at: datetime | None
    delivered_at: datetime | None
    recent: list[Attempt] = Field(description="The latest tries, newest first")


class Event(BaseModel):
    id: str = Field(description="The event's UUID: the webhook-id header, the receiver's dedupe key")
    type: str
    account_id: str
    sequence: int
    occurred_at: str
    data: dict[str, Any]


class Which(StrEnum):
    DEAD = "dead"
    FAILING = "failing"
    PENDING = "pending"
    DELIVERED = "delivered"
    RECENT = "recent"


def _sub(view: Any, secret: str | None = None) -> Subscription:
    data = dict(view.__dict__)
    return WithSecret(**data, secret=secret) if secret is not None else Subscription(**data)


def _delivery(view: Any) -> Delivery:
    data = dict(view.__dict__)
    data["recent"] = [Attempt(**a.__dict__) for a in view.recent]
    return Delivery(**data)


def _not_found(exc: LookupError) -> HTTPException:
    return HTTPException(status_code=404, detail=str(exc))


@router.get("/events/subscriptions", tags=[TAG], response_model=list[Subscription], responses=AUTH_RESPONSES,
            summary="Every subscription, with its backlog, dead letters and failed tries")  # fmt: skip
async def list_subscriptions(_who: Reader, sessions: Sessions) -> list[Subscription]:
    return [_sub(v) for v in await run_in_threadpool(events.listed, sessions)]


@router.post(
    "/events/subscriptions",
    tags=[TAG],
    response_model=WithSecret,
    status_code=201,
    responses={**AUTH_RESPONSES, **NOT_JSON, 422: {"description": "A field is wrong (named)"}},
    summary="Subscribe an endpoint of the lender to account events; the secret is shown this once",
)
async def create_subscription(
    body: SubscriptionRequest, who: Approver, sessions: Sessions, settings: AppSettings
) -> Subscription:
    view, secret = await run_in_threadpool(
        lambda: events.create(
            sessions,
            settings,
            url=body.url,
            event_types=[t.value for t in body.event_types] if body.event_types is not None else None,
            description=body.description,
            actor=who.name,
        )
    )
    return _sub(view, secret)


@router.get("/events/subscriptions/{subscription_id}", tags=[TAG], response_model=Subscription,
            responses=NOT_FOUND_SUB, summary="One subscription")  # fmt: skip
async def get_subscription(subscription_id: SubscriptionId, _who: Reader, sessions: Sessions) -> Subscription:
    try:
        return _sub(await run_in_threadpool(events.one, sessions, subscription_id))
    except SubscriptionNotFound as exc:
        raise _not_found(exc) from None


@router.post("/events/subscriptions/{subscription_id}/disable", tags=[TAG], response_model=Subscription,
             responses=NOT_FOUND_SUB, summary="Stop sending to it (again: changes nothing)")  # fmt: skip
async def disable_subscription(
    subscription_id: SubscriptionId, who: Approver, sessions: Sessions
) -> Subscription:
    try:
        return _sub(await run_in_threadpool(events.disable, sessions, subscription_id, who.name))
    except SubscriptionNotFound as exc:
        raise _not_found(exc) from None


@router.post(
    "/events/subscriptions/{subscription_id}/rotate",
    tags=[TAG],
    response_model=WithSecret,
    responses=NOT_FOUND_SUB,
    summary="A new secret, shown this once; the old one also signs for 24 hours",
)
async def rotate_secret(subscription_id: SubscriptionId, who: Approver, sessions: Sessions) -> Subscription:
    try:
        view, secret = await run_in_threadpool(events.rotate, sessions, subscription_id, who.name)
    except SubscriptionNotFound as exc:
        raise _not_found(exc) from None
    return _sub(view, secret)


@router.get(
    "/events/subscriptions/{subscription_id}/deliveries",
    tags=[TAG],
    response_model=list[Delivery],
    responses=NOT_FOUND_SUB,
    summary="Dead letters, failing, pending, delivered or the most recent deliveries, with their last tries",
)
async def list_deliveries(
    subscription_id: SubscriptionId,
    _who: Reader,
    sessions: Sessions,
    which: Which = Which.RECENT,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[Delivery]:
    try:
        found = await run_in_threadpool(events.deliveries, sessions, subscription_id, which.value, limit)
    except SubscriptionNotFound as exc:
        raise _not_found(exc) from None
    return [_delivery(d) for d in found]


@router.post(
    "/events/deliveries/{delivery_id}/retry",
    tags=[TAG],
    response_model=Delivery,
    responses={
        **AUTH_RESPONSES,
        404: {"description": "No such delivery"},
        409: {"description": "Not a dead letter"},
    },
    summary="Send a dead letter again; its account's later events follow once it is answered 2xx",
)
async def retry_delivery(delivery_id: DeliveryId, who: Approver, sessions: Sessions) -> Delivery:
    try:
        return _delivery(await run_in_threadpool(events.retry, sessions, delivery_id, who.name))
    except DeliveryNotFound as exc:
        raise _not_found(exc) from None
    except NotDead as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None


@router.get(
    "/accounts/{account_id}/events",
    tags=[TAG],
    response_model=list[Event],
    responses=ACCOUNT_RESPONSES,
    summary="The account's events for the lender, in order (as delivered)",
)
async def account_events(
    account_id: AccountId,
    _who: Reader,
    sessions: Sessions,
    after: Annotated[
        int, Query(ge=0, le=2**31 - 1, description="Only events after this sequence number")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[Event]:
    found = await run_in_threadpool(events.of_account, sessions, account_id, after, limit)
    if found is None:
        raise HTTPException(status_code=404, detail=f"no account {account_id}")
    return [Event(**e.body()) for e in found]
