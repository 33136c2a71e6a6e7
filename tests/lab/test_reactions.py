"""The lab's debtors (lab/reactions.py): what each reaction does to the account, as the workflow would.

Each test forces one reaction on every reached debtor (tests/lab/forced.py) over a seeded synthetic
portfolio and checks what a collection leader would read in the report: paid accounts get nothing
more, a plan stops dunning until it is kept (settled) or broken (dunning resumes), STOP ends texts,
a complaint holds every contact until its deadline, and the recovery curve adds up.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from domain.accounts import AccountTerms, Channel
from domain.agencies import load_agencies
from lab.behaviour import CarrierTable
from lab.debtors import load_model, reach_of
from lab.engine import Portfolio, SimAccount
from lab.report import Prices, summarise
from lab.synthetic import synthetic_accounts
from tests.lab.forced import forced_model_file

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
DAYS = 120


def run(tmp_path: Path, does: str | None, keep: float = 1.0, count: int = 150) -> Portfolio:
    model = load_model(forced_model_file(tmp_path, does, keep)) if does else None
    lab = Portfolio(CarrierTable(), load_agencies(), debtors=model)
    for account in synthetic_accounts(count, seed=5, now=START):
        lab.open(SimAccount(AccountTerms.from_account(account), account.debtor.phone, START))
    lab.run(START + timedelta(days=DAYS))
    return lab


def first_reached(a: SimAccount) -> datetime | None:
    return next((s.at for s in a.sent if reach_of(s.channel, s.outcome) is not None), None)


def test_a_debtor_who_pays_in_full_gets_nothing_more_and_the_report_counts_it(tmp_path: Path) -> None:
    lab = run(tmp_path, "pay_full")
    paid = [a for a in lab.accounts.values() if a.ended == "paid"]
    assert paid, "someone was reached"
    for a in paid:
        reached = first_reached(a)
        assert a.ended_at == reached and a.money.recovered == a.money.opening == a.terms.balance
        assert a.sent[-1].at == reached, "nothing after the payment"
    for a in lab.accounts.values():
        if first_reached(a) is None:
            assert a.money.recovered == 0 and a.ended != "paid"
    summary = summarise("default", lab, START, DAYS, Prices())
    assert summary.totals.paid == len(paid) and summary.totals.reactions == {"pay_full": len(paid)}
    curve = summary.recovery_by_day
    assert curve == sorted(curve) and curve[-1] == summary.totals.recovered_share > 0


def test_a_kept_plan_stops_dunning_and_settles_the_account_on_its_last_instalment(tmp_path: Path) -> None:
    lab = run(tmp_path, "plan", keep=1.0)
    settled = [a for a in lab.accounts.values() if a.ended == "settled"]
    assert settled
    for a in settled:
        reached = first_reached(a)
        assert reached is not None and a.money.kept_plans == 1 and a.money.broken_plans == 0
        assert [s.at for s in a.sent if s.at > reached] == [], "no dunning while the plan ran"
        assert len(a.money.payments) == 3 and a.money.recovered == a.terms.balance
        days = [(at.date() - reached.date()).days for at, _ in a.money.payments]
        assert days[1] - days[0] == days[2] - days[1] == 30


def test_a_broken_plan_brings_dunning_back_the_day_of_the_missed_instalment(tmp_path: Path) -> None:
    lab = run(tmp_path, "plan", keep=0.0)
    broke = [a for a in lab.accounts.values() if a.money.broken_plans]
    assert broke
    resumed = 0
    for a in broke:
        assert a.money.recovered == 0 and a.ended != "settled"
        reached = first_reached(a)
        assert reached is not None
        later = [s.at for s in a.sent if s.at > reached]
        if later:
            resumed += 1
            assert (later[0] - reached) >= timedelta(days=3), "nothing before the first instalment's day"
    assert resumed > len(broke) / 2


def test_stop_ends_the_texts_and_calls_go_on(tmp_path: Path) -> None:
    lab = run(tmp_path, "stop")
    stopped = [a for a in lab.accounts.values() if Channel.SMS in a.carried.opted_out]
    assert stopped
    for a in stopped:
        reached = first_reached(a)
        assert reached is not None
        assert not [s for s in a.sent if s.channel == Channel.SMS and s.at > reached], "no text after STOP"
    assert any(s.channel == Channel.VOICE and s.at > first_reached(a) for a in stopped for s in a.sent)  # type: ignore[operator]


def test_a_complaint_holds_every_contact_until_its_deadline(tmp_path: Path) -> None:
    lab = run(tmp_path, "complain")
    complained = [a for a in lab.accounts.values() if a.money.complaints]
    assert complained
    for a in complained:
        reached = first_reached(a)
        assert reached is not None
        after = [s.at for s in a.sent if s.at > reached]
        assert not [t for t in after if t < reached + timedelta(days=15)], "nothing within the 15 days"
    assert any(a.money.complaints > 1 for a in complained), "contact resumed and they complained again"


def test_without_a_model_the_lab_is_the_differential_tests_lab(tmp_path: Path) -> None:
    silent = run(tmp_path, None)
    assert all(a.money.recovered == 0 and not a.money.reactions for a in silent.accounts.values())
    assert {a.ended for a in silent.accounts.values()} <= {None, "charged_off", "placed"}
