"""Debtors who answer: a seeded model of what a person does after a contact reaches them.

The carrier table (:mod:`lab.behaviour`) says what the *network* does with a text or a call; this
says what the *debtor* does next: pay in full or in part, ask for a plan (and keep it or not), reply
STOP, complain, or nothing. The strategy lab applies it to every contact that reached someone
(:mod:`lab.reactions`); the demo's debtors (:mod:`carrier.debtors`) apply the same model to what the
carrier simulator delivered, through the product's own doors (signed inbound texts, the payments
and plans APIs), so the dashboard's charts move during a demo.

Every draw is a hash of (seed, account, n, what): the n-th contact that reached an account gets the
same answer wherever it is asked, and one account's draws never depend on another's. The numbers
live in ``lab/debtors.toml`` (documented there); a lender's own go in a copy of it.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

from domain.accounts import Channel, ContactOutcome

DEFAULT_FILE = Path(__file__).resolve().parent / "debtors.toml"

#: what reaching someone means, per channel and outcome: the key of the ``engage`` table
Reach = Literal["sms", "voice", "voicemail"]


class Reaction(StrEnum):
    NOTHING = "nothing"
    PAY_FULL = "pay_full"
    PAY_PART = "pay_part"
    PLAN = "plan"
    STOP = "stop"
    COMPLAIN = "complain"


@dataclass(frozen=True, slots=True)
class Response:
    """What the debtor does; ``share`` of the balance for a part payment, ``periods`` for a plan."""

    reaction: Reaction
    share: float = 0.0
    periods: int = 0


class Engage(BaseModel):
    channel: Reach
    hours: tuple[int, int] = Field(description="[from, to) local hours")
    p: float = Field(ge=0, le=1)

    @model_validator(mode="after")
    def _hours(self) -> Engage:
        lo, hi = self.hours
        if not 0 <= lo < hi <= 24:
            raise ValueError(f"hours: [{lo}, {hi}) is not a range of hours within a day")
        return self


class Segment(BaseModel):
    pay_full: float = Field(ge=0, le=1)
    pay_part: float = Field(ge=0, le=1)
    plan: float = Field(ge=0, le=1)
    stop: float = Field(ge=0, le=1)
    complain: float = Field(ge=0, le=1)
    pay_part_share: tuple[float, float] = (0.2, 0.5)
    plan_periods: list[int] = Field(default_factory=lambda: [3], min_length=1)
    keep: float = Field(ge=0, le=1)

    @model_validator(mode="after")
    def _sane(self) -> Segment:
        lo, hi = self.pay_part_share
        if not 0 < lo <= hi < 1:
            raise ValueError("pay_part_share: give [from, to] with 0 < from <= to < 1 (a part, not all)")
        if any(p < 2 for p in self.plan_periods):
            raise ValueError("plan_periods: a plan has at least 2 instalments")
        return self


class Lateness(BaseModel):
    until: int = Field(ge=0, description="days past due, inclusive")
    pay: float = Field(ge=0)
    plan: float = Field(ge=0)
    stop: float = Field(ge=0)
    complain: float = Field(ge=0)


class DebtorModel(BaseModel):
    """The file's contents, checked; :meth:`respond` and :meth:`keeps` are all a caller needs."""

    seed: int
    engage: list[Engage]
    engage_other_hours: float = Field(default=0.0, ge=0, le=1)
    segments: dict[str, Segment] = Field(min_length=1)
    lateness: list[Lateness] = Field(min_length=1)

    @model_validator(mode="after")
    def _bands(self) -> DebtorModel:
        ends = [band.until for band in self.lateness]
        if ends != sorted(ends) or len(set(ends)) != len(ends):
            raise ValueError("lateness: bands must be in increasing order of `until`")
        for name, seg in self.segments.items():
            for band in self.lateness:
                total = (seg.pay_full + seg.pay_part) * band.pay + seg.plan * band.plan
                total += seg.stop * band.stop + seg.complain * band.complain
                if total > 1:
                    raise ValueError(
                        f"segments.{name}: its reactions add up to {total:.2f} for accounts up to "
                        f"{band.until} days late (at most 1)"
                    )
        return self

    # ---- the draws ------------------------------------------------------------------------------
    def engages(self, account_id: str, n: int, reach: Reach, local_hour: int) -> bool:
        return _draw(self.seed, account_id, n, "engage") < self.engage_p(reach, local_hour)

    def engage_p(self, reach: Reach, local_hour: int) -> float:
        for e in self.engage:
            if e.channel == reach and e.hours[0] <= local_hour < e.hours[1]:
                return e.p
        return self.engage_other_hours

    def respond(
        self, account_id: str, n: int, reach: Reach, local_hour: int, dpd: int, segment: str
    ) -> Response:
        """The debtor's answer to the ``n``-th contact (1-based) that reached them."""
        seg = self.segments.get(segment) or self.segments.get("default")
        if seg is None or not self.engages(account_id, n, reach, local_hour):
            return Response(Reaction.NOTHING)
        band = next((b for b in self.lateness if dpd <= b.until), self.lateness[-1])
        u = _draw(self.seed, account_id, n, "reaction")
        for reaction, p in (
            (Reaction.PAY_FULL, seg.pay_full * band.pay),
            (Reaction.PAY_PART, seg.pay_part * band.pay),
            (Reaction.PLAN, seg.plan * band.plan),
            (Reaction.STOP, seg.stop * band.stop),
            (Reaction.COMPLAIN, seg.complain * band.complain),
        ):
            if u < p:
                return self._detail(reaction, seg, account_id, n)
            u -= p
        return Response(Reaction.NOTHING)

    def _detail(self, reaction: Reaction, seg: Segment, account_id: str, n: int) -> Response:
        u = _draw(self.seed, account_id, n, "detail")
        if reaction == Reaction.PAY_PART:
            lo, hi = seg.pay_part_share
            return Response(reaction, share=round(lo + (hi - lo) * u, 4))
        if reaction == Reaction.PLAN:
            return Response(reaction, periods=seg.plan_periods[int(u * len(seg.plan_periods))])
        return Response(reaction)

    def keeps(self, account_id: str, plan_no: int, instalment: int, segment: str) -> bool:
        """Whether the debtor pays instalment ``instalment`` (1-based) of their ``plan_no``-th plan."""
        seg = self.segments.get(segment) or self.segments.get("default")
        if seg is None:
            return False
        return _draw(self.seed, account_id, plan_no * 1_000 + instalment, "keep") < seg.keep


def reach_of(channel: Channel, outcome: ContactOutcome) -> Reach | None:
    """Whether a contact reached the debtor, and how: a delivered text, a conversation, a voicemail."""
    if channel == Channel.SMS:
        return "sms" if outcome == ContactOutcome.DELIVERED else None
    if outcome == ContactOutcome.CONVERSATION:
        return "voice"
    return "voicemail" if outcome == ContactOutcome.VOICEMAIL else None


def load_model(path: Path | str | None = None) -> DebtorModel:
    """The model in ``path`` (default ``lab/debtors.toml``); a bad file is refused naming the field."""
    source = Path(path) if path is not None else DEFAULT_FILE
    try:
        data = tomllib.loads(source.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ValueError(f"{source}: {err}") from err
    try:
        return DebtorModel.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "file"
        raise ValueError(f"{source}: {where}: {first['msg']}") from err


def _draw(seed: int, account_id: str, n: int, what: str) -> float:
    """A uniform number in [0, 1) that only these four values decide."""
    digest = hashlib.blake2b(f"{seed}|{account_id}|{n}|{what}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


__all__ = ["DebtorModel", "Reaction", "Response", "load_model", "reach_of"]
