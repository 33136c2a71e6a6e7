"""The debtor pays from their own page: a payment provider's hosted checkout, and its signed webhook.

Why it is built this way:

* **One interface, two providers** (:class:`~service.checkout.provider.PaymentProvider`): Stripe
  Checkout through the official ``stripe`` SDK where ``COLLECT_STRIPE_SECRET_KEY`` is set, and our own
  checkout simulator where it is not (development, the demo, the tests), as the carrier simulator
  stands in for Twilio. In production without a key the page offers no payment at all: a simulator
  that "takes" money must never run where real debts are.
* **The provider's signed word is the only proof of payment.** The page that the debtor comes back to
  shows a receipt only after the webhook (``checkout.session.completed``, Stripe's signature scheme,
  verified by the SDK; 400 on a bad signature) completed the checkout. The simulator signs its events
  the same way and they go through the same verification.
* **Once per payment.** The provider's payment ID is the payment's reference in the account's workflow
  (which counts each reference once) and completes the checkout row once: a replayed webhook changes
  nothing. The payment asks the workflow for one receipt text.
"""

from __future__ import annotations

from typing import Any

from service.checkout.provider import PaymentProvider

_UNSET = object()


def provider_of(app: Any) -> PaymentProvider | None:
    """The application's payment provider, chosen once from its settings: Stripe with a key, the
    simulator in development without one, none in production without one (the page then says how
    else to pay)."""
    found = getattr(app.state, "checkout_provider", _UNSET)
    if found is not _UNSET:
        return found  # type: ignore[return-value]
    settings = app.state.settings
    provider: PaymentProvider | None = None
    if settings.stripe_secret_key is not None:
        from service.checkout.stripe_checkout import StripeCheckout

        provider = StripeCheckout(
            settings.stripe_secret_key.get_secret_value(),
            settings.stripe_webhook_secret.get_secret_value(),
            settings.stripe_api_base,
        )
    elif settings.env == "development":
        from service.checkout.simulator import CheckoutSimulator

        provider = CheckoutSimulator()
    app.state.checkout_provider = provider
    return provider
