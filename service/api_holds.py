"""The API's hold routes: file a complaint or a dispute, pause and resume collection.

Signals that stop (or let go on) contact with the debtor, each 202 once the workflow took it; apart
from payments because an account that cannot act on them (its run is closing or has ended) refuses
them with 409 and the reason, where a payment is always taken.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from service import holds
from service.api import (
    SIGNAL_RESPONSES,
    Accepted,
    AccountId,
    AppSettings,
    Sessions,
    Strict,
    Temporal,
    Writer,
    api_router,
)

router = api_router()


class ReasonRequest(Strict):
    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_extra={"examples": [{"reason": "debtor in hospital"}]}
    )

    reason: str = Field(min_length=1, max_length=500)


class ComplaintRequest(Strict):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"examples": [{"reason": "called at work", "source": "debtor"}]},
    )

    reason: str = Field(min_length=1, max_length=1000)
    source: Literal["debtor", "agent", "regulator", "agency"] = "debtor"


class DisputeRequest(Strict):
    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_extra={"examples": [{"reason": "not my loan"}]}
    )

    reason: str = Field(min_length=1, max_length=1000)


# ---- signals ---------------------------------------------------------------------------------------
@router.post(
    "/accounts/{account_id}/complaints",
    tags=["actions"],
    response_model=Accepted,
    status_code=202,
    responses=SIGNAL_RESPONSES,
    summary="File a complaint: contact stops at once until an investigator decides",
)
async def file_complaint(
    account_id: AccountId,
    body: ComplaintRequest,
    who: Writer,
    client: Temporal,
    sessions: Sessions,
    settings: AppSettings,
) -> Accepted:
    case = await holds.file_complaint(
        client, account_id, body.reason, who.name, source=body.source, sessions=sessions, settings=settings
    )
    return Accepted(
        account_id=account_id, action="complaint", by=who.name, case=case.number if case else None
    )


@router.post(
    "/accounts/{account_id}/disputes",
    tags=["actions"],
    response_model=Accepted,
    status_code=202,
    responses=SIGNAL_RESPONSES,
    summary="File a dispute: no collection until the debt is verified",
)
async def file_dispute(
    account_id: AccountId,
    body: DisputeRequest,
    who: Writer,
    client: Temporal,
    sessions: Sessions,
    settings: AppSettings,
) -> Accepted:
    case = await holds.file_dispute(
        client, account_id, body.reason, who.name, sessions=sessions, settings=settings
    )
    return Accepted(account_id=account_id, action="dispute", by=who.name, case=case.number if case else None)


@router.post(
    "/accounts/{account_id}/pause",
    tags=["actions"],
    response_model=Accepted,
    status_code=202,
    responses=SIGNAL_RESPONSES,
    summary="Pause collection (an operator hold)",
)
async def pause(
    account_id: AccountId, body: ReasonRequest, who: Writer, client: Temporal, sessions: Sessions
) -> Accepted:
    await holds.pause(client, account_id, body.reason, who.name, sessions=sessions)
    return Accepted(account_id=account_id, action="pause", by=who.name)


@router.post(
    "/accounts/{account_id}/resume",
    tags=["actions"],
    response_model=Accepted,
    status_code=202,
    responses=SIGNAL_RESPONSES,
    summary="Lift an operator pause (or a negotiation wait)",
)
async def resume(
    account_id: AccountId, body: ReasonRequest, who: Writer, client: Temporal, sessions: Sessions
) -> Accepted:
    await holds.resume(client, account_id, body.reason, who.name, sessions=sessions)
    return Accepted(account_id=account_id, action="resume", by=who.name)
