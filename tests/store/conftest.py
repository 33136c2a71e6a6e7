"""Databases for the store tests: a SQLite file and a throwaway PostgreSQL database per session.

PostgreSQL tests are skipped only when no server answers and ``CI`` is not ``true`` (or when
``COLLECT_TEST_DB=sqlite`` asks for it explicitly); in CI a missing server is a failure, so the suite
can never pass by silently testing SQLite alone. Each session
creates its own uniquely named database and drops it afterwards, so parallel runs never collide.

Below the fixtures: the accounts and helpers the repository tests share (``stored``, ``reserve`` …).
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from domain.accounts import Account, Channel
from store.accounts import upsert_account
from store.contacts import AttemptView, reserve_attempt
from store.db import dispose_engine, make_engine, session_factory, upgrade

PG_CANDIDATES = [
    os.environ.get("COLLECT_TEST_PG_URL", ""),
    "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    "postgresql+psycopg://root@127.0.0.1:5432/test",
]
_admin: list[str | None] = []


def postgres_admin_url() -> str | None:
    """The first PostgreSQL admin URL that answers (looked up once per session)."""
    if not _admin:
        found = None
        for url in filter(None, PG_CANDIDATES):
            engine = create_engine(url, connect_args={"connect_timeout": 3})
            try:
                with engine.connect() as conn:
                    conn.execute(text("select 1"))
                found = url
                break
            except Exception:
                continue
            finally:
                engine.dispose()
        _admin.append(found)
    return _admin[0]


def require_postgres() -> str:
    if os.environ.get("COLLECT_TEST_DB") == "sqlite":  # an explicit choice (./collect test without a server)
        pytest.skip("COLLECT_TEST_DB=sqlite")
    url = postgres_admin_url()
    if url is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but no PostgreSQL answers at 127.0.0.1:5432 (set COLLECT_TEST_PG_URL)")
        pytest.skip("no PostgreSQL server reachable at 127.0.0.1:5432")
    return url


@contextmanager
def postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database that is dropped afterwards."""
    admin_url = require_postgres()
    name = f"store_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        dispose_engine(url)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def sqlite_database(directory: Path) -> Iterator[str]:
    url = f"sqlite:///{directory / f'store-{uuid.uuid4().hex[:8]}.db'}"
    try:
        yield url
    finally:
        dispose_engine(url)


@contextmanager
def empty_database(backend: str, directory: Path) -> Iterator[str]:
    if backend == "postgresql":
        with postgres_database() as url:
            yield url
    else:
        with sqlite_database(directory) as url:
            yield url


BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session", params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database per backend, shared by the session (tests use their own account ids)."""
    with empty_database(request.param, tmp_path_factory.mktemp("store")) as url:
        upgrade(url)
        yield url


@pytest.fixture(params=BACKENDS)
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A brand-new database with no tables, per test."""
    with empty_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def sessions(db_url: str) -> sessionmaker[Session]:
    return session_factory(make_engine(db_url))


# ---- accounts and helpers the repository tests share ---------------------------------------------
NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # 10:00 in New York: inside contact hours
T = TypeVar("T")


DEBTOR_FIELDS = ("name", "phone", "timezone", "region")


def new_account(**changes: object) -> Account:
    """A valid account with a fresh id (tests share one database per backend)."""
    debtor: dict[str, object] = {
        "name": "Jane Doe",
        "phone": "+12125550142",
        "timezone": "America/New_York",
        "region": "US-NY",
    }
    account: dict[str, object] = {
        "account_id": f"T-{uuid.uuid4().hex[:12]}",
        "currency": "USD",
        "balance": 125_000,
        "fees": 3_500,
        "due_date": date(2026, 10, 1),
    }
    for key, value in changes.items():
        (debtor if key in DEBTOR_FIELDS else account)[key] = value
    return Account.model_validate({**account, "debtor": debtor})


def stored(sessions: sessionmaker[Session], **changes: object) -> Account:
    account = new_account(**changes)
    with sessions.begin() as s:
        assert upsert_account(s, account, NOW)
    return account


def in_tx(sessions: sessionmaker[Session], fn: Callable[[Session], T]) -> T:
    with sessions.begin() as s:
        return fn(s)


def reserve(
    s: Session, account: Account, key: str, channel: Channel = Channel.SMS, now: datetime = NOW
) -> tuple[AttemptView, bool]:
    return reserve_attempt(
        s,
        dedupe_key=key,
        account_id=account.account_id,
        channel=channel,
        purpose="dunning",
        template="early_reminder",
        to_address=account.debtor.phone,
        now=now,
    )


def run_threads(count: int, target: Callable[[], T]) -> list[T | BaseException]:
    """Run ``target`` in ``count`` threads released at the same instant; results or exceptions."""
    barrier = threading.Barrier(count)
    results: list[T | BaseException] = []
    lock = threading.Lock()

    def body() -> None:
        barrier.wait()
        try:
            value: T | BaseException = target()
        except BaseException as exc:
            value = exc
        with lock:
            results.append(value)

    threads = [threading.Thread(target=body) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results
