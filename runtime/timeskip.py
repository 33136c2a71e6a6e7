"""Moving the time-skipping test server's clock forward, for the suite and the lifecycle benchmark.

The clock only moves while no activity is outstanding, so a day in which hundreds of accounts
send their reminders lasts minutes of wall time, and one sleep call is held that long. Two
things break such a call through the SDK's own client: its keep-alive pings every 30 s, which
the Java test server answers with GOAWAY ("h2 protocol error"), and the call's deadline
("Timeout expired"). The steps therefore go through a client of their own with keep-alive off
and a deadline of five minutes, and a failed step is asked for again: the server goes on moving
the clock regardless, and the loop reads where it got to.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from temporalio.api.testservice.v1 import SleepRequest
from temporalio.client import Client
from temporalio.service import RPCError

STEP_DEADLINE = timedelta(minutes=5)
#: failed steps in a row, each moving the clock less than :data:`HELD_BELOW`, before giving up: a
#: clock that stands still, or only keeps pace with the wall clock (a server whose time skipping is
#: locked for good, sdk-java#1138), for ten minutes is held by something, not merely busy
STALLED_STEPS = 2
#: a failed five-minute step that moved the clock less than this was held (a free clock moves days)
HELD_BELOW = timedelta(minutes=30)
#: how long the server may take to tell the time
ANSWER_WITHIN = timedelta(seconds=60)


async def skip_clock(
    env: Any,
    target: datetime,
    *,
    step: timedelta = timedelta(days=1),
    on_day: Callable[[int], None] | None = None,
) -> None:
    """Skip ``env``'s clock to ``target`` in steps of at most ``step``.

    ``on_day`` is told each whole day reached, counted from the clock at the call, for a long run
    that should show where it is.
    """
    sleeper = await Client.connect(env.client.service_client.config.target_host, keep_alive_config=None)
    origin = await _now(env)
    stalled, last_day = 0, -1
    while (remaining := target - (now := await _now(env))) > timedelta(0):
        if on_day is not None and (day := (now - origin).days) > last_day:
            last_day = day
            on_day(day)
        request = SleepRequest()
        request.duration.FromTimedelta(min(remaining, step))
        try:
            await sleeper.test_service.unlock_time_skipping_with_sleep(request, timeout=STEP_DEADLINE)
            stalled = 0
        except RPCError:
            # a clock that moved no faster than the wall clock over a whole step is held, not busy
            moved = await _now(env) - now
            stalled = stalled + 1 if moved < HELD_BELOW else 0
            if stalled >= STALLED_STEPS:
                raise RuntimeError(
                    f"the time-skipping clock is held: {moved} in the last {STEP_DEADLINE} step "
                    f"({target - now} still to go); an activity outstanding or a leaked time lock"
                ) from None


async def _now(env: Any) -> datetime:
    """The server's clock, or a clear error when the server does not answer (instead of a hang)."""
    try:
        return await asyncio.wait_for(env.get_current_time(), ANSWER_WITHIN.total_seconds())
    except TimeoutError:
        raise RuntimeError(
            f"the time-skipping server did not tell the time within {ANSWER_WITHIN}: it is gone or stuck"
        ) from None
