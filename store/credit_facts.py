"""What a credit-reporting file needs, read from the database: one :class:`AccountFacts` per account of a
profile at a cycle date, with the debtor's name beside it (for the file only).

The database holds each account's state *now*; payments, notices and holds are dated, so they are
read as of the cycle date (up to its end, UTC). A closing is dated by what caused it: a payoff by
the last payment, a charge-off by the policy's charge-off day; an account that closed after the cycle
date is read as open at that date.

A notice counts when an attempt with the profile's notice template was accepted by the provider and
not reported undeliverable, failed or refused since (``outcome`` sent, delivered or a conversation):
Reg F 1006.30(a) waits for a notice of undeliverability, and one arriving later takes the notice back.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from domain.accounts import ContactOutcome, HoldKind, Product
from domain.credit_reporting import (
    LOSS_STATES,
    PAID_STATES,
    AccountFacts,
    AccountState,
    DisputeState,
    Furnished,
)
from domain.gate import Audience
from domain.policy import load_policy
from store.contacts import AttemptState
from store.models import AccountRow, ContactAttempt, HoldRow, PaymentRow, PlanRow

#: What an attempt's outcome must be for its notice to count (None: accepted, no status heard yet).
NOTICE_OUTCOMES = (
    ContactOutcome.SENT.value,
    ContactOutcome.DELIVERED.value,
    ContactOutcome.CONVERSATION.value,
)


def _day_end(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(0), UTC)


def _chargeoff_day(row: AccountRow) -> date:
    """The policy's charge-off day for this account; the last update when its policy file is gone."""
    try:
        days = load_policy(row.policy).chargeoff_for(Product(row.product))
    except (ValueError, KeyError):
        return row.updated_at.date()
    return row.due_date + timedelta(days=days)


def furnishing_facts(
    s: Session, *, profile: str, cycle_date: date, notice_template: str, account_id: str | None = None
) -> list[Furnished]:
    """Every account of ``profile`` taken in by ``cycle_date``, as the file of that cycle sees it
    (``account_id``: only that one, as the debtor's page asks: the page says what the file would do).

    Whether each is reported is :func:`domain.credit_reporting.reportable`'s decision, not this one's.
    """
    cut = _day_end(cycle_date)
    month_start = datetime.combine(cycle_date.replace(day=1), time(0), UTC)
    which = [AccountRow.profile == profile, AccountRow.created_at < cut]
    if account_id is not None:
        which.append(AccountRow.account_id == account_id)
    rows = list(s.scalars(select(AccountRow).where(*which).order_by(AccountRow.account_id)))
    # the profile's accounts as a subquery, not a list of ids: a portfolio may exceed SQLite's bound variables
    ids = select(AccountRow.account_id).where(*which)
    payments: dict[str, list[PaymentRow]] = defaultdict(list)
    for p in s.scalars(
        select(PaymentRow).where(PaymentRow.account_id.in_(ids)).order_by(PaymentRow.received_at)
    ):
        payments[p.account_id].append(p)
    notices: dict[str, datetime] = {}
    attempts = s.scalars(
        select(ContactAttempt).where(
            ContactAttempt.account_id.in_(ids),
            ContactAttempt.template == notice_template,
            ContactAttempt.audience == Audience.DEBTOR.value,
            ContactAttempt.state == AttemptState.ACCEPTED.value,
        )
    )
    for a in attempts:
        at = a.sent_at or a.created_at
        if (a.outcome is None or a.outcome in NOTICE_OUTCOMES) and at < cut:
            notices[a.account_id] = min(at, notices.get(a.account_id, at))
    disputes: dict[str, list[HoldRow]] = defaultdict(list)
    for h in s.scalars(
        select(HoldRow).where(
            HoldRow.account_id.in_(ids), HoldRow.kind == HoldKind.DISPUTE.value, HoldRow.since < cut
        )
    ):
        disputes[h.account_id].append(h)
    waived = set(
        s.scalars(select(PlanRow.account_id).where(PlanRow.account_id.in_(ids), PlanRow.waived_minor > 0))
    )
    return [
        _furnished(
            row,
            payments[row.account_id],
            notices.get(row.account_id),
            disputes[row.account_id],
            row.account_id in waived,
            cycle_date,
            cut,
            month_start,
        )
        for row in rows
    ]


def _furnished(
    row: AccountRow,
    payments: list[PaymentRow],
    notice_at: datetime | None,
    disputes: list[HoldRow],
    waived: bool,
    cycle_date: date,
    cut: datetime,
    month_start: datetime,
) -> Furnished:
    paid_before = [p for p in payments if p.received_at < cut]
    paid_after_cut = sum(p.amount_minor for p in payments if p.received_at >= cut)
    last_payment_on = paid_before[-1].received_at.date() if paid_before else None
    state = AccountState(row.close_reason) if row.mode == "closed" and row.close_reason else AccountState.OPEN
    closed_on: date | None = None
    charged_off_on: date | None = None
    charged_off_minor = 0
    if state in LOSS_STATES:
        charged_off_on = closed_on = _chargeoff_day(row)
        charged_off_minor = row.balance_minor + sum(
            p.amount_minor for p in payments if p.received_at.date() >= charged_off_on
        )
    elif state in PAID_STATES:
        closed_on = last_payment_on or row.updated_at.date()
    elif state != AccountState.OPEN:
        closed_on = row.updated_at.date()
    if closed_on is not None and closed_on > cycle_date:  # closed after the cycle: open at the cycle
        state, closed_on, charged_off_on, charged_off_minor = AccountState.OPEN, None, None, 0
    balance = 0 if state in PAID_STATES else row.balance_minor + paid_after_cut
    ages_until = closed_on if closed_on is not None and state not in LOSS_STATES else cycle_date
    if any(h.lifted_at is None or h.lifted_at >= cut for h in disputes):
        dispute = DisputeState.OPEN
    else:
        dispute = DisputeState.RESOLVED if disputes else DisputeState.NONE
    facts = AccountFacts(
        account_id=row.account_id,
        product=Product(row.product),
        currency=row.currency,
        cycle_date=cycle_date,
        date_opened=row.created_at.date(),
        due_date=row.due_date,
        original_minor=row.opening_balance_minor,
        balance_minor=balance,
        past_due_minor=balance,  # the whole amount is overdue (intake takes overdue accounts only)
        charged_off_minor=charged_off_minor,
        days_past_due=(ages_until - row.due_date).days,
        state=state,
        closed_on=closed_on,
        charged_off_on=charged_off_on,
        settled_for_less=state == AccountState.SETTLED and waived,
        last_payment_on=last_payment_on,
        paid_in_cycle_minor=sum(p.amount_minor for p in paid_before if p.received_at >= month_start),
        dispute=dispute,
        notice_delivered_at=notice_at,
    )
    return Furnished(facts=facts, name=row.debtor.name)
