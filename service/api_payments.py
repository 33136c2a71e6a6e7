"""The API's money routes: record a payment, and the refund queue.

Apart from the holds because a payment is never lost: to a running account it is 202 (a closing one
says so), after the run ended it is recorded and queued for refund and the 409 says so with the
refund. The refund queue (``/api/refunds``) lists that money; a supervisor resolves each item once.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from domain.money import MAX_PAYMENT_MINOR
from service import payments
from service.api import (
    AUTH_RESPONSES,
    SIGNAL_RESPONSES,
    Accepted,
    AccountId,
    Approver,
    QueueItemId,
    Reader,
    Sessions,
    Strict,
    Temporal,
    Writer,
    api_router,
    decision_responses,
)
from store.refunds import RefundView

router = api_router()


class PaymentRequest(Strict):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [{"amount": 12050, "currency": "USD", "reference": "bank-2026-1123-17"}]
        },
    )

    amount: int = Field(gt=0, le=MAX_PAYMENT_MINOR, description="Minor units (cents)")
    currency: str = Field(pattern=r"^[A-Za-z]{3}$", description="ISO 4217; must be the account's")
    reference: str = Field(
        min_length=1, max_length=128, description="The payment's own id: the same reference counts once"
    )


class ResolveRequest(Strict):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"examples": [{"status": "refunded", "note": "wire 2026-11-24, ref W-77"}]},
    )

    status: Literal["refunded", "applied"] = Field(
        description="refunded: sent back to the debtor; applied: kept against what is owed"
    )
    note: str = Field(default="", max_length=1000)


class RefundStatus(StrEnum):
    OPEN = "open"
    REFUNDED = "refunded"
    APPLIED = "applied"


# ---- payments ----------------------------------------------------------------------------------------
@router.post(
    "/accounts/{account_id}/payments",
    tags=["actions"],
    response_model=Accepted,
    status_code=202,
    responses=SIGNAL_RESPONSES,
    summary="Record a payment; the same reference counts once; after the account closed, 409 and a refund",
)
async def record_payment(
    account_id: AccountId, body: PaymentRequest, who: Writer, client: Temporal, sessions: Sessions
) -> Accepted:
    """To a running account (closing or not) 202: the workflow applies what is owed, any excess goes to
    the refund queue. After its run ended, 409: the payment is recorded and queued for refund (``refund``)."""
    taken = await payments.record_payment(
        client, account_id, body.amount, body.currency, body.reference, who.name, sessions=sessions
    )
    return Accepted(
        account_id=account_id, action="payment", by=who.name, closing=taken.closing, note=taken.note
    )


# ---- the refund queue --------------------------------------------------------------------------------
@router.get(
    "/refunds",
    tags=["refunds"],
    response_model=list[RefundView],
    responses=AUTH_RESPONSES,
    summary="Money to send back or apply: paid beyond the balance, while closing, or after the account closed",
)
async def refund_queue(
    _who: Reader, sessions: Sessions, status: RefundStatus = RefundStatus.OPEN
) -> list[RefundView]:
    return await run_in_threadpool(lambda: payments.refund_queue(sessions, status=status.value))


@router.post(
    "/refunds/{refund_id}/resolve",
    tags=["refunds"],
    response_model=RefundView,
    responses={**decision_responses("refund"), 422: {"description": "Malformed body (the field is named)"}},
    summary="A supervisor resolves a refund once: refunded (sent back) or applied (kept against the debt)",
)
async def resolve_refund(
    refund_id: QueueItemId, body: ResolveRequest, who: Approver, sessions: Sessions
) -> RefundView:
    return await run_in_threadpool(
        payments.resolve_refund, sessions, refund_id, body.status, body.note, who.name
    )
