"""Charges that accrue within the law: the figures a debtor is shown add up, and no cap is ever passed."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.charge_terms import ChargeCaps, ChargeRules, FeeCap, RateCap, TotalCostCap, freeze_reason
from domain.charges import Charges, accrue, allocate, days, formula, owed, pay, start, waive
from domain.policy import load_policy, parse_policy
from domain.profiles import PROFILE_DIR, load_profile, parse_profile

DAY0 = date(2025, 3, 1)
STANDARD = load_policy("standard")
assert STANDARD.charges is not None
# the policy's grace is its [grace_days] (3 days): the workflow starts the charges the day after it. These
# tests start them on the first overdue day and give the charges the same grace, so day 0 is day 1 late.
RULES = STANDARD.charges.model_copy(update={"grace_days": 3})


def run(
    c: Charges, rules: ChargeRules | None, caps: ChargeCaps | None, n: int, frozen: str | None = None
) -> Charges:
    """Accrue ``n`` more days, one call a day, as a workflow does."""
    for _ in range(n):
        c = accrue(c, rules, caps, c.through + timedelta(days=1), frozen)
    return c


def rules(**kw: object) -> ChargeRules:
    return ChargeRules.model_validate({"penalty_rate_bp": 1200, **kw})


def test_thirty_days_of_figures_add_up_to_the_months_rounded_interest() -> None:
    r = rules()
    c = run(start(r, None, 123_457, "USD", DAY0), r, None, 30)
    figures = days(c, r, None)
    # 1,234.57 x 12% x 30/365, rounded once: what a month's statement would say
    assert c.interest == round(123_457 * 1200 * 30 / (10_000 * 365)) == 1218
    assert sum(f.interest for f in figures) == c.interest == figures[-1].running_total
    assert {f.interest for f in figures} <= {40, 41}  # each day a whole cent, never drifting


def test_accruing_the_same_day_twice_adds_nothing() -> None:
    c = run(start(RULES, None, 50_000, "USD", DAY0), RULES, None, 10)
    again = accrue(c, RULES, None, c.through, None)
    earlier = accrue(c, RULES, None, c.through - timedelta(days=3), None)
    assert again == c and earlier == c
    # one call catching up ten days equals ten daily calls
    assert accrue(start(RULES, None, 50_000, "USD", DAY0), RULES, None, c.through, None) == c


def test_grace_then_late_fee_then_repeats_at_most_max_fees() -> None:
    c = run(start(RULES, None, 100_000, "USD", DAY0), RULES, None, 200)
    assert [(f.day - DAY0).days for f in c.fee_charges] == [3, 33, 63]  # grace 3 days, every 30, 3 at most
    assert c.fees == 3 * 1500
    figures = days(c, RULES, None)
    assert all(f.interest == 0 and f.notes == ["grace"] for f in figures[:3])
    assert figures[3].fee == 1500 and figures[3].interest > 0


def test_frozen_days_add_nothing_and_say_why() -> None:
    c = run(start(RULES, None, 100_000, "USD", DAY0), RULES, None, 10)
    before = c.added
    c = run(c, RULES, None, 40, frozen="plan_kept")  # covers the day-33 fee: skipped, not deferred
    assert c.added == before and c.frozen == "plan_kept"
    c = run(c, RULES, None, 5)
    figures = days(c, RULES, None)
    frozen = figures[10:50]
    assert all(f.interest == 0 and f.fee == 0 and "frozen:plan_kept" in f.notes for f in frozen)
    assert "fee_skipped:frozen:plan_kept" in figures[33].notes
    assert figures[50].interest > 0
    assert len(c.segments) == 4  # grace, accruing, frozen, accruing: O(changes), not O(days)


def test_freeze_reason_follows_policy_and_law() -> None:
    uk = load_profile("UK").charge_caps_in_force
    lenient = rules(freeze_while_plan_kept=False, freeze_holds=[])
    assert freeze_reason(lenient, None, plan_kept=True) is None
    assert freeze_reason(lenient, uk, plan_kept=True) == "plan_kept"  # the UK profile requires it
    assert freeze_reason(lenient, uk, plan_kept=False, holds=["deceased"]) == "hold:deceased"
    assert freeze_reason(RULES, None, plan_kept=False, holds=["pause"]) is None
    assert freeze_reason(None, uk, plan_kept=True) is None  # no charges, nothing to freeze


def test_payment_pays_fees_then_interest_then_principal() -> None:
    c = run(start(RULES, None, 100_000, "USD", DAY0), RULES, None, 40)
    assert c.fees == 3000 and c.interest > 0
    a = allocate(c, 3000 + c.interest + 500)
    assert (a.fees, a.interest, a.principal, a.unapplied) == (3000, c.interest, 500, 0)
    paid = pay(c, 3000 + c.interest + 500)
    assert (paid.fees, paid.interest, paid.principal) == (0, 0, 99_500)
    assert owed(paid) == owed(c) - (3000 + c.interest + 500)
    assert allocate(paid, owed(paid) + 7).unapplied == 7
    # the smaller principal bears interest from the next day: a new segment
    after = run(paid, RULES, None, 1)
    assert after.segments[-1].principal == 99_500
    with pytest.raises(ValueError, match="amount"):
        pay(c, -1)


def test_paid_in_full_accrues_nothing_more() -> None:
    c = run(start(RULES, None, 20_000, "USD", DAY0), RULES, None, 10)
    done = run(pay(c, owed(c)), RULES, None, 60)
    assert owed(done) == 0 and done.fee_count == 1
    assert all(f.notes == ["no_principal"] for f in days(done, RULES, None)[10:])


def test_waive_takes_fees_then_interest_and_never_makes_room_under_the_cap() -> None:
    c = run(start(RULES, None, 100_000, "USD", DAY0), RULES, None, 40)
    part = waive(c, 3100)
    assert (part.fees, part.interest, part.waived_fees, part.waived_interest) == (
        0,
        c.interest - 100,
        3000,
        100,
    )
    everything = waive(c)
    assert everything.charges_due == 0 and owed(everything) == 100_000
    assert everything.added == c.added  # the total-cost cap still counts what was waived
    with pytest.raises(ValueError, match="waiver"):
        waive(c, c.charges_due + 1)


def test_a_policy_without_charges_adds_nothing_ever() -> None:
    default = load_policy("default")
    assert default.charges is None
    caps = load_profile("UK").charge_caps_in_force
    c = run(start(default.charges, caps, 100_000, "GBP", DAY0), default.charges, caps, 400)
    assert (c.added, owed(c), c.segments, c.fee_charges) == (0, 100_000, [], [])
    assert all(f.interest == 0 and f.fee == 0 for f in days(c, default.charges, caps))
    # nor a policy whose charges are for another product or currency
    other = rules(products=["closed_end"])
    assert run(start(other, None, 100_000, "USD", DAY0, product="credit_line"), other, None, 30).added == 0
    no_fee = ChargeRules(late_fee={"EUR": 500})
    assert run(start(no_fee, None, 100_000, "USD", DAY0), no_fee, None, 30).added == 0
    assert "no penalty interest" in formula(default.charges, caps)


def test_rate_cap_cuts_the_rate_and_says_so() -> None:
    r = rules(penalty_rate_bp=3000)
    cn = load_profile("CN").charge_caps_in_force
    c = run(start(r, cn, 100_000, "CNY", DAY0), r, cn, 365)
    assert c.interest == 12_000  # 12% (4 x LPR), not the contract's 30%
    figure = days(c, r, cn)[5]
    assert figure.rate_bp == 1200 and "capped:annual_rate" in figure.notes and "LPR" in figure.sources[0]


def test_total_cost_cap_is_filled_exactly_on_the_day_it_bites() -> None:
    caps = ChargeCaps(total_cost=TotalCostCap(bp=1000, source="test cap 10%"))
    r = rules(penalty_rate_bp=36_500)  # 1% a day: 1,000.00 x 10% = 100.00 is reached within days
    c = run(start(r, caps, 100_000, "USD", DAY0), r, caps, 30)
    assert c.added == c.interest == 10_000 and c.cap_reached == "total_cost"
    figures = days(c, r, caps)
    bite = next(f for f in figures if "capped:total_cost" in f.notes)
    assert bite.day == c.cap_day and 0 < bite.interest <= 1000 and bite.running_total == 10_000
    assert all(f.interest == 0 and f.sources == ["test cap 10%"] for f in figures if f.day > bite.day)


def test_a_fee_that_would_pass_the_total_cost_cap_is_cut_to_it() -> None:
    caps = ChargeCaps(
        fee=FeeCap(each={"USD": 900}, source="test fee cap"),
        total_cost=TotalCostCap(bp=500, source="test 5%"),
    )
    r = rules(penalty_rate_bp=0, late_fee={"USD": 1500}, fee_every_days=1, max_fees=10)
    c = run(start(r, caps, 10_000, "USD", DAY0), r, caps, 10)
    assert [f.amount for f in c.fee_charges] == [500]
    assert c.fee_charges[0].capped == "total_cost" and c.added == 500
    r2 = rules(penalty_rate_bp=0, late_fee={"USD": 1500})
    c2 = run(start(r2, caps, 100_000, "USD", DAY0), r2, caps, 10)
    assert [(f.amount, f.capped) for f in c2.fee_charges] == [(900, "fee")]


amounts = st.integers(min_value=0, max_value=10**9)


@settings(max_examples=60, deadline=None)
@given(
    principal=amounts,
    rate=st.integers(min_value=0, max_value=36_500),
    fee=st.integers(min_value=0, max_value=10_000),
    rate_cap=st.one_of(st.none(), st.integers(min_value=0, max_value=36_500)),
    fee_cap=st.one_of(st.none(), st.integers(min_value=0, max_value=10_000)),
    total_bp=st.one_of(st.none(), st.integers(min_value=0, max_value=20_000)),
    rounding=st.sampled_from(["half_up", "half_even", "down"]),
    steps=st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=40),
            st.sampled_from([None, None, "plan_kept", "hold:dispute"]),
            st.integers(min_value=0, max_value=10**6),
            st.integers(min_value=0, max_value=5_000),
        ),
        min_size=1,
        max_size=8,
    ),
)
def test_figures_sum_to_totals_and_no_cap_is_ever_passed(
    principal: int,
    rate: int,
    fee: int,
    rate_cap: int | None,
    fee_cap: int | None,
    total_bp: int | None,
    rounding: str,
    steps: list[tuple[int, str | None, int, int]],
) -> None:
    r = rules(
        penalty_rate_bp=rate,
        late_fee={"USD": fee},
        fee_every_days=7,
        max_fees=5,
        rounding=rounding,
        grace_days=2,
    )
    caps = ChargeCaps(
        annual_rate=RateCap(bp=rate_cap, source="r") if rate_cap is not None else None,
        fee=FeeCap(each={"USD": fee_cap}, source="f") if fee_cap is not None else None,
        total_cost=TotalCostCap(bp=total_bp, source="t") if total_bp is not None else None,
    )
    c = start(r, caps, principal, "USD", DAY0)
    for n, frozen, payment, waiver in steps:
        c = run(c, r, caps, n, frozen)
        c = pay(c, payment)
        c = waive(c, min(waiver, c.charges_due))
    figures = days(c, r, caps)
    assert len(figures) == (c.through - DAY0).days + 1
    assert sum(f.interest for f in figures) == c.interest_added
    assert sum(f.fee for f in figures) == c.fees_added
    assert all(isinstance(f.interest, int) and f.interest >= 0 and f.fee >= 0 for f in figures)
    if total_bp is not None:
        assert c.added <= principal * total_bp // 10_000
    if fee_cap is not None:
        assert all(f.amount <= fee_cap for f in c.fee_charges)
    effective = min(rate, rate_cap) if rate_cap is not None else rate
    # simple interest, never more than the effective rate on the largest principal for the days accrued
    assert c.interest_added <= principal * effective * len(figures) // (10_000 * 365) + len(c.segments)
    assert all(f.interest == 0 for f in figures if any(n.startswith("frozen:") for n in f.notes))
    assert owed(c) == c.principal + c.interest + c.fees
    assert c.interest + c.paid_interest + c.waived_interest == c.interest_added
    assert c.fees + c.paid_fees + c.waived_fees == c.fees_added
    assert Charges.model_validate_json(c.model_dump_json()) == c  # survives continue-as-new


def test_formula_in_both_languages_names_the_caps_and_sources() -> None:
    us = load_profile("US").charge_caps_in_force
    en = formula(RULES, us, "en", "USD")
    assert "principal x 10.00% / 365 per day" in en and "rounded half-up" in en
    assert "USD 15.00" in en and "36.00%" in en and "Military Lending Act" in en and "USD 32.00" in en
    zh = formula(RULES, load_profile("CN").charge_caps_in_force, "zh-CN", "CNY")
    assert "本金 × 10.00% ÷ 365" in zh and "四舍五入" in zh and "CNY 30.00" in zh and "12.00%" in zh


def test_shipped_profiles_and_standard_policy_load_with_sources() -> None:
    for name, rate in (("US", 3600), ("UK", 29_200), ("CN", 1200)):
        caps = load_profile(name).charge_caps
        assert caps is not None and caps.annual_rate is not None and caps.annual_rate.bp == rate
        assert all(part.source for part in (caps.annual_rate, caps.fee, caps.total_cost, caps.freeze) if part)
    assert STANDARD.cadence == load_policy("default").cadence
    assert STANDARD.settlement == load_policy("default").settlement


def _uk_text() -> str:
    return (PROFILE_DIR / "uk.toml").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("bp = 29200", "bp = 36500", "charge_caps.annual_rate.bp"),
        ("total = { GBP = 1500 }", "total = { GBP = 2500 }", "charge_caps.fee.total.GBP"),
        ("bp = 10000", "bp = 20000", "charge_caps.total_cost.bp"),
    ],
)
def test_a_profile_loosening_a_legal_charge_cap_is_refused_naming_it(old: str, new: str, field: str) -> None:
    text = _uk_text()
    assert old in text
    with pytest.raises(ValueError, match=rf"acme\.toml.*{field}.*CONC 5A"):
        parse_profile(text.replace(old, new), source="acme.toml")
    # tightening is fine
    tighter = parse_profile(text.replace("bp = 29200", "bp = 2000"), source="acme.toml")
    assert tighter.charge_caps_in_force is not None and tighter.charge_caps_in_force.annual_rate.bp == 2000


def test_a_profile_without_charge_caps_still_gets_the_laws() -> None:
    bare = parse_profile(
        'name = "CN-ACME"\njurisdiction = "CN"\nmax_connected_calls_per_day = 3\nretention_years = 5\n',
        source="x.toml",
    )
    assert bare.charge_caps is None
    assert bare.charge_caps_in_force is not None and bare.charge_caps_in_force.annual_rate.bp == 2400
    de = parse_profile('name = "DE"\njurisdiction = "DE"\n', source="x.toml")
    assert de.charge_caps_in_force is None  # no cap the product knows of: only the policy's own terms
    assert (
        load_profile("US").charge_caps_in_force == load_profile("US").charge_caps
    )  # no general US legal cap


@pytest.mark.parametrize(
    ("table", "field"),
    [
        ("[charge_caps.annual_rate]\nbp = -1\nsource = 'x'\n", "charge_caps.annual_rate.bp"),
        ("[charge_caps.annual_rate]\nbp = 100\n", "charge_caps.annual_rate.source"),
        ("[charge_caps.fee]\neach = { XYZ = 100 }\nsource = 'x'\n", "charge_caps.fee.each"),
        ("[charge_caps.fee]\neach = { USD = -5 }\nsource = 'x'\n", "charge_caps.fee.each"),
        ("[charge_caps.freeze]\nholds = ['nap']\nsource = 'x'\n", "charge_caps.freeze.holds"),
        ("[charge_caps]\nannual_rat = 1\n", "charge_caps.annual_rat"),
    ],
)
def test_an_invalid_charge_cap_is_refused_naming_the_field(table: str, field: str) -> None:
    with pytest.raises(ValueError, match=r"ops\.toml: " + re.escape(field)):
        parse_profile('name = "US"\n' + table, source="ops.toml")


@pytest.mark.parametrize(
    ("table", "field"),
    [
        ("penalty_rate_bp = -5", "charges.penalty_rate_bp"),
        ("late_fee = { USD = -1 }", "charges.late_fee"),
        ("day_count = 364", "charges.day_count"),
        ("rounding = 'up'", "charges.rounding"),
        ("fee_every_days = 30", "charges"),  # repeats but max_fees = 1
        ("max_fees = 3", "charges"),  # several fees but no repeat interval
    ],
)
def test_an_invalid_charges_table_is_refused_naming_the_field(table: str, field: str) -> None:
    text = (PROFILE_DIR.parent / "default.toml").read_text(encoding="utf-8") + f"\n[charges]\n{table}\n"
    with pytest.raises(ValueError, match=r"ops\.toml: " + re.escape(field)):
        parse_policy(text, source="ops.toml")
