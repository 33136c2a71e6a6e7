"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from store.db import downgrade, make_engine, migration_engine, upgrade
from store.models import Base

ROOT = Path(__file__).resolve().parents[2]
TABLES = {
    "accounts",
    "audit_log",
    "contact_attempts",
    "contact_points",
    "debtors",
    "holds",
    "instalments",
    "payments",
    "plans",
}


def schema_diff(url: str) -> list[object]:
    engine = migration_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def tables(url: str) -> set[str]:
    engine = migration_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_migrating_an_empty_database_gives_exactly_the_models_schema(empty_url: str) -> None:
    assert tables(empty_url) == set()
    upgrade(empty_url)
    assert tables(empty_url) == TABLES
    assert schema_diff(empty_url) == []


def test_upgrade_is_repeatable_and_downgrade_reverses_it(empty_url: str) -> None:
    upgrade(empty_url)
    upgrade(empty_url)  # every process migrates at start-up: the second time is a no-op
    downgrade(empty_url, "base")
    assert tables(empty_url) == set()
    upgrade(empty_url)
    assert schema_diff(empty_url) == []


def test_sqlite_engine_enforces_foreign_keys_in_wal_mode(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nested' / 'dir' / 'app.db'}"  # parent directories are created
    upgrade(url)
    engine = make_engine(url)
    assert make_engine(url) is engine  # one pool per database per process
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO holds (account_id, kind, reason, since) "
                "VALUES ('no-such-account', 'pause', '', '2026-11-22 00:00:00')"
            )
        )


@pytest.mark.parametrize("how", ["-x", "DATABASE_URL", "COLLECT_DATABASE_URL"])
def test_operators_can_run_alembic_from_the_repository_root(tmp_path: Path, how: str) -> None:
    url = f"sqlite:///{tmp_path / 'ops.db'}"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "COLLECT_DATABASE_URL")}
    args = [sys.executable, "-m", "alembic"]
    if how == "-x":
        args += ["-x", f"url={url}"]
    else:
        env[how] = url
    done = subprocess.run(
        [*args, "upgrade", "head"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert tables(url) == TABLES
