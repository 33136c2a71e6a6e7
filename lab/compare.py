"""Policies side by side on one portfolio: what ``./collect simulate`` and the console's what-if run.

Each policy gets its own :class:`~lab.engine.Portfolio` (its own campaign for the call governor) over
the same accounts from the same start, so the only difference between two columns of the report is
the policy. An account may come with channels it has already lost (a stored account that replied STOP
or whose number is dead): the simulation starts from that, as the account's workflow would.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.accounts import Account, AccountTerms, Channel
from domain.agencies import AgencyBook, load_agencies
from domain.cadence import usable_channels
from domain.policy import Policy
from lab.behaviour import Behaviour, CarrierTable
from lab.debtors import DebtorModel
from lab.engine import Portfolio, SimAccount
from lab.report import Prices, Summary, summarise


@dataclass(frozen=True, slots=True)
class LabAccount:
    account: Account
    opted_out: tuple[Channel, ...] = ()
    unreachable: tuple[Channel, ...] = ()


def run_policy(
    name: str,
    policies: Mapping[str, Policy],
    accounts: Sequence[Account | LabAccount],
    start: datetime,
    days: int,
    prices: Prices,
    *,
    behaviour: Behaviour | None = None,
    agencies: AgencyBook | None = None,
    on_day: Callable[[int], None] | None = None,
    debtors: DebtorModel | None = None,
) -> Summary:
    """Every account under the policy ``name`` (a key of ``policies``, or a file in ``policies/``);
    ``debtors``: what debtors do once reached (None: they never pay, plan, STOP or complain)."""
    lab = Portfolio(
        behaviour or CarrierTable(),
        agencies if agencies is not None else load_agencies(),
        policies=dict(policies),
        debtors=debtors,
    )
    for given in accounts:
        item = given if isinstance(given, LabAccount) else LabAccount(given)
        terms = AccountTerms.from_account(item.account.model_copy(update={"policy": name}))
        sim = SimAccount(terms, item.account.debtor.phone, start)
        if item.opted_out or item.unreachable:
            c = sim.carried
            c.opted_out, c.unreachable = list(item.opted_out), list(item.unreachable)
            c.contact_lost = not usable_channels(c)
        lab.open(sim)
    for day in range(1, days + 1):  # day by day, so a caller can show progress
        lab.run(start + timedelta(days=day))
        if on_day is not None:
            on_day(day)
    return summarise(name, lab, start, days, prices)


def run_policies(
    policies: Mapping[str, Policy],
    accounts: Sequence[Account | LabAccount],
    start: datetime,
    days: int,
    prices: Prices,
    *,
    debtors: DebtorModel | None = None,
) -> list[Summary]:
    """One summary per policy, in the mapping's order (the report's columns)."""
    return [run_policy(name, policies, accounts, start, days, prices, debtors=debtors) for name in policies]


__all__ = ["LabAccount", "run_policies", "run_policy"]
