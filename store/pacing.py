"""A hard, global send-rate limit per sender number, coordinated through the application database.

Why here and not in Temporal: the contact task queue's ``max_task_queue_activities_per_second`` only
paces when activities are *dispatched*; what reaches the carrier can still bunch up (one activity
slow to start, the next fast), and a carrier counts arrivals. The server also splits that rate
between the queue's partitions, so the last of a backlog, left in one partition, went out at a
quarter of it; the workers therefore ask the server for four times the sender's rate
(``workers.setup.TASK_QUEUE_PARTITIONS``) and the limit is kept here alone. Every try that is about
to call the provider first reserves a send slot, shared by all worker processes and threads:

* one row per sender (``sender_pacing``) holds ``next_at``, the earliest moment the next send may go;
* a reservation takes ``slot = max(next_at, now)`` and moves ``next_at`` to ``slot + gap`` with a
  compare-and-set (``UPDATE ... WHERE next_at = <what we read>``), retried when another worker won
  the race; no lock is held while anyone sleeps, and it works the same on PostgreSQL and SQLite;
* ``gap = 1 / (rate * HEADROOM)``: slightly more than ``1 / rate``, so that ``rate`` consecutive
  slots span a little more than one second and the scatter between a slot and the carrier's receipt
  (the gate's transaction, the HTTP request) does not fit one more send into any 1-second window;
* a slot is never reserved more than ``max_ahead`` seconds ahead: the caller is told when to come
  back instead, so no activity sits on a far-future slot (and a cancelled or crashed one leaves at
  most a short hole in the schedule, never a long one).

That schedule paces the tries; it cannot by itself bound what the carrier sees, because a try can
run late after its slot (a slow gate transaction, a busy CPU) and a request can take long to arrive
(measured here: 5 ms typically, 160 ms at worst with the worker idle, 370 ms with it busy). So the
provider request itself passes a second, exact check (:func:`provider_request`): with
``N = floor(rate)`` and ``W = N / rate`` seconds (1 s for a whole rate), a request may start only
while fewer than ``N`` requests of this sender *may have reached the carrier in the last W seconds*:
those still in flight, or answered less than ``W`` ago. A request reaches the carrier after it
starts and before its answer comes back, so no ``W`` window at the carrier can ever hold more than
``N`` of them, whatever the delays. The price is one provider round trip per ``N`` sends, which the
schedule's headroom absorbs while round trips stay under about 30 ms (the check then hardly ever
waits, and the gate stays the last thing before the provider call).

Every wait here heartbeats (``heartbeat``, at least every :data:`BEAT_SECONDS`): a try that waits is
alive, and the server must not time it out and start a retry while it still means to send. The
admission can also carry the caller's last check (``admit_if``, run in the admitting transaction,
right after a heartbeat and with nothing but the request itself after it): the send activity checks
there that its try still holds the send's clearance, so a try that stalled long enough for a retry
to take over is refused (:class:`NotAdmitted`) instead of sending a second time.

Idle time is not saved up (``max(next_at, now)``): after a quiet minute the next sends still go one
gap apart, there is no burst. Wall-clock time (``time.time``) throughout: the carrier's limit is (workers' clocks are assumed
NTP-synchronised, well within the schedule's headroom).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from store.models import SenderPacingRow, SenderSendRow

#: Fraction of the configured rate we aim for. 0.97 leaves ``1/0.97 - 1`` ≈ 31 ms per second of
#: schedule for the scatter between slot and receipt, and still drains a backlog at 97 % of the limit.
HEADROOM = 0.97
#: How far ahead a slot may be reserved; further out, the caller sleeps and asks again.
MAX_AHEAD_SECONDS = 1.0
#: Longest sleep between heartbeats (and cancellation checks) while waiting for a slot.
BEAT_SECONDS = 1.0
#: How long a request without an answer yet is assumed to be on its way: longer than the twilio
#: client's request timeout, so a worker that died mid-call holds its place only this long.
IN_FLIGHT_SECONDS = 15.0
#: Longest sleep before looking again when the window is full of requests still in flight.
ADMIT_POLL_SECONDS = 0.01

_US = 1_000_000
log = logging.getLogger(__name__)


class NotAdmitted(Exception):
    """The caller's ``admit_if`` refused the request at admission: it must not be made."""


@dataclass(frozen=True)
class Grant:
    """The answer to one reservation: a slot (epoch seconds), or when to ask again."""

    slot: float | None
    retry_at: float

    @property
    def granted(self) -> bool:
        return self.slot is not None


def gap_seconds(rate: float, headroom: float = HEADROOM) -> float:
    """Seconds between two consecutive slots of one sender at ``rate`` sends per second."""
    if rate <= 0:
        raise ValueError(f"rate must be positive, got {rate!r}")
    return 1.0 / (rate * headroom)


def acquire_slot(
    sessions: sessionmaker[Session],
    sender: str,
    rate: float,
    *,
    now: Callable[[], float] = time.time,
    max_ahead: float = MAX_AHEAD_SECONDS,
    headroom: float = HEADROOM,
) -> Grant:
    """Reserve the sender's next slot, if it is at most ``max_ahead`` seconds away.

    Granted slots of one sender are at least :func:`gap_seconds` apart, whoever reserved them, and
    each is handed out once. Not granted: ``retry_at`` is the moment the next slot comes within
    ``max_ahead`` (other callers may take it first; then ask again). Each round is its own short
    transaction; a lost compare-and-set or a concurrent first insert just means another caller got
    a slot, so the loop always makes progress overall.
    """
    gap_us = math.ceil(gap_seconds(rate, headroom) * _US)
    ahead_us = int(max_ahead * _US)
    while True:
        t_us = int(now() * _US)
        try:
            with sessions.begin() as s:
                current = s.scalar(select(SenderPacingRow.next_at_us).where(SenderPacingRow.sender == sender))
                if current is None:  # first send ever from this number
                    s.execute(insert(SenderPacingRow).values(sender=sender, next_at_us=t_us + gap_us))
                    slot_us = t_us
                else:
                    slot_us = max(current, t_us)
                    if slot_us > t_us + ahead_us:
                        return Grant(slot=None, retry_at=(slot_us - ahead_us) / _US)
                    moved = s.execute(
                        update(SenderPacingRow)
                        .where(SenderPacingRow.sender == sender, SenderPacingRow.next_at_us == current)
                        .values(next_at_us=slot_us + gap_us)
                    )
                    if moved.rowcount != 1:  # another worker reserved in between: read again
                        continue
        except IntegrityError:  # another worker inserted the first row at the same moment
            continue
        return Grant(slot=slot_us / _US, retry_at=slot_us / _US)


def wait_for_slot(
    sessions: sessionmaker[Session],
    sender: str,
    rate: float,
    *,
    heartbeat: Callable[[], None] = lambda: None,
    cancelled: Callable[[], bool] = lambda: False,
    now: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    max_ahead: float = MAX_AHEAD_SECONDS,
) -> float | None:
    """Reserve a slot and sleep until it: the moment this caller may call the provider.

    Heartbeats at least every :data:`BEAT_SECONDS` while waiting, so a long backlog never trips a
    heartbeat timeout. None when ``cancelled()`` became true first; a slot already reserved is then
    left unused (a hole of one gap in the schedule, never a burst).
    """
    while True:
        if cancelled():
            return None
        grant = acquire_slot(sessions, sender, rate, now=now, max_ahead=max_ahead)
        while (remaining := grant.retry_at - now()) > 0:
            sleep(min(remaining, BEAT_SECONDS))
            heartbeat()
            if cancelled():
                return None
        if grant.slot is not None:
            return grant.slot


def window(rate: float) -> tuple[int, float]:
    """``(N, W)``: at most N requests in any W seconds, the strictest reading of ``rate`` per second."""
    n = max(1, math.floor(rate))
    return n, n / rate


def admit(
    sessions: sessionmaker[Session],
    sender: str,
    rate: float,
    *,
    now: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    heartbeat: Callable[[], None] = lambda: None,
    admit_if: Callable[[Session], bool] | None = None,
) -> int:
    """Wait until a provider request of ``sender`` may start, and register it: its id for :func:`release`.

    Admissions of one sender are serialised on its ``sender_pacing`` row (row lock on PostgreSQL,
    the write lock that every SQLite transaction takes here), so the count and the insert are one
    decision. Requests older than the window are deleted on the way. ``heartbeat`` is called before
    every round (so also right before the admitting one) and at least every :data:`BEAT_SECONDS`
    while waiting. ``admit_if(session)`` runs in each round's transaction, after the sender's lock:
    False raises :class:`NotAdmitted` and registers nothing.
    """
    n, w = window(rate)
    w_us, in_flight_us = int(w * _US), int(IN_FLIGHT_SECONDS * _US)
    while True:
        heartbeat()
        try:
            with sessions.begin() as s:
                _lock_sender(s, sender, int(now() * _US))
                if admit_if is not None and not admit_if(s):
                    raise NotAdmitted(f"a provider request of {sender} refused by its caller's check")
                t_us = int(now() * _US)  # read *after* the lock: waiting for it takes time too
                mine = SenderSendRow.sender == sender
                s.execute(delete(SenderSendRow).where(mine, SenderSendRow.ends_us <= t_us - w_us))
                ends = list(
                    s.scalars(select(SenderSendRow.ends_us).where(mine).order_by(SenderSendRow.ends_us))
                )
                if len(ends) < n:
                    return s.execute(
                        insert(SenderSendRow)
                        .values(sender=sender, started_us=t_us, ends_us=t_us + in_flight_us)
                        .returning(SenderSendRow.id)
                    ).scalar_one()
                free_at_us = ends[len(ends) - n] + w_us  # when the oldest that must go has left the window
        except IntegrityError:  # another worker created the sender's row at the same moment
            continue
        wait_us = max(free_at_us - t_us, 1)
        # an answered request leaves the window at a known moment: sleep exactly until then (a beat
        # at most, then look again); one still in flight may be answered any moment: look again soon
        sleep(min(wait_us / _US, BEAT_SECONDS) if wait_us <= w_us else ADMIT_POLL_SECONDS)


def release(sessions: sessionmaker[Session], send_id: int, *, now: Callable[[], float] = time.time) -> None:
    """The provider answered (or the request failed): from now on it certainly is at the carrier."""
    with sessions.begin() as s:
        s.execute(update(SenderSendRow).where(SenderSendRow.id == send_id).values(ends_us=int(now() * _US)))


@contextmanager
def provider_request(
    sessions: sessionmaker[Session],
    sender: str,
    rate: float,
    *,
    now: Callable[[], float] = time.time,
    heartbeat: Callable[[], None] = lambda: None,
    admit_if: Callable[[Session], bool] | None = None,
) -> Iterator[None]:
    """``with provider_request(...): client.messages.create(...)``: the request inside the hard limit.

    ``heartbeat`` and ``admit_if`` as in :func:`admit`; a refused request raises :class:`NotAdmitted`
    before the body runs.
    """
    send_id = admit(sessions, sender, rate, now=now, heartbeat=heartbeat, admit_if=admit_if)
    try:
        yield
    finally:
        answered = now()  # the moment the answer came back, not when the release got the lock
        try:
            release(sessions, send_id, now=lambda: answered)
        except Exception:  # the database is away: the request keeps its place until IN_FLIGHT_SECONDS
            log.warning("could not release a provider request of the sender's rate window", exc_info=True)


def _lock_sender(s: Session, sender: str, t_us: int) -> None:
    """Hold the sender's row for this transaction, creating it on first use."""
    locked = s.scalar(
        select(SenderPacingRow.sender).where(SenderPacingRow.sender == sender).with_for_update()
    )
    if locked is None:
        s.execute(insert(SenderPacingRow).values(sender=sender, next_at_us=t_us))
