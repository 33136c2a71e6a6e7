"""The debtor pays from their own page: the checkout simulator and Stripe Checkout, over real workflows.

The simulator's events and a local stand-in for Stripe's API (it speaks Stripe's form-encoded requests
and answers with Stripe's objects; the webhook is signed with Stripe's scheme and verified by the
official SDK) go through the same webhook: a payment counts once per provider payment ID, the debtor
gets one receipt text, a forged or replayed webhook changes nothing.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import date, timedelta
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import SecretStr

from domain.accounts import Mode
from domain.plans import AgreedPlan, Instalment, PlanKind, next_instalment
from domain.timeline import AccountStatus
from runtime.settings import Settings
from service.app import create_app
from service.checkout.choices import AmountProblem, PayChoices, amount_for
from service.checkout.provider import Purpose, event_json, stripe_signature
from store.audit import audit_entries
from tests.conftest import free_port
from tests.service import test_selfservice as debtor_pages
from tests.service.conftest import PUBLIC
from tests.service.test_selfservice import csrf_of, link_for, overdue, signed_in, status_of
from tests.workflows.conftest import NY, Harness, at_local

#: the linked debtor's harness and the web client of the self-service tests
harness, web = debtor_pages.harness, debtor_pages.web
SESSION = re.compile(r"/checkout/simulator/(cs_sim_[\w-]+)")


# ---- what may be paid (pure) -----------------------------------------------------------------------
def _plan(*amounts: int) -> AgreedPlan:
    start = date(2026, 12, 1)
    return AgreedPlan(
        plan_id="P-1", kind=PlanKind.REINSTALMENT, currency="USD", total=sum(amounts),
        instalments=[Instalment(seq=i + 1, due_date=start + timedelta(days=30 * i), amount=a)
                     for i, a in enumerate(amounts)],
        agreed_at=start, proposed_by="agent",
    )  # fmt: skip


def test_the_next_instalment_is_what_is_still_due_on_it_after_part_payments() -> None:
    plan = _plan(10_000, 10_000, 5_000)
    assert next_instalment(plan, 0) == (plan.instalments[0], 10_000)
    assert next_instalment(plan, 4_000) == (plan.instalments[0], 6_000)
    assert next_instalment(plan, 10_000) == (plan.instalments[1], 10_000)
    assert next_instalment(plan, 22_000) == (plan.instalments[2], 3_000)
    assert next_instalment(plan, 25_000) is None


def test_a_chosen_amount_is_between_one_minor_unit_and_the_balance() -> None:
    choices = PayChoices("USD", 52_500, date(2026, 12, 1), 20_000)
    assert amount_for(choices, "balance") == (Purpose.BALANCE, 52_500)
    assert amount_for(choices, "instalment") == (Purpose.INSTALMENT, 20_000)
    assert amount_for(choices, "amount", "12.34") == (Purpose.AMOUNT, 1_234)
    for typed, field in (("600", "amount"), ("0", "amount"), ("12,5", "amount"), ("", "amount")):
        with pytest.raises(AmountProblem) as caught:
            amount_for(choices, "amount", typed)
        assert caught.value.field == field
    with pytest.raises(AmountProblem) as caught:
        amount_for(PayChoices("USD", 100), "instalment")
    assert caught.value.field == "what" and "no instalment" in caught.value.reason
    with pytest.raises(AmountProblem):
        amount_for(choices, "everything")


# ---- through the checkout simulator ------------------------------------------------------------------
async def promised(harness: Harness, web: httpx.AsyncClient, amount: str = "200.00") -> tuple[Any, str]:
    """A debtor 40 days late who promised ``amount`` in 10 days from their page: (account, csrf)."""
    account = await overdue(harness)
    csrf = csrf_of(await signed_in(web, link_for(account)))
    when = (await harness.now()).astimezone(NY).date() + timedelta(days=10)
    kept = await web.post(
        "/me/promise", data={"lang": "en", "csrf": csrf, "date": when.isoformat(), "amount": amount}
    )
    assert kept.status_code == 303
    return account, csrf


async def paid(harness: Harness, account: Any, total: int, within: float = 30.0) -> Any:
    """The account's status once the workflow has applied ``total`` (a loaded machine may take longer
    than the webhook's own wait for it)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        status = await status_of(harness, account)
        if status.paid_total >= total or asyncio.get_running_loop().time() > deadline:
            assert status.paid_total == total, status
            return status
        await asyncio.sleep(0.1)


async def receipts_texted(harness: Harness, account: Any) -> list[str]:
    return [
        m["body"]
        for m in await harness.carrier_log(account.debtor.phone)
        if "we have received your payment of" in (m.get("body") or "")
    ]


async def test_paying_an_instalment_through_the_simulator_shows_a_receipt_and_the_new_balance(
    harness: Harness, web: httpx.AsyncClient
) -> None:
    account, csrf = await promised(harness, web)
    before = await status_of(harness, account)
    assert before.mode == Mode.SETTLEMENT
    page = await web.get("/me/account")
    assert "Pay now" in page.text and "The next instalment: USD 200.00" in page.text

    went = await web.post("/me/pay", data={"lang": "en", "csrf": csrf, "what": "instalment"})
    assert went.status_code == 303
    session_id = SESSION.search(went.headers["location"]).group(1)  # type: ignore[union-attr]
    hosted = await web.get(went.headers["location"])
    assert hosted.status_code == 200 and "USD 200.00" in hosted.text and "No real money moves" in hosted.text

    declined = await web.post(f"/checkout/simulator/{session_id}/pay", data={"card": "4000 0000 0000 0002"})
    assert declined.status_code == 402 and "declined" in declined.text
    assert (await status_of(harness, account)).balance == before.balance

    back = await web.post(f"/checkout/simulator/{session_id}/pay", data={"card": "4242 4242 4242 4242"})
    assert back.status_code == 303 and back.headers["location"].startswith(f"{PUBLIC}/me/paid/")
    receipt = await web.get(back.headers["location"])
    assert receipt.status_code == 200 and 'id="receipt"' in receipt.text
    assert "we have received your payment of USD 200.00" in receipt.text
    assert re.search(r"<code>simulator:pi_sim_[\w-]+</code>", receipt.text)  # the provider's payment ID
    after = await paid(harness, account, 20_000)
    assert after.balance == before.balance - 20_000
    assert f"USD {after.balance // 100:,}.{after.balance % 100:02d}" in receipt.text  # the new balance

    # the account page lists it; the audit names the checkout and the payment
    listed = await web.get("/me/account")
    assert 'id="payments"' in listed.text and back.headers["location"].replace(PUBLIC, "") in listed.text
    with harness.sessions.begin() as s:
        actions = [e.action for e in audit_entries(s, account.account_id)]
    assert actions.count("checkout_opened") == 1 and actions.count("checkout_paid") == 1

    # one receipt text, when the hour allows it
    await harness.skip_to(at_local((await harness.now()).astimezone(NY).date() + timedelta(days=1), 13))
    texts = await receipts_texted(harness, account)
    assert (
        len(texts) == 1
        and "USD 200.00" in texts[0]
        and f"Still to pay: USD {after.balance // 100:,}" in texts[0]
    )


async def test_a_replayed_or_forged_webhook_changes_nothing(harness: Harness, web: httpx.AsyncClient) -> None:
    account = await overdue(harness)
    csrf = csrf_of(await signed_in(web, link_for(account)))
    went = await web.post("/me/pay", data={"lang": "en", "csrf": csrf, "what": "amount", "amount": "50"})
    session_id = SESSION.search(went.headers["location"]).group(1)  # type: ignore[union-attr]
    await web.post(f"/checkout/simulator/{session_id}/pay", data={"card": "4242424242424242"})
    paid_once = await paid(harness, account, 5_000)
    # the simulator signs the same payment again (a new event id, the same payment ID): a replay
    app = web._transport.app  # type: ignore[attr-defined]
    payload, signature = app.state.checkout_provider.pay(session_id)
    again = await web.post(
        "/webhooks/checkout/simulator", content=payload, headers={"Stripe-Signature": signature}
    )
    assert again.status_code == 200 and again.json() == {"outcome": "already_paid"}
    forged_body = payload.replace(b'"amount_total":5000', b'"amount_total":9999999')
    forged = await web.post(
        "/webhooks/checkout/simulator", content=forged_body, headers={"Stripe-Signature": signature}
    )
    assert forged.status_code == 400
    unsigned = await web.post("/webhooks/checkout/simulator", content=payload)
    assert unsigned.status_code == 400
    await asyncio.sleep(0.5)
    after = await status_of(harness, account)
    assert after.balance == paid_once.balance and after.paid_total == paid_once.paid_total == 5_000
    await harness.skip_to(at_local((await harness.now()).astimezone(NY).date() + timedelta(days=1), 13))
    assert len(await receipts_texted(harness, account)) == 1


async def test_a_cancelled_checkout_or_an_amount_beyond_the_balance_takes_nothing(
    harness: Harness, web: httpx.AsyncClient
) -> None:
    account = await overdue(harness)
    csrf = csrf_of(await signed_in(web, link_for(account)))
    too_much = await web.post(
        "/me/pay", data={"lang": "en", "csrf": csrf, "what": "amount", "amount": "9000"}
    )
    assert too_much.status_code == 422 and "at most the balance" in too_much.text
    forged = await web.post("/me/pay", data={"lang": "en", "csrf": "nope", "what": "balance"})
    assert forged.status_code == 403
    went = await web.post("/me/pay", data={"lang": "en", "csrf": csrf, "what": "balance"})
    session_id = SESSION.search(went.headers["location"]).group(1)  # type: ignore[union-attr]
    owed = (await status_of(harness, account)).balance
    assert f"USD {owed // 100:,}.{owed % 100:02d}" in (await web.get(went.headers["location"])).text
    back = await web.post(f"/checkout/simulator/{session_id}/cancel")
    assert back.status_code == 303
    page = await web.get(back.headers["location"])
    assert "The payment was cancelled. Nothing was taken." in page.text
    status = await status_of(harness, account)
    assert status.paid_total == 0 and status.balance == owed


async def test_paying_the_balance_closes_the_account_with_one_receipt(
    harness: Harness, web: httpx.AsyncClient
) -> None:
    account = await overdue(harness, language="zh-CN")
    csrf = csrf_of(await signed_in(web, link_for(account)))
    went = await web.post("/me/pay", data={"lang": "zh-CN", "csrf": csrf, "what": "balance"})
    session_id = SESSION.search(went.headers["location"]).group(1)  # type: ignore[union-attr]
    back = await web.post(f"/checkout/simulator/{session_id}/pay", data={"card": "4242424242424242"})
    receipt = await web.get(back.headers["location"])
    assert "谢谢，我们已收到您的还款 USD 500.00" in receipt.text
    await harness.skip_to(at_local((await harness.now()).astimezone(NY).date() + timedelta(days=1), 13))
    assert (await status_of(harness, account)).mode == Mode.CLOSED
    texts = [m.get("body") or "" for m in await harness.carrier_log(account.debtor.phone)]
    receipts = [b for b in texts if "已收到您的还款" in b]
    assert len(receipts) == 1, texts  # the closing receipt only: no second one for the same payment


async def test_in_production_without_a_key_the_page_offers_no_payment(harness: Harness) -> None:
    production = harness.settings.model_copy(update={"env": "production"})
    app: FastAPI = create_app(production)
    app.state.temporal_client = harness.client
    app.state.sessions = harness.sessions
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC) as prod:
        account = await overdue(harness)
        page = await signed_in(prod, link_for(account))
        assert "To pay, call us on" in page.text and "/me/pay" not in page.text
        refused = await prod.post("/me/pay", data={"lang": "en", "csrf": csrf_of(page), "what": "balance"})
        assert refused.status_code == 409 and "Nothing was taken" in refused.text
        assert (await prod.get("/checkout/simulator/cs_sim_anything")).status_code == 404
        assert (await prod.post("/webhooks/checkout/simulator", content=b"{}")).status_code == 404


# ---- Stripe Checkout, against a local server speaking Stripe's formats ----------------------------------
STRIPE_KEY, WHSEC = "sk_test_local_0123456789", "whsec_local_0123456789abcdef"


class StripeStandIn:
    """Stripe's ``POST /v1/checkout/sessions`` as the SDK calls it: a bearer secret key, form-encoded
    nested parameters (``line_items[0][price_data][unit_amount]``), an ``Idempotency-Key``; the answer
    is a Checkout Session object. It keeps what it was asked, so the test can check the request."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.sessions: dict[str, dict[str, Any]] = {}
        self.app = FastAPI()

        @self.app.post("/v1/checkout/sessions")
        async def create(request: Request) -> JSONResponse:
            if request.headers.get("authorization") != f"Bearer {STRIPE_KEY}":
                return JSONResponse({"error": {"type": "invalid_request_error"}}, status_code=401)
            form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
            key = request.headers.get("idempotency-key")
            self.requests.append({"form": form, "idempotency_key": key})
            for existing in self.sessions.values():  # Stripe answers a repeated key with the same object
                if existing["_key"] == key:
                    return JSONResponse(existing)
            n = len(self.sessions) + 1
            session = {
                "id": f"cs_test_{n:04d}", "object": "checkout.session", "mode": form["mode"],
                "url": f"https://checkout.stripe.test/c/pay/cs_test_{n:04d}", "status": "open",
                "payment_status": "unpaid", "payment_intent": None,
                "amount_total": int(form["line_items[0][price_data][unit_amount]"]),
                "currency": form["line_items[0][price_data][currency]"],
                "client_reference_id": form["client_reference_id"],
                "metadata": {"checkout_id": form["metadata[checkout_id]"], "account_id": form["metadata[account_id]"]},
                "_key": key,
            }  # fmt: skip
            self.sessions[session["id"]] = session
            return JSONResponse(session)

    def completed_event(self, session_id: str, payment_intent: str) -> bytes:
        session = {k: v for k, v in self.sessions[session_id].items() if k != "_key"}
        session.update(status="complete", payment_status="paid", payment_intent=payment_intent)
        event = {
            "id": f"evt_{payment_intent}", "object": "event", "api_version": "2025-09-30.clover",
            "type": "checkout.session.completed", "data": {"object": session},
        }  # fmt: skip
        return event_json(event)


@pytest.fixture(scope="module")
def stripe_stand_in() -> Iterator[tuple[StripeStandIn, str]]:
    stand_in = StripeStandIn()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(stand_in.app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield stand_in, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture
async def stripe_web(
    harness: Harness, stripe_stand_in: tuple[StripeStandIn, str]
) -> AsyncIterator[httpx.AsyncClient]:
    _, base = stripe_stand_in
    keyed: Settings = harness.settings.model_copy(
        update={
            "stripe_secret_key": SecretStr(STRIPE_KEY),
            "stripe_webhook_secret": SecretStr(WHSEC),
            "stripe_api_base": base,
        }
    )
    app: FastAPI = create_app(keyed)
    app.state.temporal_client = harness.client
    app.state.sessions = harness.sessions
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC) as client:
        yield client


async def test_stripe_checkout_opens_a_session_and_its_signed_webhook_pays_once(
    harness: Harness, stripe_web: httpx.AsyncClient, stripe_stand_in: tuple[StripeStandIn, str]
) -> None:
    stand_in, _ = stripe_stand_in
    account = await overdue(harness)
    csrf = csrf_of(await signed_in(stripe_web, link_for(account)))
    went = await stripe_web.post(
        "/me/pay", data={"lang": "en", "csrf": csrf, "what": "amount", "amount": "120.50"}
    )
    assert went.status_code == 303 and went.headers["location"].startswith(
        "https://checkout.stripe.test/c/pay/"
    )
    asked = stand_in.requests[-1]
    form = asked["form"]
    assert form["mode"] == "payment" and form["line_items[0][price_data][unit_amount]"] == "12050"
    assert form["line_items[0][price_data][currency]"] == "usd" and form["locale"] == "en"
    assert form["metadata[account_id]"] == account.account_id
    assert form["success_url"].startswith(f"{PUBLIC}/me/paid/") and "done=cancelled" in form["cancel_url"]
    assert asked["idempotency_key"] == f"checkout-{form['client_reference_id']}"
    session_id = went.headers["location"].rsplit("/", 1)[1]

    # the simulator is not there when Stripe is: its events would not verify anyway
    assert (await stripe_web.post("/webhooks/checkout/simulator", content=b"{}")).status_code == 404
    payload = stand_in.completed_event(session_id, "pi_3Q0000000000001")
    bad = await stripe_web.post(
        "/webhooks/checkout/stripe", content=payload,
        headers={"Stripe-Signature": stripe_signature(payload, "whsec_someone_else")},
    )  # fmt: skip
    assert bad.status_code == 400
    stale = await stripe_web.post(
        "/webhooks/checkout/stripe", content=payload,
        headers={"Stripe-Signature": stripe_signature(payload, WHSEC, at=int(time.time()) - 3600)},
    )  # fmt: skip
    assert stale.status_code == 400  # outside Stripe's 5-minute tolerance: a replayed capture
    assert (await status_of(harness, account)).paid_total == 0

    signed = {"Stripe-Signature": stripe_signature(payload, WHSEC)}
    first = await stripe_web.post("/webhooks/checkout/stripe", content=payload, headers=signed)
    assert first.status_code == 200 and first.json() == {"outcome": "paid"}
    replay = await stripe_web.post("/webhooks/checkout/stripe", content=payload, headers=signed)
    assert replay.json() == {"outcome": "already_paid"}
    await asyncio.sleep(0.5)
    status: AccountStatus = await status_of(harness, account)
    assert status.paid_total == 12_050 and status.balance == 50_000 - 12_050
    receipt = await stripe_web.get(json.loads(json.dumps(form))["success_url"].replace(PUBLIC, ""))
    assert "stripe:pi_3Q0000000000001" in receipt.text and "USD 379.50" in receipt.text

    other = {"id": "evt_x", "type": "customer.created", "data": {"object": {"id": "cus_1"}}}
    body = event_json(other)
    ignored = await stripe_web.post(
        "/webhooks/checkout/stripe", content=body, headers={"Stripe-Signature": stripe_signature(body, WHSEC)}
    )
    assert ignored.json() == {"outcome": "ignored"}


def test_a_stripe_key_without_its_webhook_secret_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="stripe_webhook_secret"):
        Settings(_env_file=None, stripe_secret_key=SecretStr(STRIPE_KEY))  # type: ignore[call-arg]
