"""Databases, accounts and a subscriber for the events tests.

* ``db_url``: a migrated database per backend (SQLite file, throwaway PostgreSQL), as in tests/store.
* ``records``: the real ``record`` activity's object on it (called directly: it is one transaction).
* ``Subscriber``: a small HTTP server standing in for the lender's system. It verifies every delivery's
  Standard Webhooks signature with the subscription's secret, keeps what it received in arrival order,
  and answers what the test tells it (200, 500, 410, slowly …).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from activities.deps import Deps
from activities.records import RecordActivities
from domain.effects import Change
from runtime.settings import Settings
from runtime.webhook_signature import SignatureError, verify
from store.db import make_engine, session_factory, upgrade
from tests.store.conftest import BACKENDS, NOW, empty_database, stored

__all__ = ["NOW", "Subscriber", "change", "stored"]


@pytest.fixture(scope="module", params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with empty_database(request.param, tmp_path_factory.mktemp("events")) as url:
        upgrade(url)
        yield url


@pytest.fixture
def sessions(db_url: str) -> sessionmaker[Session]:
    return session_factory(make_engine(db_url))


def settings_for(url: str, **changes: Any) -> Settings:
    return Settings(database_url=url, _env_file=None, **changes)  # type: ignore[call-arg]


@pytest.fixture
def records(db_url: str) -> RecordActivities:
    return RecordActivities(Deps(settings=settings_for(db_url), engine=make_engine(db_url)))


def change(account_id: str, minutes: int = 0, **fields: Any) -> Change:
    """A change as a workflow writes it, ``minutes`` after the tests' NOW (policy time)."""
    return Change(account_id=account_id, at=NOW + timedelta(minutes=minutes), **fields)


@dataclass
class Received:
    event_id: str
    account_id: str
    seq: int
    type: str
    body: dict[str, Any]


@dataclass
class Subscriber:
    """The lender's endpoint: verifies, records, answers ``answer(body) -> status``."""

    secret: str = ""
    answer: Callable[[dict[str, Any]], int] = lambda _body: 200
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)  # answered 2xx, in the order they came
    seen: list[Received] = field(default_factory=list)  # every verified request, whatever the answer
    refused: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Subscriber:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                try:
                    parsed = verify(outer.secret, body, dict(self.headers.items()))
                except SignatureError as exc:
                    with outer.lock:
                        outer.refused.append(str(exc))
                    self.send_response(401)
                    self.end_headers()
                    return
                got = Received(parsed["id"], parsed["account_id"], parsed["sequence"], parsed["type"], parsed)
                assert got.event_id == self.headers["webhook-id"]
                with outer.lock:
                    outer.seen.append(got)
                if outer.delay:
                    time.sleep(outer.delay)
                status = outer.answer(parsed)
                if 200 <= status < 300:
                    with outer.lock:
                        outer.received.append(got)
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def by_account(self) -> dict[str, list[int]]:
        """Each account's sequence numbers in the order they arrived (duplicates kept)."""
        out: dict[str, list[int]] = {}
        with self.lock:
            for r in self.received:
                out.setdefault(r.account_id, []).append(r.seq)
        return out

    def wait_for(self, done: Callable[[Subscriber], bool], within: float = 20.0) -> bool:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if done(self):
                return True
            time.sleep(0.02)
        return done(self)


@pytest.fixture
def subscriber() -> Iterator[Subscriber]:
    sub = Subscriber().start()
    yield sub
    sub.stop()


def wall() -> datetime:
    return datetime.now(UTC)
