"""Collector IDs and the one question the public may ask about them: "is this person working for you now?"

A debtor (or a neighbour) with a stranger at the door who says they collect for the lender must be
able to check it without signing in, and the answer must help them without helping an impostor:

* the collector ID is the badge number the agency gives the person it sends; :func:`collector_id` is
  its one format, so the agency API (422 naming the field) and the ``/verify`` page read it alike;
* :func:`confirms` is the rule: yes only when that agency holds a licence covering the visit's day and
  has a visit with that collector that is still open (scheduled or announced) and whose window has not
  ended on the account's own clock. Everything else is the same "no": unknown agency, unknown ID, a
  finished or cancelled visit, an expired licence. Which of these it was is kept for the audit log
  only; the page never says.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BaseModel, ConfigDict

from domain.agencies import LICENCE_EXPIRED, Agency

_FORMAT = re.compile(r"^[A-Z0-9][A-Z0-9-]{2,31}$")
FORMAT = "3 to 32 letters, digits or hyphens, starting with a letter or digit (e.g. NRP-20418)"
#: Visit statuses in which the agency's person may still ring the bell.
OPEN = ("scheduled", "announced")

CONFIRMED = "collectors.confirmed"
UNKNOWN_AGENCY = "collectors.unknown_agency"
MALFORMED = "collectors.malformed_id"
NO_OPEN_VISIT = "collectors.no_open_visit"


def collector_id(value: str) -> str:
    """A collector ID as stored: trimmed and upper-case; ValueError naming the format otherwise."""
    clean = value.strip().upper()
    if not _FORMAT.fullmatch(clean):
        raise ValueError(f"a collector ID is {FORMAT}")
    return clean


#: A collector ID field of a request: 422 names the field and the format.
CollectorId = Annotated[str, AfterValidator(collector_id)]


def typed_collector_id(text: str) -> str | None:
    """What a person keyed in, read kindly (spaces dropped, any case), or None if it cannot be an ID."""
    try:
        return collector_id("".join(text.split()))
    except ValueError:
        return None


class CollectorVisit(BaseModel):
    """One visit on which the collector was named, with the account's clock and home zone."""

    model_config = ConfigDict(frozen=True)

    account_id: str
    status: str
    window_start: datetime
    window_end: datetime
    zone: str
    now: datetime  # the account's policy time now (its clock may run scaled in a demo)


class Answer(BaseModel):
    """The answer and, for the audit log only, why (the page shows ``confirmed`` and nothing else)."""

    model_config = ConfigDict(frozen=True)

    confirmed: bool
    reason: str
    account_id: str | None = None


def confirms(agency: Agency | None, collector: str | None, visits: Iterable[CollectorVisit]) -> Answer:
    """Is ``collector`` of ``agency`` working one of our accounts now (a visit open or upcoming, licensed)?"""
    if agency is None:
        return Answer(confirmed=False, reason=UNKNOWN_AGENCY)
    if collector is None:
        return Answer(confirmed=False, reason=MALFORMED)
    reason = NO_OPEN_VISIT
    for visit in visits:
        if visit.status not in OPEN or visit.window_end <= visit.now:
            continue
        day = visit.window_start.astimezone(ZoneInfo(visit.zone)).date()
        if not agency.licensed_on(day):  # the window is today or later: this covers today too
            reason = LICENCE_EXPIRED
            continue
        return Answer(confirmed=True, reason=CONFIRMED, account_id=visit.account_id)
    return Answer(confirmed=False, reason=reason)
