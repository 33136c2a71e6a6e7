"""A debtor's number: how the one on file was found and confirmed, and numbers offered as leads.

Why this exists: a lost debtor is found through a new number, and a number is a claim until the
person holding it proves it by keying in a one-time code sent to it. Whoever reads an account (an
agent, a supervisor, an auditor, a regulator) must be able to see where the number now used came
from and how it was confirmed, in one sentence, without reading the audit log. The facts live in
the database (``store/contact_changes.py``); this module only says them, and finds the numbers in
a text an emergency contact sent.

Pure: phonenumbers' tables only, no I/O, no clock.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime
from enum import StrEnum

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field


class NumberSource(StrEnum):
    """Who gave the number: the lender's file, an agent, the emergency contact (a lead), the debtor."""

    INTAKE = "intake"
    AGENT = "agent"
    EMERGENCY_CONTACT = "emergency_contact"
    DEBTOR = "debtor"


class ConfirmedVia(StrEnum):
    """Where the code came back: read to an agent on the phone (they keyed it in), or on the page."""

    AGENT = "agent"
    PAGE = "page"


class PendingNumber(BaseModel):
    """A number recorded and waiting for its code: never used for collection until confirmed."""

    model_config = ConfigDict(frozen=True)

    id: int = Field(description="The number's record (``/contact-points/{id}``)")
    masked_phone: str
    source: NumberSource
    recorded_by: str = Field(description="The agent's name, or 'debtor'")
    recorded_at: datetime
    case: str | None = Field(default=None, description="The emergency contact's reply it came from")
    codes_sent: int = 0
    code_via: str = Field(default="sms", description="How the last code was asked to go: sms or voice")


class NumberStatus(BaseModel):
    """The number on file and how it got there (from the database, never from the workflow)."""

    model_config = ConfigDict(frozen=True)

    masked_phone: str
    source: NumberSource
    how: str = Field(description="In one sentence: how it was found and confirmed")
    recorded_by: str | None = None
    case: str | None = None
    confirmed_at: datetime | None = None
    confirmed_by: str | None = Field(default=None, description="Who keyed in the code: an agent, or 'debtor'")
    confirmed_via: ConfirmedVia | None = None
    pending: PendingNumber | None = None


def how_found(
    source: NumberSource,
    *,
    recorded_by: str | None = None,
    case: str | None = None,
    confirmed_on: str | None = None,
    confirmed_by: str | None = None,
    confirmed_via: ConfirmedVia | None = None,
) -> str:
    """``confirmed by code on 2026-12-05 via agent ann; recorded by ann from the emergency contact's
    reply C-12``; ``as given at intake (not confirmed by code)``. ``confirmed_on`` is the day on the
    account's own clock (what its audit log says)."""
    if source == NumberSource.INTAKE:
        return "as given at intake (not confirmed by code)"
    if confirmed_via == ConfirmedVia.PAGE:
        confirmed = f"confirmed by code on {confirmed_on} by the debtor on the page"
    else:
        confirmed = f"confirmed by code on {confirmed_on} via agent {confirmed_by}"
    if source == NumberSource.DEBTOR:
        found = "given by the debtor on the page"
    elif source == NumberSource.EMERGENCY_CONTACT:
        found = f"recorded by {recorded_by} from the emergency contact's reply" + (f" {case}" if case else "")
    else:
        found = f"recorded by {recorded_by}"
    return f"{confirmed}; {found}"


def numbers_in(text: str, regions: list[str], leave_out: set[str] | None = None) -> list[str]:
    """The valid phone numbers in a text (E.164, each once, in the order they are written).

    A number without its ``+`` code is read in the first of ``regions`` where it is a valid number
    (the debtor's country, then the emergency contact's): "(718) 555-0142" is a New York number for
    a New York debtor, and "13812345678" from a Shanghai contact a Chinese mobile. A stretch of text
    read as a number once is not read again in another region. Full-width digits (a Chinese
    keyboard) are read as ASCII. ``leave_out``: numbers that are no news (the one on file, the
    sender's own)."""
    plain = unicodedata.normalize("NFKC", text or "")
    taken: list[tuple[int, int, str]] = []
    for region in [*regions, None]:
        for match in phonenumbers.PhoneNumberMatcher(plain, region, leniency=phonenumbers.Leniency.VALID):
            if any(match.start < end and start < match.end for start, end, _ in taken):
                continue
            e164 = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
            taken.append((match.start, match.end, e164))
    found: list[str] = []
    for _, _, e164 in sorted(taken):
        if e164 not in found and e164 not in (leave_out or set()):
            found.append(e164)
    return found


def region_of(e164: str | None) -> str | None:
    """The country a number belongs to (``US``, ``CN``), None if it cannot be told."""
    if not e164:
        return None
    try:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(e164, None))
    except phonenumbers.NumberParseException:
        return None
    return region if region and region != "ZZ" else None
