"""Stripe Checkout through the official ``stripe`` SDK: a hosted page for one amount, and its webhook.

The amount is the account's minor units as they are: Stripe's ``unit_amount`` is in the currency's
smallest unit too (0-decimal currencies such as JPY included). The Checkout Session carries our
checkout id (``client_reference_id`` and metadata) so the webhook can be matched to the account, and
our checkout id is the request's idempotency key, so a retried create opens one session, not two.
``COLLECT_STRIPE_API_BASE`` points the SDK at another server (the tests' local Stripe stand-in).
"""

from __future__ import annotations

import asyncio
import json

import stripe

from service.checkout.provider import BadSignature, CheckoutRequest, Hosted, Paid, paid_from_event

#: Stripe Checkout's page languages for ours (``zh`` is simplified Chinese there).
LOCALES = {"en": "en", "zh-CN": "zh"}


class StripeCheckout:
    name = "stripe"

    def __init__(self, secret_key: str, webhook_secret: str, api_base: str | None = None) -> None:
        self._client = stripe.StripeClient(
            secret_key, base_addresses={"api": api_base} if api_base else {}, max_network_retries=2
        )
        self._webhook_secret = webhook_secret

    async def open(self, request: CheckoutRequest) -> Hosted:
        params = {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": request.currency.lower(),
                        "unit_amount": request.amount,
                        "product_data": {"name": request.description},
                    },
                }
            ],
            "client_reference_id": request.checkout_id,
            "metadata": {"checkout_id": request.checkout_id, "account_id": request.account_id},
            "payment_intent_data": {"metadata": {"checkout_id": request.checkout_id}},
            "locale": LOCALES.get(request.language, "auto"),
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
        }
        session = await asyncio.to_thread(
            self._client.v1.checkout.sessions.create,
            params,  # type: ignore[arg-type]
            {"idempotency_key": f"checkout-{request.checkout_id}"},
        )
        if not session.url:
            raise RuntimeError(f"Stripe opened checkout session {session.id} without a URL")
        return Hosted(session_id=session.id, url=session.url)

    def paid(self, payload: bytes, signature: str | None) -> Paid | None:
        try:
            stripe.Webhook.construct_event(payload, signature, self._webhook_secret)
        except (stripe.SignatureVerificationError, ValueError) as err:
            raise BadSignature(str(err)) from err
        return paid_from_event(json.loads(payload))
