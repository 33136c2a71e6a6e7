"""Collection agencies as data: who serves which region, under which licence, how much work each can take.

``policies/agencies.toml`` lists them; nothing about an agency is in code. :func:`pick` is the one
rule for picking an agency (for a field visit or a placement): it must serve the debtor's region,
hold a licence that is valid on the day the work happens, have capacity left, not be excluded (an
agency the account was recalled from), and among those the least loaded wins, ties broken by id so
the choice is deterministic and explainable. An agency passed over for its licence is named with
the rule (:data:`LICENCE_EXPIRED`), so the audit log says why it got no work.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from datetime import date, datetime
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from domain.errors import describe

AGENCY_FILE = Path(__file__).resolve().parent.parent / "policies" / "agencies.toml"

#: The rule that refuses work to an agency whose licence is not valid on the day of the work.
LICENCE_EXPIRED = "agencies.licence_expired"

_REGION = re.compile(r"^(\*|[A-Z]{2}(-[A-Z0-9]{1,3})?)$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Work(StrEnum):
    VISIT = "visit"
    PLACEMENT = "placement"


#: Nobody serving the region (with a valid licence) has room left.
NO_CAPACITY = {Work.VISIT: "visits.no_agency_capacity", Work.PLACEMENT: "placement.no_agency_capacity"}


class Agency(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")
    name: str = Field(min_length=1, max_length=100)
    regions: list[str] = Field(
        min_length=1, description="ISO 3166-2 subdivisions (US-NY), countries (US) or '*' for anywhere"
    )
    licence_number: str = Field(
        min_length=3, max_length=64, description="The collection licence the agency works under, as issued"
    )
    licence_expires: date = Field(description="The last day the licence is valid (no work after it)")
    visit_capacity: int = Field(default=0, ge=0, description="Open visits at once")
    placement_capacity: int = Field(default=0, ge=0, description="Placed accounts at once")
    callback_number: str = ""

    @field_validator("regions")
    @classmethod
    def _regions(cls, value: list[str]) -> list[str]:
        regions = [r.strip().upper() for r in value]
        wrong = [r for r in regions if not _REGION.fullmatch(r)]
        if wrong:
            raise ValueError(
                f"{', '.join(repr(r) for r in wrong)}: a region is an ISO 3166-2 subdivision (US-NY), "
                "a country (US) or '*'"
            )
        return regions

    @field_validator("licence_number")
    @classmethod
    def _licence_number(cls, value: str) -> str:
        value = value.strip()
        if len(value) < 3 or _CONTROL.search(value):
            raise ValueError("must be the licence number as issued: at least 3 characters on one line")
        return value

    def licensed_on(self, day: date) -> bool:
        """Whether the licence covers ``day`` (valid up to and including ``licence_expires``)."""
        return day <= self.licence_expires

    def capacity(self, work: Work) -> int:
        return self.visit_capacity if work == Work.VISIT else self.placement_capacity

    def serves(self, region: str | None, country: str) -> int:
        """How specifically this agency serves the debtor: 2 region, 1 country, 0 anywhere, -1 not at all."""
        if region and region.upper() in self.regions:
            return 2
        if country.upper() in self.regions or (region and region.split("-")[0].upper() in self.regions):
            return 1
        return 0 if "*" in self.regions else -1


class AgencyBook(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    agencies: list[Agency]

    @model_validator(mode="after")
    def _unique(self) -> AgencyBook:
        ids = [a.id for a in self.agencies]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"agency ids must be unique: {', '.join(dupes)}")
        return self

    def get(self, agency_id: str) -> Agency | None:
        return next((a for a in self.agencies if a.id == agency_id), None)


def parse_agencies(text: str, *, source: str = "<agencies>") -> AgencyBook:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{source}: not valid TOML: {exc}") from None
    try:
        return AgencyBook.model_validate(data)
    except ValidationError as exc:
        raise ValueError(_name_agencies(describe(exc, source), data)) from None
    except Exception as exc:
        raise ValueError(describe(exc, source)) from None


def _name_agencies(message: str, data: dict[str, Any]) -> str:
    """``agencies.1.licence_expires`` becomes ``agencies.1 (national-recovery).licence_expires``: the
    person editing the file looks for the agency, not for its position."""
    listed = data.get("agencies")
    if not isinstance(listed, list):
        return message

    def named(found: re.Match[str]) -> str:
        index = int(found.group(1))
        entry = listed[index] if index < len(listed) else None
        agency = entry.get("id") if isinstance(entry, dict) else None
        return f"agencies.{index} ({agency})" if isinstance(agency, str) else found.group(0)

    return re.sub(r"agencies\.(\d+)(?= |\.)", named, message)


@lru_cache(maxsize=4)
def load_agencies(path: Path | None = None) -> AgencyBook:
    path = path or AGENCY_FILE
    return parse_agencies(path.read_text(encoding="utf-8"), source=str(path))


class Choice(BaseModel):
    """The agency chosen (or None), why none was, and every agency passed over for a rule."""

    model_config = ConfigDict(frozen=True)

    agency: Agency | None
    rule: str | None = Field(default=None, description="Why nobody got the work (None: somebody did)")
    refused: dict[str, str] = Field(
        default_factory=dict, description="Agency id -> the rule that kept it from this work"
    )


def pick(
    book: AgencyBook,
    work: Work,
    *,
    region: str | None,
    country: str,
    load: Mapping[str, int],
    on: date,
    exclude: frozenset[str] | set[str] = frozenset(),
) -> Choice:
    """The agency for this piece of work done on ``on`` (a visit's day, a placement's day).

    An agency serving the region whose licence does not cover ``on`` is refused
    (:data:`LICENCE_EXPIRED`) whatever its room, and named in ``refused``. When nobody gets the work,
    the rule says why: the licence if some agency was refused for it, else the capacity.
    """
    best: tuple[int, float, str] | None = None
    chosen: Agency | None = None
    refused: dict[str, str] = {}
    for agency in book.agencies:
        fit = agency.serves(region, country)
        cap = agency.capacity(work)
        if fit < 0 or agency.id in exclude or cap <= 0:
            continue
        if not agency.licensed_on(on):
            refused[agency.id] = LICENCE_EXPIRED
            continue
        used = load.get(agency.id, 0)
        if used >= cap:
            continue
        key = (-fit, used / cap, agency.id)  # most specific, then least loaded, then by id
        if best is None or key < best:
            best, chosen = key, agency
    if chosen is not None:
        return Choice(agency=chosen, refused=refused)
    return Choice(agency=None, rule=LICENCE_EXPIRED if refused else NO_CAPACITY[work], refused=refused)


def choose(
    book: AgencyBook,
    work: Work,
    *,
    region: str | None,
    country: str,
    load: Mapping[str, int],
    on: date,
    exclude: frozenset[str] | set[str] = frozenset(),
) -> Agency | None:
    """The agency for this piece of work, or None when nobody licensed and serving the region has room."""
    return pick(book, work, region=region, country=country, load=load, on=on, exclude=exclude).agency


def find_agency(book: AgencyBook, text: str) -> Agency | None:
    """The agency a person names: its id or its name, in any case and spacing (None: no such agency)."""
    wanted = " ".join(text.split()).casefold()
    if not wanted:
        return None
    return next(
        (a for a in book.agencies if wanted in (a.id.casefold(), " ".join(a.name.split()).casefold())),
        None,
    )


# ---- contracts between the account workflow and the placement activities --------------------------
PLACE_ACCOUNT = "place_account"
END_PLACEMENT = "end_placement"


class PlaceRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    placement_id: str
    account_id: str
    region: str | None
    country: str
    currency: str
    balance: int
    exclude: list[str] = Field(default_factory=list)
    at: datetime


class Placed(BaseModel):
    model_config = ConfigDict(frozen=True)

    agency_id: str | None
    agency_name: str = ""
    agency_number: str = ""
    rule: str | None = None  # why no agency (placement.no_agency_capacity, agencies.licence_expired)


class EndPlacement(BaseModel):
    model_config = ConfigDict(frozen=True)

    placement_id: str
    status: str  # recalled, completed, expired
    reason: str
    at: datetime


class RecallRequest(BaseModel):
    """Take the account back from its agency (misconduct, complaint, contract end)."""

    model_config = ConfigDict(frozen=True)

    reason: str = Field(min_length=1, max_length=200)
    actor: str = "supervisor"


class CloseRequest(BaseModel):
    """An operator closes the account for a reason the workflow cannot see by itself."""

    model_config = ConfigDict(frozen=True)

    reason: Literal["written_off", "deceased", "bankrupt"]
    note: str = Field(default="", max_length=500)
    actor: str = "operator"
