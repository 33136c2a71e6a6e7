"""Each process checks the schema before it serves: a fresh database works in development, and a
production deployment refuses a database behind the code in one line naming the command.

Real processes on a real (fresh SQLite) database: what an operator starting the pieces by hand meets.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from runtime.devserver import free_port
from runtime.settings import Settings
from runtime.temporal import PlaintextRefused, require_encryption
from service.app import create_app
from store.db import dispose_engine, schema_revisions

ROOT = Path(__file__).resolve().parents[2]


def run(args: list[str], db: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {
        **{k: v for k, v in os.environ.items() if k != "COLLECT_METRICS_PORT"},
        "COLLECT_DATABASE_URL": db,
        # nothing listens here: a worker that got past the schema fails on Temporal, after migrating
        "COLLECT_TEMPORAL_ADDRESS": "127.0.0.1:9",
        **env,
    }
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def fresh_db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'collect.db'}"


def test_a_production_worker_refuses_a_database_behind_the_code_until_migrate_is_run(fresh_db: str) -> None:
    done = run(["-m", "workers"], fresh_db, COLLECT_ENV="production")
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "./collect migrate" in errors[0], done.stderr
    assert "Traceback" not in done.stderr
    assert schema_revisions(fresh_db)[0] is None  # refused: nothing written

    migrated = run(["starter.py", "migrate"], fresh_db, COLLECT_ENV="production")
    assert migrated.returncode == 0, migrated.stderr
    current, head = schema_revisions(fresh_db)
    assert current == head and f"to {head}" in migrated.stdout
    again = run(["starter.py", "migrate"], fresh_db, COLLECT_ENV="production")
    assert "already at" in again.stdout


def test_a_development_worker_started_first_on_a_fresh_database_migrates_it(fresh_db: str) -> None:
    done = run(["-m", "workers"], fresh_db, COLLECT_ENV="development")
    assert done.returncode != 0  # no Temporal at that address
    current, head = schema_revisions(fresh_db)
    assert current == head, done.stderr


def test_the_service_started_first_on_a_fresh_database_migrates_it(fresh_db: str) -> None:
    settings = Settings(database_url=fresh_db, env="development")
    with TestClient(create_app(settings, temporal_client=object())):  # type: ignore[arg-type]
        current, head = schema_revisions(fresh_db)
    assert current == head
    dispose_engine(fresh_db)


def test_a_production_service_refuses_to_start_on_a_database_behind_the_code(fresh_db: str) -> None:
    settings = Settings(database_url=fresh_db, env="production")
    # SystemExit(2) from the lifespan, as the test client's portal passes it on
    refused = (SystemExit, BaseExceptionGroup, concurrent.futures.CancelledError)
    with pytest.raises(refused), TestClient(create_app(settings, temporal_client=object())):  # type: ignore[arg-type]
        pass
    assert schema_revisions(fresh_db)[0] is None


def test_worker_logs_are_json_lines_when_asked(fresh_db: str) -> None:
    done = run(["-m", "workers", "--log-format", "json"], fresh_db, COLLECT_ENV="production")
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.strip()]
    assert lines, done.stderr
    [refusal] = [line for line in lines if line["level"] == "error"]
    assert refusal["logger"] == "workers" and "./collect migrate" in refusal["message"]
    assert datetime.fromisoformat(refusal["at"]).tzinfo is not None


def test_the_simulator_started_by_hand_listens_where_the_settings_say(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "COLLECT_SIMULATOR_HOST": "127.0.0.1", "COLLECT_SIMULATOR_PORT": str(port)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "carrier", "--spec", "none"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "the simulator did not listen"
                time.sleep(0.2)
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}" in stderr


def test_a_production_worker_refuses_to_run_without_payload_encryption(fresh_db: str) -> None:
    """Found (issue 16): with no key set, payloads passed to Temporal, and its UI, in plain text."""
    migrated = run(["starter.py", "migrate"], fresh_db, COLLECT_ENV="production")
    assert migrated.returncode == 0, migrated.stderr
    done = run(["-m", "workers"], fresh_db, COLLECT_ENV="production")
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "COLLECT_CODEC_KEYS" in errors[0], done.stderr
    assert "Traceback" not in done.stderr
    with pytest.raises(PlaintextRefused, match="COLLECT_CODEC_KEYS"):
        require_encryption(Settings(database_url=fresh_db, env="production"))
    require_encryption(Settings(database_url=fresh_db, env="development"))  # the demo: allowed
