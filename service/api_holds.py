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
from workflows.messages import ANSWER_REASON_MAX

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
        json_schema_extra={"examples": [{"decision": "rejected", "note": "calls were within hours"}]},
    )

    decision: Literal["upheld", "rejected", "close", "resume"] = Field(
        description="Told to the debtor with the jurisdiction's escalation route before anything else. "
        "upheld / rejected: collection resumes after that text; close: upheld, the account closes; "
        "resume: collection resumes with no verdict given"
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


class PlanAnswerRequest(Strict):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"examples": [{"decision": "declined", "reason": "we need proof of income first"}]},
    )

    decision: Literal["declined", "escalated"] = Field(
        description="declined: the pause ends and the debtor is told why; escalated: the pause lasts `days` "
        "more days and the debtor is told by when a supervisor answers"
    )
    reason: str = Field(
        default="", max_length=ANSWER_REASON_MAX, description="declined: why, quoted to the debtor"
    )
    days: int = Field(
        default=2, ge=1, le=30, description="escalated: the supervisor answers within these days"
    )


@router.post(
    "/accounts/{account_id}/plan-request/answer",
    tags=["actions"],
    response_model=Accepted,
    status_code=202,
    responses=DECISION_RESPONSES,
    summary="Answer a plan request without a plan: declined (why) or escalated (by when)",
)
async def answer_plan_request(
    account_id: AccountId, body: PlanAnswerRequest, who: Writer, client: Temporal, sessions: Sessions
) -> Accepted:
    told = await holds.answer_plan_request(
        client, account_id, body.decision, who.name, reason=body.reason, days=body.days, sessions=sessions
    )
    return Accepted(account_id=account_id, action=f"plan_request_{body.decision}", by=who.name, note=told)


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
