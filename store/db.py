"""Engines, sessions and migrations.

Sync SQLAlchemy on purpose: activities run in a thread pool, and a sync engine with a pool sized for
those threads is simpler and faster than an async engine bridged back into threads.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from runtime.private import touch_private

log = logging.getLogger("humane_collect.db")
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def normalize_url(url: str | URL) -> URL:
    """``postgres://`` and ``postgresql://`` mean psycopg 3 here: it is the only PostgreSQL driver we ship."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _configure_sqlite(engine: Engine, *, foreign_keys: bool) -> None:
    """WAL, a busy timeout, foreign keys, and transactions that take the write lock up front.

    ``BEGIN IMMEDIATE`` is the important part: with the driver's default deferred transactions a
    transaction that reads and then writes fails at once with "database is locked" when another
    thread wrote in between (the busy timeout cannot help there). Taking the lock at BEGIN makes
    concurrent activity threads queue for up to the busy timeout instead. SQLite is the embedded
    single-machine default; production runs PostgreSQL, where none of this applies.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (see _on_begin)
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
            cursor.execute("PRAGMA synchronous=NORMAL")  # safe with WAL: a crash loses no committed txn
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _create(url: URL, *, migrations: bool = False) -> Engine:
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            # the debtors' names and numbers: owner-only from the start (runtime/private.py)
            target = Path(database).expanduser().resolve()
            target.parent.mkdir(parents=True, exist_ok=True)
            touch_private(target)
        kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 30}}
        if migrations:
            kwargs["poolclass"] = NullPool
        engine = create_engine(url, **kwargs)
        # Table rebuilds (Alembic batch mode) must not cascade through foreign keys.
        _configure_sqlite(engine, foreign_keys=not migrations)
        return engine
    if migrations:
        return create_engine(url, poolclass=NullPool)
    # 32 activity threads per worker by default: enough connections that none waits for the pool.
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=30, pool_recycle=1800)


def make_engine(url: str | URL) -> Engine:
    """The process-wide engine for ``url`` (one pool per database per process, created once)."""
    parsed = normalize_url(url)
    key = parsed.render_as_string(hide_password=False)
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _engines[key] = _create(parsed)
        return engine


def migration_engine(url: str | URL) -> Engine:
    """A throwaway engine for Alembic: no pool, and on SQLite no foreign-key enforcement during DDL."""
    return _create(normalize_url(url), migrations=True)


def dispose_all() -> None:
    """Close every pooled connection (tests dropping a database; a worker shutting down)."""
    with _engines_lock:
        engines = list(_engines.values())
        _engines.clear()
    for engine in engines:
        engine.dispose()


def dispose_engine(url: str | URL) -> None:
    """Close and forget the pooled engine of one database (e.g. before dropping it)."""
    key = normalize_url(url).render_as_string(hide_password=False)
    with _engines_lock:
        engine = _engines.pop(key, None)
    if engine is not None:
        engine.dispose()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions for ``with factory.begin() as s:``; objects stay readable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str | URL | None = None) -> Any:
    """An Alembic ``Config`` built in code: no ``alembic.ini`` needed at run time.

    The URL travels in ``config.attributes`` rather than the ini options, so passwords containing
    ``%`` are not mangled by configparser interpolation.
    """
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        config.attributes["url"] = normalize_url(url)
    return config


def upgrade(url: str | URL, revision: str = "head") -> None:
    """Migrate the database at ``url`` to ``revision`` (idempotent; safe to call at every start-up)."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


class SchemaBehind(RuntimeError):
    """The database is not at the code's migration head, and this process may not migrate it."""


def schema_revisions(url: str | URL) -> tuple[str | None, str]:
    """(the database's Alembic revision, None for an empty database; the code's head revision)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    engine = migration_engine(url)
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
    return current, head


def ensure_schema(url: str | URL, *, migrate: bool) -> str:
    """Make sure the schema is the code's before a process serves anything; the head revision.

    In development (``migrate``) it is brought up to date, as ``intake`` always did; so a worker or
    service started first on a fresh database works instead of answering 500 "no such table". In
    production a schema change is a deliberate step (the compose ``migrate`` job, ``./collect
    migrate``), so a database behind the code is refused with one line naming that command.
    """
    current, head = schema_revisions(url)
    if current == head:
        return head
    if migrate:
        upgrade(url)
        log.info("database migrated from %s to %s", current or "(empty)", head)
        return head
    raise SchemaBehind(
        f"the database is at migration {current or '(empty)'} and this release needs {head}: "
        "run `./collect migrate` (or `alembic upgrade head`) first"
    )


def downgrade(url: str | URL, revision: str) -> None:
    from alembic import command

    command.downgrade(alembic_config(url), revision)
