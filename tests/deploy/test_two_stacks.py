"""Two demos side by side: each on the ports and in the state directory its settings name.

``./collect demo`` used to bind 7233/8233 and ``var/`` whatever the settings said, so a second stack
could not run beside the first. Here two ``starter.demo_main`` processes (what ``./collect demo
--day-seconds 2`` runs) start with different ``COLLECT_TEMPORAL_ADDRESS``, ``COLLECT_TEMPORAL_UI_PORT``,
``COLLECT_SERVICE_PORT``, ``COLLECT_SIMULATOR_PORT`` and ``COLLECT_STATE_DIR``, each with a three-account
portfolio of its own; both Temporal frontends and UIs answer on their own ports, both services answer,
each sees only its own accounts, and both stop cleanly on SIGINT with nothing of theirs left running.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from temporalio.client import Client

from runtime.devserver import port_open
from runtime.temporal import data_converter
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
ACCOUNTS_QUERY = "WorkflowType IN ('DelinquencyWorkflow', 'SettlementWorkflow')"
LAUNCH = "import sys, starter; sys.exit(starter.demo_main(sys.argv[1:]))"


@dataclass
class Demo:
    name: str
    state: Path
    temporal: int
    ui: int
    service: int
    simulator: int
    accounts: list[str]
    personal: list[str]  # the debtors' names and numbers (each number also without its +)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def out(self) -> Path:
        return self.state.parent / f"{self.name}.out"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("COLLECT_")}
        env.update(
            {
                "COLLECT_TEMPORAL_ADDRESS": f"127.0.0.1:{self.temporal}",
                "COLLECT_TEMPORAL_UI_PORT": str(self.ui),
                "COLLECT_SERVICE_PORT": str(self.service),
                "COLLECT_SIMULATOR_PORT": str(self.simulator),
                "COLLECT_STATE_DIR": str(self.state),
                "PYTHONPATH": str(ROOT),
            }
        )
        return env

    def start(self, portfolio: Path, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", LAUNCH, "--day-seconds", "2", "--file", str(portfolio), *extra],
            cwd=self.state.parent,  # no .env from the project: only the settings given here
            env=self.env(),
            stdout=open(self.out, "wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the dev server and all, to check they end
        )

    def output(self) -> str:
        return self.out.read_text(errors="replace")

    def token(self) -> str:
        return json.loads((self.state / "secrets.json").read_text())["tokens"]["auditor"]


async def sso_sign_in(demo: Demo) -> None:
    """Sign in as the demo's auditor through its identity provider, as a browser would."""
    password = json.loads((demo.state / "secrets.json").read_text())["sso"]["passwords"]["auditor"]
    assert "demo-auditor" in demo.output() and password in demo.output()
    async with httpx.AsyncClient(base_url=f"http://localhost:{demo.service}", timeout=10) as http:
        assert 'id="sso"' in (await http.get("/console/login")).text
        started = await http.get("/console/oidc/start?next=/console/refunds")
        authorize = urlsplit(started.headers["location"])
        fields = {k: v[0] for k, v in parse_qs(authorize.query).items() if k != "response_type"}
        answer = await http.post(
            authorize._replace(query="").geturl(),
            data={**fields, "username": "demo-auditor", "password": password},
        )
        assert answer.status_code == 303, answer.text
        assert (await http.get(answer.headers["location"])).status_code == 200
        assert "Demo auditor (auditor)" in (await http.get("/console/refunds")).text


def personal_data(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as src:
        rows = list(csv.DictReader(src))
    return [v for r in rows for v in (r["name"], r["phone"], r["phone"].lstrip("+"), r["date_of_birth"]) if v]


def portfolio(path: Path, prefix: str) -> list[str]:
    """The sample portfolio's first three rows, renamed ``<prefix>-1`` … (ids no other stack has)."""
    with open(ROOT / "data" / "sample_portfolio.csv", newline="", encoding="utf-8") as src:
        rows = list(csv.DictReader(src))[:3]
    for i, row in enumerate(rows, 1):
        row["account_id"] = f"{prefix}-{i}"
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return [r["account_id"] for r in rows]


def group_members(pgid: int) -> list[int]:
    """Live processes in process group ``pgid`` (zombies count as gone)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


async def wait_for(what: str, check, within: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within:.0f} s: {what}")
        await asyncio.sleep(0.2)


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc to check nothing is left running")
async def test_two_demos_run_side_by_side_and_stop_cleanly(tmp_path: Path) -> None:
    demos = []
    for name in ("one", "two"):
        state = tmp_path / name / "state"
        state.parent.mkdir()
        csv_file = tmp_path / name / "portfolio.csv"
        ids = portfolio(csv_file, f"TWO{name.upper()}")
        demo = Demo(
            name, state, free_port(), free_port(), free_port(), free_port(), ids, personal_data(csv_file)
        )
        demos.append((demo, csv_file))
    started = time.monotonic()
    stuck: socket.socket | None = None
    try:
        for demo, csv_file in demos:
            demo.start(csv_file, *(("--sso",) if demo.name == "two" else ()))
        for demo, _ in demos:

            def running(d: Demo = demo) -> bool:
                assert d.proc is not None
                if d.proc.poll() is not None:
                    raise AssertionError(f"demo {d.name} exited {d.proc.returncode}:\n{d.output()}")
                return "Collection is running." in d.output()

            await wait_for(f"demo {demo.name} running", running, within=75)

        for demo, _ in demos:
            # its own state directory: the dev server's file, the app's database, the secrets, the log
            for name in ("temporal.db", "collect.db", "secrets.json", "temporal.log"):
                assert (demo.state / name).exists(), (demo.name, name)
            assert f"http://localhost:{demo.ui}" in demo.output()
            # its own Temporal frontend, holding its own accounts and nothing of the other's
            client = await Client.connect(f"127.0.0.1:{demo.temporal}", data_converter=data_converter())
            ids = sorted(
                [w.id async for w in client.list_workflows(ACCOUNTS_QUERY)], key=lambda i: i.split("-")[-1]
            )
            assert ids == [f"account-{a}" for a in demo.accounts], (demo.name, ids)
            assert (await client.count_workflows(ACCOUNTS_QUERY)).count == 3
            async with httpx.AsyncClient(timeout=10) as http:
                ui = await http.get(f"http://127.0.0.1:{demo.ui}/")
                assert ui.status_code == 200, demo.name
                health = await http.get(f"http://127.0.0.1:{demo.service}/healthz")
                assert health.status_code == 200, demo.name
                listed = await http.get(
                    f"http://127.0.0.1:{demo.service}/api/accounts",
                    headers={"Authorization": f"Bearer {demo.token()}"},
                )
                assert listed.status_code == 200, listed.text
                assert sorted(a["account_id"] for a in listed.json()) == sorted(demo.accounts), demo.name
            if demo.name == "two":  # `demo --sso`: the console through the local identity provider
                await sso_sign_in(demo)

        # A request still being uploaded to demo one's service: uvicorn's own graceful stop waits for every
        # open request, and Ctrl-C used to wait for it too (a webhook stuck on a busy database kept a demo
        # sending for 40 s after Ctrl-C). The demo must stop anyway.
        first = demos[0][0]
        stuck = socket.create_connection(("127.0.0.1", first.service))
        stuck.sendall(
            f"POST /api/accounts/{first.accounts[0]}/payments HTTP/1.1\r\nHost: x\r\n"
            "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{".encode()
        )
        # Ctrl-C to one demo, SIGTERM (what a process manager sends) to the other: each stops its worker,
        # service, simulator and dev server
        for demo, _ in demos:
            assert demo.proc is not None
            demo.proc.send_signal(signal.SIGINT if demo.name == "one" else signal.SIGTERM)
        for demo, _ in demos:
            assert demo.proc is not None
            demo.proc.wait(timeout=40)
            assert demo.proc.returncode in (0, 130, 143), demo.output()
            assert "Traceback" not in demo.output(), demo.output()
            await wait_for(f"{demo.name}'s processes gone", lambda d=demo: not group_members(d.proc.pid), 20)
            for port in (demo.temporal, demo.ui, demo.service, demo.simulator):
                assert not port_open("127.0.0.1", port), (demo.name, port)
            # issue 16: nothing it logged (its output, the dev server's log) names a debtor or a number
            logged = demo.output() + (demo.state / "temporal.log").read_text(errors="replace")
            for secret in demo.personal:
                assert secret not in logged, (demo.name, "a debtor's name or number is in the logs")
    finally:
        if stuck is not None:
            stuck.close()
        for demo, _ in demos:
            if demo.proc is not None:
                for pid in group_members(demo.proc.pid):  # only what this test started
                    os.kill(pid, signal.SIGKILL)
                if demo.proc.poll() is None:
                    demo.proc.wait(timeout=10)
    assert time.monotonic() - started < 90
