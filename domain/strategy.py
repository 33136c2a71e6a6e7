"""Champion/challenger: which policy a new account gets, by a stable hash of its id and the shares.

A *strategy* names a champion policy and challengers, each a named *variant* with a share of new
accounts. Intake assigns each account it takes in (and whose file row names no policy: an explicit
``policy`` column always wins) to a variant, stores the variant with the account and tags its workflow
with it (search attribute ``Variant``), so the results per variant can be compared on the dashboard.

Why a hash and not a random draw: the same account id always lands in the same variant, so intake can
be re-run, a second intake of the same file agrees with the first, and anyone can recompute why an
account got the policy it got (``bucket`` is SHA-256 of the id, not of anything secret). The buckets
are laid out in the file's order (the champion first, then each challenger), so changing a share moves
only the accounts whose bucket leaves its variant's range.

Shares are written in percent with at most two decimals (``share = 10`` or ``12.5``) and kept in basis
points (1/100 of a percent; 10,000 buckets); the champion gets what the challengers leave.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Collection, Iterable
from decimal import Decimal, InvalidOperation
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from domain.accounts import Account
from domain.errors import describe

BUCKETS = 10_000  # basis points: a share of 0.01% is one bucket
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class StrategyError(ValueError):
    """A strategy file that cannot be used, with the file and the field named."""


class Variant(BaseModel):
    """One arm of the test: its name (what the Temporal UI and the dashboard show) and its policy."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="The variant's name: letters, digits, '_' and '-'")
    policy: str = Field(description="The policy file (policies/<policy>.toml) its accounts run")
    share_bp: int = Field(ge=0, le=BUCKETS, description="Share of new accounts, in basis points")

    @field_validator("name", "policy")
    @classmethod
    def _file_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"{value!r} may only contain letters, digits, '_' and '-' (64 at most)")
        return value


class Strategy(BaseModel):
    """The champion and its challengers; the champion's share is what the challengers leave."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    champion: Variant
    challengers: tuple[Variant, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Strategy:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"variant names must differ: {', '.join(names)}")
        taken = sum(v.share_bp for v in self.challengers)
        if self.champion.share_bp + taken != BUCKETS:
            raise ValueError(f"the shares add up to {(self.champion.share_bp + taken) / 100:g}%, not 100%")
        return self

    @property
    def variants(self) -> tuple[Variant, ...]:
        """The champion first, then the challengers: the order the buckets are laid out in."""
        return (self.champion, *self.challengers)

    def variant(self, name: str) -> Variant:
        for v in self.variants:
            if v.name == name:
                return v
        raise StrategyError(f"no variant {name!r} in strategy {self.name!r} (it has {', '.join(self.names)})")

    @property
    def names(self) -> list[str]:
        return [v.name for v in self.variants]


class Assignment(BaseModel):
    """Which variant an account was put in, and why (its bucket): stored and audited at intake."""

    model_config = ConfigDict(frozen=True)

    strategy: str
    variant: str
    policy: str
    bucket: int


def bucket(account_id: str) -> int:
    """The account's bucket, 0..9999: the first 8 bytes of SHA-256 of its id, modulo 10,000.

    (2**64 is not a multiple of 10,000; the bias that leaves is below 1e-15 per bucket.)"""
    digest = hashlib.sha256(account_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def assign(strategy: Strategy, account_id: str) -> Assignment:
    """The variant whose range holds the account's bucket (ranges in the file's order)."""
    b = bucket(account_id)
    end = 0
    for v in strategy.variants:
        end += v.share_bp
        if b < end:
            return Assignment(strategy=strategy.name, variant=v.name, policy=v.policy, bucket=b)
    raise AssertionError("the shares add up to 100%")  # the model guarantees it


def assign_accounts(
    strategy: Strategy | None, accounts: Iterable[Account], policy_given: Collection[str]
) -> tuple[list[Account], dict[str, Assignment]]:
    """Intake's accounts with their policies set by the strategy, and each one's assignment.

    An account whose file row named a policy (``policy_given``, its id) keeps it and is in no
    variant: the lender chose its policy on purpose, so it is no random draw and would bias the
    comparison. Without a strategy every account is left as it is."""
    out: list[Account] = []
    assignments: dict[str, Assignment] = {}
    for account in accounts:
        if strategy is None or account.account_id in policy_given:
            out.append(account)
            continue
        a = assign(strategy, account.account_id)
        assignments[account.account_id] = a
        out.append(account if account.policy == a.policy else account.model_copy(update={"policy": a.policy}))
    return out, assignments


def promoted(strategy: Strategy, name: str) -> Strategy:
    """The strategy after ``name`` is promoted: it is the champion with every new account (100%).

    The old champion and the other challengers leave the file; their accounts keep their variant (the
    results stay comparable), and the promotion's audit line says who promoted what, from what."""
    winner = strategy.variant(name)
    if winner.name == strategy.champion.name and not strategy.challengers:
        raise StrategyError(f"{name!r} is already the champion with every new account")
    return Strategy(name=strategy.name, champion=winner.model_copy(update={"share_bp": BUCKETS}))


# ---- the file ------------------------------------------------------------------------------------
def _share_bp(value: object, where: str) -> int:
    """Percent with at most two decimals (``10``, ``12.5``) -> basis points; anything else is refused."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise StrategyError(f"{where}: share must be a number of percent such as 10 or 12.5")
    try:
        pct = Decimal(str(value))
    except InvalidOperation:
        raise StrategyError(f"{where}: share {value!r} is not a number of percent") from None
    bp = pct * 100
    if bp != bp.to_integral_value() or not 0 <= bp <= BUCKETS:
        raise StrategyError(f"{where}: share {value}% must be between 0 and 100 with at most two decimals")
    return int(bp)


def parse_strategy(text: str, *, source: str = "strategy") -> Strategy:
    """A strategy file's text, checked: every problem names the file and the field.

    Each variant's policy must be a policy file that loads (an unknown one would otherwise fail every
    account of that variant at intake)."""
    from domain.policy import load_policy

    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise StrategyError(f"{source}: not valid TOML: {exc}") from None
    unknown = set(raw) - {"name", "champion", "challengers"}
    if unknown:
        raise StrategyError(f"{source}: unknown key(s) {', '.join(sorted(unknown))}")
    champion = raw.get("champion")
    if not isinstance(champion, dict):
        raise StrategyError(f"{source}: champion: a [champion] table with variant and policy is required")
    challengers = raw.get("challengers", [])
    if not isinstance(challengers, list) or not all(isinstance(c, dict) for c in challengers):
        raise StrategyError(f"{source}: challengers: must be [[challengers]] tables")
    variants: list[dict[str, object]] = []
    for where, table in [("champion", champion)] + [
        (f"challengers[{i}]", c) for i, c in enumerate(challengers)
    ]:
        extra = set(table) - {"variant", "policy", "share"}
        if extra:
            raise StrategyError(f"{source}: {where}: unknown key(s) {', '.join(sorted(extra))}")
        if where == "champion" and "share" in table:
            raise StrategyError(f"{source}: champion: has no share (it gets what the challengers leave)")
        if where != "champion" and "share" not in table:
            raise StrategyError(f"{source}: {where}: share is required (percent of new accounts)")
        for key in ("variant", "policy"):
            if not isinstance(table.get(key), str):
                raise StrategyError(f"{source}: {where}: {key} is required (a name)")
        variants.append(
            {
                "name": table["variant"],
                "policy": table["policy"],
                "share_bp": 0 if where == "champion" else _share_bp(table["share"], f"{source}: {where}"),
            }
        )
    variants[0]["share_bp"] = BUCKETS - sum(int(str(v["share_bp"])) for v in variants[1:])
    if int(str(variants[0]["share_bp"])) < 0:
        raise StrategyError(f"{source}: challengers: their shares add up to more than 100%")
    try:
        strategy = Strategy(
            name=raw.get("name", "strategy"),
            champion=Variant.model_validate(variants[0]),
            challengers=tuple(Variant.model_validate(v) for v in variants[1:]),
        )
    except ValidationError as exc:
        raise StrategyError(describe(exc, source)) from None
    for where, v in zip(
        ["champion"] + [f"challengers[{i}]" for i in range(len(challengers))], strategy.variants, strict=True
    ):
        try:
            load_policy(v.policy)
        except ValueError as exc:
            raise StrategyError(f"{source}: {where}: policy {v.policy!r} does not load: {exc}") from None
    return strategy


def load_strategy(path: Path) -> Strategy | None:
    """The strategy in ``path``, or None when there is no such file (no test running: as before)."""
    if not path.is_file():
        return None
    return parse_strategy(path.read_text(encoding="utf-8"), source=str(path))


def render_strategy(strategy: Strategy, *, note: str = "") -> str:
    """The strategy as a file :func:`parse_strategy` reads back (what ``strategy promote`` writes)."""

    def q(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = [f"# {line}" for line in note.splitlines()]
    lines += [
        f"name = {q(strategy.name)}",
        "",
        "[champion]  # gets what the challengers leave",
        f"variant = {q(strategy.champion.name)}",
        f"policy = {q(strategy.champion.policy)}",
    ]
    for c in strategy.challengers:
        share = Decimal(c.share_bp) / 100
        lines += [
            "",
            "[[challengers]]",
            f"variant = {q(c.name)}",
            f"policy = {q(c.policy)}",
            f"share = {share:f}",
        ]
    return "\n".join(lines) + "\n"
