"""Writes to accounts whose run has ended, is closing, or is placed with an agency.

What must hold: an account that exists is never answered 404; a write the account can no longer take
is 409 with the account's state and the reason; a payment is never lost (to a running account it is
signalled, to an account whose run has ended it is recorded and queued for refund, once).

Real app over ASGI, real time-skipping Temporal with real workers, the real database.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from domain.accounts import Account, Mode
from domain.plans import PlanKind, PlanProposal
from domain.policy import load_policy
from domain.rules import RuleSource, read_source, version_of
from domain.timeline import AccountStatus
from runtime.settings import Settings
from service import plans
from service import temporal_calls as calls
from service.api import error_answer
from service.app import create_app
from store import agencies
from store.audit import audit_entries
from store.models import PaymentRow
from store.refunds import RefundView, refunds
from store.rules import save_sources, set_account_rules
from tests.service.conftest import Probe
from tests.workflows.conftest import Harness, at_local, running_harness

TOKENS = {
    "agent-token-xxxxxxxxxxxxxxxxxxxxx": "alice:agent",
    "super-token-xxxxxxxxxxxxxxxxxxxxx": "sam:supervisor",
    "audit-token-xxxxxxxxxxxxxxxxxxxxx": "ann:auditor",
    "agency-token-xxxxxxxxxxxxxxxxxxxx": "national-recovery:agency",
    "super-two-token-xxxxxxxxxxxxxxxxx": "kim:supervisor",
}
AGENT = {"Authorization": "Bearer agent-token-xxxxxxxxxxxxxxxxxxxxx"}
SUPER = {"Authorization": "Bearer super-token-xxxxxxxxxxxxxxxxxxxxx"}
AGENCY = {"Authorization": "Bearer agency-token-xxxxxxxxxxxxxxxxxxxx"}
SUPER_TWO = {"Authorization": "Bearer super-two-token-xxxxxxxxxxxxxxxxx"}
PLAN = {"kind": "reinstalment", "first_due": "2099-01-10", "periods": 3}
WAIVER = {"kind": "fee_waiver", "first_due": "2099-01-10", "waiver": 100, "hardship_evidence": "x"}


@pytest.fixture
async def harness(env: Any, settings: Settings, simulator: Any) -> AsyncIterator[Harness]:
    async with running_harness(env, settings, simulator) as h:
        yield h


def service(harness: Harness) -> FastAPI:
    app = create_app(harness.settings.model_copy(update={"api_tokens": TOKENS}))
    app.state.temporal_client = harness.client
    app.state.sessions = harness.sessions
    return app


@asynccontextmanager
async def client(harness: Harness) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=service(harness))
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test", timeout=60) as http:
        yield http


@pytest.fixture
async def http(harness: Harness) -> AsyncIterator[httpx.AsyncClient]:
    async with client(harness) as h:
        yield h


def ledger(harness: Harness, account: Account) -> tuple[list[tuple[str, int]], list[RefundView]]:
    """The account's payments (reference, amount) and every refund queued for it."""
    with harness.sessions.begin() as s:
        paid = s.execute(
            select(PaymentRow.reference, PaymentRow.amount_minor)
            .where(PaymentRow.account_id == account.account_id)
            .order_by(PaymentRow.id)
        ).all()
        return [(r, a) for r, a in paid], refunds(s, status=None, account_id=account.account_id)


def audit_lines(harness: Harness, account: Account, action: str) -> list[tuple[str, str]]:
    with harness.sessions.begin() as s:
        return [(e.actor, e.decision) for e in audit_entries(s, account.account_id) if e.action == action]


async def test_a_payment_after_the_run_ended_is_recorded_and_queued_for_refund_once(
    harness: Harness, http: httpx.AsyncClient
) -> None:
    account = await harness.open_account(due_in_days=-20, balance=50_000, fees=0)
    path = f"/api/accounts/{account.account_id}"
    full = {"amount": 50_000, "currency": "USD", "reference": "full"}
    assert (await http.post(f"{path}/payments", json=full, headers=AGENT)).status_code == 202
    result = await harness.handle(account).result()
    assert result.state == "closed_paid"

    late = {"amount": 1_000, "currency": "USD", "reference": "late-1"}
    first = await http.post(f"{path}/payments", json=late, headers=AGENT)
    assert first.status_code == 409, first.text
    body = first.json()
    assert (body["mode"], body["close_reason"], body["balance"], body["currency"]) == (
        "closed",
        "paid",
        0,
        "USD",
    )
    refund = body["refund"]
    assert (refund["amount"], refund["status"], refund["reference"]) == (1_000, "open", "late-1")
    assert refund["reason"] == "received after the account closed (paid)"
    assert "closed (paid)" in body["detail"] and f"queued for refund (#{refund['id']})" in body["detail"]
    payments, queued = ledger(harness, account)
    assert payments == [("full", 50_000), ("late-1", 1_000)]
    assert [(r.id, r.amount, r.status) for r in queued] == [(refund["id"], 1_000, "open")]
    assert audit_lines(harness, account, "payment_after_close") == [("alice", "refund_queued")]

    # the same call again changes nothing and answers the same
    again = await http.post(f"{path}/payments", json=late, headers=AGENT)
    assert again.status_code == 409 and again.json() == body
    assert ledger(harness, account) == (payments, queued)
    assert audit_lines(harness, account, "payment_after_close") == [("alice", "refund_queued")]

    # the payment that closed it, re-sent: it was applied while the account ran, nothing to refund
    resent = await http.post(f"{path}/payments", json=full, headers=AGENT)
    assert resent.status_code == 409, resent.text
    assert resent.json()["refund"] is None and "already recorded" in resent.json()["detail"]
    assert ledger(harness, account) == (payments, queued)

    # every other write: 409 naming the state, never 404 for an account that exists
    for url, payload, headers in (
        (f"{path}/pause", {"reason": "x"}, AGENT),
        (f"{path}/resume", {"reason": "x"}, AGENT),
        (f"{path}/complaints", {"reason": "x"}, AGENT),
        (f"{path}/disputes", {"reason": "x"}, AGENT),
        (f"{path}/plans", PLAN, AGENT),
        (f"{path}/promises", {"amount": 100, "due_date": "2099-01-10"}, AGENT),
        (f"{path}/waivers", WAIVER, AGENT),
        (f"/accounts/{account.account_id}/closure", {"reason": "written_off"}, SUPER),
    ):
        answer = await http.post(url, json=payload, headers=headers)
        assert answer.status_code == 409, (url, answer.text)
        got = answer.json()
        assert (got["mode"], got["close_reason"]) == ("closed", "paid"), (url, got)
        assert "closed (paid)" in got["detail"], (url, got)

    # an account that does not exist is still 404, a payment out of bounds 422 naming the amount
    assert (
        await http.post("/api/accounts/NOPE-9/pause", json={"reason": "x"}, headers=AGENT)
    ).status_code == 404
    assert (await http.post("/api/accounts/NOPE-9/payments", json=late, headers=AGENT)).status_code == 404
    for amount in (0, 10**12 + 1):
        bad = await http.post(f"{path}/payments", json={**late, "amount": amount}, headers=AGENT)
        assert bad.status_code == 422 and "amount" in bad.json()["detail"][0]["loc"], bad.text


async def test_a_placed_account_takes_payments_and_holds_but_no_plan(
    own_env: Any, settings: Settings, simulator: Any
) -> None:
    """On a server of its own: the workflow's validator refuses the plan (which locks the test clock)."""
    async with running_harness(own_env, settings, simulator) as harness, client(harness) as http:
        account = await harness.open_account(due_in_days=-178, phone="+12125550175", balance=200_000, fees=0)
        await harness.skip_to(at_local(account.due_date + timedelta(days=180), 12))
        path = f"/api/accounts/{account.account_id}"

        def placement() -> agencies.PlacementView | None:
            with harness.sessions.begin() as s:
                return agencies.active_placement(s, account.account_id)

        for _ in range(400):
            if (
                placement() is not None
                and (await http.get(path, headers=AGENT)).json().get("mode") == "closed"
            ):
                break
            await asyncio.sleep(0.05)
        placed = placement()
        assert placed is not None and placed.agency_id == "national-recovery"

        for endpoint, payload in (
            ("plans", PLAN),
            ("promises", {"amount": 100, "due_date": "2099-01-10"}),
            ("waivers", WAIVER),
        ):
            answer = await http.post(f"{path}/{endpoint}", json=payload, headers=AGENT)
            assert answer.status_code == 409, (endpoint, answer.text)
            got = answer.json()
            assert "placed with national-recovery: a plan is agreed through the agency" in got["detail"], got
            assert (got["mode"], got["close_reason"]) == ("closed", "placed"), got

        # a hold still means something: the agency's calls go through the same gate
        assert (await http.post(f"{path}/pause", json={"reason": "x"}, headers=AGENT)).status_code == 202
        # the agency's payment flows into the running run
        part = {"amount": 1_000, "currency": "USD", "reference": "nr-1"}
        paid = await http.post(f"/agency/placements/{account.account_id}/payments", json=part, headers=AGENCY)
        assert paid.status_code == 202, paid.text

        for headers in (SUPER, SUPER_TWO):  # a write-off takes two supervisors
            closed = await http.post(
                f"/accounts/{account.account_id}/closure", json={"reason": "written_off"}, headers=headers
            )
            assert closed.status_code == 202, closed.text
        assert closed.json()["status"] == "closing"
        result = await harness.handle(account).result()
        assert result.state == "closed_written_off" and result.paid_total == 1_000

        # what the agency collected after that is recorded and queued for refund, not lost
        after = {"amount": 2_000, "currency": "USD", "reference": "nr-2"}
        for _ in range(2):
            late = await http.post(
                f"/agency/placements/{account.account_id}/payments", json=after, headers=AGENCY
            )
            assert late.status_code == 409, late.text
            assert late.json()["refund"]["reason"] == "received after the account closed (written_off)"
        payments, queued = ledger(harness, account)
        assert payments == [("national-recovery:nr-1", 1_000), ("national-recovery:nr-2", 2_000)]
        assert [(r.reference, r.amount, r.status) for r in queued] == [
            ("national-recovery:nr-2", 2_000, "open")
        ]
        too_much = {"amount": 10**12 + 1, "currency": "USD", "reference": "nr-3"}
        bad = await http.post(
            f"/agency/placements/{account.account_id}/payments", json=too_much, headers=AGENCY
        )
        assert bad.status_code == 422 and "amount" in str(bad.json()["detail"])


# ---- the error mapping, the closing state and the pinned policy, piece by piece --------------------------
def status_of(account: Account, **changes: Any) -> AccountStatus:
    """A ``status`` answer as the workflow gives it, with ``changes``."""
    values: dict[str, Any] = {
        "account_id": account.account_id, "mode": Mode.DUNNING, "stage": "early", "dpd": 20,
        "currency": "USD", "balance": account.balance, "paid_total": 0, "holds": [], "opted_out": [],
        "unreachable": [], "contact_lost": False, "next_action": None, "next_action_at": None,
        "last_contacts": [], "policy_now": datetime.now(UTC),
    }  # fmt: skip
    return AccountStatus(**{**values, **changes})


async def test_the_validators_account_closed_refusal_is_409_with_the_state(harness: Harness) -> None:
    account = await harness.open_account(due_in_days=-20, start=False)
    reason = "the account is placed with national-recovery: a plan is agreed through the agency"
    refusal = WorkflowUpdateFailedError(ApplicationError(reason, type="AccountClosed", non_retryable=True))
    closed = calls.refused(harness.sessions, account.account_id, refusal)
    assert isinstance(closed, calls.AccountClosed) and closed.reason == reason
    answer = error_answer(closed)
    assert answer is not None and answer.status_code == 409
    body = json.loads(answer.body)
    assert reason in body["detail"] and (body["account_id"], body["mode"], body["balance"]) == (
        account.account_id,
        "dunning",
        account.balance,
    )
    # any other refusal is the caller's to read (PlanRejected: 422, PlanConflict: 409)
    other = WorkflowUpdateFailedError(ApplicationError("a plan is already being agreed", type="PlanConflict"))
    assert calls.refused(harness.sessions, account.account_id, other) is None


async def test_a_closing_run_takes_no_hold_and_a_placed_one_no_plan(
    harness: Harness, probe: Probe, env: Any
) -> None:
    """``closed_state`` on a run that is really running (a probe stands in for the account's workflow)."""
    account = await harness.open_account(due_in_days=-20, start=False)
    await probe.start(account)
    client, sessions, aid = env.client, harness.sessions, account.account_id
    assert await calls.closed_state(client, sessions, aid, status_of(account), "hold") is None

    closing = status_of(account, mode=Mode.CLOSED, closing="charged_off")
    for purpose in ("hold", "close", "plan"):
        refused = await calls.closed_state(client, sessions, aid, closing, purpose)  # type: ignore[arg-type]
        assert refused is not None and refused.reason == "the account is being closed (charged_off)"
        assert refused.running and refused.body()["closing"] == "charged_off"

    with sessions.begin() as s:
        agencies.create_placement(
            s, placement_id=f"{aid}/placement-1", account_id=aid, agency_id="national-recovery",
            currency="USD", balance_minor=account.balance, now=datetime.now(UTC),
        )  # fmt: skip
    assert await calls.closed_state(client, sessions, aid, closing, "hold") is None
    assert await calls.closed_state(client, sessions, aid, closing, "close") is None
    plan = await calls.closed_state(client, sessions, aid, closing, "plan")
    assert plan is not None and plan.placed_with == "national-recovery"
    assert "placed with national-recovery: a plan is agreed through the agency" in plan.reason

    await client.get_workflow_handle(account.workflow_id).terminate("ended")
    ended = await calls.closed_state(client, sessions, aid, closing, "hold")
    assert ended is not None and not ended.running and ended.reason.startswith("the account is closed")


async def test_the_preview_judges_with_the_policy_version_the_account_runs(harness: Harness) -> None:
    """After the policy file changes, the preview still agrees with the workflow (its pinned version)."""
    account = await harness.open_account(due_in_days=-20, start=False)
    stock = read_source("policy", "default")
    assert "max_periods = 60" in stock.text
    text = stock.text.replace("max_periods = 60", "max_periods = 2")
    pinned = RuleSource(kind="policy", name="default", version=version_of("default", text), text=text)
    profile = read_source("profile", "US")
    with harness.sessions.begin() as s:
        save_sources(s, [pinned, profile], datetime.now(UTC))
        set_account_rules(s, account.account_id, (pinned.version, profile.version), datetime.now(UTC))
    terms = plans.plan_terms(harness.sessions, account.account_id)
    assert terms.policy_version == pinned.version
    proposal = PlanProposal(kind=PlanKind.REINSTALMENT, first_due=date.today() + timedelta(days=5), periods=3)
    preview = plans.preview_plan(status_of(account), terms, proposal)
    assert "plan.max_periods" in {v.rule for v in preview.violations}  # the file on disk allows 60
    assert plans.preview_plan(status_of(account), terms, proposal, load_policy("default")).acceptable
