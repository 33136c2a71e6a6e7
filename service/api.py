"""The negotiation REST API (``/api``): what its routers share (auth, errors, responses, common bodies).

The routes live in one router per concern, each mounted by :mod:`service.app`:
:mod:`service.api_accounts` (find accounts, look at one), :mod:`service.api_plans` (plans, promises,
the fee-waiver queue), :mod:`service.api_payments` (payments, the refund queue) and
:mod:`service.api_holds` (complaints, disputes, pause, resume). This module holds what they all use,
so that a role, an error or a 409 means the same on every route (the agency API's router maps errors
with :class:`OperationsErrors` too).

Why it is built this way:

* **A thin shell over** the operations layer (:mod:`service.operations` and its concern modules): the
  agent console calls the same functions, so the API and the console cannot drift apart. The API only
  does HTTP: auth, bodies, statuses.
* **Roles** (:mod:`service.auth`): an auditor reads, an agent writes, a supervisor approves fee
  waivers. No token is 401, a role that may not is 403, before any body is looked at.
* **Who did it** comes from the token, never from the body: a request body cannot name an approver
  or a proposer, so an agent cannot approve their own fee waiver by typing a supervisor's name.
* **Errors name what is wrong**: an unknown account is 404; a plan that breaks policy is 422 with one
  entry per broken rule (``type`` = ``policy.<rule>``, and ``violations``); a plan that cannot be
  agreed now (already agreed) is 409; a write an account that exists can no longer take (its run
  ended, is closing, or an agency holds it) is 409 with the account's state and the reason, never 404
  and never 202-then-nothing; Temporal out of reach is 503, never a 500.
* **A payment is never lost**: to a running account it is 202 (a closing one says so); after the run
  ended it is recorded and queued for refund, and the 409 says so with the refund.
* **An accepted plan answers 200 only after dunning stopped**: the workflow update answers once the
  live state says settlement and any send under way has finished (see ``propose_settlement``).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client, WorkflowQueryFailedError, WorkflowQueryRejectedError
from temporalio.service import RPCError

from domain.accounts import Mode
from runtime.settings import Settings
from service import operations as ops
from service.auth import Principal, identify, require
from service.state import app_sessions, app_settings, temporal_client
from store.audit import audit
from store.refunds import RefundView

PREFIX = "/api"
ACCOUNT_PATTERN = ops.ACCOUNT_ID.pattern
#: bounds that keep every date and amount a plan can produce representable (and far beyond policy)
MAX_MINOR = 10**12
EARLIEST = date(2000, 1, 1)
LATEST = date(2999, 12, 31)


# ---- error mapping ---------------------------------------------------------------------------------
def _error(status: int, detail: Any, **extra: Any) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": detail, **extra})


def error_answer(err: Exception) -> JSONResponse | None:
    """The HTTP answer to an error of the operations layer (None: not one of its errors).

    Shared with the agency API, so an account closed or unknown means the same on every route.
    """
    if isinstance(err, ops.AccountNotFound | ops.WaiverNotFound | ops.RefundNotFound | ops.NotPlaced):
        return _error(404, str(err))
    if isinstance(err, ops.AccountClosed):
        return _error(409, str(err), **err.body())
    if isinstance(err, ops.PlanRejected):
        return _error(
            422,
            [
                {"loc": ["body"], "msg": f"{v.rule}: {v.message}", "type": f"policy.{v.rule}"}
                for v in err.violations
            ],
            violations=[v.model_dump() for v in err.violations],
        )
    if isinstance(err, ops.InvalidRequest):
        return _error(422, [{"loc": ["body", err.field], "msg": str(err), "type": "value_error"}])
    if isinstance(err, ops.FourEyes):
        return _error(403, str(err), rule=err.rule)
    if isinstance(
        err, ops.PlanConflict | ops.WaiverAlreadyDecided | ops.RefundAlreadyResolved | ops.NothingToDecide
    ):
        return _error(409, str(err))
    if isinstance(err, RPCError):
        return _error(503, f"workflow service unavailable: {err.message}")
    if isinstance(err, WorkflowQueryFailedError | WorkflowQueryRejectedError):
        return _error(503, f"the account's workflow could not answer: {err}")
    return None


class OperationsErrors(APIRoute):
    """Maps the operations layer's errors to HTTP answers (:func:`error_answer`) for every route of a
    router (this one and the agency API's)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as err:
                mapped = error_answer(err)
                if mapped is None:
                    raise
                return mapped

        return answer


class OperationsRoute(OperationsErrors):
    """The API's routes: errors mapped, and every successful read audited."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        answer = super().get_route_handler()

        async def route(request: Request) -> Response:
            response = await answer(request)
            if request.method == "GET" and response.status_code < 400:
                await run_in_threadpool(_audit_read, request)
            return response

        return route


def _audit_read(request: Request) -> None:
    who = identify(request)
    if who is not None:
        audit_read(request, who.name, "api_read")


def audit_read(request: Request, actor: str, action: str, **details: Any) -> None:
    """Reads are audited too: who looked at which debtor's account, and when (writes audit themselves).
    The API, the console's pages and the codec's decryptions each write one line per request."""
    query = str(request.url.query)[:500]
    with app_sessions(request).begin() as s:
        audit(
            s,
            at=datetime.now(UTC),
            clock="wall",
            account_id=request.path_params.get("account_id") or None,
            actor=actor,
            action=action,
            decision="read",
            details={"path": request.url.path, **({"query": query} if query else {}), **details},
        )


#: documents the bearer scheme in the OpenAPI schema; ``service.auth.require`` does the checking
BEARER = HTTPBearer(
    auto_error=False, description="A token from COLLECT_API_TOKENS (role agent, supervisor or auditor)"
)


def api_router() -> APIRouter:
    """A router of the API: under ``/api``, its errors mapped and its reads audited
    (:class:`OperationsRoute`), the bearer scheme documented on every operation."""
    return APIRouter(prefix=PREFIX, route_class=OperationsRoute, dependencies=[Depends(BEARER)])


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


class Conflict(BaseModel):
    """A 409: why, and (when the account cannot take the write) the account's state."""

    detail: str
    account_id: str | None = None
    mode: Mode | None = Field(default=None, description="Stored mode (closed once the account closed)")
    close_reason: str | None = Field(default=None, description="paid, settled, placed, written_off ...")
    closing: str | None = Field(default=None, description="The running run has begun to close (why)")
    running: bool | None = Field(default=None, description="Whether the account's workflow still runs")
    placed_with: str | None = Field(default=None, description="The agency holding the account")
    balance: int | None = Field(default=None, description="Stored balance, minor units")
    currency: str | None = None
    refund: RefundView | None = Field(
        default=None, description="A payment after the run ended: recorded and queued for this refund"
    )


#: a write the account can no longer take (closed, closing, placed): 409 with its state
CLOSED: dict[int | str, dict[str, Any]] = {
    409: {
        "model": Conflict,
        "description": "The account's run has ended, is closing, or (for plans) an agency holds it: "
        "the state and the reason; a payment is then recorded and queued for refund",
    }
}


async def _client(request: Request) -> Client:
    """The app's Temporal client; Temporal out of reach is a 503, never a 500."""
    try:
        return await temporal_client(request)
    except Exception as err:
        raise HTTPException(status_code=503, detail=f"Temporal unreachable: {err}") from err


Temporal = Annotated[Client, Depends(_client)]
Sessions = Annotated[sessionmaker[Session], Depends(app_sessions)]
AppSettings = Annotated[Settings, Depends(app_settings)]


# ---- bodies and answers shared by several routers --------------------------------------------------
class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Accepted(BaseModel):
    """A signal the workflow took; its effect shows in ``GET /api/accounts/{id}`` once applied."""

    account_id: str
    action: str
    by: str
    closing: str | None = Field(default=None, description="The run has begun to close (why)")
    note: str | None = Field(default=None, description="What a closing (or placed) account does with it")
    case: str | None = Field(default=None, description="Its case in the agents' inbox (complaints, disputes)")


# ---- responses shared by several routers -----------------------------------------------------------
#: FastAPI answers 400 when a body is not JSON at all (422 when it is JSON of the wrong shape)
NOT_JSON: dict[int | str, dict[str, Any]] = {400: {"description": "The body is not valid JSON"}}
#: what a signal (a payment, a complaint, a dispute, a pause, a resume) answers besides 202
SIGNAL_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ACCOUNT_RESPONSES,
    **NOT_JSON,
    **CLOSED,
    422: {"description": "Malformed body (the field is named)"},
}


#: a waiver request's or a refund's id
QueueItemId = Annotated[int, Path(ge=1, le=2**62)]


def decision_responses(thing: str) -> dict[int | str, dict[str, Any]]:
    """What a supervisor's once-only decision on a queued item answers besides 200."""
    return {
        **AUTH_RESPONSES,
        **NOT_JSON,
        404: {"description": f"No such {thing}"},
        409: {"description": "Decided already"},
    }
