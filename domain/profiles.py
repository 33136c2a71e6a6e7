"""Jurisdiction profiles: the contact rules of a legal regime, as data.

A profile is a TOML file in ``policies/profiles``. Operators may tighten one (earlier evening stop,
fewer calls); a profile that loosens a legal minimum is refused at load, naming the field and the
rule, because a collector must never become unlawful by editing a text file.

The legal floors therefore live *here, in code* (:data:`LEGAL_FLOORS`), keyed by jurisdiction. A
profile file may add its own ``[floors]`` table, but only to make them stricter: the floors that
are enforced are the strictest of the code's and the file's, so deleting a line from a file can
never lift a legal limit.
"""

from __future__ import annotations

import tomllib
from datetime import time
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from domain.accounts import Language, check_languages
from domain.cases import ResponseTiers
from domain.charge_terms import LEGAL_CHARGE_CAPS, ChargeCaps, caps_in_force, loosened
from domain.credit_reporting import ReportingRules

PROFILE_DIR = Path(__file__).resolve().parent.parent / "policies" / "profiles"

# Numeric profile fields a region override may change, by which direction is stricter.
LOWER_IS_STRICTER = (
    "max_call_attempts_per_7_days",
    "max_connected_calls_per_day",
    "max_sms_per_day",
    "max_sms_per_7_days",
    "max_communications_per_7_days",
)
HIGHER_IS_STRICTER = ("min_days_after_conversation", "no_redial_after_abandoned_hours", "retention_years")
OVERRIDABLE = LOWER_IS_STRICTER + HIGHER_IS_STRICTER


def _check_override_fields(table: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Region keys upper-cased (``us-ma`` = ``US-MA``); unknown field names refused, not ignored."""
    out: dict[str, dict[str, Any]] = {}
    for region, fields in table.items():
        unknown = sorted(set(fields) - set(OVERRIDABLE))
        if unknown:
            raise ValueError(
                f"{region}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(OVERRIDABLE)}"
            )
        out[region.strip().upper()] = dict(fields)
    return out


def _stricter(a: int | None, b: int | None, *, lower: bool) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b) if lower else max(a, b)


class Floors(BaseModel):
    """Legal limits a profile may tighten but never loosen (``None``: the law sets no number)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    earliest_start: time = time(8, 0)
    latest_end: time = time(21, 0)
    max_call_attempts_per_7_days: int | None = None
    min_days_after_conversation: int | None = None
    max_connected_calls_per_day: int | None = None
    max_communications_per_7_days: int | None = None
    min_no_redial_after_abandoned_hours: int | None = None
    max_abandoned_rate: float = 0.03
    min_retention_years: int = 0
    max_locate_total: int | None = Field(
        default=None, description="Messages to one third party (emergency contact) in all, ever"
    )
    region_overrides: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="Subdivision limits, e.g. US-MA: 2 communications per 7 days"
    )

    @field_validator("region_overrides")
    @classmethod
    def _regions(cls, value: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
        return _check_override_fields(value)

    def strictest(self, other: Floors) -> Floors:
        """Both sets of floors at once: each limit at its stricter value."""
        regions: dict[str, dict[str, int]] = {k: dict(v) for k, v in self.region_overrides.items()}
        for region, fields in other.region_overrides.items():
            mine = regions.setdefault(region, {})
            for key, value in fields.items():
                merged = _stricter(mine.get(key), value, lower=key in LOWER_IS_STRICTER)
                assert merged is not None
                mine[key] = merged
        return Floors(
            earliest_start=max(self.earliest_start, other.earliest_start),
            latest_end=min(self.latest_end, other.latest_end),
            max_call_attempts_per_7_days=_stricter(
                self.max_call_attempts_per_7_days, other.max_call_attempts_per_7_days, lower=True
            ),
            min_days_after_conversation=_stricter(
                self.min_days_after_conversation, other.min_days_after_conversation, lower=False
            ),
            max_connected_calls_per_day=_stricter(
                self.max_connected_calls_per_day, other.max_connected_calls_per_day, lower=True
            ),
            max_communications_per_7_days=_stricter(
                self.max_communications_per_7_days, other.max_communications_per_7_days, lower=True
            ),
            min_no_redial_after_abandoned_hours=_stricter(
                self.min_no_redial_after_abandoned_hours,
                other.min_no_redial_after_abandoned_hours,
                lower=False,
            ),
            max_abandoned_rate=min(self.max_abandoned_rate, other.max_abandoned_rate),
            min_retention_years=max(self.min_retention_years, other.min_retention_years),
            max_locate_total=_stricter(self.max_locate_total, other.max_locate_total, lower=True),
            region_overrides=regions,
        )


# The product's baseline everywhere (DOMAIN.md: 08:00-21:00 local, 3% abandoned calls).
BASELINE_FLOORS = Floors()

# The law, per jurisdiction. A profile names its jurisdiction (or is named after it).
LEGAL_FLOORS: dict[str, Floors] = {
    "US": Floors(
        max_locate_total=1,  # FDCPA 804(3): a third party is told once, unless they ask for more
        max_call_attempts_per_7_days=7,
        min_days_after_conversation=7,
        min_retention_years=3,
        region_overrides={"US-MA": {"max_communications_per_7_days": 2}},
    ),
    "UK": Floors(min_no_redial_after_abandoned_hours=72),
    # CN: 22:00 is the law's evening stop (secondary sources); profiles default to the stricter 21:00.
    "CN": Floors(latest_end=time(22, 0), max_connected_calls_per_day=3, min_retention_years=5),
}

_BASE_RULES: dict[str, str] = {
    "earliest_start": "no contact before 08:00 local time",
    "latest_end": "no contact from 21:00 local time",
    "max_abandoned_rate": "abandoned calls at most 3% of live-answered calls",
}

# Which rule each floor is, so a refused profile says what law it would break.
FLOOR_RULES: dict[str, dict[str, str]] = {
    "US": {
        "earliest_start": "US Reg F 12 CFR 1006.6(b)(1)(i): no contact before 08:00 in any known location",
        "latest_end": "US Reg F 12 CFR 1006.6(b)(1)(i): no contact from 21:00 in any known location",
        "max_call_attempts_per_7_days": "US Reg F 12 CFR 1006.14(b)(2)(i): at most 7 call attempts in 7 days",
        "min_days_after_conversation": (
            "US Reg F 12 CFR 1006.14(b)(2)(ii): no call within 7 days of a conversation (its day = day 1)"
        ),
        "max_abandoned_rate": "US FCC 47 CFR 64.1200(a)(7): abandoned calls at most 3% per campaign per 30 days",
        "min_retention_years": "US Reg F 12 CFR 1006.100: records kept 3 years",
        "max_communications_per_7_days": "US-MA 940 CMR 7.04(1)(f): at most 2 communications per 7 days",
        "max_locate_total": (
            "US FDCPA 804(3) / Reg F 12 CFR 1006.10: a third party is contacted about the debtor's "
            "location only once"
        ),
    },
    "UK": {
        "max_abandoned_rate": "UK Ofcom persistent misuse policy: abandoned calls at most 3% per 24 hours",
        "min_no_redial_after_abandoned_hours": (
            "UK Ofcom persistent misuse policy: no redial within 72 hours of an abandoned call"
        ),
    },
    "CN": {
        "earliest_start": "CN NIFA convention: no collection contact before 08:00",
        "latest_end": "CN NIFA convention: no collection contact from 22:00",
        "max_connected_calls_per_day": (
            "CN NIFA post-loan guideline: at most 3 connected calls a day, lender and agencies together"
        ),
        "min_retention_years": "CN NIFA: collection records kept at least 5 years",
    },
}


def floor_rule(jurisdiction: str, field: str) -> str:
    """The rule a floor stands for, for error messages."""
    return FLOOR_RULES.get(jurisdiction, {}).get(field) or _BASE_RULES.get(field) or f"{jurisdiction} {field}"


class ComplaintChannel(BaseModel):
    """Where a debtor takes a complaint the lender has not resolved, with the source that says so.

    Printed in the plan agreement (``service/agreement_pdf.py``): a debtor holding a written plan must
    know whom to turn to beyond the lender. It lives in the profile because the authority is the
    jurisdiction's. Texts are by language; English is required, as the fallback for a language the
    profile lacks, so an agreement never prints an empty line.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    authority: dict[str, str] = Field(description="Who takes the complaint, by language (en required)")
    when: dict[str, str] = Field(description="When the debtor may go there, by language (en required)")
    contact: str = Field(min_length=1, description="Web address and phone number, the same in every language")
    source: str = Field(min_length=1, description="The rule or the authority's own page this comes from")

    @field_validator("authority", "when")
    @classmethod
    def _languages(cls, value: dict[str, str]) -> dict[str, str]:
        check_languages(value)
        blank = sorted(k for k, text in value.items() if not text.strip())
        if blank:
            raise ValueError(f"empty text for {', '.join(blank)}")
        if Language.EN.value not in value:
            raise ValueError("an 'en' text is required (the fallback for the other languages)")
        return value

    def authority_in(self, language: str) -> str:
        return self.authority.get(language) or self.authority[Language.EN.value]

    def when_in(self, language: str) -> str:
        return self.when.get(language) or self.when[Language.EN.value]


class Profile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    jurisdiction: str | None = Field(
        default=None,
        description="Whose law applies (US, UK, CN, or another code for baseline floors only); defaults to name",
    )
    description: str = ""
    contact_start: time = Field(default=time(8, 0), description="Local time contact may begin")
    contact_end: time = Field(default=time(21, 0), description="Local time contact must stop")
    max_call_attempts_per_7_days: int | None = Field(default=None, ge=0)
    min_days_after_conversation: int | None = Field(
        default=None,
        ge=0,
        description="No call until this many days after a conversation (day of it = day 1)",
    )
    max_connected_calls_per_day: int | None = Field(default=None, ge=0)
    max_sms_per_day: int = Field(default=1, ge=0)
    max_sms_per_7_days: int = Field(default=4, ge=0)
    max_communications_per_7_days: int | None = Field(
        default=None, ge=0, description="Calls and texts together (e.g. Massachusetts: 2)"
    )
    max_abandoned_rate: float = Field(default=0.03, ge=0, le=1)
    no_redial_after_abandoned_hours: int = Field(default=72, ge=0)
    retention_years: int = Field(default=5, ge=1)
    # Emergency contacts (third parties), only when the debtor is unreachable: how often they may be asked.
    max_locate_per_7_days: int = Field(
        default=1, ge=0, description="Messages to the debtor's emergency contact in any 7 days"
    )
    max_locate_total: int = Field(
        default=1, ge=0, description="Messages to the debtor's emergency contact in all, ever"
    )
    region_overrides: dict[str, dict[str, int | None]] = Field(
        default_factory=dict, description="Stricter numbers for subdivisions, e.g. US-MA"
    )
    floors: Floors = Floors()
    response_tiers: ResponseTiers = Field(
        default_factory=ResponseTiers,
        description="How soon each kind of case is answered ([response_tiers.<kind>], domain/cases.py)",
    )
    complaint_channel: ComplaintChannel | None = Field(
        default=None, description="Where a debtor complains beyond the lender (printed in plan agreements)"
    )
    charge_caps: ChargeCaps | None = Field(
        default=None,
        description="The most that may be charged, each cap with its legal source ([charge_caps], domain/charges.py)",
    )
    credit_reporting: ReportingRules | None = Field(
        default=None, description="Notice, waiting period and file format of credit reporting; absent: never"
    )

    @field_validator("region_overrides")
    @classmethod
    def _regions(cls, value: dict[str, dict[str, int | None]]) -> dict[str, dict[str, int | None]]:
        for region, fields in value.items():
            for key, number in fields.items():
                if number is not None and number < 0:
                    raise ValueError(f"region_overrides.{region}.{key}: must be >= 0, not {number}")
        return _check_override_fields(value)

    @property
    def legal_jurisdiction(self) -> str:
        return (self.jurisdiction or self.name).strip().upper()

    @property
    def legal_floors(self) -> Floors:
        """The floors enforced: the law's for the jurisdiction, made stricter by the file's own."""
        return LEGAL_FLOORS.get(self.legal_jurisdiction, BASELINE_FLOORS).strictest(self.floors)

    @property
    def charge_caps_in_force(self) -> ChargeCaps | None:
        """The caps charges obey: the law's (LEGAL_CHARGE_CAPS) made stricter by the file's own table."""
        return caps_in_force(self.charge_caps, self.legal_jurisdiction)

    @model_validator(mode="after")
    def _not_looser_than_law(self) -> Profile:
        j = self.legal_jurisdiction
        if self.jurisdiction is None and j not in LEGAL_FLOORS:
            raise ValueError(
                f'profile {self.name}: jurisdiction: say whose law applies, e.g. jurisdiction = "US" '
                f"(known: {', '.join(sorted(LEGAL_FLOORS))}; any other code enforces the baseline floors only)"
            )
        f = self.legal_floors
        broken: list[str] = []

        def loosens(field: str, text: str, floor_field: str | None = None) -> None:
            broken.append(f"{field}: {text} (rule: {floor_rule(j, floor_field or field)})")

        if self.contact_start < f.earliest_start:
            loosens(
                "contact_start",
                f"{self.contact_start} is earlier than the legal {f.earliest_start}",
                "earliest_start",
            )
        if self.contact_end > f.latest_end:
            loosens("contact_end", f"{self.contact_end} is later than the legal {f.latest_end}", "latest_end")
        if self.contact_end <= self.contact_start:
            broken.append(f"contact_end: {self.contact_end} must be after contact_start {self.contact_start}")
        self._check_numbers(self, f, "", loosens)
        for region, fields in self.region_overrides.items():
            # for_region() applies the law's subdivision limits anyway; an explicit looser number is
            # still refused, because "never loosen silently" means the file must not even say so.
            legal_region = f.region_overrides.get(region, {})
            for field, mine in fields.items():
                legal = legal_region.get(field)
                if legal is None or mine is None:
                    continue
                if (mine > legal) if field in LOWER_IS_STRICTER else (mine < legal):
                    loosens(
                        f"region_overrides.{region}.{field}",
                        f"{mine} is looser than the legal {legal}",
                        field,
                    )
        if self.max_abandoned_rate > f.max_abandoned_rate:
            loosens(
                "max_abandoned_rate", f"{self.max_abandoned_rate} exceeds the legal {f.max_abandoned_rate}"
            )
        if self.retention_years < f.min_retention_years:
            loosens(
                "retention_years",
                f"{self.retention_years} is below the legal {f.min_retention_years}",
                "min_retention_years",
            )
        for field, what, rule in loosened(self.charge_caps, LEGAL_CHARGE_CAPS.get(j)):
            broken.append(f"{field}: {what} (rule: {rule})")
        if broken:
            raise ValueError(f"profile {self.name} loosens a legal minimum: " + "; ".join(broken))
        return self

    @staticmethod
    def _check_numbers(p: Profile, f: Floors, prefix: str, loosens: Any) -> None:
        for field in (
            "max_call_attempts_per_7_days",
            "max_connected_calls_per_day",
            "max_communications_per_7_days",
            "max_locate_total",
        ):
            legal, mine = getattr(f, field), getattr(p, field)
            if legal is not None and mine is None:
                loosens(prefix + field, f"not set (no limit), but the law allows at most {legal}", field)
            elif legal is not None and mine > legal:
                loosens(prefix + field, f"{mine} exceeds the legal maximum {legal}", field)
        pairs = (
            ("min_days_after_conversation", "min_days_after_conversation"),
            ("no_redial_after_abandoned_hours", "min_no_redial_after_abandoned_hours"),
        )
        for field, floor_field in pairs:
            legal, mine = getattr(f, floor_field), getattr(p, field)
            if legal is not None and mine is None:
                loosens(prefix + field, f"not set, but the law requires at least {legal}", floor_field)
            elif legal is not None and mine < legal:
                loosens(prefix + field, f"{mine} is below the legal minimum {legal}", floor_field)

    def for_region(self, region: str | None) -> Profile:
        """The profile with a subdivision's stricter numbers applied (never looser: the stricter wins).

        Region codes compare case-insensitively (``us-ma`` is ``US-MA``). The law's own subdivision
        limits (:data:`LEGAL_FLOORS`) apply even when the file has no override for the region.
        """
        key = (region or "").strip().upper()
        if not key:
            return self
        wanted: dict[str, int | None] = {}
        for source in (self.legal_floors.region_overrides.get(key, {}), self.region_overrides.get(key, {})):
            for field, value in source.items():
                if field in OVERRIDABLE:
                    wanted[field] = _stricter(wanted.get(field), value, lower=field in LOWER_IS_STRICTER)
        update: dict[str, int | None] = {}
        for field, value in wanted.items():
            if value is None:
                continue
            merged = _stricter(getattr(self, field), value, lower=field in LOWER_IS_STRICTER)
            if merged != getattr(self, field):
                update[field] = merged
        return self.model_copy(update=update) if update else self


def _describe(exc: ValidationError, source: str) -> str:
    """``file: field: reason`` for each error, without pydantic's ``Value error,`` noise."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return f"{source}: " + "; ".join(parts)


def parse_profile(text: str, *, source: str = "<profile>") -> Profile:
    """Validate a profile document; every error names the file and the field."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{source}: not valid TOML: {exc}") from None
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        raise ValueError(_describe(exc, source)) from None


@lru_cache(maxsize=32)
def load_profile(name: str = "US", directory: Path | None = None) -> Profile:
    path = (directory or PROFILE_DIR) / f"{name.lower()}.toml"
    if not path.is_file():
        raise ValueError(f"profile {name!r} not found at {path}")
    return parse_profile(path.read_text(encoding="utf-8"), source=str(path))
