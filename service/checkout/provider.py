"""What every payment provider does for the debtor's page: open a hosted checkout, read its webhook."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

#: The webhook events that say a checkout was paid (a card at once; a bank debit some days later).
PAID_EVENTS = ("checkout.session.completed", "checkout.session.async_payment_succeeded")


class Purpose(StrEnum):
    """What the debtor chose to pay."""

    BALANCE = "balance"
    INSTALMENT = "instalment"
    AMOUNT = "amount"


class CheckoutRequest(BaseModel):
    """One payment the debtor chose on their page, in minor units of the account's currency."""

    model_config = ConfigDict(frozen=True)

    checkout_id: str
    account_id: str
    amount: int = Field(gt=0)
    currency: str
    description: str
    language: str
    success_url: str
    cancel_url: str


class Hosted(BaseModel):
    """The provider's checkout: its id (its webhook names it) and where to send the debtor."""

    session_id: str
    url: str


class Paid(BaseModel):
    """A checkout the provider says was paid: its session, the payment's ID and what was taken."""

    session_id: str
    payment_id: str
    amount: int
    currency: str


class BadSignature(ValueError):
    """The webhook's signature does not verify: it did not come from the provider."""


class PaymentProvider(Protocol):
    name: str

    async def open(self, request: CheckoutRequest) -> Hosted: ...

    def paid(self, payload: bytes, signature: str | None) -> Paid | None:
        """The payment a webhook reports, None for an event that reports none; :class:`BadSignature`
        when the signature does not verify."""
        ...


def stripe_signature(payload: bytes, secret: str, at: int | None = None) -> str:
    """A ``Stripe-Signature`` header for ``payload``: ``t=<unix time>,v1=<HMAC-SHA256 of "t.payload">``.

    The scheme Stripe signs its webhooks with; the checkout simulator signs its own with it too, so both
    go through the same verification (the SDK's ``construct_event``).
    """
    at = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{at}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={at},v1={mac}"


def paid_from_event(event: dict[str, Any]) -> Paid | None:
    """The payment in a Stripe-shaped checkout event, or None (another event, or not paid yet)."""
    if event.get("type") not in PAID_EVENTS:
        return None
    session = (event.get("data") or {}).get("object") or {}
    if session.get("payment_status") not in ("paid", "no_payment_required"):
        return None  # a bank debit still pending: async_payment_succeeded will say when it is paid
    payment_id = session.get("payment_intent") or session.get("id")
    amount, currency = session.get("amount_total"), session.get("currency")
    if not payment_id or not isinstance(amount, int) or not currency:
        return None
    return Paid(
        session_id=session["id"], payment_id=str(payment_id), amount=amount, currency=currency.upper()
    )


def event_json(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode()
