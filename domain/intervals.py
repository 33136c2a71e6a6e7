"""95% confidence intervals for comparing variants: a share of accounts, and a ratio of two totals.

Why these two: a variant's rates (recovered, complained, opted out, broke a plan) are shares of its
accounts, and the Wilson score interval stays inside 0..1 and honest for the small counts and rates
near 0 a challenger at 10% produces (the textbook ``p ± z·√(p(1-p)/n)`` says "0% ± 0" after no
complaint in 30 accounts). Contacts per unit recovered is a ratio of two sums over the same accounts,
whose interval comes from the ratio estimator's linearised variance (the delta method).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Z95 = 1.959963984540054  # the standard normal's 97.5% quantile


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of ``successes`` out of ``n``; (0, 1) when there is no account yet."""
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"successes must be between 0 and n (got {successes} of {n})")
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    # the bounds are exactly 0 and 1 at the ends (the float arithmetic lands a hair inside)
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def ratio_interval(
    numerators: Sequence[float], denominators: Sequence[float], z: float = Z95
) -> tuple[float, float, float] | None:
    """``sum(num) / sum(den)`` over the same units, with its interval: (estimate, low, high).

    None when the denominator's total is 0 (nothing recovered yet: no ratio to speak of). With one
    unit the interval is the estimate alone (no spread can be measured)."""
    if len(numerators) != len(denominators):
        raise ValueError("one numerator and one denominator per unit")
    n = len(denominators)
    total = sum(denominators)
    if n == 0 or total <= 0:
        return None
    r = sum(numerators) / total
    if n == 1:
        return r, r, r
    mean_den = total / n
    residuals = sum((y - r * x) ** 2 for y, x in zip(numerators, denominators, strict=True))
    se = math.sqrt(residuals / (n - 1) / n) / mean_den
    return r, max(0.0, r - z * se), r + z * se
