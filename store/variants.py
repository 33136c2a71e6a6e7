"""Champion/challenger in the database: the audit of each assignment, each variant's results, and
the accounts a promotion moves.

The results are per variant *and currency*: recovery and contacts per unit recovered are money, and
money is never summed across currencies (a portfolio in one currency has one row per variant).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from domain.accounts import CloseReason, HoldKind, Mode
from domain.intervals import ratio_interval, wilson
from domain.money import exponent
from domain.strategy import Assignment
from store.contacts import COUNTED_ATTEMPT_STATES
from store.models import AccountRow, AuditRow, ContactAttempt, HoldRow, PlanRow

RECOVERED = (CloseReason.PAID.value, CloseReason.SETTLED.value)


def audit_assignments(s: Session, assigned: Sequence[tuple[str, Assignment]], now: datetime) -> None:
    """One ``variant_assigned`` line per new account, in the caller's (intake's) transaction.

    Written in one multi-row insert (intake stores thousands of accounts a run); each account is new,
    so no line can be a repeat. ``at`` is the wall clock, which is the account's policy clock at intake
    (its clock starts then)."""
    if not assigned:
        return
    s.execute(
        insert(AuditRow),
        [
            {
                "at": now,
                "account_id": account_id,
                "actor": "intake",
                "action": "intake",
                "decision": "variant_assigned",
                "rule": f"strategy {a.strategy}",
                "details": {"variant": a.variant, "policy": a.policy, "bucket": a.bucket},
                "wall_at": None,
            }
            for account_id, a in assigned
        ],
    )


class Rate(BaseModel):
    """``count`` of ``of`` accounts, with the 95% Wilson interval of the share."""

    model_config = ConfigDict(frozen=True)

    count: int
    of: int
    low: float
    high: float

    @property
    def share(self) -> float:
        return self.count / self.of if self.of else 0.0


def _rate(count: int, of: int) -> Rate:
    low, high = wilson(count, of)
    return Rate(count=count, of=of, low=low, high=high)


class VariantResult(BaseModel):
    """One variant's accounts in one currency, and what became of them."""

    model_config = ConfigDict(frozen=True)

    variant: str
    currency: str
    policies: list[str]  # the policy names its accounts were taken in on
    accounts: int
    open_accounts: int
    opening_minor: int
    paid_minor: int
    contacts: int
    recovered: Rate  # closed as paid or settled, of the variant's accounts
    complained: Rate  # filed at least one complaint, of the variant's accounts
    opted_out: Rate  # opted out of a channel at least once, of the variant's accounts
    broke_plan: Rate  # had a plan broken, of the variant's accounts that agreed one
    #: contacts per 100 major units recovered (estimate, low, high); None until something is recovered
    contacts_per_100: tuple[float, float, float] | None


def variant_results(s: Session) -> list[VariantResult]:
    """Every variant's results, by variant and currency (accounts in no variant are left out)."""
    accounts = s.execute(
        select(
            AccountRow.account_id,
            AccountRow.variant,
            AccountRow.currency,
            AccountRow.policy,
            AccountRow.mode,
            AccountRow.close_reason,
            AccountRow.opening_balance_minor,
            AccountRow.paid_minor,
        ).where(AccountRow.variant.is_not(None))
    ).all()
    if not accounts:
        return []
    in_variant = AccountRow.variant.is_not(None)
    contacts = dict(
        s.execute(
            select(ContactAttempt.account_id, func.count())
            .join(AccountRow, AccountRow.account_id == ContactAttempt.account_id)
            .where(in_variant, ContactAttempt.state.in_(COUNTED_ATTEMPT_STATES))
            .group_by(ContactAttempt.account_id)
        ).all()
    )

    def accounts_with(query: object) -> set[str]:
        return set(s.scalars(query).all())  # type: ignore[call-overload]

    complained = accounts_with(
        select(HoldRow.account_id)
        .join(AccountRow, AccountRow.account_id == HoldRow.account_id)
        .where(in_variant, HoldRow.kind == HoldKind.COMPLAINT.value)
        .distinct()
    )
    opted_out = accounts_with(
        select(AuditRow.account_id)
        .join(AccountRow, AccountRow.account_id == AuditRow.account_id)
        .where(in_variant, AuditRow.decision == "opted_out")
        .distinct()
    )
    plan_status: dict[str, set[str]] = defaultdict(set)
    for account_id, status in s.execute(
        select(PlanRow.account_id, PlanRow.status)
        .join(AccountRow, AccountRow.account_id == PlanRow.account_id)
        .where(in_variant)
    ).all():
        plan_status[account_id].add(status)

    groups: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for row in accounts:
        groups[(row.variant, row.currency)].append(row)
    results = []
    for (variant, currency), rows in sorted(groups.items()):
        ids = [r.account_id for r in rows]
        n = len(ids)
        with_plan = [i for i in ids if plan_status.get(i)]
        scale = 100 * 10 ** exponent(currency)  # minor units in 100 major units
        per_account = [contacts.get(i, 0) for i in ids]
        results.append(
            VariantResult(
                variant=variant,
                currency=currency,
                policies=sorted({r.policy for r in rows}),
                accounts=n,
                open_accounts=sum(1 for r in rows if r.mode != Mode.CLOSED.value),
                opening_minor=sum(r.opening_balance_minor for r in rows),
                paid_minor=sum(r.paid_minor for r in rows),
                contacts=sum(per_account),
                recovered=_rate(sum(1 for r in rows if r.close_reason in RECOVERED), n),
                complained=_rate(sum(1 for i in ids if i in complained), n),
                opted_out=_rate(sum(1 for i in ids if i in opted_out), n),
                broke_plan=_rate(sum(1 for i in with_plan if "broken" in plan_status[i]), len(with_plan)),
                contacts_per_100=ratio_interval(per_account, [r.paid_minor / scale for r in rows]),
            )
        )
    return results


def open_accounts_in(s: Session, variant: str) -> list[str]:
    """The open accounts stored in ``variant``: the ones ``strategy promote --upgrade-running`` moves."""
    return list(
        s.scalars(
            select(AccountRow.account_id)
            .where(AccountRow.variant == variant, AccountRow.mode != Mode.CLOSED.value)
            .order_by(AccountRow.account_id)
        ).all()
    )
