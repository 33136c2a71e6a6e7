"""The deliverer against a real HTTP subscriber that verifies every signature: all events arrive, in
order per account, retried with backoff, dead letters stop one account's stream, two deliverers at once.

The events are written by the real ``record`` activity; the subscriber is a local HTTP server
(``tests/events/conftest.py``). Waits are short settings (a backoff of 50 ms), not sleeps in the code.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from activities.records import RecordActivities
from domain.accounts import Stage
from store.models import EventAttemptRow, EventDeliveryRow
from store.subscriptions import create_subscription, deliveries, list_subscriptions, retry_dead
from tests.events.conftest import Subscriber, settings_for, stored
from tests.events.test_outbox import payment, stage
from workers.events import Deliverer, start_in_thread

FAST = {"events_backoff_seconds": 0.05, "events_backoff_max_seconds": 0.2, "events_poll_seconds": 0.02}


def subscribe(sessions: sessionmaker[Session], subscriber: Subscriber, types: list[str] | None = None) -> int:
    with sessions.begin() as s:
        view, secret = create_subscription(
            s, url=subscriber.url, event_types=types, description="test", actor="sam", now=datetime.now(UTC)
        )
    subscriber.secret = secret
    return view.id


def write_events(
    records: RecordActivities, sessions: sessionmaker[Session], accounts: int, payments: int
) -> dict[str, int]:
    """Accounts with a frozen line and ``payments`` payments each: how many events each has."""
    made = {}
    for _ in range(accounts):
        acct = stored(sessions, balance=10_000_000).account_id
        records.record(stage(acct, 0, Stage.EARLY, 1))
        for n in range(payments):
            records.record(payment(acct, n + 1, 100, f"p{n}", 10_000_000 - 100 * (n + 1)))
        made[acct] = payments + 1
    return made


def run_until(deliverer: Deliverer, done: Callable[[], bool], within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        deliverer.drain(timeout=1)
        if done():
            return
        time.sleep(0.02)
    raise AssertionError("the deliverer did not get there in time")


def test_every_event_arrives_signed_once_and_in_order_per_account(
    db_url: str, records: RecordActivities, sessions: sessionmaker[Session], subscriber: Subscriber
) -> None:
    everything = subscribe(sessions, subscriber)
    lines = Subscriber().start()
    only_lines = subscribe(sessions, lines, ["line_frozen", "line_restored"])
    try:
        made = write_events(records, sessions, accounts=6, payments=5)
        subscriber.delay = 0.005  # a little time per request, so the accounts really go side by side
        deliverer = Deliverer(sessions, settings_for(db_url, events_concurrency=4, **FAST))
        try:
            run_until(
                deliverer, lambda: all(len(subscriber.by_account().get(a, [])) == n for a, n in made.items())
            )
        finally:
            deliverer.close()
        got = subscriber.by_account()
        for acct, n in made.items():
            assert got[acct] == list(range(1, n + 1)), acct
        assert subscriber.refused == []
        assert {acct: seqs for acct, seqs in lines.by_account().items() if acct in made} == {
            a: [1] for a in made
        }
        assert {r.type for r in lines.received} == {"line_frozen"}
        first = next(r.body for r in subscriber.received if r.type == "payment_applied")
        assert set(first) == {"id", "type", "account_id", "sequence", "occurred_at", "data"}
        assert first["data"]["amount"] == {"amount": 100, "currency": "USD"}
        with sessions.begin() as s:
            views = {v.id: v for v in list_subscriptions(s, datetime.now(UTC))}
        assert views[everything].pending == 0 and views[everything].dead == 0
        assert views[only_lines].pending == 0
    finally:
        lines.stop()


def test_a_subscription_gets_the_events_written_after_it(
    db_url: str, records: RecordActivities, sessions: sessionmaker[Session], subscriber: Subscriber
) -> None:
    deliverer = Deliverer(sessions, settings_for(db_url, **FAST))
    before = write_events(records, sessions, accounts=1, payments=1)
    deliverer.drain()  # routed while nobody subscribed: nobody gets them
    subscribe(sessions, subscriber)
    after = write_events(records, sessions, accounts=1, payments=1)
    try:
        run_until(deliverer, lambda: len(subscriber.received) >= 2)
        deliverer.drain()
    finally:
        deliverer.close()
    assert set(subscriber.by_account()) == set(after) and not set(before) & set(subscriber.by_account())


def test_failed_tries_back_off_then_a_dead_letter_stops_only_that_accounts_stream(
    db_url: str, records: RecordActivities, sessions: sessionmaker[Session], subscriber: Subscriber
) -> None:
    sub_id = subscribe(sessions, subscriber)
    made = write_events(records, sessions, accounts=2, payments=2)
    broken, healthy = list(made)
    failing = threading.Event()
    failing.set()
    subscriber.answer = lambda body: (
        500 if failing.is_set() and body["account_id"] == broken and body["sequence"] == 2 else 200
    )
    settings = settings_for(db_url, events_max_attempts=3, **FAST)
    deliverer = Deliverer(sessions, settings, rand=lambda: 1.0)
    try:
        run_until(
            deliverer,
            lambda: _dead(sessions, sub_id) == 1 and len(subscriber.by_account().get(healthy, [])) == 3,
        )
        deliverer.drain()
        got = subscriber.by_account()
        assert got[healthy] == [1, 2, 3]
        assert got[broken] == [1]  # #2 is dead, #3 waits behind it: never sent out of order
        with sessions.begin() as s:
            [dead] = deliveries(s, sub_id, which="dead")
            waiting = [d for d in deliveries(s, sub_id, which="pending") if d.account_id == broken]
            tries = s.scalars(
                select(EventAttemptRow)
                .where(EventAttemptRow.delivery_id == dead.id)
                .order_by(EventAttemptRow.id)
            ).all()
        assert (dead.account_id, dead.seq, dead.attempts, dead.last_status) == (broken, 2, 3, 500)
        assert [(t.attempt, t.status_code, t.ok) for t in tries] == [
            (1, 500, False),
            (2, 500, False),
            (3, 500, False),
        ]
        # each wait doubled (jitter at its top here): 50 ms, then 100 ms, before the third and last try
        gaps = [(b.at - a.at).total_seconds() for a, b in itertools.pairwise(tries)]
        assert gaps[0] >= 0.05 and gaps[1] >= 0.1
        assert [(d.seq, d.attempts) for d in waiting] == [(3, 0)]

        failing.clear()  # the lender fixed its endpoint; a supervisor sends the dead letter again
        with sessions.begin() as s:
            retry_dead(s, dead.id, now=datetime.now(UTC))
        run_until(deliverer, lambda: subscriber.by_account()[broken] == [1, 2, 3])
    finally:
        deliverer.close()
    assert _dead(sessions, sub_id) == 0


def _dead(sessions: sessionmaker[Session], sub_id: int) -> int:
    with sessions.begin() as s:
        return len(deliveries(s, sub_id, which="dead"))


def test_an_endpoint_that_answers_410_gone_is_disabled(
    db_url: str, records: RecordActivities, sessions: sessionmaker[Session], subscriber: Subscriber
) -> None:
    sub_id = subscribe(sessions, subscriber)
    subscriber.answer = lambda _body: 410
    write_events(records, sessions, accounts=1, payments=1)
    deliverer = Deliverer(sessions, settings_for(db_url, **FAST))
    try:
        run_until(deliverer, lambda: _status(sessions, sub_id) == "disabled")
        deliverer.drain()
    finally:
        deliverer.close()
    with sessions.begin() as s:
        rows = s.scalars(select(EventDeliveryRow).where(EventDeliveryRow.subscription_id == sub_id)).all()
    assert {r.status for r in rows} == {"pending"} and sum(r.attempts for r in rows) == 1
    assert subscriber.received == []


def _status(sessions: sessionmaker[Session], sub_id: int) -> str:
    with sessions.begin() as s:
        return next(v.status for v in list_subscriptions(s, datetime.now(UTC)) if v.id == sub_id)


def test_two_deliverers_at_once_deliver_everything_in_order(
    db_url: str, records: RecordActivities, sessions: sessionmaker[Session], subscriber: Subscriber
) -> None:
    """Two processes' worth of deliverers on one PostgreSQL database: the leases share the work out."""
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite: one deliverer (it serialises every write anyway)")
    subscribe(sessions, subscriber)
    made = write_events(records, sessions, accounts=12, payments=4)
    subscriber.delay = 0.002
    stop = threading.Event()
    deliverers = [Deliverer(sessions, settings_for(db_url, events_concurrency=3, **FAST)) for _ in range(2)]
    threads = [threading.Thread(target=d.run, args=(stop,)) for d in deliverers]
    for t in threads:
        t.start()
    try:
        assert subscriber.wait_for(
            lambda sub: sum(len(v) for k, v in sub.by_account().items() if k in made) >= 60
        )
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    got = subscriber.by_account()
    for acct, n in made.items():  # each once: no lease was taken twice
        assert got[acct] == list(range(1, n + 1)), acct


def test_a_worker_process_can_run_the_deliverer_on_a_thread(
    db_url: str, records: RecordActivities, sessions: sessionmaker[Session], subscriber: Subscriber
) -> None:
    """``COLLECT_EVENTS_IN_WORKER=true``: what ``python -m workers`` starts beside its task queues."""
    subscribe(sessions, subscriber)
    made = write_events(records, sessions, accounts=2, payments=1)
    thread, stop = start_in_thread(settings_for(db_url, events_in_worker=True, **FAST))
    try:
        assert subscriber.wait_for(
            lambda sub: all(len(sub.by_account().get(a, [])) == n for a, n in made.items())
        )
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
