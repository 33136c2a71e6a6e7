"""The negotiation REST API (``/api``): find accounts, look at one, agree plans, record what happened.

Why it is built this way:

* **A thin shell over** :mod:`service.operations`: the agent console calls the same functions, so the
  API and the console cannot drift apart. This module only does HTTP: auth, bodies, statuses.
* **Roles** (:mod:`service.auth`): an auditor reads, an agent writes, a supervisor approves fee
  waivers. No token is 401, a role that may not is 403, before any body is looked at.
* **Who did it** comes from the token, never from the body: a request body cannot name an approver
  or a proposer, so an agent cannot approve their own fee waiver by typing a supervisor's name.
* **Errors name what is wrong**: an unknown account is 404; a plan that breaks policy is 422 with one
  entry per broken rule (``type`` = ``policy.<rule>``, and ``violations``); a plan that cannot be
  agreed now (already agreed, closed) is 409; Temporal out of reach is 503, never a 500.
* **An accepted plan answers 200 only after dunning stopped**: the workflow update answers once the
  live state says settlement and any send under way has finished (see ``propose_settlement``).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client, WorkflowQueryFailedError, WorkflowQueryRejectedError
from temporalio.service import RPCError

from domain.accounts import Mode, Stage
from domain.plans import AgreedPlan, Instalment, PlanKind, PlanProposal
from domain.timeline import AccountStatus, Timeline
from service import operations as ops
from service.auth import Principal, identify, require
from service.state import app_sessions, temporal_client
from store import repo
from store.repo import AttemptView, AuditEntry, WaiverRequestView

PREFIX = "/api"
ACCOUNT_PATTERN = ops.ACCOUNT_ID.pattern
#: bounds that keep every date and amount a plan can produce representable (and far beyond policy)
MAX_MINOR = 10**12
EARLIEST = date(2000, 1, 1)
LATEST = date(2200, 12, 31)


# ---- error mapping ---------------------------------------------------------------------------------
def _error(status: int, detail: Any, **extra: Any) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": detail, **extra})


class OperationsRoute(APIRoute):
    """Maps the operations layer's errors to HTTP answers for every route of this router."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            response = await answer(request)
            if request.method == "GET" and response.status_code < 400:
                await run_in_threadpool(_audit_read, request)
            return response

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except ops.AccountNotFound as err:
                return _error(404, str(err))
            except ops.WaiverNotFound as err:
                return _error(404, str(err))
            except ops.PlanRejected as err:
                return _error(
                    422,
                    [
                        {"loc": ["body"], "msg": f"{v.rule}: {v.message}", "type": f"policy.{v.rule}"}
                        for v in err.violations
                    ],
                    violations=[v.model_dump() for v in err.violations],
                )
            except ops.InvalidRequest as err:
                return _error(422, [{"loc": ["body", err.field], "msg": str(err), "type": "value_error"}])
            except (ops.PlanConflict, ops.WaiverAlreadyDecided) as err:
                return _error(409, str(err))
            except RPCError as err:
                return _error(503, f"workflow service unavailable: {err.message}")
            except (WorkflowQueryFailedError, WorkflowQueryRejectedError) as err:
                return _error(503, f"the account's workflow could not answer: {err}")

        return route


def _audit_read(request: Request) -> None:
    """Reads are audited too: who looked at which debtor's account, and when (writes audit themselves)."""
    who = identify(request)
    if who is None:
        return
    query = str(request.url.query)[:500]
    with app_sessions(request).begin() as s:
        repo.audit(
            s,
            at=datetime.now(UTC),
            account_id=request.path_params.get("account_id"),
            actor=who.name,
            action="api_read",
            decision="read",
            details={"path": request.url.path, **({"query": query} if query else {})},
        )


#: documents the bearer scheme in the OpenAPI schema; ``service.auth.require`` does the checking
BEARER = HTTPBearer(
    auto_error=False, description="A token from COLLECT_API_TOKENS (role agent, supervisor or auditor)"
)
router = APIRouter(prefix=PREFIX, route_class=OperationsRoute, dependencies=[Depends(BEARER)])

Reader = Annotated[Principal, Depends(require("read"))]
Writer = Annotated[Principal, Depends(require("write"))]
Approver = Annotated[Principal, Depends(require("approve"))]
AccountId = Annotated[
    str,
    Path(
        pattern=ACCOUNT_PATTERN, description="The account's id, as in the intake file", examples=["ACC-00001"]
    ),
]

AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No valid bearer token"},
    403: {"description": "The token's role may not do this"},
}
ACCOUNT_RESPONSES: dict[int | str, dict[str, Any]] = {
    **AUTH_RESPONSES,
    404: {"description": "No such account"},
    503: {"description": "Temporal is out of reach"},
}


async def _client(request: Request) -> Client:
    """The app's Temporal client; Temporal out of reach is a 503, never a 500."""
    try:
        return await temporal_client(request)
    except Exception as err:
        raise HTTPException(status_code=503, detail=f"Temporal unreachable: {err}") from err


Temporal = Annotated[Client, Depends(_client)]
Sessions = Annotated[sessionmaker[Session], Depends(app_sessions)]


# ---- bodies ----------------------------------------------------------------------------------------
class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
                raise ValueError("instalments: due dates must lie in 2000-2200 and amounts within 10^12")
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


class PaymentRequest(Strict):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [{"amount": 12050, "currency": "USD", "reference": "bank-2026-1123-17"}]
        },
    )

    amount: int = Field(gt=0, le=MAX_MINOR, description="Minor units (cents)")
    currency: str = Field(pattern=r"^[A-Za-z]{3}$", description="ISO 4217; must be the account's")
    reference: str = Field(
        min_length=1, max_length=128, description="The payment's own id: the same reference counts once"
    )


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


class RejectRequest(Strict):
    note: str = Field(default="", max_length=1000)


class Accepted(BaseModel):
    """A signal the workflow took; its effect shows in ``GET /api/accounts/{id}`` once applied."""

    account_id: str
    action: str
    by: str


class HoldFilter(StrEnum):
    NONE = "none"
    ANY = "any"
    PAUSE = "pause"
    DISPUTE = "dispute"
    COMPLAINT = "complaint"
    CEASE = "cease"
    ATTORNEY = "attorney"
    BANKRUPTCY = "bankruptcy"
    DECEASED = "deceased"
    NEGOTIATION = "negotiation"


class WaiverStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


# ---- reading ---------------------------------------------------------------------------------------
@router.get(
    "/accounts",
    tags=["accounts"],
    response_model=list[ops.AccountSummary],
    responses={**AUTH_RESPONSES, 503: {"description": "Temporal is out of reach"}},
    summary="Find accounts by stage, days past due, hold, balance and mode",
)
async def find_accounts(
    _who: Reader,
    client: Temporal,
    sessions: Sessions,
    stage: Stage | None = None,
    mode: Mode | None = None,
    hold: Annotated[HoldFilter | None, Query(description="none, any, or one hold kind")] = None,
    dpd_min: Annotated[int | None, Query(ge=-10_000, le=100_000)] = None,
    dpd_max: Annotated[int | None, Query(ge=-10_000, le=100_000)] = None,
    balance_min: Annotated[int | None, Query(ge=0, le=MAX_MINOR, description="Minor units")] = None,
    balance_max: Annotated[int | None, Query(ge=0, le=MAX_MINOR, description="Minor units")] = None,
    limit: Annotated[int, Query(ge=1, le=ops.MAX_LIMIT)] = 50,
) -> list[ops.AccountSummary]:
    """Temporal visibility on the typed search attributes: the same filters as the Temporal UI."""
    return await ops.find_accounts(
        client,
        stage=stage,
        mode=mode,
        hold=hold.value if hold else None,
        dpd_min=dpd_min,
        dpd_max=dpd_max,
        balance_min=balance_min,
        balance_max=balance_max,
        limit=limit,
        sessions=sessions,
    )


@router.get(
    "/accounts/{account_id}",
    tags=["accounts"],
    response_model=AccountStatus,
    responses=ACCOUNT_RESPONSES,
    summary="An account's live status (the workflow's status query)",
)
async def account_status(account_id: AccountId, _who: Reader, client: Temporal) -> AccountStatus:
    return await ops.account_status(client, account_id)


@router.get(
    "/accounts/{account_id}/timeline",
    tags=["accounts"],
    response_model=Timeline,
    responses=ACCOUNT_RESPONSES,
    summary="Everything that will happen if nothing changes",
)
async def account_timeline(account_id: AccountId, _who: Reader, client: Temporal) -> Timeline:
    return await ops.account_timeline(client, account_id)


@router.get(
    "/accounts/{account_id}/contacts",
    tags=["accounts"],
    response_model=list[AttemptView],
    responses=ACCOUNT_RESPONSES,
    summary="Every contact attempt (from the application database; no phone numbers)",
)
async def contact_history(account_id: AccountId, _who: Reader, sessions: Sessions) -> list[AttemptView]:
    return await run_in_threadpool(ops.contact_history, sessions, account_id)


def _audit_lines(sessions: sessionmaker[Session], account_id: str) -> list[AuditEntry]:
    with sessions.begin() as s:
        if repo.account_snapshot(s, account_id) is None:
            raise ops.AccountNotFound(account_id)
        return repo.audit_entries(s, account_id)


@router.get(
    "/accounts/{account_id}/audit",
    tags=["accounts"],
    response_model=list[AuditEntry],
    responses=ACCOUNT_RESPONSES,
    summary="Every decision on the account: contacts, plans, payments, holds, and who made them",
)
async def audit_log(account_id: AccountId, _who: Reader, sessions: Sessions) -> list[AuditEntry]:
    return await run_in_threadpool(_audit_lines, sessions, account_id)


# ---- plans -----------------------------------------------------------------------------------------
#: FastAPI answers 400 when a body is not JSON at all (422 when it is JSON of the wrong shape)
NOT_JSON: dict[int | str, dict[str, Any]] = {400: {"description": "The body is not valid JSON"}}
PLAN_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ACCOUNT_RESPONSES,
    **NOT_JSON,
    409: {"description": "A plan is already agreed, or the account is closed"},
    422: {"description": "Malformed body, or the plan breaks policy: one entry per broken rule"},
}


@router.post(
    "/accounts/{account_id}/plans/preview",
    tags=["plans"],
    response_model=ops.PlanPreview,
    responses={**ACCOUNT_RESPONSES, **NOT_JSON},
    summary="The schedule a plan would have and every rule it breaks; changes nothing",
)
async def preview_plan(
    account_id: AccountId, body: PlanRequest, who: Reader, client: Temporal, sessions: Sessions
) -> ops.PlanPreview:
    status = await ops.account_status(client, account_id)
    terms = await run_in_threadpool(ops.plan_terms, sessions, account_id)
    return ops.preview_plan(status, terms, body.proposal(who.name))


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
    return await ops.propose_settlement(
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
    return await ops.propose_settlement(client, account_id, proposal, who.name, sessions=sessions)


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
    return await ops.request_waiver(client, sessions, account_id, body.proposal(who.name), who.name)


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
        lambda: ops.waiver_queue(sessions, status=status.value if status else None, account_id=account_id)
    )


WaiverId = Annotated[int, Path(ge=1, le=2**62)]


@router.post(
    "/waivers/{request_id}/approve",
    tags=["waivers"],
    response_model=AgreedPlan,
    responses={**PLAN_RESPONSES, 404: {"description": "No such waiver request (or account)"}},
    summary="A supervisor approves: the plan is proposed with the supervisor as approver",
)
async def approve_waiver(
    request_id: WaiverId, who: Approver, client: Temporal, sessions: Sessions
) -> AgreedPlan:
    return await ops.approve_waiver(client, sessions, request_id, who.name)


@router.post(
    "/waivers/{request_id}/reject",
    tags=["waivers"],
    response_model=WaiverRequestView,
    responses={
        **AUTH_RESPONSES,
        **NOT_JSON,
        404: {"description": "No such waiver request"},
        409: {"description": "Decided"},
    },
    summary="A supervisor turns the waiver down",
)
async def reject_waiver(
    request_id: WaiverId, who: Approver, sessions: Sessions, body: RejectRequest | None = None
) -> WaiverRequestView:
    return await ops.reject_waiver(sessions, request_id, who.name, body.note if body else "")


# ---- signals ---------------------------------------------------------------------------------------
SIGNAL_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ACCOUNT_RESPONSES,
    **NOT_JSON,
    422: {"description": "Malformed body (the field is named)"},
}


@router.post(
    "/accounts/{account_id}/payments",
    tags=["actions"],
    response_model=Accepted,
    status_code=202,
    responses=SIGNAL_RESPONSES,
    summary="Record a payment; the same reference counts once",
)
async def record_payment(
    account_id: AccountId, body: PaymentRequest, who: Writer, client: Temporal, sessions: Sessions
) -> Accepted:
    await ops.record_payment(
        client, account_id, body.amount, body.currency, body.reference, who.name, sessions=sessions
    )
    return Accepted(account_id=account_id, action="payment", by=who.name)


@router.post(
    "/accounts/{account_id}/complaints",
    tags=["actions"],
    response_model=Accepted,
    status_code=202,
    responses=SIGNAL_RESPONSES,
    summary="File a complaint: contact stops at once until an investigator decides",
)
async def file_complaint(
    account_id: AccountId, body: ComplaintRequest, who: Writer, client: Temporal, sessions: Sessions
) -> Accepted:
    await ops.file_complaint(client, account_id, body.reason, who.name, source=body.source, sessions=sessions)
    return Accepted(account_id=account_id, action="complaint", by=who.name)


@router.post(
    "/accounts/{account_id}/disputes",
    tags=["actions"],
    response_model=Accepted,
    status_code=202,
    responses=SIGNAL_RESPONSES,
    summary="File a dispute: no collection until the debt is verified",
)
async def file_dispute(
    account_id: AccountId, body: DisputeRequest, who: Writer, client: Temporal, sessions: Sessions
) -> Accepted:
    await ops.file_dispute(client, account_id, body.reason, who.name, sessions=sessions)
    return Accepted(account_id=account_id, action="dispute", by=who.name)


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
    await ops.pause(client, account_id, body.reason, who.name, sessions=sessions)
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
    await ops.resume(client, account_id, body.reason, who.name, sessions=sessions)
    return Accepted(account_id=account_id, action="resume", by=who.name)
