"""A deliverer process killed with SIGKILL in the middle of a request loses nothing and keeps each
account's order: restarted, it sends everything, a duplicate at most (the same event ID), never an
event before the one ahead of it.

``python -m workers.events`` runs as a subprocess on the test's database (restarted as ``./collect
events``); the subscriber holds one
request open until the kill, so the process dies with a delivery the lender received and never
acknowledged to it: exactly the case that must come again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from activities.records import RecordActivities
from tests.events.conftest import Subscriber
from tests.events.test_deliverer import subscribe, write_events

ROOT = Path(__file__).resolve().parents[2]


def deliverer(db_url: str, command: tuple[str, ...] = ("-m", "workers.events")) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "COLLECT_DATABASE_URL": db_url,
        "COLLECT_ENV": "development",
        "COLLECT_EVENTS_TIMEOUT_SECONDS": "1",  # a lease of 3 s: what a killed deliverer holds up
        "COLLECT_EVENTS_CONCURRENCY": "3",
        "COLLECT_EVENTS_POLL_SECONDS": "0.02",
        "COLLECT_EVENTS_BACKOFF_SECONDS": "0.05",
    }
    return subprocess.Popen(
        [sys.executable, *command],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def test_sigkill_mid_request_loses_nothing_and_keeps_each_accounts_order(
    db_url: str, records: RecordActivities, sessions: sessionmaker[Session], subscriber: Subscriber
) -> None:
    subscribe(sessions, subscriber)
    made = write_events(records, sessions, accounts=6, payments=5)
    subscriber.delay = 0.01
    held, kill_now = threading.Event(), threading.Event()
    answered, counting = [0], threading.Lock()

    def answer(_body: dict) -> int:  # type: ignore[type-arg]
        with counting:
            answered[0] += 1
            twelfth = answered[0] == 12
        if twelfth:  # the 12th request: received, and held open until the process is gone
            kill_now.set()
            held.wait(30)
        return 200

    subscriber.answer = answer
    first = deliverer(db_url)
    try:
        assert kill_now.wait(30), (
            first.stdout.read().decode() if first.poll() is not None else "no 12th request"
        )
        first.send_signal(signal.SIGKILL)
        assert first.wait(10) == -signal.SIGKILL
    finally:
        held.set()
        if first.poll() is None:
            first.kill()
    # more happens while no deliverer runs
    made.update(write_events(records, sessions, accounts=2, payments=2))
    before_restart = len(subscriber.received)
    assert 0 < before_restart < sum(made.values())

    second = deliverer(db_url, ("starter.py", "events"))  # restarted the operator's way: ./collect events
    try:
        everything = sum(made.values())
        assert subscriber.wait_for(
            lambda sub: len({r.event_id for r in sub.received if r.account_id in made}) == everything,
            within=60,
        ), f"{len(subscriber.received)} of {everything}"
        second.send_signal(signal.SIGTERM)  # a graceful stop: the sends under way are answered first
        assert second.wait(20) == 0, second.stdout.read().decode()
    finally:
        if second.poll() is None:
            second.kill()

    got = subscriber.by_account()
    for acct, n in made.items():
        seqs = got[acct]
        assert seqs == sorted(seqs), f"{acct} out of order: {seqs}"  # never n+1 before n
        assert sorted(set(seqs)) == list(range(1, n + 1)), f"{acct} lost events: {seqs}"
    ids = [r.event_id for r in subscriber.received if r.account_id in made]
    duplicates = len(ids) - len(set(ids))
    assert duplicates >= 1  # the request held open at the kill came again: the receiver drops it by ID
    assert subscriber.refused == []
