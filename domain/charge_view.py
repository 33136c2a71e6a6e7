"""What the status query, the console and the debtor's page say about an account's charges (issue 15).

A summary, small enough for every ``status`` answer; each day's figure is a separate query
(``charges``), asked only when someone opens it.
"""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from domain.charge_terms import ChargeCaps, ChargeRules, formula
from domain.charges import Charges, DayFigure, days


class ChargesSummary(BaseModel):
    """The charges added to the balance so far, and the rule that added them."""

    model_config = ConfigDict(frozen=True)

    currency: str
    interest_added: int = Field(description="Penalty interest added so far (minor units)")
    fees_added: int = Field(description="Late fees added so far (minor units)")
    charges_due: int = Field(description="Charges added and not yet paid or waived")
    through: date | None = Field(description="The last day accrued; None: none yet")
    starts: date = Field(description="The first day charges may accrue (the day after the grace period)")
    frozen: str | None = Field(description="Why nothing accrues now (plan_kept, hold:<kind>)")
    capped: str | None = Field(description="The cap that stopped the charges, if one did")
    cap_source: str | None = None
    formula: dict[str, str] = Field(description="How a day's figure is worked out, by language")


class ChargesAnswer(BaseModel):
    """The ``charges`` query: the summary and every day's figure."""

    summary: ChargesSummary
    days: list[DayFigure]


def summarise(charges: Charges, rules: ChargeRules | None, caps: ChargeCaps | None) -> ChargesSummary:
    accrued = charges.through >= charges.first_day
    return ChargesSummary(
        currency=charges.currency,
        interest_added=charges.interest_added,
        fees_added=charges.fees_added,
        charges_due=charges.charges_due,
        through=charges.through if accrued else None,
        starts=charges.first_day,
        frozen=charges.frozen,
        capped=charges.cap_reached,
        cap_source=charges.cap_source if charges.cap_reached else None,
        formula={lang: formula(rules, caps, lang, charges.currency) for lang in ("en", "zh-CN")},
    )


def answer(charges: Charges, rules: ChargeRules | None, caps: ChargeCaps | None) -> ChargesAnswer:
    return ChargesAnswer(summary=summarise(charges, rules, caps), days=days(charges, rules, caps))
