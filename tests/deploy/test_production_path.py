"""The README's "Without containers" section, followed to the letter on a fresh database.

A Temporal server is there (a deployment has one); everything else is started one process at a time as
the README says: ``./collect migrate``, ``./collect doctor``, the simulator, a worker, the service, then
``./collect intake`` and a plan through the API. No other step: if a process needed one, this fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest

from runtime.codec import generate_key_entry
from runtime.devserver import start_dev_server
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "prod-path-agent-token-0123456789"


@pytest.fixture
def stack_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    port = free_port()
    server = start_dev_server(
        tmp_path / "temporal.db", port=port, ui_port=free_port(), log_file=tmp_path / "t.log"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLLECT_")}
    env.update(
        {
            "COLLECT_ENV": "production",
            "COLLECT_DATABASE_URL": f"sqlite:///{tmp_path / 'collect.db'}",
            "COLLECT_TEMPORAL_ADDRESS": f"127.0.0.1:{port}",
            "COLLECT_SIMULATOR_PORT": str(free_port()),
            "COLLECT_SERVICE_PORT": str(free_port()),
            "COLLECT_API_TOKENS": json.dumps({TOKEN: "alice:agent"}),
            "COLLECT_STATE_DIR": str(tmp_path / "state"),
            "COLLECT_LOG_FORMAT": "json",
            "COLLECT_CODEC_KEYS": generate_key_entry("k1"),  # production refuses plain payloads
        }
    )
    try:
        yield env
    finally:
        server.terminate()
        server.wait(timeout=30)


def collect(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "starter.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def wait_http(url: str, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"{url} did not answer"
        time.sleep(0.3)


def test_the_processes_one_by_one_on_a_fresh_database_take_an_account_through_a_plan(
    stack_env: dict[str, str], tmp_path: Path
) -> None:
    env = stack_env
    # a worker started before migrate refuses, in one line, and writes nothing
    early = subprocess.run(
        [sys.executable, "-m", "workers"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert early.returncode == 2 and "./collect migrate" in early.stderr

    migrated = collect(env, "migrate")
    assert migrated.returncode == 0 and "migrated from (empty)" in migrated.stdout, migrated.stderr
    doctor = collect(env, "doctor")
    assert "FAIL carrier" in doctor.stdout and "ok   database" in doctor.stdout, doctor.stdout

    logs = {name: open(tmp_path / f"{name}.log", "w") for name in ("carrier", "worker", "service")}
    commands = {
        "carrier": [sys.executable, "-m", "carrier", "--spec", "none"],
        "worker": [sys.executable, "-m", "workers"],
        "service": [sys.executable, "starter.py", "service"],
    }
    procs = {
        name: subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=logs[name], stderr=subprocess.STDOUT)
        for name, cmd in commands.items()
    }
    base = f"http://127.0.0.1:{env['COLLECT_SERVICE_PORT']}"
    try:
        wait_http(f"{base}/healthz")
        doctor = collect(env, "doctor")
        assert doctor.returncode == 0 and "5 of 5 checks passed" in doctor.stdout, doctor.stdout

        due = date.today() - timedelta(days=3)
        portfolio = tmp_path / "portfolio.csv"
        portfolio.write_text(
            "account_id,name,phone,timezone,currency,balance,due_date\n"
            f"PROD-1,Jane Doe,+12125550199,America/New_York,USD,300.00,{due.isoformat()}\n"
        )
        intake = collect(env, "intake", str(portfolio), "--as", "alice")
        assert intake.returncode == 0 and "1 started" in intake.stdout, intake.stdout + intake.stderr

        auth = {"Authorization": f"Bearer {TOKEN}"}
        deadline = time.monotonic() + 60
        while (
            answer := httpx.get(f"{base}/api/accounts/PROD-1", headers=auth, timeout=10)
        ).status_code != 200:
            assert time.monotonic() < deadline, answer.text
            time.sleep(0.5)
        plan = httpx.post(
            f"{base}/api/accounts/PROD-1/plans",
            headers=auth,
            json={
                "kind": "reinstalment",
                "first_due": (date.today() + timedelta(days=10)).isoformat(),
                "periods": 3,
            },
            timeout=60,
        )
        assert plan.status_code == 200, plan.text
        assert sum(i["amount"] for i in plan.json()["instalments"]) == 30_000
        account = httpx.get(f"{base}/api/accounts/PROD-1", headers=auth, timeout=10).json()
        assert account["mode"] == "settlement", account
    finally:
        # the worker first, while the carrier still answers: the plan's confirmation may be in flight
        # (stopping the carrier first failed that send, a traceback in the worker's log)
        for name in ("worker", "service", "carrier"):
            procs[name].terminate()
            procs[name].wait(timeout=60)
        for log in logs.values():
            log.close()
    worker_lines = [
        json.loads(line)
        for line in (tmp_path / "worker.log").read_text().splitlines()
        if line.startswith("{")
    ]
    assert any("worker up" in line["message"] for line in worker_lines)
    for name in logs:
        text = (tmp_path / f"{name}.log").read_text()
        assert "Traceback" not in text, (name, text[-2000:])
        assert "Jane Doe" not in text and "+12125550199" not in text, name  # masked, if named at all
