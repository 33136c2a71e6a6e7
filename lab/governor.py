"""The call governor for a whole simulated campaign, answered without rescanning its calls.

:func:`domain.governor.decide_voice` reads every call of the window at each call: right for the
workflows (the store hands it the window's calls once per call), but a lab campaign of 50,000
accounts holds tens of thousands of calls in a 30-day window, so asking it at each call made a run
quadratic. :class:`CampaignCalls` gives the same answers from running sums.

Why that is exact. With the window's calls in time order, ``campaign_allows`` fails if, for some
index ``j`` from the first call inside the window (``lo``) to the first call not before ``now``
(``h``), the calls from ``j`` on plus one new call (every pending call counted abandoned) break
``abandoned <= p/q * max(live, sample)``. With prefix sums ``X`` (abandoned + pending) and ``Y``
(live + pending) over all calls and totals ``X[n]``, ``Y[n]``, the check for ``j`` is
``q * (X[n] - X[j] + 1) <= p * max(Y[n] - Y[j] + 1, sample)``. ``Y`` never decreases, so the ``j``
where the max is the live count are a prefix ``[lo, k)`` of the range, where the check reads
``q*X[j] - p*Y[j] >= q*(X[n]+1) - p*(Y[n]+1)``: one range minimum. For the rest ``[k, h]`` the
smallest ``j`` is the strictest (``X`` never decreases). The lab's clock only moves forward and
calls are added at its current time, so ``lo``, ``k`` and ``h`` only move forward too, and a
monotone queue keeps the range minimum in amortised constant time.

A rate pause is remembered: with no new call the verdict stays "no" until the instant
:func:`~domain.governor.voice_resumes_at` named (only calls ageing out change it, and that instant
is the first one at which that helps), so that search runs once per pause, not once per call asked.
Whatever breaks those assumptions (a clock going back, a call out of order) falls back to the
domain functions on the window's calls, which are the reference; ``tests/lab/test_governor.py``
checks both agree.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import deque
from datetime import datetime

from domain.governor import CallFact, GovernorRules, campaign_allows, voice_resumes_at


class CampaignCalls:
    """One campaign's calls, as one set of governor rules judges them (the window is the rules')."""

    def __init__(self, rules: GovernorRules) -> None:
        self.rules = rules
        limit = rules.limit
        self._p, self._q, self._sample = limit.numerator, limit.denominator, rules.sample
        self.calls: list[CallFact] = []
        self._ats: list[datetime] = []
        self._x = [0]  # prefix sums: abandoned + pending
        self._y = [0]  # live + pending
        self._v = [0]  # q * x - p * y
        self._lo = 0  # the first call inside the window at the last question
        self._pushed = 0  # indices below this have been offered to the queue
        self._min: deque[int] = deque()  # indices in [lo, pushed) whose v increases strictly
        self._asked: datetime | None = None  # the last question's instant
        self._in_order = True
        self._pause: tuple[int, datetime | None] | None = None  # (calls then, resumes at) of a rate pause

    def add(self, fact: CallFact) -> None:
        """One more call; the lab adds them at its clock's current time, so in time order."""
        if self._ats and fact.at < self._ats[-1]:
            self._in_order = False
        self.calls.append(fact)
        self._ats.append(fact.at)
        x = self._x[-1] + fact.abandoned + fact.pending
        y = self._y[-1] + fact.live + fact.pending
        self._x.append(x)
        self._y.append(y)
        self._v.append(self._q * x - self._p * y)

    def recent(self, now: datetime) -> list[CallFact]:
        """The calls inside the window ending at ``now`` (what the store would hand the governor)."""
        return self.calls[bisect_right(self._ats, now - self.rules.window) :]

    def paused_until(self, now: datetime) -> tuple[bool, datetime | None]:
        """(paused, until): whether one more call now is refused for the campaign's rate, and when
        voice is expected back (as ``decide_voice`` says: ``voice_resumes_at``, None if never)."""
        n = len(self.calls)
        if self._pause is not None and self._asked is not None and now >= self._asked:
            calls_then, until = self._pause
            if self._in_order and calls_then == n and (until is None or now < until):
                self._asked = now
                return True, until
        if self.allows(now):
            self._pause = None
            return False, None
        until = voice_resumes_at(self.recent(now), now, self.rules)
        self._pause = (n, until)
        return True, until

    def allows(self, now: datetime) -> bool:
        """``campaign_allows(self.recent(now), now, rules)``, from the running sums."""
        if not self._in_order or (self._asked is not None and now < self._asked):
            return campaign_allows(self.recent(now), now, self.rules)
        self._asked = now
        n = len(self.calls)
        lo = self._lo = bisect_right(self._ats, now - self.rules.window, lo=self._lo)
        h = bisect_left(self._ats, now, lo=lo) if self.rules.lookahead else lo
        p, q, sample = self._p, self._q, self._sample
        total_x, total_y = self._x[n], self._y[n]
        k = bisect_right(self._y, total_y + 1 - sample)  # from k on, the sample is the larger
        first_small = max(lo, k)
        if first_small <= h and q * (total_x - self._x[first_small] + 1) > p * sample:
            return False
        right = min(k, h + 1)  # the live count is the larger on [lo, right)
        if right <= lo:
            return True
        return self._range_min(lo, right) >= q * (total_x + 1) - p * (total_y + 1)

    def _range_min(self, lo: int, right: int) -> int:
        """min(v[lo:right]); both ends only move forward between calls (else the queue is rebuilt)."""
        queue, v = self._min, self._v
        if right < self._pushed:
            queue.clear()
            self._pushed = lo
        while queue and queue[0] < lo:
            queue.popleft()
        start = max(self._pushed, lo)
        for i in range(start, right):
            while queue and v[queue[-1]] >= v[i]:
                queue.pop()
            queue.append(i)
        self._pushed = max(self._pushed, right)
        return v[queue[0]]
