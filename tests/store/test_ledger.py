"""Plans, instalments and payments on SQLite and PostgreSQL: saved once, paid amounts only grow, a
payment reference counts once even when delivered concurrently."""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from sqlalchemy.orm import Session, sessionmaker

from domain.accounts import Account
from domain.plans import AgreedPlan, Instalment, PlanKind
from store.ledger import (
    active_plan_id,
    mark_instalment,
    plan_instalments,
    record_payment,
    save_plan,
    set_plan_status,
)
from tests.store.conftest import NOW, in_tx, run_threads, stored


def a_plan(account: Account) -> AgreedPlan:
    return AgreedPlan(
        plan_id=f"P-{uuid.uuid4().hex[:10]}",
        kind=PlanKind.REINSTALMENT,
        currency="USD",
        total=125_000,
        instalments=[
            Instalment(seq=1, due_date=date(2026, 12, 1), amount=41_667),
            Instalment(seq=2, due_date=date(2026, 12, 31), amount=41_667),
            Instalment(seq=3, due_date=date(2027, 1, 30), amount=41_666),
        ],
        agreed_at=NOW,
        proposed_by="agent",
    )


def test_plans_are_saved_once_and_track_their_instalments(sessions: sessionmaker[Session]) -> None:
    account = stored(sessions)
    acct = account.account_id
    plan = a_plan(account)
    with sessions.begin() as s:
        assert save_plan(s, acct, plan) is True
        assert save_plan(s, acct, plan) is False
    assert in_tx(sessions, lambda s: active_plan_id(s, acct)) == plan.plan_id
    with sessions.begin() as s:
        mark_instalment(s, plan.plan_id, 1, paid_minor=41_667, status="paid")
        mark_instalment(s, plan.plan_id, 1, paid_minor=0, status="missed")  # stale: cannot undo a payment
        mark_instalment(s, plan.plan_id, 2, paid_minor=0, status="missed")
        mark_instalment(s, plan.plan_id, 2, paid_minor=41_667, status="paid")  # paid late
    schedule = in_tx(sessions, lambda s: plan_instalments(s, plan.plan_id))
    assert [(i.seq, i.amount, paid, str(st)) for i, paid, st in schedule] == [
        (1, 41_667, 41_667, "paid"),
        (2, 41_667, 41_667, "paid"),
        (3, 41_666, 0, "due"),
    ]
    with sessions.begin() as s:
        set_plan_status(s, plan.plan_id, "broken", NOW)
    assert in_tx(sessions, lambda s: active_plan_id(s, acct)) is None
    other = stored(sessions)
    with pytest.raises(ValueError, match="belongs to account"), sessions.begin() as s:
        save_plan(s, other.account_id, plan)
    with pytest.raises(ValueError, match="currency"), sessions.begin() as s:
        save_plan(s, acct, a_plan(account).model_copy(update={"currency": "CNY"}))


def test_a_payment_reference_counts_once(sessions: sessionmaker[Session]) -> None:
    account = stored(sessions)
    ref = f"PAY-{uuid.uuid4().hex[:8]}"

    def pay(amount: int = 12_050, currency: str = "USD", reference: str = ref) -> bool:
        with sessions.begin() as s:
            return record_payment(
                s,
                account_id=account.account_id,
                amount_minor=amount,
                currency=currency,
                reference=reference,
                received_at=NOW,
                source="lender",
            )

    assert pay() is True
    assert pay() is False
    with pytest.raises(ValueError, match="different payment"):
        pay(amount=99)
    with pytest.raises(ValueError, match="currency"):
        pay(currency="CNY", reference=ref + "-2")
    with pytest.raises(ValueError, match="positive"):
        pay(amount=0, reference=ref + "-3")


def test_concurrent_deliveries_of_one_payment_store_it_once(sessions: sessionmaker[Session]) -> None:
    account = stored(sessions)
    ref = f"PAY-{uuid.uuid4().hex[:8]}"

    def pay() -> bool:
        with sessions.begin() as s:
            return record_payment(
                s,
                account_id=account.account_id,
                amount_minor=500,
                currency="usd",
                reference=ref,
                received_at=NOW,
                source="webhook",
            )

    results = run_threads(6, pay)
    assert sorted(results, key=str) == [False] * 5 + [True], results
