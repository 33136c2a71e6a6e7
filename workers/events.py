"""The event deliverer: the outbox, out to each subscriber's endpoint, signed, in order per account.

``python -m workers.events`` (= ``./collect events``; compose's ``events`` service) runs it as a process of
its own; ``COLLECT_EVENTS_IN_WORKER=true`` runs it inside each worker process instead. Any number may run
against PostgreSQL (every claim is a lease, ``store/deliveries.py``); on SQLite run one.

Each pass it routes new events to the subscriptions (``store.outbox.route``), takes the deliveries that
may go now (the head of each account's stream for each subscription) and sends them on a pool of
``COLLECT_EVENTS_CONCURRENCY`` threads: many accounts at once, one event at a time per account, the next
one only after a 2xx. A failed try is tried again after an exponential wait with jitter
(``COLLECT_EVENTS_BACKOFF_SECONDS`` doubling up to ``COLLECT_EVENTS_BACKOFF_MAX_SECONDS``, a server's
``Retry-After`` respected), and after ``COLLECT_EVENTS_MAX_ATTEMPTS`` tries it is a dead letter: that
account's stream to that subscription stops, visibly (API, console, metrics), until an operator sends it
again. A 410 Gone disables the subscription, as the Standard Webhooks specification asks. Redirects are
not followed (a 3xx is a failure: the subscription's URL should be updated instead).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx
from sqlalchemy.orm import Session, sessionmaker

from domain.lender_events import retry_delay
from runtime.settings import Settings, get_settings
from runtime.webhook_signature import headers
from store import deliveries as store
from store.outbox import route

log = logging.getLogger("workers.events")

#: events one stream sends in a row before its thread goes back to the pool (fairness between accounts)
BURST = 50
#: events routed per transaction
ROUTE_BATCH = 500
USER_AGENT = "humane-collect-events/1"


def _now() -> datetime:
    return datetime.now(UTC)


def retry_after(response: httpx.Response, now: datetime) -> float | None:
    """Seconds a ``Retry-After`` header asks for (a number, or an HTTP date), if any."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        return max((parsedate_to_datetime(value) - now).total_seconds(), 0.0)
    except (TypeError, ValueError):
        return None


class Deliverer:
    """One deliverer: a polling loop that routes and claims, and a pool of threads that send."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: Settings,
        *,
        owner: str | None = None,
        http: httpx.Client | None = None,
        clock: Callable[[], datetime] = _now,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.sessions, self.settings, self.clock, self.rand = sessions, settings, clock, rand
        self.owner = owner or f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        timeout = settings.events_timeout_seconds
        # longer than any request can take, so a lease never runs out under a deliverer that still sends
        self.lease = timedelta(seconds=2 * timeout + 1)
        self.http = http or httpx.Client(
            timeout=timeout, follow_redirects=False, headers={"user-agent": USER_AGENT}
        )
        self.pool = ThreadPoolExecutor(max_workers=settings.events_concurrency, thread_name_prefix="events")
        self.in_flight: dict[Future[None], tuple[int, str]] = {}
        self.stopping = threading.Event()

    # ---- the loop --------------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Until ``stop`` is set; then the sends under way finish (each within the HTTP timeout)."""
        poll = self.settings.events_poll_seconds
        log.info("event deliverer %s up (concurrency %d)", self.owner, self.settings.events_concurrency)
        try:
            while not stop.is_set():
                try:
                    started = self.step()
                except Exception:  # the database away for a moment: say so, and try again next pass
                    log.exception("event deliverer pass failed")
                    started = 0
                if self.in_flight and started == 0:
                    wait(list(self.in_flight), timeout=poll, return_when=FIRST_COMPLETED)
                elif started == 0:
                    stop.wait(poll)
        finally:
            self.close()

    def step(self) -> int:
        """One pass: route what is new, start sending what may go now; how many streams it started."""
        for done in [f for f in self.in_flight if f.done()]:
            self.in_flight.pop(done)
            if (exc := done.exception()) is not None:
                log.error("event stream failed: %s", exc, exc_info=exc)
        now = self.clock()
        with self.sessions.begin() as s:
            while route(s, now, limit=ROUTE_BATCH) == ROUTE_BATCH:
                pass
        free = self.settings.events_concurrency - len(self.in_flight)
        if free <= 0:
            return 0
        with self.sessions.begin() as s:
            claimed = store.claim_heads(
                s,
                owner=self.owner,
                now=now,
                until=now + self.lease,
                limit=free,
                busy=set(self.in_flight.values()),
            )
        for delivery_id, sub_id, account_id in claimed:
            future = self.pool.submit(self._stream, delivery_id, sub_id, account_id)
            self.in_flight[future] = (sub_id, account_id)
        return len(claimed)

    def close(self) -> None:
        self.stopping.set()
        self.pool.shutdown(wait=True)
        self.in_flight.clear()
        self.http.close()

    def drain(self, timeout: float = 30.0) -> None:
        """Run passes until nothing is pending that may go now (tests and one-off runs)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            started = self.step()
            if self.in_flight:
                wait(list(self.in_flight), timeout=1)
            elif started == 0:
                return

    # ---- one account's stream for one subscription ----------------------------------------------------
    def _stream(self, delivery_id: int | None, sub_id: int, account_id: str) -> None:
        sent = 0
        while delivery_id is not None and sent < BURST and not self.stopping.is_set():
            if not self._deliver(delivery_id):
                return
            sent += 1
            now = self.clock()
            with self.sessions.begin() as s:
                delivery_id = store.claim_next(
                    s, sub_id, account_id, owner=self.owner, now=now, until=now + self.lease
                )
        if delivery_id is not None:  # stopping, or its burst is over: the next pass takes it again
            with self.sessions.begin() as s:
                store.release(s, delivery_id, owner=self.owner)

    def _deliver(self, delivery_id: int) -> bool:
        """One try; True when the endpoint answered 2xx and the delivery is ours to acknowledge."""
        with self.sessions.begin() as s:
            claimed = store.load(s, delivery_id, self.owner, self.clock())
        if claimed is None:
            return False
        event = claimed.event
        body = json.dumps(event.body(), separators=(",", ":"), ensure_ascii=False).encode()
        signed = headers(claimed.secrets, event.event_id, body, at=self.clock())
        started = time.perf_counter()
        status: int | None = None
        wait_asked: float | None = None
        try:
            response = self.http.post(
                claimed.url, content=body, headers={**signed, "content-type": "application/json"}
            )
            status = response.status_code
            error = "" if 200 <= status < 300 else f"HTTP {status}: {response.text[:200]}"
            wait_asked = retry_after(response, self.clock())
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        ms = int((time.perf_counter() - started) * 1000)
        now = self.clock()
        if status is not None and 200 <= status < 300:
            with self.sessions.begin() as s:
                return store.delivered(s, delivery_id, owner=self.owner, now=now, status=status, ms=ms)
        failures = claimed.failures + 1
        retry_at = None
        if failures < self.settings.events_max_attempts:
            delay = retry_delay(
                failures,
                base=self.settings.events_backoff_seconds,
                cap=self.settings.events_backoff_max_seconds,
                rand=self.rand,
            )
            if wait_asked is not None:
                delay = max(delay, min(wait_asked, self.settings.events_backoff_max_seconds))
            retry_at = now + timedelta(seconds=delay)
        disable = "the endpoint answered 410 Gone" if status == 410 else None
        with self.sessions.begin() as s:
            outcome = store.failed(
                s,
                delivery_id,
                owner=self.owner,
                now=now,
                status=status,
                error=error,
                ms=ms,
                retry_at=retry_at,
                disable=disable,
            )
        what = f"subscription {claimed.subscription_id}, {event.account_id} #{event.seq} ({event.type})"
        if outcome == "dead":
            log.warning("dead letter after %d tries: %s: %s", failures, what, error)
        elif outcome == "disabled":
            log.warning("subscription %d disabled: its endpoint answered 410 Gone", claimed.subscription_id)
        else:
            log.info("delivery failed (try %d): %s: %s", failures, what, error)
        return False


def start_in_thread(settings: Settings) -> tuple[threading.Thread, threading.Event]:
    """The deliverer on a thread of this process (``COLLECT_EVENTS_IN_WORKER``); set the event to stop."""
    from store.db import make_engine, session_factory

    stop = threading.Event()
    deliverer = Deliverer(session_factory(make_engine(settings.database_url)), settings)
    thread = threading.Thread(target=deliverer.run, args=(stop,), name="event-deliverer", daemon=True)
    thread.start()
    return thread, stop


def run(settings: Settings) -> int:
    """The process: the schema checked, metrics served if ``COLLECT_METRICS_PORT`` is set, then deliver
    until SIGTERM or SIGINT (the sends under way finish first)."""
    from store.db import SchemaBehind, ensure_schema, make_engine, session_factory

    try:
        ensure_schema(settings.database_url, migrate=settings.migrate_on_start)
    except SchemaBehind as exc:
        log.error("%s", exc)
        return 2
    engine = make_engine(settings.database_url)
    metrics = None
    if settings.metrics_port is not None:
        from runtime.metrics import start_worker_metrics

        metrics = start_worker_metrics(
            engine, settings.metrics_port, host=settings.metrics_host, business=False, sdk=False
        )
        log.info("metrics on http://%s:%d/metrics", settings.metrics_host, metrics.port)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        Deliverer(session_factory(engine), settings).run(stop)
    finally:
        if metrics is not None:
            metrics.stop()
    log.info("event deliverer stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    from runtime.logs import FORMATS, setup_logging

    parser = argparse.ArgumentParser(
        prog="python -m workers.events",
        description="Deliver the lender's account events to their subscriptions until SIGTERM/SIGINT "
        "(settings: COLLECT_* variables or .env).",
    )
    parser.add_argument(
        "--log-format", choices=FORMATS, default=None, help="default: COLLECT_LOG_FORMAT (text)"
    )
    args = parser.parse_args(argv)
    settings = get_settings()
    setup_logging(args.log_format or settings.log_format)
    return run(settings)


if __name__ == "__main__":
    raise SystemExit(main())
