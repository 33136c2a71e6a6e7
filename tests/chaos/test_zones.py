"""The chaos campaigns pick their debtors' zones by the local hour now: every hour of the year must
have one, or a campaign started at that hour fails before it begins (it did at 20:11 UTC)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.chaos.conftest import INTAKE_MARGIN, before_ten, midday_zones

#: Days on which to try every hour: one in each stretch between two clock changes of the listed zones
#: (the shortest, a week, lie around Mar 29-Apr 5, Sep 27-Oct 4 and Oct 25-Nov 1)
DAYS = [datetime(2026, month, day, 0, 30, tzinfo=UTC) for month in range(1, 13) for day in (1, 10, 20, 28)]


@pytest.mark.parametrize(("lo", "hi"), [(8, 9), (9, 10), (9, 15)])
def test_every_hour_of_the_year_has_a_zone_at_the_hours_the_campaigns_ask_for(lo: int, hi: int) -> None:
    missing = []
    for now in (day + timedelta(hours=h) for day in DAYS for h in range(24)):
        try:
            midday_zones(now, lo=lo, hi=hi)
        except ValueError:
            missing.append(f"{now:%m-%d %H:%M}")
    assert not missing, missing[:10]


@pytest.mark.parametrize("minute", range(0, 60))
def test_the_first_reminder_is_within_two_policy_hours_and_never_before_intake_is_over(minute: int) -> None:
    """``before_ten``: the debtors' 10:00 is at least the intake margin away, and at most two hours."""
    now = datetime(2026, 3, 10, 13, minute, 30, tzinfo=UTC)
    lo, hi = before_ten(now)
    for zone in midday_zones(now, lo=lo, hi=hi):
        local = now.astimezone(ZoneInfo(zone))
        ten = local.replace(hour=10, minute=0, second=0)
        assert INTAKE_MARGIN <= ten - local <= timedelta(hours=2), (zone, local)
        if minute < 57:
            assert ten - local <= timedelta(hours=1), (zone, local)  # no idle hour before it
