"""The accounts of a segment (``domain.segments``), as the strategy lab takes them.

Only accounts in dunning are drawn: an account on a plan follows its plan, not a cadence, and a
closed one is contacted no more, so neither says anything about a dunning policy. Each comes back as
intake knew it (an :class:`~domain.accounts.Account`, with its live balance) plus the channels it has
already lost (opted out, unreachable), so the lab does not text a number that said STOP.

No name leaves here: the lab needs none, and a what-if should not carry personal data it does not use.
A segment larger than ``limit`` is sampled with a seeded draw over its sorted ids: the same segment,
limit and seed give the same accounts (while the book does not change), so a comparison can be re-run.
"""

from __future__ import annotations

import random
from datetime import date

from pydantic import BaseModel, ConfigDict
from sqlalchemy import ColumnElement, and_, false, or_, select
from sqlalchemy.orm import Session

from domain.accounts import Account, Channel, Debtor, Mode, Product
from domain.segments import Segment
from store.models import AccountRow
from store.rows import ContactStatus, _channels_with, _phone

#: rows read per statement when the drawn accounts are loaded
CHUNK = 1000


class SegmentAccount(BaseModel):
    model_config = ConfigDict(frozen=True)

    account: Account
    opted_out: list[Channel]
    unreachable: list[Channel]


class SegmentDraw(BaseModel):
    """``total`` accounts matched; ``accounts`` holds all of them, or a seeded sample of ``limit``."""

    model_config = ConfigDict(frozen=True)

    total: int
    accounts: list[SegmentAccount]

    @property
    def sampled(self) -> bool:
        return len(self.accounts) < self.total


def segment_accounts(s: Session, segment: Segment, today: date, *, limit: int, seed: int) -> SegmentDraw:
    """The segment's accounts in dunning on ``today`` (a seeded sample of ``limit`` when there are more)."""
    where = _conditions(s, segment, today)
    ids = list(s.scalars(select(AccountRow.account_id).where(*where).order_by(AccountRow.account_id)))
    chosen = sorted(random.Random(seed).sample(ids, limit)) if len(ids) > limit else ids
    out: list[SegmentAccount] = []
    for i in range(0, len(chosen), CHUNK):
        chunk = chosen[i : i + CHUNK]
        rows = s.scalars(
            select(AccountRow).where(AccountRow.account_id.in_(chunk)).order_by(AccountRow.account_id)
        ).unique()
        out.extend(found for row in rows if (found := _lab_account(row)) is not None)
    return SegmentDraw(total=len(ids), accounts=out)


def _conditions(s: Session, segment: Segment, today: date) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [AccountRow.mode == Mode.DUNNING.value, AccountRow.balance_minor > 0]
    if segment.profile is not None:
        where.append(AccountRow.profile == segment.profile)
    if segment.product is not None:
        where.append(AccountRow.product == segment.product.value)
    earliest, latest = segment.due_dates(today)
    if earliest is not None:
        where.append(AccountRow.due_date >= earliest)
    if latest is not None:
        where.append(AccountRow.due_date <= latest)
    if segment.balance_min is not None or segment.balance_max is not None:
        currencies = s.scalars(select(AccountRow.currency).where(*where).distinct()).all()
        bands: list[ColumnElement[bool]] = []
        for currency in currencies:  # the band is in each account's own money
            low, high = segment.balance_minor(currency)
            band = [AccountRow.currency == currency]
            if low is not None:
                band.append(AccountRow.balance_minor >= low)
            if high is not None:
                band.append(AccountRow.balance_minor <= high)
            bands.append(and_(*band))
        where.append(or_(*bands) if bands else false())
    return where


def _lab_account(row: AccountRow) -> SegmentAccount | None:
    """The row as the lab needs it; None for one the lab cannot simulate (no usable number on file)."""
    phone = _phone(row)
    if not phone:
        return None
    try:
        account = _account(row, phone)
    except ValueError:  # a row stored under older checks: left out, as intake would refuse it today
        return None
    return SegmentAccount(
        account=account,
        opted_out=_channels_with(row, ContactStatus.OPTED_OUT),
        unreachable=_channels_with(row, ContactStatus.UNREACHABLE),
    )


def _account(row: AccountRow, phone: str) -> Account:
    d = row.debtor
    return Account(
        account_id=row.account_id,
        debtor=Debtor(name="-", phone=phone, timezone=d.timezone, language=d.language, region=d.region),
        product=Product(row.product),
        currency=row.currency,
        balance=row.balance_minor,
        fees=min(row.fees_minor, row.balance_minor),
        due_date=row.due_date,
        profile=row.profile,
        policy=row.policy,
    )
