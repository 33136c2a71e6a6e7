"""Penalty interest and late fees on a running account (issue 15): when they accrue, and into what.

The rules are pure functions (:mod:`domain.charges`); this is where a run applies them. The
account's :class:`~domain.charges.Charges` are part of its one state, so a hand-over carries them.
A day's charges are added once the day is over in the debtor's calendar, when the run next wakes
(every wake and every payment catches up first), so a payment made today is never charged today's
interest on what it paid. What was added rides on the wake's next write (the balance and an audit
line): no write and no wake of its own, however many days it covers.

Nothing accrues for a run whose policy has no ``[charges]`` (every run recorded before issue 15
carries such a policy), inside the grace period, while a plan is kept, under a hold the rules name,
or once the run has begun to close (charge-off: the lender posts it and interest stops).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.accounts import Mode
    from domain.cadence import active_holds, local_date
    from domain.charge_terms import effective_rate, freeze_reason, percent
    from domain.charge_view import ChargesAnswer, ChargesSummary, answer, summarise
    from domain.charges import Charges, accrue, pay, start
    from domain.money import format_minor
    from workflows.state import AccountState


def begin(state: AccountState) -> Charges | None:
    """The charges of an account taken in under a policy that has them; None otherwise."""
    rules = state.rules.policy.charges
    if rules is None:
        return None
    terms = state.terms
    first = terms.due_date + timedelta(days=state.rules.policy.grace_for(terms.product) + 1)
    return start(
        rules,
        state.rules.profile.charge_caps_in_force,
        max(terms.balance - terms.fees, 0),
        terms.currency,
        first,
        product=terms.product.value,
    )


def caught_up(state: AccountState, now: datetime) -> Charges | None:
    """The charges with every ended day accrued (pure: the state is not touched); None: none apply."""
    charges = state.charges
    if charges is None or not charges.enabled or state.closing or state.mode == Mode.CLOSED:
        return None
    through = local_date(now, state.terms) - timedelta(days=1)
    if through <= charges.through:
        return charges
    rules, caps = state.rules.policy.charges, state.rules.profile.charge_caps_in_force
    frozen = freeze_reason(
        rules,
        caps,
        plan_kept=state.mode == Mode.SETTLEMENT,
        holds=active_holds(state.carried, now),
    )
    return accrue(charges, rules, caps, through, frozen)


def catch_up(state: AccountState, now: datetime) -> str | None:
    """Accrue every day that has ended; add what was added to the balance. Returns the audit line."""
    before, after = state.charges, caught_up(state, now)
    if before is None or after is None or after is before:
        return None
    state.charges = after
    added = after.added - before.added
    if added <= 0:
        return None
    state.carried.balance += added
    money = lambda minor: format_minor(minor, after.currency)  # noqa: E731
    interest = after.interest_added - before.interest_added
    fees = after.fees_added - before.fees_added
    capped = f"; {after.cap_reached} cap reached" if after.cap_reached and not before.cap_reached else ""
    rules, caps = state.rules.policy.charges, state.rules.profile.charge_caps_in_force
    assert rules is not None
    rate, cut = effective_rate(rules, caps)
    how = f"{percent(rate)} a year" + (
        f" (the contract's {percent(rules.penalty_rate_bp)} capped)" if cut else ""
    )
    return (
        f"{money(interest)} interest at {how} and {money(fees)} fees for "
        f"{before.through + timedelta(days=1)}..{after.through}; {money(after.added)} added in all{capped}"
    )


def owed_now(state: AccountState, now: datetime) -> int:
    """The balance a payment made now must cover: what the status query and the debtor's page say,
    so a debtor who pays the figure shown is paid in full (the run adds the same days first)."""
    before, after = state.charges, caught_up(state, now)
    if before is None or after is None:
        return state.carried.balance
    return state.carried.balance + after.added - before.added


def paid(state: AccountState, amount: int) -> None:
    """A payment goes to the charges' fees, then interest, then principal (domain.charges.allocate)."""
    if state.charges is not None and state.charges.enabled:
        state.charges = pay(state.charges, amount)


def due(state: AccountState) -> int:
    """Charges added and not paid: a fee-waiver plan may waive them with the fees taken in."""
    return state.charges.charges_due if state.charges is not None and state.charges.enabled else 0


def summary(state: AccountState, now: datetime) -> ChargesSummary | None:
    charges = caught_up(state, now) or state.charges
    if charges is None or not charges.enabled:
        return None
    return summarise(charges, state.rules.policy.charges, state.rules.profile.charge_caps_in_force)


def every_day(state: AccountState, now: datetime) -> ChargesAnswer | None:
    charges = caught_up(state, now) or state.charges
    if charges is None or not charges.enabled:
        return None
    return answer(charges, state.rules.policy.charges, state.rules.profile.charge_caps_in_force)
