"""Charges that accrue on an overdue amount, day by day in the debtor's calendar, within the law.

The state (:class:`Charges`) rides in workflow state through continue-as-new, so it holds *segments*
(runs of days with the same principal, rate and reason) rather than one row per day: it grows with the
number of balance changes and freezes, not with time. Every day's figure is reproduced from it on
request (:func:`days`), so the status, the page and the audit can show each day and the formula.

Rounding without drift: within a segment the *running total* is rounded once per day
(``round(principal x rate x k / (10000 x day_count))`` for day ``k``) and a day's figure is the
difference of two running totals, so the days of a month always add up to the month's rounded interest.

Payments are applied fees first, then interest, then principal: the order of PRC Civil Code art. 561
(costs of enforcing the claim, interest, principal), with late fees taken as those costs, unless the
contract says otherwise. A waiver (a plan's 减免 or forbearance) takes fees first, then interest; it never
makes room under the total-cost cap, which counts every charge ever added.
"""

from __future__ import annotations

from datetime import date, timedelta

from pydantic import BaseModel, ConfigDict, Field

from domain.charge_terms import (
    BP,
    ChargeCaps,
    ChargeRules,
    Rounding,
    caps_in_force,
    effective_rate,
    formula,
    freeze_reason,
    freeze_source,
)
from domain.money import check_currency

__all__ = [
    "Allocation",
    "ChargeCaps",
    "ChargeRules",
    "Charges",
    "DayFigure",
    "FeeCharge",
    "Segment",
    "accrue",
    "allocate",
    "caps_in_force",
    "days",
    "formula",
    "freeze_reason",
    "owed",
    "pay",
    "start",
    "waive",
]

GRACE = "grace"
NO_PRINCIPAL = "no_principal"
CAPPED_TOTAL = "capped:total_cost"


def rounded(numerator: int, denominator: int, rule: Rounding) -> int:
    """``numerator / denominator`` to a whole minor unit by the stated rule (both non-negative)."""
    q, r = divmod(numerator, denominator)
    if rule == "down" or 2 * r < denominator:
        return q
    if 2 * r > denominator or rule == "half_up":
        return q + 1
    return q + (q % 2)  # half_even: an exact half goes to the even neighbour


class Segment(BaseModel):
    """Consecutive days with one principal, rate and reason; ``interest`` is what they added in all."""

    model_config = ConfigDict(frozen=True)

    start: date
    days: int = Field(ge=0)
    principal: int
    rate_bp: int
    day_count: int
    rounding: Rounding
    rate_capped: bool = False
    zero: str | None = Field(
        default=None,
        description="Why nothing accrues: grace, no_principal, frozen:<plan_kept|hold:kind>, capped:total_cost",
    )
    interest: int = 0

    def running(self, k: int) -> int:
        """Interest of the segment's first ``k`` days, as added (the cap-cut last day included)."""
        if self.zero is not None or k <= 0:
            return 0
        return min(
            self.interest, rounded(self.principal * self.rate_bp * k, BP * self.day_count, self.rounding)
        )


class FeeCharge(BaseModel):
    model_config = ConfigDict(frozen=True)

    day: date
    amount: int
    capped: str | None = Field(default=None, description="fee, fee_total or total_cost: the cap that cut it")


class Charges(BaseModel):
    """What an overdue amount has accrued, and enough to reproduce every day's figure."""

    model_config = ConfigDict(frozen=True)

    currency: str
    enabled: bool = Field(description="False: the policy has no charges (or not for this product)")
    original: int = Field(ge=0, description="The amount first owed, base of the total-cost cap")
    first_day: date = Field(description="First overdue day, in the debtor's calendar")
    through: date = Field(description="Last day accrued (the day before first_day until the first accrual)")
    principal: int = Field(ge=0, description="Principal outstanding")
    interest: int = Field(default=0, ge=0, description="Interest accrued and unpaid")
    fees: int = Field(default=0, ge=0, description="Late fees charged and unpaid")
    interest_added: int = 0
    fees_added: int = 0
    paid_fees: int = 0
    paid_interest: int = 0
    paid_principal: int = 0
    waived_fees: int = 0
    waived_interest: int = 0
    fee_count: int = 0
    fee_charges: list[FeeCharge] = Field(default_factory=list)
    segments: list[Segment] = Field(default_factory=list)
    frozen: str | None = Field(default=None, description="Why the last day accrued was frozen, if it was")
    total_cap: int | None = Field(
        default=None, description="Charges ever added may not pass this (minor units)"
    )
    cap_reached: str | None = Field(default=None, description="total_cost once the total-cost cap is full")
    cap_source: str | None = None
    cap_day: date | None = None

    @property
    def added(self) -> int:
        return self.interest_added + self.fees_added

    @property
    def charges_due(self) -> int:
        return self.interest + self.fees


class DayFigure(BaseModel):
    """One day's charges and why they are what they are, for the status, the page and the audit."""

    model_config = ConfigDict(frozen=True)

    day: date
    principal: int
    rate_bp: int
    interest: int
    fee: int = 0
    running_total: int = Field(description="Charges ever added through this day")
    notes: list[str] = Field(
        default_factory=list,
        description="grace, frozen:<reason>, no_principal, capped:annual_rate|fee|fee_total|total_cost, "
        "fee_skipped:<reason>, no_charges",
    )
    sources: list[str] = Field(
        default_factory=list, description="The legal source of each cap or freeze noted"
    )


class Allocation(BaseModel):
    model_config = ConfigDict(frozen=True)

    fees: int = 0
    interest: int = 0
    principal: int = 0
    unapplied: int = Field(default=0, description="More than was owed: for the refund queue")


def start(
    rules: ChargeRules | None,
    caps: ChargeCaps | None,
    principal: int,
    currency: str,
    first_day: date,
    *,
    product: str | None = None,
) -> Charges:
    """Charges for an amount first overdue on ``first_day``; nothing accrued yet.

    ``caps`` are the caps in force (:func:`caps_in_force` of the profile). The total-cost cap is fixed
    here, on the amount first owed, rounded down (never a unit over the law).
    """
    if principal < 0:
        raise ValueError(f"principal: must be >= 0 minor units, not {principal}")
    code = check_currency(currency)
    enabled = (
        rules is not None and rules.charges_anything(code) and (product is None or rules.applies_to(product))
    )
    total = caps.total_cost if caps else None
    return Charges(
        currency=code,
        enabled=enabled,
        original=principal,
        first_day=first_day,
        through=first_day - timedelta(days=1),
        principal=principal,
        total_cap=principal * total.bp // BP if total else None,
        cap_source=total.source if total else None,
    )


def _fee_day(rules: ChargeRules, offset: int) -> bool:
    """Whether day ``offset`` (0 = first overdue day) is one the late fee falls due on."""
    i = offset - rules.grace_days
    return i == 0 or (i > 0 and rules.fee_every_days is not None and i % rules.fee_every_days == 0)


def _fee_amount(
    rules: ChargeRules, caps: ChargeCaps | None, c: str, fees_added: int
) -> tuple[int, str | None]:
    amount, capped = rules.late_fee.get(c, 0), None
    if caps and caps.fee:
        each = caps.fee.each.get(c)
        if each is not None and amount > each:
            amount, capped = each, "fee"
        total = caps.fee.total.get(c)
        if total is not None and amount > total - fees_added:
            amount, capped = max(0, total - fees_added), "fee_total"
    return amount, capped


def accrue(
    charges: Charges, rules: ChargeRules | None, caps: ChargeCaps | None, through: date, frozen: str | None
) -> Charges:
    """Accrue every day after ``charges.through`` up to ``through``; ``frozen`` applies to all of them.

    Idempotent: a day already accrued is never accrued again (a replayed or repeated call adds nothing).
    Call it daily with the day's freeze reason (:func:`freeze_reason`); a call that catches up several
    days gives them all the same reason. Per day: the interest, then the late fee if one falls due,
    each cut to the room left under the total-cost cap (the day it bites is filled exactly to it).
    """
    if through <= charges.through:
        return charges
    if not charges.enabled or rules is None:
        return charges.model_copy(update={"through": through, "frozen": frozen})
    c = charges.currency
    rate, rate_capped = effective_rate(rules, caps)
    segments = list(charges.segments)
    interest_added, fees_added, fee_count = charges.interest_added, charges.fees_added, charges.fee_count
    fee_charges = list(charges.fee_charges)
    cap_reached, cap_day = charges.cap_reached, charges.cap_day
    total_cap, principal = charges.total_cap, charges.principal
    day = charges.through + timedelta(days=1)
    while day <= through:
        offset = (day - charges.first_day).days
        zero: str | None
        if offset < rules.grace_days:
            zero = GRACE
        elif frozen:
            zero = f"frozen:{frozen}"
        elif principal <= 0:
            zero = NO_PRINCIPAL
        elif cap_reached:
            zero = f"capped:{cap_reached}"
        else:
            zero = None
        key = (principal, rate, rules.day_count, rules.rounding, rate_capped, zero)
        last = segments[-1] if segments else None
        if (
            last is not None
            and (last.principal, last.rate_bp, last.day_count, last.rounding, last.rate_capped, last.zero)
            == key
            and last.start + timedelta(days=last.days) == day
            and not (last.zero is None and cap_reached)
        ):
            seg = last
            segments.pop()
        else:
            seg = Segment(
                start=day,
                days=0,
                principal=principal,
                rate_bp=rate,
                day_count=rules.day_count,
                rounding=rules.rounding,
                rate_capped=rate_capped,
                zero=zero,
            )
        k = seg.days + 1
        figure = 0
        if zero is None:
            figure = rounded(principal * rate * k, BP * rules.day_count, rules.rounding) - seg.interest
            if total_cap is not None and figure >= total_cap - interest_added - fees_added:
                figure = total_cap - interest_added - fees_added
                cap_reached, cap_day = "total_cost", day
        segments.append(seg.model_copy(update={"days": k, "interest": seg.interest + figure}))
        interest_added += figure
        if zero is None and not cap_reached and fee_count < rules.max_fees and _fee_day(rules, offset):
            amount, capped = _fee_amount(rules, caps, c, fees_added)
            if total_cap is not None and amount >= total_cap - interest_added - fees_added:
                amount, capped = total_cap - interest_added - fees_added, "total_cost"
                cap_reached, cap_day = "total_cost", day
            if amount > 0:
                fee_charges.append(FeeCharge(day=day, amount=amount, capped=capped))
                fees_added += amount
                fee_count += 1
        day += timedelta(days=1)
    return charges.model_copy(
        update={
            "through": through,
            "frozen": frozen,
            "segments": segments,
            "interest": charges.interest + interest_added - charges.interest_added,
            "fees": charges.fees + fees_added - charges.fees_added,
            "interest_added": interest_added,
            "fees_added": fees_added,
            "fee_count": fee_count,
            "fee_charges": fee_charges,
            "cap_reached": cap_reached,
            "cap_day": cap_day,
        }
    )


def owed(charges: Charges) -> int:
    """All the debtor owes now: principal, interest and fees."""
    return charges.principal + charges.interest + charges.fees


def allocate(charges: Charges, amount: int) -> Allocation:
    """How a payment is applied: fees, then interest, then principal (PRC Civil Code art. 561 order)."""
    if amount < 0:
        raise ValueError(f"amount: a payment must be >= 0 minor units, not {amount}")
    fees = min(amount, charges.fees)
    interest = min(amount - fees, charges.interest)
    principal = min(amount - fees - interest, charges.principal)
    return Allocation(
        fees=fees, interest=interest, principal=principal, unapplied=amount - fees - interest - principal
    )


def pay(charges: Charges, amount: int) -> Charges:
    """The charges after a payment (see :func:`allocate`; an excess is left out, see ``unapplied``).

    The new principal bears interest from the day after ``charges.through``: accrue through the day
    before the payment's day first, so the payment's own day is charged on what is left.
    """
    a = allocate(charges, amount)
    return charges.model_copy(
        update={
            "fees": charges.fees - a.fees,
            "interest": charges.interest - a.interest,
            "principal": charges.principal - a.principal,
            "paid_fees": charges.paid_fees + a.fees,
            "paid_interest": charges.paid_interest + a.interest,
            "paid_principal": charges.paid_principal + a.principal,
        }
    )


def waive(charges: Charges, amount: int | None = None) -> Charges:
    """Charges after waiving ``amount`` of them (None: all), fees first, then interest. Never principal."""
    due = charges.charges_due
    amount = due if amount is None else amount
    if amount < 0:
        raise ValueError(f"waiver: must be >= 0 minor units, not {amount}")
    if amount > due:
        raise ValueError(
            f"waiver: {amount} is more than the charges due ({due}); principal is never waived here"
        )
    fees = min(amount, charges.fees)
    interest = amount - fees
    return charges.model_copy(
        update={
            "fees": charges.fees - fees,
            "interest": charges.interest - interest,
            "waived_fees": charges.waived_fees + fees,
            "waived_interest": charges.waived_interest + interest,
        }
    )


def days(charges: Charges, rules: ChargeRules | None, caps: ChargeCaps | None) -> list[DayFigure]:
    """Each day accrued, its interest and fee, and why a figure is zero or cut (with the legal source)."""
    if not charges.enabled or rules is None or not charges.segments:
        out: list[DayFigure] = []
        day = charges.first_day
        while day <= charges.through:
            out.append(
                DayFigure(
                    day=day,
                    principal=charges.principal,
                    rate_bp=0,
                    interest=0,
                    running_total=0,
                    notes=["no_charges"],
                )
            )
            day += timedelta(days=1)
        return out
    fees_by_day = {f.day: f for f in charges.fee_charges}
    rate_source = caps.annual_rate.source if caps and caps.annual_rate else ""
    out = []
    running = fee_count = 0
    for seg in charges.segments:
        for k in range(1, seg.days + 1):
            day = seg.start + timedelta(days=k - 1)
            interest = seg.running(k) - seg.running(k - 1)
            notes: list[str] = []
            sources: list[str] = []
            if seg.zero is not None:
                notes.append(seg.zero)
                if seg.zero.startswith("frozen:"):
                    sources.append(freeze_source(rules, caps, seg.zero.removeprefix("frozen:")))
                elif seg.zero == CAPPED_TOTAL and charges.cap_source:
                    sources.append(charges.cap_source)
            elif seg.rate_capped:
                notes.append("capped:annual_rate")
                sources.append(rate_source)
            fee = fees_by_day.get(day)
            if fee is not None:
                fee_count += 1
                if fee.capped:
                    notes.append(f"capped:{fee.capped}")
                    sources.append(_cap_source(caps, charges, fee.capped))
            elif (
                seg.zero not in (GRACE, NO_PRINCIPAL)
                and _fee_day(rules, (day - charges.first_day).days)
                and fee_count < rules.max_fees
                and rules.late_fee.get(charges.currency, 0)
            ):
                if seg.zero is not None:
                    notes.append(f"fee_skipped:{seg.zero}")
                elif charges.cap_day != day:  # the per-currency total of late fees is used up
                    notes.append("capped:fee_total")
                    sources.append(_cap_source(caps, charges, "fee_total"))
            if (
                seg.zero is None
                and charges.cap_day == day
                and (fee is None or fee.capped != "total_cost")
                and CAPPED_TOTAL not in notes
            ):
                notes.append(CAPPED_TOTAL)
                sources.append(charges.cap_source or "")
            running += interest + (fee.amount if fee else 0)
            out.append(
                DayFigure(
                    day=day,
                    principal=seg.principal,
                    rate_bp=seg.rate_bp,
                    interest=interest,
                    fee=fee.amount if fee else 0,
                    running_total=running,
                    notes=notes,
                    sources=[s for s in sources if s],
                )
            )
    return out


def _cap_source(caps: ChargeCaps | None, charges: Charges, cap: str) -> str:
    if cap == "total_cost":
        return charges.cap_source or ""
    return caps.fee.source if caps and caps.fee else ""
