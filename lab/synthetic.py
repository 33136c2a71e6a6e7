"""A seeded synthetic portfolio: the same accounts for the workflows and for the simulator.

Numbers are in fictional ranges per country, and their last two digits choose what the carrier
simulator (and :class:`lab.behaviour.CarrierTable`) does with a text or a call; the default digits
leave out the silent callee (00-69 people and machines, 75-89 no answer, busy, failed), so a
campaign's call governor never pauses voice. Pass ``digits=range(100)`` for every outcome.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from domain.accounts import Account, Debtor, Product
from domain.gate import debtor_zones

#: every outcome of the carrier table but the silent callee (see carrier/outcomes.py)
QUIET_DIGITS: tuple[int, ...] = (*range(0, 70), *range(75, 90))
#: country → (number pattern, possible zones (None: from the number), currency)
NUMBERING: dict[str, tuple[str, list[str | None], str]] = {
    "US": ("+1212{serial:03d}01{digits:02d}", ["America/New_York", None], "USD"),
    "CN": ("+86138{serial:04d}00{digits:02d}", ["Asia/Shanghai", "Asia/Urumqi"], "CNY"),
    "UK": ("+4477009{serial:03d}{digits:02d}", ["Europe/London", None], "GBP"),
}


def synthetic_accounts(
    count: int,
    *,
    seed: int,
    now: datetime,
    serial_base: int = 200,
    digits: Sequence[int] = QUIET_DIGITS,
    policy: str = "default",
    prefix: str = "SIM",
) -> list[Account]:
    """``count`` delinquent accounts, due between 40 days ago and 5 days ahead of ``now``.

    The draw order is fixed (country, digits, zone, due offset, balance), so a seed names a portfolio.
    The serial makes each number unique; beyond 1,000 (US, UK) or 10,000 (CN) accounts numbers
    repeat, which the simulator treats as one person per number, as the carrier does.
    """
    return list(
        iter_synthetic_accounts(
            count, seed=seed, now=now, serial_base=serial_base, digits=digits, policy=policy, prefix=prefix
        )
    )


def iter_synthetic_accounts(
    count: int,
    *,
    seed: int,
    now: datetime,
    serial_base: int = 200,
    digits: Sequence[int] = QUIET_DIGITS,
    policy: str = "default",
    prefix: str = "SIM",
) -> Iterator[Account]:
    """:func:`synthetic_accounts` one at a time: intake that takes each account in as it is made
    finds its number still in :mod:`domain.zones`' caches (50,000 numbers do not fit in them)."""
    rng = random.Random(seed)
    for i in range(count):
        country = rng.choice(list(NUMBERING))
        pattern, zones, currency = NUMBERING[country]
        serial = (serial_base + i) % (10_000 if country == "CN" else 1_000)
        phone = pattern.format(serial=serial, digits=rng.choice(list(digits)))
        zone = rng.choice(zones)
        due_in_days = rng.randint(-40, 5)
        balance = rng.randint(5_000, 500_000)
        if zone is None and not _has_region(phone):
            zone = next(z for z in zones if z is not None)  # a number that does not say where it is
        debtor = Debtor(name=f"Debtor {i}", phone=phone, timezone=zone)
        home = zone or debtor_zones(None, phone)[0]
        today = now.astimezone(ZoneInfo(home)).date()
        yield Account(
            account_id=f"{prefix}-{seed % 100_000}-{i:06d}",
            debtor=debtor,
            product=Product.CREDIT_LINE,
            profile=country,
            currency=currency,
            balance=balance,
            fees=0,
            due_date=today + timedelta(days=due_in_days),
            policy=policy,
        )


def _has_region(phone: str) -> bool:
    try:
        Debtor(name="-", phone=phone)
    except ValueError:
        return False
    return True
