"""What the benchmarks conclude from their samples. The lifecycle splits the machine's CPU by process,
to say which part bounds the rate (a split that put our work on the wrong line would send the next
attempt at the goal to the wrong place); the plan update's p99 ratio comes with an interval, so a
run tells a miss from noise."""

from __future__ import annotations

import hashlib
import random
import subprocess
import sys
import time

from bench.infra import ratio_interval
from bench.load import BENCH_PROCESS as OURS
from bench.load import cpu_by_process


def burn(seconds: float) -> None:
    end = time.process_time() + seconds
    data = b"x"
    while time.process_time() < end:
        data = hashlib.sha256(data).digest()


def test_work_in_this_process_counts_as_the_benchmark_process() -> None:
    before = cpu_by_process()
    burn(0.5)
    after = cpu_by_process()
    assert after[OURS] - before[OURS] >= 0.4


def test_a_reaped_child_s_cpu_counts_with_its_parent() -> None:
    """PostgreSQL's backends end and are reaped by its postmaster; a child's time must not vanish."""
    before = cpu_by_process()[OURS]
    code = "import time\nend = time.process_time() + 0.5\nwhile time.process_time() < end: pass"
    subprocess.run([sys.executable, "-c", code], check=True)
    assert cpu_by_process()[OURS] - before >= 0.4


def test_the_ratio_interval_tells_a_clear_miss_from_noise() -> None:
    rng = random.Random(1)
    raw = [rng.lognormvariate(3.0, 0.5) for _ in range(1000)]
    same = [rng.lognormvariate(3.0, 0.5) for _ in range(1000)]
    slow = [3 * x for x in (rng.lognormvariate(3.0, 0.5) for _ in range(1000))]
    low, high = ratio_interval(same, raw, 99)
    assert low < 1 < high  # one distribution: the interval holds 1
    low, high = ratio_interval(slow, raw, 99)
    assert low > 2  # three times slower: a miss whatever the noise


def test_two_hundred_samples_of_a_heavy_tail_leave_the_ratio_undecided() -> None:
    """What the benchmark's p99 over 200 samples is up against: the same code, a wide interval."""
    rng = random.Random(2)
    raw = [rng.paretovariate(2.0) for _ in range(200)]
    ours = [1.9 * rng.paretovariate(2.0) for _ in range(200)]
    low, high = ratio_interval(ours, raw, 99)
    assert low < 2 < high
