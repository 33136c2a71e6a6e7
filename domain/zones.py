"""Where a debtor may be: the time zones the contact gate must respect for one person.

Two sources can say where someone is: the lender's file (a zone column, or none) and the phone
number's own region. Reg F (12 CFR 1006.6(b)(1)(i)) says that with conflicting or missing location
information a collector may call only at an hour convenient in *every* location it has reason to
believe the consumer is in. So a New York zone in the file and a Los Angeles area code make both
zones candidates, and a text waits until 08:00 in Los Angeles, not 08:00 in New York (05:00 there).

A number with no region of its own (toll-free, a non-geographic or a nationwide mobile range in a
country with several clocks) says nothing about where its holder is: its "zones" would be the whole
country plan, a guess that spans Hawaii to Puerto Rico. Such a number adds no candidate; with no
zone in the file either, intake refuses the account (:func:`located`) instead of guessing.

Pure: only phonenumbers' tables and the tz database, so workflows, activities and intake agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import timezone as pn_timezone

# Instants at which two zones are compared to tell whether they keep the same clock: the 1st and
# the 15th of every month over eight years, which catches daylight-saving rules that differ in
# either hemisphere, and a country that changed its offset recently. Fixed, so the answer is too.
_PROBES = tuple(
    datetime(year, month, day, 12, tzinfo=UTC)
    for year in range(2024, 2032)
    for month in range(1, 13)
    for day in (1, 15)
)


@lru_cache(maxsize=4096)
def parsed_number(e164: str) -> phonenumbers.PhoneNumber:
    """``phonenumbers.parse(e164, None)``, once per number: intake validates a number, places it
    (:func:`region_zones`, :func:`zones_for_phone`) and masks it, each of which parsed it again.
    Callers only read the result (raises ``NumberParseException`` as ``parse`` does)."""
    return phonenumbers.parse(e164, None)


@lru_cache(maxsize=4096)
def zones_for_phone(e164: str) -> tuple[str, ...]:
    """Every IANA zone a number may be in.

    A number phonenumbers cannot place (unassigned range, Ofcom drama numbers, test numbers) gets
    every zone of its *country calling code*, not UTC: UTC would put a UK debtor's 21:00 at 22:00
    in summer, and a US debtor's 08:00 at 03:00. Only a number with no country at all gets UTC.
    """
    try:
        parsed = parsed_number(e164)
    except phonenumbers.NumberParseException:
        return ("UTC",)
    zones = tuple(z for z in pn_timezone.time_zones_for_number(parsed) if z != "Etc/Unknown")
    if not zones:
        zones = _country_zones(parsed.country_code)
    return zones or ("UTC",)


def _country_zones(country_code: int) -> tuple[str, ...]:
    return tuple(z for z in pn_timezone.TIMEZONE_DATA.get(str(country_code), ()) if z != "Etc/Unknown")


@lru_cache(maxsize=1024)
def same_clock(a: str, b: str) -> bool:
    """Whether two zones show the same local time at every probe instant (London and Jersey do)."""
    za, zb = ZoneInfo(a), ZoneInfo(b)
    return all(p.astimezone(za).utcoffset() == p.astimezone(zb).utcoffset() for p in _PROBES)


def _one_clock(zones: tuple[str, ...]) -> bool:
    return all(same_clock(zones[0], z) for z in zones[1:])


@lru_cache(maxsize=4096)
def region_zones(e164: str) -> tuple[str, ...] | None:
    """The zones the number's own region puts its holder in, or None where it has no region.

    "No region": phonenumbers can only answer with the whole country plan (toll-free +1 800, a
    nationwide mobile range such as Australia's 04, an unassigned range) and that plan keeps more
    than one clock. A country with one clock (the UK, China) is a place even for such numbers.
    """
    try:
        parsed = parsed_number(e164)
    except phonenumbers.NumberParseException:
        return None
    zones = zones_for_phone(e164)
    country = _country_zones(parsed.country_code)
    if len(country) > 1 and set(country) <= set(zones) and not _one_clock(zones):
        return None
    return zones


def debtor_zones(timezone: str | None, phone: str) -> list[str]:
    """Every zone the debtor may be in; the first is their home zone (their calendar days).

    The file's zone first, then each zone of the number's region that keeps a different clock
    (conflicting location information: the strictest reading). With no zone in the file, the
    number's region. An account taken in before :func:`located` was enforced may have neither:
    it keeps the old strictest reading, every zone of its country.
    """
    region = region_zones(phone)
    if timezone is None:
        return list(region or zones_for_phone(phone))
    out = [timezone]
    for zone in region or ():
        if not any(same_clock(zone, known) for known in out):
            out.append(zone)
    return out


def located(timezone: str | None, phone: str) -> str | None:
    """Why an account cannot be contacted lawfully as given (None: it can).

    A debtor with no zone on file and a number with no region would be contacted on a guess.
    """
    if timezone is None and region_zones(phone) is None:
        from domain.masking import mask_phone

        return (
            f"timezone is required: {mask_phone(phone)} has no region of its own (toll-free or "
            "non-geographic), so it does not tell where the debtor is; give the debtor's timezone"
        )
    return None
