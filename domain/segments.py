"""A segment of a portfolio: which accounts a what-if compares policies on (issue 17).

A supervisor narrows a comparison the way a collection leader thinks of a book: a jurisdiction, a
product, a balance band and a days-past-due band, each left open to mean "all". The same model
selects stored accounts (``store/segments.py`` turns it into SQL) and synthetic ones (:func:`matches`),
so a seeded portfolio and the real one are cut by the same definition.

The balance band is in major units of each account's own currency ("100 to 5000" is USD 100 for a US
account and GBP 100 for a UK one): a book is banded in its own money, and no exchange rate is
implied. Days past due are counted in UTC's calendar, a day's difference at most from the debtor's.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.accounts import Account, Product
from domain.money import exponent


class Segment(BaseModel):
    """Accounts to compare policies on; every field None means "any"."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    profile: str | None = Field(default=None, description="Jurisdiction profile (US, UK, CN)")
    product: Product | None = None
    balance_min: Decimal | None = Field(default=None, ge=0, description="Major units, own currency")
    balance_max: Decimal | None = Field(default=None, ge=0, description="Major units, own currency")
    dpd_min: int | None = Field(default=None, ge=-366, le=3650)
    dpd_max: int | None = Field(default=None, ge=-366, le=3650)

    @model_validator(mode="after")
    def _bands(self) -> Segment:
        if (
            self.balance_min is not None
            and self.balance_max is not None
            and self.balance_max < self.balance_min
        ):
            raise ValueError("balance_max must not be below balance_min")
        if self.dpd_min is not None and self.dpd_max is not None and self.dpd_max < self.dpd_min:
            raise ValueError("dpd_max must not be below dpd_min")
        return self

    def describe(self) -> str:
        """One line for the page and the audit log, e.g. "US, credit_line, balance 100-5000, dpd 30-90"."""
        parts = [self.profile or "every profile", self.product.value if self.product else "every product"]
        if self.balance_min is not None or self.balance_max is not None:
            parts.append(f"balance {_band(self.balance_min, self.balance_max)}")
        if self.dpd_min is not None or self.dpd_max is not None:
            parts.append(f"dpd {_band(self.dpd_min, self.dpd_max)}")
        return ", ".join(parts)

    def due_dates(self, today: date) -> tuple[date | None, date | None]:
        """The due dates the dpd band means on ``today``: (earliest, latest), None where open."""
        earliest = today - timedelta(days=self.dpd_max) if self.dpd_max is not None else None
        latest = today - timedelta(days=self.dpd_min) if self.dpd_min is not None else None
        return earliest, latest

    def balance_minor(self, currency: str) -> tuple[int | None, int | None]:
        """The balance band in ``currency``'s minor units."""
        return _minor(self.balance_min, currency), _minor(self.balance_max, currency)


def matches(segment: Segment, account: Account, today: date) -> bool:
    """Whether an account (as intake knows it) falls in the segment on ``today``."""
    if segment.profile is not None and account.profile != segment.profile:
        return False
    if segment.product is not None and account.product != segment.product:
        return False
    low, high = segment.balance_minor(account.currency)
    if (low is not None and account.balance < low) or (high is not None and account.balance > high):
        return False
    earliest, latest = segment.due_dates(today)
    return not (
        (earliest is not None and account.due_date < earliest)
        or (latest is not None and account.due_date > latest)
    )


def _minor(value: Decimal | None, currency: str) -> int | None:
    if value is None:
        return None
    return int((value * 10 ** exponent(currency)).to_integral_value())


def _band(low: object, high: object) -> str:
    if low is None:
        return f"up to {high}"
    if high is None:
        return f"{low} or more"
    return f"{low}-{high}"
