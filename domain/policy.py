"""The collection policy: stages by days past due, the contact cadence, charge-off and settlement limits.

Policies are TOML files (``policies/<name>.toml``) validated here, so a typo in an operator's file
fails at load with the field named instead of silently changing who gets texted when.
"""

from __future__ import annotations

import tomllib
from datetime import time
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.accounts import Channel, Product, Stage
from domain.charge_terms import ChargeRules
from domain.credit_reporting import Furnishing
from domain.errors import describe
from domain.visits import PlacementPolicy, VisitPolicy

POLICY_DIR = Path(__file__).resolve().parent.parent / "policies"


class StageStarts(BaseModel):
    """First DPD of each stage; a stage lasts until the next one starts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pre_due: int = -7
    early: int = 1
    middle: int = 31
    late: int = 91

    @model_validator(mode="after")
    def _ordered(self) -> StageStarts:
        if not (self.pre_due <= 0 < self.early < self.middle < self.late):
            raise ValueError("stages must start in order: pre_due <= 0 < early < middle < late")
        return self


class CadenceRule(BaseModel):
    """A contact the policy plans on given days past due (a list, or a range with a step)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    channel: Channel
    template: str
    dpd: list[int] = Field(default_factory=list)
    from_dpd: int | None = None
    to_dpd: int | None = None
    every_days: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _shape(self) -> CadenceRule:
        ranged = self.from_dpd is not None or self.to_dpd is not None or self.every_days is not None
        if ranged and self.dpd:
            raise ValueError("give either dpd = [...] or from_dpd/to_dpd/every_days, not both")
        if ranged and (self.from_dpd is None or self.to_dpd is None or self.every_days is None):
            raise ValueError("a ranged cadence needs from_dpd, to_dpd and every_days")
        if ranged and self.to_dpd < self.from_dpd:  # type: ignore[operator]
            raise ValueError("to_dpd must not be before from_dpd")
        if not ranged and not self.dpd:
            raise ValueError("a cadence rule needs dpd = [...] or a range")
        return self

    def days(self) -> list[int]:
        if self.dpd:
            return sorted(set(self.dpd))
        assert self.from_dpd is not None and self.to_dpd is not None and self.every_days is not None
        return list(range(self.from_dpd, self.to_dpd + 1, self.every_days))


class SettlementRules(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    max_deferral_months: int = Field(default=13, ge=0, le=13)
    max_periods: int = Field(default=60, ge=1, le=60)
    min_period_days: int = Field(default=7, ge=1)
    max_period_days: int = Field(default=31, ge=1)
    promise_max_days: int = Field(default=30, ge=1)
    grace_days: int = Field(default=3, ge=0)
    reminder_days_before: list[int] = Field(default_factory=lambda: [3, 1])
    waiver_requires_evidence: bool = True
    waiver_requires_approver: bool = True
    max_waiver_share: float = Field(default=1.0, gt=0, le=1.0, description="Share of fees that may be waived")


class Policy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str = ""
    send_time: time = Field(default=time(10, 0), description="Preferred local time of planned contacts")
    stages: StageStarts = StageStarts()
    chargeoff_dpd: dict[Product, int] = Field(
        default_factory=lambda: {Product.CREDIT_LINE: 180, Product.CLOSED_END: 120}
    )
    grace_days: dict[Product, int] = Field(
        default_factory=dict,
        description=(
            "Days after the due date, per product, in which nothing says the payment is late: no overdue "
            "message, no frozen line, no charge. Absent (0) in policies written before issue 15, so the "
            "accounts they run replay as they ran"
        ),
    )
    cadence: list[CadenceRule]
    chargeoff_open_days: int = Field(
        default=30,
        ge=0,
        description="Days a charged-off account that was not placed keeps taking payments (a receipt, "
        "closed as paid) before its run ends; later payments are recorded and go to the refund queue",
    )
    contact_lost_after: int = Field(
        default=2,
        ge=1,
        description="Consecutive undeliverable attempts on every channel before 'contact lost'",
    )
    settlement: SettlementRules = SettlementRules()
    # field visits and agency placement (issue 7); a policy without the tables does neither
    visits: VisitPolicy = VisitPolicy(enabled=False)
    placement: PlacementPolicy = PlacementPolicy(enabled=False)
    # penalty interest and late fees (issue 15, domain/charges.py); a policy without the table charges nothing
    charges: ChargeRules | None = None
    # the lender reports its accounts to credit bureaus (issue 15); absent: never, and no notice goes
    credit_reporting: Furnishing | None = None

    @model_validator(mode="after")
    def _chargeoff(self) -> Policy:
        for product in Product:
            dpd = self.chargeoff_dpd.get(product)
            if dpd is None:
                raise ValueError(f"chargeoff_dpd.{product.value} is missing")
            if dpd <= self.stages.late:
                raise ValueError(f"chargeoff_dpd.{product.value} must be after the late stage starts")
        return self

    @model_validator(mode="after")
    def _one_grace(self) -> Policy:
        if self.charges is not None and self.charges.grace_days:
            raise ValueError(
                "charges.grace_days: the grace period is the policy's [grace_days], per product; "
                "charges begin the day after it, so the charges table must not set one of its own"
            )
        if self.credit_reporting is not None:
            for product in Product:
                if self.in_grace(self.credit_reporting.notice_dpd, product):
                    raise ValueError(
                        f"credit_reporting.notice_dpd: day {self.credit_reporting.notice_dpd} is inside "
                        f"{product.value}'s grace period"
                    )
        return self

    @model_validator(mode="after")
    def _grace(self) -> Policy:
        for product, days in self.grace_days.items():
            if days < 0:
                raise ValueError(f"grace_days.{product.value} must be 0 or more days, not {days}")
            if days + 1 >= self.stages.middle:
                raise ValueError(
                    f"grace_days.{product.value} ({days}) must end before the middle stage starts "
                    f"(day {self.stages.middle})"
                )
        for i, rule in enumerate(self.cadence):
            if rule.template.endswith("_grace") and any(self.grace_for(p) == 0 for p in Product):
                raise ValueError(
                    f"cadence[{i}].template: {rule.template!r} names the grace period's last day, and "
                    "grace_days gives some product none: set grace_days for every product"
                )
        shortest = min((self.grace_for(p) for p in Product), default=0)
        for i, rule in enumerate(self.cadence):
            inside = [d for d in rule.dpd if 1 <= d <= shortest]
            if inside:
                raise ValueError(
                    f"cadence[{i}].dpd: day {inside[0]} falls inside every product's grace period "
                    f"({shortest} days after the due date), where no overdue message may go"
                )
        return self

    def chargeoff_for(self, product: Product) -> int:
        return self.chargeoff_dpd[product]

    def grace_for(self, product: Product) -> int:
        """Days after the due date in which the account is not treated as late (0: none)."""
        return self.grace_days.get(product, 0)

    def in_grace(self, dpd: int, product: Product) -> bool:
        return 1 <= dpd <= self.grace_for(product)

    def early_start(self, product: Product) -> int:
        """The first day of the early stage: the day after the grace period, at the earliest."""
        return max(self.stages.early, self.grace_for(product) + 1)

    def stage_for(self, dpd: int, product: Product) -> Stage:
        if dpd >= self.chargeoff_for(product):
            return Stage.CHARGED_OFF
        if dpd >= self.stages.late:
            return Stage.LATE
        if dpd >= self.stages.middle:
            return Stage.MIDDLE
        if dpd >= self.early_start(product):
            return Stage.EARLY
        return Stage.PRE_DUE

    def stage_starts(self, product: Product) -> list[tuple[int, Stage]]:
        return [
            (self.early_start(product), Stage.EARLY),
            (self.stages.middle, Stage.MIDDLE),
            (self.stages.late, Stage.LATE),
            (self.chargeoff_for(product), Stage.CHARGED_OFF),
        ]


def parse_policy(text: str, *, source: str = "<policy>") -> Policy:
    """Validate a policy document; errors name the file and the field."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{source}: not valid TOML: {exc}") from None
    try:
        return Policy.model_validate(data)
    except Exception as exc:
        raise ValueError(describe(exc, source)) from None


@lru_cache(maxsize=32)
def load_policy(name: str = "default", directory: Path | None = None) -> Policy:
    path = (directory or POLICY_DIR) / f"{name}.toml"
    if not path.is_file():
        raise ValueError(f"policy {name!r} not found at {path}")
    return parse_policy(path.read_text(encoding="utf-8"), source=str(path))


#: The product's own policies as runs recorded before rules were pinned read them: frozen copies, so
#: the shipped ``policies/default.toml`` can change (issue 15 gave it a grace period) without changing
#: how those runs replay.
LEGACY_POLICY_DIR = POLICY_DIR / "legacy"


def load_legacy_policy(name: str) -> Policy:
    """The policy a run recorded before pinned rules reads: the frozen copy of a shipped policy, or
    the operator's own file (which only the operator changes, and :mod:`domain.rules` versions)."""
    frozen = LEGACY_POLICY_DIR / f"{name}.toml"
    return load_policy(name, LEGACY_POLICY_DIR) if frozen.is_file() else load_policy(name)
