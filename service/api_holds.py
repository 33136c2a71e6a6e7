"""The API's hold routes: file a complaint or a dispute and decide it, cease contact, pause and resume.

Signals that stop (or let go on) contact with the debtor, each 202 once the workflow took it; apart
from payments because an account that cannot act on them (its run is closing or has ended) refuses
them with 409 and the reason, where a payment is always taken. A decision about a complaint or a
dispute that is not open is 409 too: the workflow would take it and do nothing.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from domain.accounts import Channel
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


class ComplaintDecisionRequest(Strict):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"examples": [{"decision": "resume", "note": "calls were within hours"}]},
    )

    decision: Literal["resume", "close"] = Field(
        description="resume: not upheld, collection goes on; close: upheld, the account closes"
    )
    note: str = Field(default="", max_length=1000)


class VerificationRequest(Strict):
    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_extra={"examples": [{"note": "statement of 2026-09 sent"}]}
    )

    note: str = Field(default="", max_length=1000, description="What was sent to the debtor")


class CeaseBody(Strict):
    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_extra={"examples": [{"channel": "voice"}]}
    )

    channel: Channel | None = Field(default=None, description="One medium (sms, voice); none: every channel")


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


DECISION_RESPONSES = {
    **SIGNAL_RESPONSES,
    409: {"description": "Closed or closing, or nothing open to decide"},
}


@router.post(
    "/accounts/{account_id}/complaints/decision",
    tags=["actions"],
    response_model=Accepted,
    status_code=202,
    responses=DECISION_RESPONSES,
    summary="Decide the open complaint: resume collection, or close the account (upheld)",
)
async def decide_complaint(
    account_id: AccountId, body: ComplaintDecisionRequest, who: Writer, client: Temporal, sessions: Sessions
) -> Accepted:
    await holds.resolve_complaint(client, account_id, body.decision, body.note, who.name, sessions=sessions)
    return Accepted(account_id=account_id, action=f"complaint_{body.decision}", by=who.name)


@router.post(
    "/accounts/{account_id}/disputes/verification",
    tags=["actions"],
    response_model=Accepted,
    status_code=202,
    responses=DECISION_RESPONSES,
    summary="The debt was verified to the debtor: the dispute hold lifts",
)
async def verify_dispute(
    account_id: AccountId, body: VerificationRequest, who: Writer, client: Temporal, sessions: Sessions
) -> Accepted:
    await holds.verify_dispute(client, account_id, body.note, who.name, sessions=sessions)
    return Accepted(account_id=account_id, action="dispute_verified", by=who.name)


@router.post(
    "/accounts/{account_id}/cease",
    tags=["actions"],
    response_model=Accepted,
    status_code=202,
    responses=SIGNAL_RESPONSES,
    summary="Stop contact for good: on one medium, or on every channel (cease-communication)",
)
async def cease(
    account_id: AccountId, body: CeaseBody, who: Writer, client: Temporal, sessions: Sessions
) -> Accepted:
    await holds.cease(client, account_id, body.channel, who.name, sessions=sessions)
    return Accepted(account_id=account_id, action="cease", by=who.name)
