"""Plan maths and policy checks: the rules an agent's plan is judged by."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.plans import (
    Instalment,
    PlanKind,
    PlanProposal,
    PlanRejected,
    add_months,
    agree,
    schedule,
    split_evenly,
    validate_proposal,
)
from domain.policy import load_policy

POLICY = load_policy()
TODAY = date(2026, 11, 22)
OVERDUE = date(2026, 10, 1)


def rules(proposal: PlanProposal, balance: int = 100_00, fees: int = 15_00) -> list[str]:
    return [
        v.rule
        for v in validate_proposal(
            proposal, balance=balance, fees=fees, overdue_since=OVERDUE, today=TODAY, policy=POLICY
        )
    ]


@given(total=st.integers(min_value=0, max_value=10**12), periods=st.integers(min_value=1, max_value=60))
def test_split_sums_exactly_and_differs_by_at_most_a_cent(total: int, periods: int) -> None:
    parts = split_evenly(total, periods)
    assert sum(parts) == total
    assert len(parts) == periods
    assert max(parts) - min(parts) <= 1


def test_reinstalment_schedule_is_even_and_dated() -> None:
    p = PlanProposal(kind=PlanKind.REINSTALMENT, first_due=date(2026, 12, 1), periods=3, period_days=30)
    items = schedule(p, 100_00)
    assert [i.amount for i in items] == [33_34, 33_33, 33_33]
    assert [i.due_date for i in items] == [date(2026, 12, 1), date(2026, 12, 31), date(2027, 1, 30)]
    assert rules(p) == []


def test_deferral_limited_to_13_months_after_becoming_overdue() -> None:
    ok = PlanProposal(kind=PlanKind.DEFERRAL, first_due=add_months(OVERDUE, 13))
    too_far = PlanProposal(kind=PlanKind.DEFERRAL, first_due=add_months(OVERDUE, 14))
    assert rules(ok) == []
    assert rules(too_far) == ["deferral.max_months"]


def test_fee_waiver_needs_evidence_and_approver_and_only_fees() -> None:
    bare = PlanProposal(kind=PlanKind.FEE_WAIVER, first_due=TODAY + timedelta(days=7), waiver=15_00)
    assert set(rules(bare)) == {"waiver.requires_evidence", "waiver.requires_approver"}
    full = bare.model_copy(update={"hardship_evidence": "medical certificate #881", "approver": "sup-7"})
    assert rules(full) == []
    greedy = full.model_copy(update={"waiver": 16_00})
    assert "waiver.exceeds_fees" in rules(greedy)


def test_instalments_must_sum_to_the_total() -> None:
    p = PlanProposal(
        kind=PlanKind.REINSTALMENT,
        first_due=TODAY + timedelta(days=7),
        instalments=[
            Instalment(seq=1, due_date=TODAY + timedelta(days=7), amount=40_00),
            Instalment(seq=2, due_date=TODAY + timedelta(days=37), amount=40_00),
        ],
    )
    assert rules(p) == ["plan.sum_mismatch"]


def test_promise_to_pay_within_30_days_and_not_above_balance() -> None:
    assert (
        rules(PlanProposal(kind=PlanKind.PROMISE_TO_PAY, first_due=TODAY + timedelta(days=30), amount=50_00))
        == []
    )
    assert rules(PlanProposal(kind=PlanKind.PROMISE_TO_PAY, first_due=TODAY + timedelta(days=31))) == [
        "promise.too_far"
    ]
    assert "promise.exceeds_balance" in rules(
        PlanProposal(kind=PlanKind.PROMISE_TO_PAY, first_due=TODAY + timedelta(days=3), amount=200_00)
    )


def test_first_due_date_cannot_be_in_the_past_and_periods_capped() -> None:
    assert "plan.first_due_in_past" in rules(
        PlanProposal(kind=PlanKind.DEFERRAL, first_due=TODAY - timedelta(days=1))
    )
    assert "plan.max_periods" in rules(
        PlanProposal(kind=PlanKind.REINSTALMENT, first_due=TODAY, periods=61, period_days=7)
    )


def test_agree_raises_with_every_rule() -> None:
    with pytest.raises(PlanRejected) as info:
        agree(
            PlanProposal(kind=PlanKind.FEE_WAIVER, first_due=TODAY, waiver=1_00),
            plan_id="p",
            currency="USD",
            balance=100_00,
            fees=15_00,
            overdue_since=OVERDUE,
            agreed_at=__import__("datetime").datetime(2026, 11, 22, tzinfo=__import__("datetime").UTC),
            today=TODAY,
            policy=POLICY,
        )
    assert {v.rule for v in info.value.violations} == {"waiver.requires_evidence", "waiver.requires_approver"}
    assert "waiver.requires_evidence" in str(info.value)
