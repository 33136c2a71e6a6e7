"""Money as integer minor units with a currency, so sums are exact and currencies never mix silently."""

from __future__ import annotations

import re
import unicodedata

from iso4217 import Currency as _Iso4217
from pydantic import BaseModel, ConfigDict, Field, field_validator

#: The largest single payment the system takes, in minor units (10 billion in a 2-digit currency): far
#: beyond any consumer debt, and well inside a 64-bit integer column and a JSON number.
MAX_PAYMENT_MINOR = 10**12

#: Every ISO 4217 currency in circulation and its minor unit, from the ISO list itself (the ``iso4217``
#: package follows ISO's maintenance agency; a hand-typed table went stale: ISK has no minor unit, TND
#: three). Funds, metals and the "no currency" code (XXX, XAU, XDR…) have none and are not taken.
CURRENCIES: dict[str, int] = {c.code: c.exponent for c in _Iso4217 if c.exponent is not None}


def exponent(currency: str) -> int:
    """How many minor-unit digits a currency has (2 for USD/CNY/GBP/EUR, 0 for JPY, 3 for KWD).

    An unknown code (only in rows stored before currencies were checked) is shown with 2."""
    return CURRENCIES.get(currency.upper(), 2)


def check_currency(value: str) -> str:
    """The upper-case code, or a ValueError naming why it can't be money here."""
    code = value.strip().upper()
    if len(code) != 3 or not code.isascii() or not code.isalpha():
        raise ValueError("currency must be a 3-letter ISO 4217 code")
    if code not in CURRENCIES:
        raise ValueError(
            f"currency {value.strip()!r} is not an ISO 4217 currency in use (e.g. USD, EUR, CNY, JPY)"
        )
    return code


class Money(BaseModel):
    """An amount in minor units (cents, fen, pence) of one currency."""

    model_config = ConfigDict(frozen=True)

    amount: int = Field(description="Minor units, e.g. 1999 for 19.99")
    currency: str = Field(min_length=3, max_length=3)

    @field_validator("currency")
    @classmethod
    def _upper(cls, value: str) -> str:
        return check_currency(value)

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


#: Signs written before or after an amount, and the currencies each may stand for. A sign that can't
#: be the row's currency is an error, never silently dropped ("€12.50" on a USD account).
SIGNS: dict[str, frozenset[str]] = {
    "$": frozenset({"USD", "CAD", "AUD", "NZD", "SGD", "HKD", "MXN", "TWD"}),
    "US$": frozenset({"USD"}),
    "€": frozenset({"EUR"}),
    "£": frozenset({"GBP"}),
    "¥": frozenset({"CNY", "JPY"}),
    "元": frozenset({"CNY"}),
    "円": frozenset({"JPY"}),
    "₩": frozenset({"KRW"}),
    "₹": frozenset({"INR"}),
}
# Thousands separators besides the one the locale reserves: spaces (plain, no-break, narrow) and the
# Swiss apostrophe. "_" is what a programmer types.
_SPACES = (" ", "\u00a0", "\u202f", "'", "_")
_DIGITS = re.compile(r"^[0-9]+$")


def _strip_sign(raw: str, currency: str, text: str) -> str:
    """Take a currency sign or code off either end, if it may be ``currency``."""
    for sign in sorted([*SIGNS, *([currency.upper()] if currency else [])], key=len, reverse=True):
        for cut in (raw.removeprefix(sign), raw.removesuffix(sign)):
            if cut != raw:
                allowed = SIGNS.get(sign, frozenset({currency.upper()}))
                if currency.upper() not in allowed:
                    raise ValueError(
                        f"amount {text!r} is marked {sign} but the currency is {currency.upper()}"
                    )
                return cut.strip()
    return raw


def parse_major(text: str, currency: str, *, decimal_comma: bool = False) -> int:
    """Parse ``"1,234.50"`` into minor units without going through float (no rounding surprises).

    The decimal mark is ``.``, or ``,`` with ``decimal_comma`` (European files). Grouping is taken only
    where it can mean one thing: groups of exactly three digits. "12,50" in a decimal-point file is an
    error naming the reason, not 1,250.00 (a decimal comma read as a thousands separator is 100× the
    debt); so is "12.50" in a decimal-comma file. Full-width digits and signs are read as their
    ASCII forms (NFKC), and a currency sign or code is taken off if it is the currency's own.
    """
    if any(unicodedata.category(c) == "No" for c in text):  # ², ½: NFKC would make "1²" twelve
        raise ValueError(f"amount {text!r} is not a number")
    raw = unicodedata.normalize("NFKC", text).strip()
    if not raw:
        raise ValueError("amount is empty")
    negative = raw.startswith("-")
    if negative or raw.startswith("+"):
        raw = raw[1:].strip()
    raw = _strip_sign(raw, currency, text)
    if raw.startswith("-") and not negative:
        negative, raw = True, raw[1:].strip()
    point, group = (",", ".") if decimal_comma else (".", ",")
    if raw.count(point) > 1:
        raise ValueError(f"amount {text!r} is not a number")
    whole, _, frac = raw.partition(point)
    separators = {c for c in whole if not c.isdigit()}
    if separators:
        sep = separators.pop()
        if separators or sep not in (group, *_SPACES):
            raise ValueError(f"amount {text!r} is not a number")
        groups = whole.split(sep)
        if not (1 <= len(groups[0]) <= 3 and all(len(g) == 3 for g in groups[1:])):
            if sep == group:
                raise ValueError(
                    f"amount {text!r} is ambiguous: the decimal mark here is {point!r}, and {sep!r} only "
                    "groups thousands (by three)"
                )
            raise ValueError(f"amount {text!r} has digits grouped other than by three")
        whole = "".join(groups)
    if not (_DIGITS.match(whole) or (whole == "" and _DIGITS.match(frac))):
        raise ValueError(f"amount {text!r} is not a number")
    if frac and not _DIGITS.match(frac):
        raise ValueError(f"amount {text!r} is not a number")
    exp = exponent(currency)
    if len(frac) > exp:
        if exp == 0:
            raise ValueError(f"amount {text!r} has decimals, but {currency.upper()} has no minor unit")
        raise ValueError(f"amount {text!r} has more than {exp} decimal places for {currency.upper()}")
    minor = int(whole or "0") * 10**exp + int((frac or "0").ljust(exp, "0") or "0")
    return -minor if negative else minor
