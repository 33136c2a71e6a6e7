"""Policy time versus real time.

A demo must be able to show weeks of collection in minutes, yet every rule (quiet hours, caps, due
dates) must keep speaking in calendar days. So the workflow keeps two clocks: *real* time (what
Temporal's timers use) and *policy* time (what the rules see). With the default scale they are the
same clock; with ``day_seconds=2`` one policy day passes every two real seconds, starting at
``epoch``, which the account's first run fixes and every continue-as-new carries unchanged.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field, field_validator

REAL_DAY_SECONDS = 86_400


class PolicyClock(BaseModel):
    model_config = ConfigDict(frozen=True)

    epoch: datetime = Field(description="Real instant at which policy time and real time coincide")
    day_seconds: float = Field(default=REAL_DAY_SECONDS, gt=0, description="Real seconds per policy day")

    @field_validator("epoch")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("epoch must be timezone-aware")
        return value

    @property
    def speedup(self) -> float:
        return REAL_DAY_SECONDS / self.day_seconds

    def policy_now(self, real_now: datetime) -> datetime:
        if self.day_seconds == REAL_DAY_SECONDS:
            return real_now
        return self.epoch + (real_now - self.epoch) * self.speedup

    def real_at(self, policy_instant: datetime) -> datetime:
        if self.day_seconds == REAL_DAY_SECONDS:
            return policy_instant
        return self.epoch + (policy_instant - self.epoch) / self.speedup

    def real_delay(self, policy_now: datetime, policy_target: datetime) -> timedelta:
        """Real time to sleep so that policy time reaches ``policy_target`` (never negative)."""
        delta = policy_target - policy_now
        if delta <= timedelta(0):
            return timedelta(0)
        return delta / self.speedup if self.day_seconds != REAL_DAY_SECONDS else delta
