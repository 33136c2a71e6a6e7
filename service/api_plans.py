"""The API's plan routes: preview and propose a plan, record a promise, and the fee-waiver queue.

Apart from the other writes because a plan is a workflow update the workflow's validator judges (200
only once dunning has stopped, 422 with every broken rule, 409 when one is already agreed), and a fee
waiver waits in a queue for a supervisor (``/api/waivers``), who approves or rejects it once.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Query
from pydantic import ConfigDict, Field, model_validator
from starlette.concurrency import run_in_threadpool

from domain.plans import AgreedPlan, Instalment, PlanKind, PlanProposal
from service import accounts, plans
from service.api import (
    ACCOUNT_PATTERN,
    ACCOUNT_RESPONSES,
    AUTH_RESPONSES,
    EARLIEST,
    LATEST,
    MAX_MINOR,
    NOT_JSON,
    AccountId,
    Approver,
    Conflict,
    QueueItemId,
    Reader,
    Sessions,
    Strict,
    Temporal,
    Writer,
    api_router,
    decision_responses,
)
from store.ledger import WaiverRequestView

router = api_router()


class PlanRequest(Strict):
    """A plan as an agent proposes it; who proposes (and who approves) comes from the token."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [
                {"kind": "reinstalment", "first_due": "2026-12-15", "periods": 3, "period_days": 30},
                {"kind": "deferral", "first_due": "2027-01-15"},
            ]
        },
    )

    kind: PlanKind
    first_due: date = Field(ge=EARLIEST, le=LATEST, description="First (or only) due date")
    periods: int = Field(default=1, ge=1, le=120)
    period_days: int = Field(default=30, ge=1, le=366)
    amount: int | None = Field(
        default=None, gt=0, le=MAX_MINOR, description="Total in minor units; default the balance less waiver"
    )
    waiver: int = Field(default=0, ge=0, le=MAX_MINOR, description="Penalty fees waived (minor units)")
    hardship_evidence: str | None = Field(default=None, max_length=1000)
    instalments: list[Instalment] | None = Field(default=None, max_length=120)

    @model_validator(mode="after")
    def _bounded_schedule(self) -> PlanRequest:
        for item in self.instalments or []:
            if not (EARLIEST <= item.due_date <= LATEST) or abs(item.amount) > MAX_MINOR:
                raise ValueError("instalments: due dates must lie in 2000-2999 and amounts within 10^12")
        return self

    def proposal(self, actor: str) -> PlanProposal:
        return PlanProposal(**self.model_dump(), proposed_by=actor)


class PromiseRequest(Strict):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"examples": [{"amount": 5000, "due_date": "2026-12-10"}]},
    )

    amount: int = Field(gt=0, le=MAX_MINOR, description="Promised amount in minor units")
    due_date: date = Field(ge=EARLIEST, le=LATEST, description="The day the debtor promises to pay")


class RejectRequest(Strict):
    note: str = Field(default="", max_length=1000)


class WaiverStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


# ---- plans -----------------------------------------------------------------------------------------
PLAN_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ACCOUNT_RESPONSES,
    **NOT_JSON,
    409: {
        "model": Conflict,
        "description": "A plan is already agreed; or the account's run has ended, is closing, or an "
        "agency holds it (a plan is agreed through the agency): the state and the reason",
    },
    422: {"description": "Malformed body, or the plan breaks policy: one entry per broken rule"},
}


@router.post(
    "/accounts/{account_id}/plans/preview",
    tags=["plans"],
    response_model=plans.PlanPreview,
    responses={**ACCOUNT_RESPONSES, **NOT_JSON},
    summary="The schedule a plan would have and every rule it breaks; changes nothing",
)
async def preview_plan(
    account_id: AccountId, body: PlanRequest, who: Reader, client: Temporal, sessions: Sessions
) -> plans.PlanPreview:
    status = await accounts.account_status(client, account_id, sessions=sessions)
    terms = await run_in_threadpool(plans.plan_terms, sessions, account_id)
    return plans.preview_plan(status, terms, body.proposal(who.name))


@router.post(
    "/accounts/{account_id}/plans",
    tags=["plans"],
    response_model=AgreedPlan,
    responses=PLAN_RESPONSES,
    summary="Propose a settlement; 200 only once dunning has stopped",
)
async def propose_plan(
    account_id: AccountId, body: PlanRequest, who: Writer, client: Temporal, sessions: Sessions
) -> AgreedPlan:
    """A fee waiver needs a supervisor: send it to ``/waivers`` (here it fails ``waiver.requires_approver``)."""
    return await plans.propose_settlement(
        client, account_id, body.proposal(who.name), who.name, sessions=sessions
    )


@router.post(
    "/accounts/{account_id}/promises",
    tags=["plans"],
    response_model=AgreedPlan,
    responses=PLAN_RESPONSES,
    summary="Record a promise to pay (a plan of kind promise_to_pay: one amount on one date)",
)
async def promise_to_pay(
    account_id: AccountId, body: PromiseRequest, who: Writer, client: Temporal, sessions: Sessions
) -> AgreedPlan:
    proposal = PlanProposal(
        kind=PlanKind.PROMISE_TO_PAY, first_due=body.due_date, amount=body.amount, proposed_by=who.name
    )
    return await plans.propose_settlement(client, account_id, proposal, who.name, sessions=sessions)


# ---- fee waivers -----------------------------------------------------------------------------------
@router.post(
    "/accounts/{account_id}/waivers",
    tags=["waivers"],
    response_model=WaiverRequestView,
    status_code=202,
    responses=PLAN_RESPONSES,
    summary="Propose a fee-waiver plan: it waits for a supervisor's approval",
)
async def request_waiver(
    account_id: AccountId, body: PlanRequest, who: Writer, client: Temporal, sessions: Sessions
) -> WaiverRequestView:
    return await plans.request_waiver(client, sessions, account_id, body.proposal(who.name), who.name)


@router.get(
    "/waivers",
    tags=["waivers"],
    response_model=list[WaiverRequestView],
    responses=AUTH_RESPONSES,
    summary="The approval queue (pending by default)",
)
async def waiver_queue(
    _who: Reader,
    sessions: Sessions,
    status: WaiverStatus | None = WaiverStatus.PENDING,
    account_id: Annotated[str | None, Query(pattern=ACCOUNT_PATTERN)] = None,
) -> list[WaiverRequestView]:
    return await run_in_threadpool(
        lambda: plans.waiver_queue(sessions, status=status.value if status else None, account_id=account_id)
    )


@router.post(
    "/waivers/{request_id}/approve",
    tags=["waivers"],
    response_model=AgreedPlan,
    responses={**PLAN_RESPONSES, 404: {"description": "No such waiver request (or account)"}},
    summary="A supervisor approves: the plan is proposed with the supervisor as approver",
)
async def approve_waiver(
    request_id: QueueItemId, who: Approver, client: Temporal, sessions: Sessions
) -> AgreedPlan:
    return await plans.approve_waiver(client, sessions, request_id, who.name)


@router.post(
    "/waivers/{request_id}/reject",
    tags=["waivers"],
    response_model=WaiverRequestView,
    responses=decision_responses("waiver request"),
    summary="A supervisor turns the waiver down",
)
async def reject_waiver(
    request_id: QueueItemId, who: Approver, sessions: Sessions, body: RejectRequest | None = None
) -> WaiverRequestView:
    return await plans.reject_waiver(sessions, request_id, who.name, body.note if body else "")
