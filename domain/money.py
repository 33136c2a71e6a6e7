"""Money as integer minor units with a currency, so sums are exact and currencies never mix silently."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

# ISO 4217 exponents for the currencies we expect; anything else defaults to 2.
_EXPONENTS: dict[str, int] = {"JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "BHD": 3, "KWD": 3, "JOD": 3}


def exponent(currency: str) -> int:
    """How many minor-unit digits a currency has (2 for USD/CNY/GBP/EUR)."""
    return _EXPONENTS.get(currency.upper(), 2)


class Money(BaseModel):
    """An amount in minor units (cents, fen, pence) of one currency."""

    model_config = ConfigDict(frozen=True)

    amount: int = Field(description="Minor units, e.g. 1999 for 19.99")
    currency: str = Field(min_length=3, max_length=3)

    @field_validator("currency")
    @classmethod
    def _upper(cls, value: str) -> str:
        if not value.isalpha():
            raise ValueError("currency must be a 3-letter ISO 4217 code")
        return value.upper()

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(f"currency mismatch: {self.currency} vs {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(amount=self.amount + other.amount, currency=self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(amount=self.amount - other.amount, currency=self.currency)

    def format(self) -> str:
        """Human text such as ``USD 12.34``; used in messages and pages, never for arithmetic."""
        return format_minor(self.amount, self.currency)


def format_minor(amount: int, currency: str) -> str:
    exp = exponent(currency)
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10**exp) if exp else (abs(amount), 0)
    return f"{currency.upper()} {sign}{whole:,}" + (f".{frac:0{exp}d}" if exp else "")


def parse_major(text: str, currency: str) -> int:
    """Parse ``"123.45"`` into minor units without going through float (no rounding surprises)."""
    raw = text.strip().replace(",", "").replace("_", "")
    if not raw:
        raise ValueError("amount is empty")
    negative = raw.startswith("-")
    if negative or raw.startswith("+"):
        raw = raw[1:]
    whole, _, frac = raw.partition(".")
    exp = exponent(currency)
    if not whole.isdigit() and not (whole == "" and frac.isdigit()):
        raise ValueError(f"amount {text!r} is not a number")
    if frac and not frac.isdigit():
        raise ValueError(f"amount {text!r} is not a number")
    if len(frac) > exp:
        raise ValueError(f"amount {text!r} has more than {exp} decimal places for {currency}")
    minor = int(whole or "0") * 10**exp + int((frac or "0").ljust(exp, "0") or "0")
    return -minor if negative else minor
