"""What the credit-reporting file reads from the database, on SQLite and PostgreSQL: the notice that
counts (sent or delivered, not failed), payments and disputes as of the cycle date, and closings."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from sqlalchemy.orm import Session, sessionmaker

from domain.accounts import Account, Channel, CloseReason, ContactOutcome, Hold, HoldKind, Mode
from domain.credit_reporting import AccountState, DisputeState, Furnished, reportable
from domain.plans import AgreedPlan, Instalment, PlanKind
from domain.profiles import load_profile
from store.accounts import set_mode
from store.contacts import AttemptState, mark_attempt, reserve_attempt
from store.credit_facts import furnishing_facts
from store.holds import add_hold, lift_hold
from store.ledger import record_payment, save_plan
from tests.store.conftest import NOW, in_tx, stored

CYCLE = date(2026, 11, 30)
US = load_profile("US").credit_reporting
assert US is not None


def at(day: int, month: int = 11) -> datetime:
    return datetime(2026, month, day, 15, tzinfo=UTC)


def notice(s: Session, account: Account, when: datetime, outcome: ContactOutcome, template: str = "") -> None:
    key = f"notice-{uuid.uuid4().hex[:8]}"
    reserve_attempt(s, dedupe_key=key, account_id=account.account_id, channel=Channel.SMS, purpose="dunning",
                    template=template or US.notice_template, to_address=account.debtor.phone, now=when)  # fmt: skip
    mark_attempt(s, key, state=AttemptState.ACCEPTED, provider_sid=f"SM{uuid.uuid4().hex}", now=when)
    mark_attempt(s, key, state=AttemptState.ACCEPTED, outcome=outcome, now=when)


def pay(s: Session, account: Account, amount: int, when: datetime) -> None:
    record_payment(s, account_id=account.account_id, amount_minor=amount, currency="USD",
                   reference=f"r-{uuid.uuid4().hex[:8]}", received_at=when, source="lender")  # fmt: skip


def facts_of(sessions: sessionmaker[Session], *accounts: Account) -> dict[str, Furnished]:
    ids = {a.account_id for a in accounts}
    found = in_tx(
        sessions,
        lambda s: furnishing_facts(s, profile="US", cycle_date=CYCLE, notice_template=US.notice_template),
    )
    return {f.facts.account_id: f for f in found if f.facts.account_id in ids}


def test_only_a_notice_that_went_out_counts(sessions: sessionmaker[Session]) -> None:
    delivered, bounced, other, none = (stored(sessions) for _ in range(4))
    with sessions.begin() as s:
        notice(s, delivered, at(10), ContactOutcome.DELIVERED)
        notice(s, delivered, at(12), ContactOutcome.SENT)  # a later one: the first counts
        notice(s, bounced, at(10), ContactOutcome.UNDELIVERABLE)
        notice(s, other, at(10), ContactOutcome.DELIVERED, template="early_reminder")
    got = facts_of(sessions, delivered, bounced, other, none)
    assert got[delivered.account_id].facts.notice_delivered_at == at(10)
    assert reportable(got[delivered.account_id].facts, US, CYCLE) == (True, "reported")
    for account in (bounced, other, none):
        assert got[account.account_id].facts.notice_delivered_at is None
        assert reportable(got[account.account_id].facts, US, CYCLE) == (False, "no notice yet")
    # the name comes from the database, for the file only
    assert got[delivered.account_id].name == delivered.debtor.name


def test_an_account_reads_as_of_the_cycle_date(sessions: sessionmaker[Session]) -> None:
    account = stored(sessions, balance=100_000, due_date=date(2026, 10, 1))
    with sessions.begin() as s:
        pay(s, account, 10_000, at(25))
        pay(s, account, 5_000, at(5, 12))  # after the cycle: not yet paid at its date
        from store.accounts import update_progress

        update_progress(s, account.account_id, stage=None, dpd=None, balance_minor=85_000, paid_minor=15_000,
                        now=at(5, 12))  # fmt: skip
        add_hold(s, account.account_id, Hold(kind=HoldKind.DISPUTE, reason="not mine", since=at(20)))
    f = facts_of(sessions, account)[account.account_id].facts
    assert (f.state, f.balance_minor, f.past_due_minor) == (AccountState.OPEN, 90_000, 90_000)
    assert (f.last_payment_on, f.paid_in_cycle_minor) == (date(2026, 11, 25), 10_000)
    assert (f.days_past_due, f.due_date, f.date_opened) == (60, date(2026, 10, 1), NOW.date())
    assert f.dispute == DisputeState.OPEN
    with sessions.begin() as s:
        lift_hold(s, account.account_id, HoldKind.DISPUTE, at(28))
    assert facts_of(sessions, account)[account.account_id].facts.dispute == DisputeState.RESOLVED


def test_closings_paid_settled_for_less_and_charged_off(sessions: sessionmaker[Session]) -> None:
    paid, settled, charged, later = (stored(sessions, due_date=date(2026, 6, 1)) for _ in range(4))
    with sessions.begin() as s:
        pay(s, paid, 125_000, at(20))
        set_mode(s, paid.account_id, Mode.CLOSED, close_reason=CloseReason.PAID, now=at(20))
        save_plan(s, settled.account_id, AgreedPlan(
            plan_id=f"P-{uuid.uuid4().hex[:10]}", kind=PlanKind.FEE_WAIVER, currency="USD", total=125_000,
            waived=3_500, instalments=[Instalment(seq=1, due_date=date(2026, 11, 15), amount=125_000)],
            agreed_at=at(1), proposed_by="agent", approver="sam"))  # fmt: skip
        pay(s, settled, 125_000, at(15))
        set_mode(s, settled.account_id, Mode.CLOSED, close_reason=CloseReason.SETTLED, now=at(15))
        set_mode(s, charged.account_id, Mode.CLOSED, close_reason=CloseReason.CHARGED_OFF, now=at(28))
        pay(s, later, 125_000, at(3, 12))  # paid in December: open at the November cycle
        set_mode(s, later.account_id, Mode.CLOSED, close_reason=CloseReason.PAID, now=at(3, 12))
    got = facts_of(sessions, paid, settled, charged, later)
    p = got[paid.account_id].facts
    assert (p.state, p.closed_on, p.balance_minor, p.days_past_due) == (
        AccountState.PAID,
        date(2026, 11, 20),
        0,
        172,
    )
    s_ = got[settled.account_id].facts
    assert (s_.state, s_.settled_for_less) == (AccountState.SETTLED, True)
    c = got[charged.account_id].facts
    # the default policy charges a credit line off at 180 days past due: 1 June + 180 days = 28 November
    assert (c.state, c.charged_off_on, c.charged_off_minor) == (
        AccountState.CHARGED_OFF,
        date(2026, 11, 28),
        125_000,
    )
    assert got[later.account_id].facts.state == AccountState.OPEN
