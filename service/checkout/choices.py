"""What the debtor may pay from their page, and the amount a choice comes to: pure, so the page, the
post and the tests agree.

The choices are the whole balance, the instalment that is due next (what is still due on it after part
payments), or an amount of their own between one minor unit and the balance: never more than is owed,
so a checkout cannot create a refund.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from domain.accounts import Mode
from domain.money import parse_major
from domain.plans import next_instalment
from domain.timeline import AccountStatus
from service.checkout.provider import Purpose

CHARGED_OFF = "charged_off"  # ``status.closing`` of a charged-off run (placed or not)


@dataclass(frozen=True)
class PayChoices:
    currency: str
    balance: int
    instalment_due: date | None = None
    instalment_amount: int | None = None


class AmountProblem(ValueError):
    """A choice that does not come to a payable amount; ``field`` is the form's field at fault."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


def pay_choices(status: AccountStatus) -> PayChoices | None:
    """None when nothing can be paid from the page: nothing owed, or a run that is closing for a reason
    that sends any money back (written off, complaint upheld …). A charged-off run (placed with an
    agency, or open for payments a while) still takes them: they lower what is owed."""
    if status.balance <= 0 or status.closing not in (None, CHARGED_OFF):
        return None
    if status.mode == Mode.CLOSED and status.closing is None:
        return None
    due = next_instalment(status.plan, status.plan_paid) if status.plan is not None else None
    if due is None:
        return PayChoices(status.currency, status.balance)
    instalment, amount = due
    return PayChoices(status.currency, status.balance, instalment.due_date, min(amount, status.balance))


def amount_for(choices: PayChoices, purpose: str, typed: str = "") -> tuple[Purpose, int]:
    """The purpose and amount (minor units) the debtor chose; :class:`AmountProblem` says why not."""
    try:
        chosen = Purpose(purpose)
    except ValueError:
        raise AmountProblem("what", "choose the balance, the next instalment or an amount") from None
    if chosen == Purpose.BALANCE:
        return chosen, choices.balance
    if chosen == Purpose.INSTALMENT:
        if choices.instalment_amount is None:
            raise AmountProblem("what", "there is no instalment due")
        return chosen, choices.instalment_amount
    try:
        amount = parse_major(typed, choices.currency)
    except ValueError as err:
        raise AmountProblem("amount", str(err)) from None
    if not 0 < amount <= choices.balance:
        raise AmountProblem("amount", "must be more than zero and at most the balance")
    return chosen, amount
