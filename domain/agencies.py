"""Collection agencies as data: who serves which region, how many visits and placements each can take.

``policies/agencies.toml`` lists them; nothing about an agency is in code. :func:`choose` is the one
rule for picking an agency (for a field visit or a placement): it must serve the debtor's region,
have capacity left, not be excluded (an agency the account was recalled from), and among those the
least loaded wins, ties broken by id so the choice is deterministic and explainable.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from domain.errors import describe

AGENCY_FILE = Path(__file__).resolve().parent.parent / "policies" / "agencies.toml"


class Work(StrEnum):
    VISIT = "visit"
    PLACEMENT = "placement"


class Agency(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")
    name: str = Field(min_length=1, max_length=100)
    regions: list[str] = Field(
        min_length=1, description="ISO 3166-2 subdivisions (US-NY), countries (US) or '*' for anywhere"
    )
    visit_capacity: int = Field(default=0, ge=0, description="Open visits at once")
    placement_capacity: int = Field(default=0, ge=0, description="Placed accounts at once")
    callback_number: str = ""

    @field_validator("regions")
    @classmethod
    def _regions(cls, value: list[str]) -> list[str]:
        return [r.strip().upper() for r in value]

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
    except Exception as exc:
        raise ValueError(describe(exc, source)) from None


@lru_cache(maxsize=4)
def load_agencies(path: Path | None = None) -> AgencyBook:
    path = path or AGENCY_FILE
    return parse_agencies(path.read_text(encoding="utf-8"), source=str(path))


def choose(
    book: AgencyBook,
    work: Work,
    *,
    region: str | None,
    country: str,
    load: Mapping[str, int],
    exclude: frozenset[str] | set[str] = frozenset(),
) -> Agency | None:
    """The agency for this piece of work, or None when nobody serving the region has room."""
    best: tuple[int, float, str] | None = None
    chosen: Agency | None = None
    for agency in book.agencies:
        fit = agency.serves(region, country)
        cap = agency.capacity(work)
        used = load.get(agency.id, 0)
        if fit < 0 or agency.id in exclude or cap <= 0 or used >= cap:
            continue
        key = (-fit, used / cap, agency.id)  # most specific, then least loaded, then by id
        if best is None or key < best:
            best, chosen = key, agency
    return chosen


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
