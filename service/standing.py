"""Where an account stands once our own collection is over: who holds the debt, what is still owed, how to
pay or agree a plan, and until when anyone may contact the debtor.

The debtor's page used to say "closed, nothing more to pay" for every account out of dunning, including a
charged-off debt handed to an agency that still collects it. :func:`standing_of` is the one answer for
every stage (pure: the page and the tests call it), from the workflow's ``status`` while its run is open
and from the database once the run has ended.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel

from domain.accounts import CloseReason, Mode

#: Close reasons after which nobody asks the debtor for money (the lender gave up the claim, or the law
#: forbids asking: the automatic stay of a bankruptcy, a deceased debtor's family).
NOT_COLLECTED = frozenset(
    {
        CloseReason.WRITTEN_OFF.value,
        CloseReason.COMPLAINT_UPHELD.value,
        CloseReason.DECEASED.value,
        CloseReason.BANKRUPT.value,
    }
)


class Kind(StrEnum):
    COLLECTING = "collecting"  # dunning or a plan: the page's usual view
    PLACED = "placed"  # charged off and placed with an agency, which still collects
    CHARGED_OFF = "charged_off"  # charged off, not placed: no contact, payments still taken a while
    CHARGED_OFF_ENDED = "charged_off_ended"  # charged off and its run over: no contact, still owed
    PAID = "paid"
    SETTLED = "settled"
    NOT_COLLECTED = "not_collected"


class Agency(BaseModel):
    name: str
    number: str
    since: date
    until: date  # the placement's term: the agency may contact the debtor until then


class Standing(BaseModel):
    kind: Kind
    owed: int
    currency: str
    pay_here: bool  # the page may take a payment now
    payments_until: date | None = None  # a charged-off account takes payments until then
    contact_until: date | None = None  # the last day anyone may contact the debtor about it
    agency: Agency | None = None


def standing_of(
    *,
    mode: Mode,
    closing: str | None,
    close_reason: str | None,
    owed: int,
    currency: str,
    run_open: bool,
    agency: Agency | None,
    charged_off_on: date | None,
    chargeoff_open_days: int,
) -> Standing:
    """The account's standing. ``closing``: the open run's ``status.closing`` (None once ended);
    ``close_reason``: the stored reason (the run's last write); ``agency``: its active placement."""
    reason = close_reason or closing
    if owed <= 0 or reason == CloseReason.PAID.value:
        return Standing(kind=Kind.PAID, owed=0, currency=currency, pay_here=False)
    if reason == CloseReason.SETTLED.value:
        return Standing(kind=Kind.SETTLED, owed=0, currency=currency, pay_here=False)
    if reason in NOT_COLLECTED:
        return Standing(kind=Kind.NOT_COLLECTED, owed=0, currency=currency, pay_here=False)
    if mode != Mode.CLOSED and closing is None:
        return Standing(kind=Kind.COLLECTING, owed=owed, currency=currency, pay_here=run_open)
    if agency is not None and run_open:
        return Standing(
            kind=Kind.PLACED,
            owed=owed,
            currency=currency,
            pay_here=True,
            contact_until=agency.until,
            agency=agency,
        )
    if run_open and (
        closing == "charged_off" or reason in (CloseReason.CHARGED_OFF.value, CloseReason.PLACED.value)
    ):
        until = charged_off_on + timedelta(days=chargeoff_open_days) if charged_off_on else None
        return Standing(
            kind=Kind.CHARGED_OFF, owed=owed, currency=currency, pay_here=True, payments_until=until
        )
    if reason in (CloseReason.CHARGED_OFF.value, CloseReason.PLACED.value) or not run_open:
        return Standing(kind=Kind.CHARGED_OFF_ENDED, owed=owed, currency=currency, pay_here=False)
    return Standing(
        kind=Kind.COLLECTING, owed=owed, currency=currency, pay_here=False
    )  # closing: no new money


def agency_term(placed_at: datetime, max_days: int, zone: str) -> tuple[date, date]:
    """The placement's first and last day in the debtor's calendar."""
    from zoneinfo import ZoneInfo

    local = placed_at.astimezone(ZoneInfo(zone))
    return local.date(), (local + timedelta(days=max_days)).date()
