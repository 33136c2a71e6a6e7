"""The sender's send slots: never closer than one gap, never handed out twice, never far ahead.

Run on SQLite and PostgreSQL (``db_url``). Two engines stand for two worker processes: the limit must
hold across workers, not only across the threads of one.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy.orm import Session, sessionmaker

from store.db import make_engine, migration_engine, session_factory
from store.pacing import (
    HEADROOM,
    IN_FLIGHT_SECONDS,
    acquire_slot,
    admit,
    gap_seconds,
    provider_request,
    release,
    wait_for_slot,
    window,
)

EPS = 1e-6  # slots are stored in whole microseconds


def sender() -> str:
    return f"+1555{uuid.uuid4().int % 10**7:07d}"  # each test its own sender row


def max_in_window(times: list[float], window: float) -> int:
    """The most of the sorted ``times`` inside any interval ``[x, x + window)``."""
    return max((sum(1 for u in times if t <= u < t + window) for t in times), default=0)


class FakeClock:
    """A wall clock the test moves by hand; ``sleep`` advances it instead of waiting."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.t = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


def test_the_gap_leaves_headroom_under_the_limit() -> None:
    assert gap_seconds(5.0) == pytest.approx(1 / (5.0 * HEADROOM))
    assert 5 * gap_seconds(5.0) > 1.0  # six consecutive slots never fit in one second
    assert HEADROOM >= 0.95  # and a backlog still drains at >= 95 % of the limit
    with pytest.raises(ValueError):
        gap_seconds(0)


def test_many_threads_of_two_workers_never_get_slots_closer_than_one_gap(db_url: str) -> None:
    rate = 40.0
    gap = gap_seconds(rate)
    who = sender()
    worker_a = session_factory(make_engine(db_url))
    other = migration_engine(db_url)  # a second, separate engine: another worker process
    worker_b = session_factory(other)
    granted: list[tuple[float, float]] = []  # (slot, when wait_for_slot returned)
    lock = threading.Lock()

    def send(sessions: sessionmaker[Session]) -> None:
        for _ in range(5):
            slot = wait_for_slot(sessions, who, rate, max_ahead=0.1)
            returned = time.time()
            assert slot is not None
            with lock:
                granted.append((slot, returned))

    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            for future in [pool.submit(send, worker_a if i % 2 else worker_b) for i in range(8)]:
                future.result()
    finally:
        other.dispose()

    slots = sorted(slot for slot, _ in granted)
    assert len(slots) == 40 and len(set(slots)) == 40  # no slot handed out twice
    assert all(b - a >= gap - EPS for a, b in itertools.pairwise(slots))
    assert max_in_window(slots, 1.0) <= rate  # the limit itself, in any one-second window
    assert all(returned >= slot for slot, returned in granted)  # nobody goes before their slot


def test_a_slot_is_never_reserved_further_ahead_than_max_ahead(sessions: sessionmaker[Session]) -> None:
    clock = FakeClock()
    who, rate, ahead = sender(), 1.0, 2.5
    gap = gap_seconds(rate)
    slots = []
    while (grant := acquire_slot(sessions, who, rate, now=clock, max_ahead=ahead)).granted:
        slots.append(grant.slot)
    assert slots == pytest.approx([clock.t, clock.t + gap, clock.t + 2 * gap], abs=EPS)
    # the fourth would be 3.09 s ahead: refused, with the moment it comes within reach
    assert grant.retry_at == pytest.approx(clock.t + 3 * gap - ahead, abs=EPS)
    assert acquire_slot(sessions, who, rate, now=clock, max_ahead=ahead).granted is False  # nothing taken

    clock.t = grant.retry_at
    again = acquire_slot(sessions, who, rate, now=clock, max_ahead=ahead)
    assert again.slot == pytest.approx(slots[-1] + gap, abs=EPS)
    assert again.slot <= clock.t + ahead + EPS  # type: ignore[operator]


def test_idle_time_is_not_saved_up_for_a_burst(sessions: sessionmaker[Session]) -> None:
    clock = FakeClock()
    who, rate = sender(), 5.0
    acquire_slot(sessions, who, rate, now=clock)
    clock.t += 60  # a quiet minute
    first = acquire_slot(sessions, who, rate, now=clock)
    second = acquire_slot(sessions, who, rate, now=clock)
    assert first.slot == pytest.approx(clock.t, abs=EPS)
    assert second.slot == pytest.approx(clock.t + gap_seconds(rate), abs=EPS)


def test_waiting_heartbeats_and_sleeps_until_the_slot(sessions: sessionmaker[Session]) -> None:
    clock = FakeClock()
    who, rate = sender(), 0.5  # one send every ~2 s
    beats: list[float] = []
    for _ in range(3):
        wait_for_slot(
            sessions, who, rate, now=clock, sleep=clock.sleep, heartbeat=lambda: beats.append(clock.t)
        )
    start = clock.t
    slot = wait_for_slot(
        sessions, who, rate, now=clock, sleep=clock.sleep, heartbeat=lambda: beats.append(clock.t)
    )
    assert slot is not None and clock.t >= slot
    assert all(s <= 1.0 + EPS for s in clock.slept)  # a heartbeat at least every second of waiting
    assert len([b for b in beats if b > start]) >= int(slot - start)


def test_a_cancelled_wait_gives_up_without_a_slot(sessions: sessionmaker[Session]) -> None:
    clock = FakeClock()
    who, rate = sender(), 0.5
    for _ in range(3):  # the next free slot is ~6 s away
        acquire_slot(sessions, who, rate, now=clock, max_ahead=10)
    cancel = threading.Event()
    got = wait_for_slot(
        sessions, who, rate, now=clock, sleep=clock.sleep, heartbeat=cancel.set, cancelled=cancel.is_set
    )
    assert got is None
    assert clock.t < 1_000_000.0 + 6  # it stopped at the first heartbeat, not at the slot


def test_the_window_is_the_limit_read_strictly() -> None:
    assert window(5.0) == (5, 1.0)  # five in any second
    assert window(0.5) == (1, 2.0)  # one in any two seconds
    assert window(2.5) == (2, 0.8)  # never three in a second


def test_requests_of_two_workers_never_overlap_more_than_the_limit_in_any_window(db_url: str) -> None:
    """Each request is known to reach the carrier between its start and its answer; with random
    delays in between, no one-second window can ever contain more than ``rate`` arrivals."""
    rate = 20.0
    n, w = window(rate)
    who = sender()
    other = migration_engine(db_url)
    workers = [session_factory(make_engine(db_url)), session_factory(other)]
    spans: list[tuple[float, float]] = []  # (start, answer) of each request
    lock = threading.Lock()

    def send(i: int) -> None:
        sessions = workers[i % 2]
        for j in range(6):
            with provider_request(sessions, who, rate):
                start = time.time()
                time.sleep(0.002 * ((i * 7 + j) % 5))  # the request's own, uneven duration
                answer = time.time()
            with lock:
                spans.append((start, answer))

    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            for future in [pool.submit(send, i) for i in range(8)]:
                future.result()
    finally:
        other.dispose()

    assert len(spans) == 48
    # even if every request reached the carrier at the worst moment of its span, no window of W
    # seconds [x, x + W) could hold more than n: the busiest such window starts at an answer
    for _, x in spans:
        assert sum(1 for start, answer in spans if start < x + w and answer >= x) <= n


def test_a_full_window_waits_for_the_oldest_request_to_leave_it(sessions: sessionmaker[Session]) -> None:
    clock = FakeClock()
    who, rate = sender(), 2.0  # two in any second
    first = admit(sessions, who, rate, now=clock, sleep=clock.sleep)
    release(sessions, first, now=clock)
    clock.t += 0.3
    second = admit(sessions, who, rate, now=clock, sleep=clock.sleep)  # still in flight
    clock.t += 0.1
    admit(sessions, who, rate, now=clock, sleep=clock.sleep)
    assert clock.t >= 1_000_000.0 + 1.0 - EPS  # the third waited until the first had left the window
    assert clock.slept  # and it waited by sleeping, not by failing
    release(sessions, second, now=clock)


def test_an_unanswered_request_holds_its_place_only_for_a_while(sessions: sessionmaker[Session]) -> None:
    clock = FakeClock()
    who, rate = sender(), 1.0
    admit(sessions, who, rate, now=clock, sleep=clock.sleep)  # its worker died: never released
    start = clock.t
    admit(sessions, who, rate, now=clock, sleep=clock.sleep)
    assert clock.t >= start + IN_FLIGHT_SECONDS + 1.0 - EPS
