"""Our checkout simulator: a hosted payment page that takes no money, for development, the demo and tests.

It plays the provider's part faithfully where it matters to the service: the debtor leaves our page
for the simulator's, pays (or cancels, or uses the declining test card) and is sent back; the payment
reaches the service only as a Stripe-shaped ``checkout.session.completed`` event, signed with Stripe's
scheme and verified by the same code as Stripe's, with a payment ID of its own. It is never offered in
production (``service.checkout.provider_of``).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

import stripe
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from domain.money import format_minor
from service.checkout.provider import (
    BadSignature,
    CheckoutRequest,
    Hosted,
    Paid,
    event_json,
    paid_from_event,
    stripe_signature,
)

router = APIRouter()

PATH = "/checkout/simulator"
#: Stripe's test card numbers: one that pays, one that is declined
PAYS, DECLINED = "4242424242424242", "4000000000000002"


@dataclass
class _Session:
    request: CheckoutRequest
    payment_id: str | None = None


class CheckoutSimulator:
    name = "simulator"

    def __init__(self, secret: str | None = None) -> None:
        self.secret = secret or secrets.token_hex(32)
        self._sessions: dict[str, _Session] = {}

    async def open(self, request: CheckoutRequest) -> Hosted:
        session_id = f"cs_sim_{secrets.token_urlsafe(18)}"
        self._sessions[session_id] = _Session(request)
        return Hosted(session_id=session_id, url=f"{PATH}/{session_id}")

    def paid(self, payload: bytes, signature: str | None) -> Paid | None:
        try:
            stripe.Webhook.construct_event(payload, signature, self.secret)
        except (stripe.SignatureVerificationError, ValueError) as err:
            raise BadSignature(str(err)) from err
        return paid_from_event(json.loads(payload))

    def session(self, session_id: str) -> _Session | None:
        return self._sessions.get(session_id)

    def pay(self, session_id: str) -> tuple[bytes, str]:
        """The signed ``checkout.session.completed`` event of a payment (the same one if paid twice)."""
        held = self._sessions[session_id]
        held.payment_id = held.payment_id or f"pi_sim_{secrets.token_urlsafe(18)}"
        req = held.request
        event: dict[str, Any] = {
            "id": f"evt_sim_{secrets.token_urlsafe(12)}",
            "object": "event",
            "type": "checkout.session.completed",
            "data": {
                "object": {
                    "id": session_id,
                    "object": "checkout.session",
                    "mode": "payment",
                    "payment_status": "paid",
                    "status": "complete",
                    "payment_intent": held.payment_id,
                    "amount_total": req.amount,
                    "currency": req.currency.lower(),
                    "client_reference_id": req.checkout_id,
                    "metadata": {"checkout_id": req.checkout_id, "account_id": req.account_id},
                }
            },
        }
        payload = event_json(event)
        return payload, stripe_signature(payload, self.secret)


def _simulator(request: Request) -> CheckoutSimulator | None:
    from service.checkout import provider_of

    found = provider_of(request.app)
    return found if isinstance(found, CheckoutSimulator) else None


def _page(
    request: Request, session_id: str, held: _Session, problem: str = "", status_code: int = 200
) -> HTMLResponse:
    from service.console import page

    req = held.request
    context = {
        "pays": PAYS,
        "declined": DECLINED,
        "description": req.description,
        "amount": format_minor(req.amount, req.currency),
        "problem": problem,
        "path": PATH,
        "session_id": session_id,
    }
    response = page(request, "checkout/simulator.html", context, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    return response


def _gone() -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><title>Checkout</title><p>This checkout has expired.</p>", status_code=404
    )


@router.get(PATH + "/{session_id}", response_class=HTMLResponse, include_in_schema=False)
async def checkout_page(request: Request, session_id: str) -> Response:
    sim = _simulator(request)
    held = sim.session(session_id) if sim else None
    if held is None:
        return _gone()
    return _page(request, session_id, held)


@router.post(PATH + "/{session_id}/pay", include_in_schema=False)
async def pay(request: Request, session_id: str) -> Response:
    """Take the (pretend) payment, tell the service through its webhook, send the debtor back."""
    from service.checkout.webhook import accept

    sim = _simulator(request)
    held = sim.session(session_id) if sim else None
    if sim is None or held is None:
        return _gone()
    card = "".join(ch for ch in (await request.form()).get("card", "") if ch.isdigit())  # type: ignore[union-attr]
    if card == DECLINED or len(card) < 12:
        why = "Your card was declined." if card == DECLINED else "Enter a card number."
        return _page(request, session_id, held, why, status_code=402)
    payload, signature = sim.pay(session_id)
    await accept(request, sim, payload, signature)  # the provider's webhook, delivered at once
    return RedirectResponse(held.request.success_url, status_code=303)


@router.post(PATH + "/{session_id}/cancel", include_in_schema=False)
async def cancel(request: Request, session_id: str) -> Response:
    sim = _simulator(request)
    held = sim.session(session_id) if sim else None
    if held is None:
        return _gone()
    return RedirectResponse(held.request.cancel_url, status_code=303)
