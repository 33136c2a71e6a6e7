"""The provider's webhook: the only way a checkout becomes a payment on the account.

``POST /webhooks/checkout/{provider}`` takes the provider's signed event (Stripe's ``Stripe-Signature``
scheme; the simulator's events are delivered to :func:`accept` directly, signed the same way). A bad
signature is 400 and changes nothing. A paid checkout becomes the account's payment with the provider's
payment ID as its reference, then the checkout row is completed; both are once, so a replay, or two
deliveries racing, pay once. An event for a checkout we did not open is acknowledged and ignored (the
provider account may serve other integrations); one we cannot record yet is 503, so the provider
retries it.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from domain.accounts import Mode
from service.accounts import account_status
from service.checkout import provider_of
from service.checkout.provider import BadSignature, PaymentProvider
from service.operations import AccountClosed, AccountNotFound, InvalidRequest
from service.payments import record_payment
from service.state import app_sessions, temporal_client
from store import checkouts as store
from store.audit import audit

router = APIRouter()
#: how long the webhook waits for the workflow to apply a payment before it completes the checkout
APPLY_WAIT_SECONDS = 5.0
log = logging.getLogger(__name__)


class Outcome:
    PAID = "paid"
    ALREADY = "already_paid"
    IGNORED = "ignored"


async def accept(request: Request, provider: PaymentProvider, payload: bytes, signature: str | None) -> str:
    """Verify the event and apply the payment it reports, once; :class:`BadSignature` when forged."""
    paid = provider.paid(payload, signature)
    if paid is None:
        return Outcome.IGNORED
    sessions = app_sessions(request)
    found = await asyncio.to_thread(_found, sessions, provider.name, paid.session_id)
    if found is None:
        log.warning("%s checkout %s is not one of ours: ignored", provider.name, paid.session_id)
        return Outcome.IGNORED
    if found.completed:
        return Outcome.ALREADY
    client = await temporal_client(request)
    reference = f"{provider.name}:{paid.payment_id}"
    before = await _paid_so_far(client, sessions, found.account_id)
    try:
        await record_payment(
            client, found.account_id, paid.amount, paid.currency, reference, "debtor",
            sessions=sessions, source=f"checkout:{provider.name}", receipt=True,
        )  # fmt: skip
    except AccountClosed:
        pass  # recorded against the ended account and queued for refund (record_payment did it)
    else:
        if before is not None:
            await _applied(client, sessions, found.account_id, before + paid.amount)
    now = datetime.now(UTC)
    first = await asyncio.to_thread(
        _complete, sessions, found.id, found.account_id, reference, paid.amount, now
    )
    return Outcome.PAID if first else Outcome.ALREADY


async def _paid_so_far(client: Any, sessions: Any, account_id: str) -> int | None:
    try:
        return (await account_status(client, account_id, sessions=sessions)).paid_total
    except (AccountClosed, AccountNotFound):
        return None


async def _applied(client: Any, sessions: Any, account_id: str, paid_total: int) -> None:
    """Wait (briefly) until the workflow has applied the payment, so the receipt the debtor is sent
    back to shows the balance after it. Bounded: a payment the workflow already had (the same
    reference) never moves the total, and the checkout is completed all the same."""
    deadline = asyncio.get_running_loop().time() + APPLY_WAIT_SECONDS
    while asyncio.get_running_loop().time() < deadline:
        try:
            status = await account_status(client, account_id, sessions=sessions)
        except (AccountClosed, AccountNotFound):
            return
        if status.paid_total >= paid_total or status.mode == Mode.CLOSED:
            return
        await asyncio.sleep(0.1)


def _found(sessions: Any, provider: str, session_id: str) -> store.CheckoutView | None:
    with sessions.begin() as s:
        return store.by_provider_session(s, provider, session_id)


def _complete(
    sessions: Any, checkout_id: str, account_id: str, reference: str, amount: int, now: datetime
) -> bool:
    with sessions.begin() as s:
        first = store.complete(s, checkout_id, payment_id=reference, paid_minor=amount, now=now)
        if first:
            audit(
                s, at=now, clock="wall", account_id=account_id, actor="debtor", action="checkout_paid",
                decision="payment_recorded", details={"checkout_id": checkout_id, "reference": reference,
                                                      "amount": amount},
            )  # fmt: skip
        return first


@router.post("/webhooks/checkout/{provider}", include_in_schema=False)
async def checkout_webhook(request: Request, provider: str) -> JSONResponse:
    active = provider_of(request.app)
    if active is None or active.name != provider:
        return JSONResponse({"error": f"no {provider} checkout is configured"}, status_code=404)
    payload = await request.body()
    try:
        outcome = await accept(request, active, payload, request.headers.get("stripe-signature"))
    except BadSignature as err:
        return JSONResponse({"error": f"signature: {err}"}, status_code=400)
    except (AccountNotFound, InvalidRequest) as err:
        log.error("checkout webhook could not be applied: %s", err)
        return JSONResponse({"error": str(err)}, status_code=422)
    except Exception:
        log.exception("checkout webhook failed; the provider will deliver it again")
        return JSONResponse({"error": "not recorded yet, deliver again"}, status_code=503)
    return JSONResponse({"outcome": outcome})
