"""The chaos campaigns pick their debtors' zones by the local hour now: every hour of the year must
have one, or a campaign started at that hour fails before it begins (it did at 20:11 UTC)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.chaos.conftest import midday_zones

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
