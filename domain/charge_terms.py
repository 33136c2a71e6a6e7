"""The terms of charges: what a policy charges (``[charges]``) and what a profile allows (``[charge_caps]``).

Two files, two owners. The *policy* is the lender's contract: penalty interest, a late fee, when they
start. The *profile* is the law: the most that may ever be charged, each number with its legal source
beside it. The law's own maxima also live here in code (:data:`LEGAL_CHARGE_CAPS`), so a profile file
may only tighten them; one that loosens a cap is refused at load, naming the field and the rule.

A policy without a ``[charges]`` table charges nothing, ever: running workflows carry the parsed policy
in their history, and their replay must add exactly zero.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from domain.accounts import HoldKind, Product
from domain.money import check_currency, format_minor

Rounding = Literal["half_up", "half_even", "down"]

#: Basis points in a whole (100% = 10,000 bp).
BP = 10_000


def _money_table(value: dict[str, int]) -> dict[str, int]:
    """Currency codes upper-cased and checked; amounts whole minor units, never negative."""
    out: dict[str, int] = {}
    for code, amount in value.items():
        try:
            key = check_currency(code)
        except ValueError as exc:
            raise ValueError(f"{code}: {exc}") from None
        if amount < 0:
            raise ValueError(f"{key}: must be >= 0 minor units, not {amount}")
        out[key] = amount
    return out


class ChargeRules(BaseModel):
    """A policy's ``[charges]`` table: what the lender's contract charges on an overdue amount.

    Interest is simple (never on interest or fees), on the principal outstanding, per day in the
    debtor's calendar. The late fee is charged on the first day after the grace period and, with
    ``fee_every_days``, again every that many days, at most ``max_fees`` times in all.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    penalty_rate_bp: int = Field(
        default=0, ge=0, le=36_500, description="Annual penalty interest in basis points (1000 = 10.00%)"
    )
    day_count: Literal[365, 360] = Field(
        default=365, description="Days in the year the annual rate divides by"
    )
    rounding: Rounding = Field(
        default="half_up",
        description="How a period's running interest is rounded to the minor unit (half_up, half_even, down)",
    )
    grace_days: int = Field(
        default=0, ge=0, le=365, description="Days from the first overdue day with no charges"
    )
    late_fee: dict[str, int] = Field(
        default_factory=dict, description="Late fee per currency, in minor units"
    )
    fee_every_days: int | None = Field(default=None, ge=1, description="Charge the fee again every N days")
    max_fees: int = Field(default=1, ge=1, le=100, description="Late fees charged at most this many times")
    products: list[Product] = Field(default_factory=lambda: list(Product))
    freeze_while_plan_kept: bool = Field(default=True, description="No charges while a plan is kept")
    freeze_holds: list[HoldKind] = Field(
        default_factory=lambda: [HoldKind.DISPUTE, HoldKind.BANKRUPTCY, HoldKind.DECEASED],
        description="Holds during which nothing accrues",
    )
    source: str = Field(default="", description="Where the contract provides these charges")

    @field_validator("late_fee")
    @classmethod
    def _fees(cls, value: dict[str, int]) -> dict[str, int]:
        return _money_table(value)

    @model_validator(mode="after")
    def _repeat(self) -> ChargeRules:
        if self.fee_every_days is not None and self.max_fees == 1:
            raise ValueError("fee_every_days is set but max_fees = 1: say how many fees at most (max_fees)")
        if self.fee_every_days is None and self.max_fees > 1:
            raise ValueError(f"max_fees = {self.max_fees} needs fee_every_days (when the fee repeats)")
        return self

    def applies_to(self, product: Product | str) -> bool:
        return Product(product) in self.products

    def charges_anything(self, currency: str) -> bool:
        return self.penalty_rate_bp > 0 or self.late_fee.get(currency.upper(), 0) > 0


class RateCap(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    bp: int = Field(ge=0, le=100_000, description="Annual interest at most, in basis points")
    source: str = Field(min_length=1)


class FeeCap(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    each: dict[str, int] = Field(default_factory=dict, description="One late fee at most, per currency")
    total: dict[str, int] = Field(default_factory=dict, description="All late fees together at most")
    source: str = Field(min_length=1)

    @field_validator("each", "total")
    @classmethod
    def _money(cls, value: dict[str, int]) -> dict[str, int]:
        return _money_table(value)


class TotalCostCap(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    bp: int = Field(
        ge=0, le=100_000, description="All charges ever added, as a share of the amount first owed"
    )
    source: str = Field(min_length=1)


class FreezeRule(BaseModel):
    """When the law (or the regulator's expectation) says charges must stop."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    while_plan_kept: bool = False
    holds: list[HoldKind] = Field(default_factory=list)
    source: str = Field(min_length=1)


class ChargeCaps(BaseModel):
    """A profile's ``[charge_caps]`` table: the most a jurisdiction lets a collector add (absent: no cap)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    annual_rate: RateCap | None = None
    fee: FeeCap | None = None
    total_cost: TotalCostCap | None = None
    freeze: FreezeRule | None = None

    def strictest(self, other: ChargeCaps | None) -> ChargeCaps:
        """Both sets of caps at once: each at its lower value, freezes together."""
        if other is None:
            return self
        rate = _lower(self.annual_rate, other.annual_rate)
        total = _lower(self.total_cost, other.total_cost)
        fee: FeeCap | None = self.fee or other.fee
        if self.fee is not None and other.fee is not None:
            fee = FeeCap(
                each=_lower_each(self.fee.each, other.fee.each),
                total=_lower_each(self.fee.total, other.fee.total),
                source=_fee_source(self.fee, other.fee),
            )
        freeze: FreezeRule | None = self.freeze or other.freeze
        if self.freeze is not None and other.freeze is not None:
            freeze = FreezeRule(
                while_plan_kept=self.freeze.while_plan_kept or other.freeze.while_plan_kept,
                holds=list(dict.fromkeys([*self.freeze.holds, *other.freeze.holds])),
                source="; ".join(dict.fromkeys([self.freeze.source, other.freeze.source])),
            )
        return ChargeCaps(annual_rate=rate, fee=fee, total_cost=total, freeze=freeze)


_Bp = TypeVar("_Bp", RateCap, TotalCostCap)


def _lower(a: _Bp | None, b: _Bp | None) -> _Bp | None:
    if a is None or b is None:
        return a or b
    return a if a.bp <= b.bp else b


def _covers(a: FeeCap, b: FeeCap) -> bool:
    """Whether ``a`` caps every amount ``b`` caps, at least as low."""
    return all(
        k in mine and mine[k] <= v
        for part in ("each", "total")
        for mine in [getattr(a, part)]
        for k, v in getattr(b, part).items()
    )


def _fee_source(a: FeeCap, b: FeeCap) -> str:
    """One source when one table is the stricter everywhere (the file's restating the law); else both."""
    if _covers(b, a):
        return b.source
    if _covers(a, b):
        return a.source
    return f"{a.source}; {b.source}"


def _lower_each(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    return {k: min(v for v in (a.get(k), b.get(k)) if v is not None) for k in {*a, *b}}


#: The law's caps by jurisdiction, enforced whether or not a profile file repeats them. A jurisdiction
#: missing here has no general legal cap the product knows of (the US: state usury laws vary, and most
#: lenders are exempt from them under federal preemption).
LEGAL_CHARGE_CAPS: dict[str, ChargeCaps] = {
    "UK": ChargeCaps(
        annual_rate=RateCap(
            bp=29_200,
            source="FCA CONC 5A.3.3R initial cost cap: 0.8% a day of the credit outstanding (x 365 = 292% a year); "
            "binds high-cost short-term credit, applied here to every UK account",
        ),
        fee=FeeCap(
            each={"GBP": 1_500},
            total={"GBP": 1_500},
            source="FCA CONC 5A.3 default cap: default fees at most GBP 15 in all (FCA PS14/16); "
            "binds high-cost short-term credit, applied here to every UK account",
        ),
        total_cost=TotalCostCap(
            bp=10_000,
            source="FCA CONC 5A.3.2R total cost cap: all charges at most 100% of the credit provided",
        ),
    ),
    "CN": ChargeCaps(
        annual_rate=RateCap(
            bp=2_400,
            source="最高人民法院《关于进一步加强金融审判工作的若干意见》(法发〔2017〕22号) 第二条: 利息、复利、罚息、"
            "违约金和其他费用总计超过年利率 24% 的部分, 借款人请求调减的, 人民法院应予支持",
        ),
    ),
}


def loosened(caps: ChargeCaps | None, legal: ChargeCaps | None) -> list[tuple[str, str, str]]:
    """Where a profile's caps are looser than the law's: ``(field, what, rule)`` for each.

    A cap the law sets and the file leaves out counts as looser ("no cap"), as for the contact floors:
    a file that says nothing must not look as if it allowed anything.
    """
    if caps is None or legal is None:
        return []
    out: list[tuple[str, str, str]] = []
    for name in ("annual_rate", "total_cost"):
        law: RateCap | TotalCostCap | None = getattr(legal, name)
        mine: RateCap | TotalCostCap | None = getattr(caps, name)
        if law is None:
            continue
        if mine is None:
            out.append(
                (
                    f"charge_caps.{name}",
                    f"not set (no cap), but the law allows at most {law.bp} bp",
                    law.source,
                )
            )
        elif mine.bp > law.bp:
            out.append(
                (f"charge_caps.{name}.bp", f"{mine.bp} exceeds the legal maximum {law.bp}", law.source)
            )
    if legal.fee is not None:
        for part in ("each", "total"):
            for currency, law_amount in getattr(legal.fee, part).items():
                mine_amount = getattr(caps.fee, part).get(currency) if caps.fee is not None else None
                field = f"charge_caps.fee.{part}.{currency}"
                if mine_amount is None:
                    out.append(
                        (
                            field,
                            f"not set (no cap), but the law allows at most {law_amount}",
                            legal.fee.source,
                        )
                    )
                elif mine_amount > law_amount:
                    out.append(
                        (field, f"{mine_amount} exceeds the legal maximum {law_amount}", legal.fee.source)
                    )
    if legal.freeze is not None:
        mine_freeze = caps.freeze
        if legal.freeze.while_plan_kept and not (mine_freeze and mine_freeze.while_plan_kept):
            out.append(("charge_caps.freeze.while_plan_kept", "must be true", legal.freeze.source))
        missing = [h for h in legal.freeze.holds if not (mine_freeze and h in mine_freeze.holds)]
        if missing:
            out.append(
                ("charge_caps.freeze.holds", f"must include {', '.join(missing)}", legal.freeze.source)
            )
    return out


def caps_in_force(caps: ChargeCaps | None, jurisdiction: str) -> ChargeCaps | None:
    """The caps that apply: the law's for the jurisdiction, made stricter by the file's own."""
    legal = LEGAL_CHARGE_CAPS.get(jurisdiction.strip().upper())
    if legal is None:
        return caps
    return legal.strictest(caps)


def freeze_reason(
    rules: ChargeRules | None,
    caps: ChargeCaps | None,
    *,
    plan_kept: bool,
    holds: Iterable[HoldKind | str] = (),
) -> str | None:
    """Why charges stop today (``"plan_kept"`` or ``"hold:<kind>"``), or None: accrue.

    The policy may freeze more than the law asks (a humane lender), never less: either one's word
    freezes. A kept plan is named first, as it is what the debtor did.
    """
    if rules is None:
        return None
    if plan_kept and (rules.freeze_while_plan_kept or (caps and caps.freeze and caps.freeze.while_plan_kept)):
        return "plan_kept"
    frozen_by = set(rules.freeze_holds) | set(caps.freeze.holds if caps and caps.freeze else ())
    for kind in HoldKind:
        if kind in frozen_by and kind in {HoldKind(h) for h in holds}:
            return f"hold:{kind.value}"
    return None


def freeze_source(rules: ChargeRules | None, caps: ChargeCaps | None, reason: str) -> str:
    """Who required a freeze: the law's source if the profile requires it, else the policy's."""
    law = caps.freeze if caps else None
    if law is not None:
        if reason == "plan_kept" and law.while_plan_kept:
            return law.source
        if reason.startswith("hold:") and reason.removeprefix("hold:") in {h.value for h in law.holds}:
            return law.source
    return (rules.source if rules and rules.source else "") or "policy"


def effective_rate(rules: ChargeRules, caps: ChargeCaps | None) -> tuple[int, bool]:
    """The annual rate charged (bp) and whether a cap cut it."""
    cap = caps.annual_rate.bp if caps and caps.annual_rate else None
    if cap is not None and cap < rules.penalty_rate_bp:
        return cap, True
    return rules.penalty_rate_bp, False


def percent(bp: int) -> str:
    return f"{bp // 100}.{bp % 100:02d}%"


_ROUNDING_TEXT = {
    "en": {"half_up": "rounded half-up", "half_even": "rounded half-even", "down": "rounded down"},
    "zh-CN": {"half_up": "四舍五入", "half_even": "银行家舍入（四舍六入五成双）", "down": "舍去"},
}
_HOLD_ZH = {
    "pause": "暂停",
    "dispute": "争议",
    "complaint": "投诉",
    "cease": "停止联系",
    "attorney": "律师代理",
    "bankruptcy": "破产",
    "deceased": "身故",
    "negotiation": "协商",
}


def formula(
    rules: ChargeRules | None, caps: ChargeCaps | None, language: str = "en", currency: str | None = None
) -> str:
    """The charges in words, for the status, the page and the audit (en or zh-CN; other languages: en)."""
    zh = language == "zh-CN"
    if rules is None or not (rules.penalty_rate_bp or rules.late_fee):
        return (
            "本政策不收取罚息或滞纳金。"
            if zh
            else "This policy charges no penalty interest and no late fees."
        )
    rate, cut = effective_rate(rules, caps)
    rounding = _ROUNDING_TEXT["zh-CN" if zh else "en"][rules.rounding]
    parts: list[str] = []
    if rate:
        parts.append(
            f"罚息：本金 × {percent(rate)} ÷ {rules.day_count} / 日（单利，不对利息或费用计息），"
            f"本金不变期间的累计额{rounding}到最小货币单位，每日数额为累计额之差"
            if zh
            else f"Penalty interest: principal x {percent(rate)} / {rules.day_count} per day (simple: never on "
            f"interest or fees), {rounding} to the minor unit on the running total of each period of unchanged "
            "principal; each day's figure is the difference of running totals"
        )
    fees = {currency.upper(): rules.late_fee.get(currency.upper(), 0)} if currency else rules.late_fee
    fees = {k: v for k, v in fees.items() if v}
    if fees:
        amounts = ", ".join(format_minor(v, k) for k, v in sorted(fees.items()))
        if zh:
            text = f"滞纳金：宽限期 {rules.grace_days} 天届满时收取 {amounts}"
            if rules.fee_every_days:
                text += f"，此后每 {rules.fee_every_days} 天一次，最多 {rules.max_fees} 次"
        else:
            text = f"Late fee: {amounts} when the {rules.grace_days}-day grace period ends"
            if rules.fee_every_days:
                text += f", then every {rules.fee_every_days} days, at most {rules.max_fees} times"
        parts.append(text)
    elif rules.grace_days and rate:
        parts.append(
            f"宽限期 {rules.grace_days} 天内不计收"
            if zh
            else f"nothing for the first {rules.grace_days} days (grace)"
        )
    parts.extend(_cap_texts(rules, caps, zh, cut, currency))
    holds = list(dict.fromkeys([*rules.freeze_holds, *(caps.freeze.holds if caps and caps.freeze else ())]))
    plan = rules.freeze_while_plan_kept or bool(caps and caps.freeze and caps.freeze.while_plan_kept)
    if plan or holds:
        if zh:
            what = (["履行还款计划期间"] if plan else []) + [
                f"{_HOLD_ZH.get(h.value, h.value)}期间" for h in holds
            ]
            parts.append("以下期间停止计收：" + "、".join(what))
        else:
            what = (["while a plan is kept"] if plan else []) + [f"during a {h.value} hold" for h in holds]
            parts.append("Nothing accrues " + ", ".join(what))
    return ("；".join(parts) + "。") if zh else ("; ".join(parts) + ".")


def _cap_texts(
    rules: ChargeRules, caps: ChargeCaps | None, zh: bool, cut: bool, currency: str | None
) -> list[str]:
    if caps is None:
        return []
    out: list[str] = []
    if caps.annual_rate is not None:
        note = ("（合同利率 " + percent(rules.penalty_rate_bp) + " 已按上限调减）") if zh and cut else ""
        note = note or (f" (the contract's {percent(rules.penalty_rate_bp)} is cut to it)" if cut else "")
        out.append(
            f"年利率上限 {percent(caps.annual_rate.bp)}{note}（依据：{caps.annual_rate.source}）"
            if zh
            else f"capped at {percent(caps.annual_rate.bp)} a year{note} (source: {caps.annual_rate.source})"
        )
    if caps.fee is not None:
        for part, en, cn in (
            ("each", "each late fee", "每笔滞纳金"),
            ("total", "all late fees", "滞纳金合计"),
        ):
            table: dict[str, int] = getattr(caps.fee, part)
            shown = (
                {currency.upper(): table[currency.upper()]}
                if currency and currency.upper() in table
                else table
            )
            if currency and currency.upper() not in table:
                continue
            if shown:
                amounts = ", ".join(format_minor(v, k) for k, v in sorted(shown.items()))
                out.append(
                    f"{cn}不超过 {amounts}（依据：{caps.fee.source}）"
                    if zh
                    else f"{en} at most {amounts} (source: {caps.fee.source})"
                )
    if caps.total_cost is not None:
        out.append(
            f"所有费用合计不超过原欠金额的 {percent(caps.total_cost.bp)}（依据：{caps.total_cost.source}）"
            if zh
            else f"all charges together at most {percent(caps.total_cost.bp)} of the amount first owed "
            f"(source: {caps.total_cost.source})"
        )
    return out
