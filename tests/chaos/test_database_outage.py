"""The application database goes away mid-campaign and comes back.

The worker reaches PostgreSQL through a loopback TCP proxy that the test cuts (every open
connection reset, new ones refused) and restores. Activities fail while it is away and Temporal
retries them; each database write is one transaction, so nothing is half-written: every attempt
that reached a final state has its audit line, and the carrier never saw a dedupe key twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import threading
from collections import Counter
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from runtime.settings import Settings
from tests.chaos.conftest import (
    DevServer,
    WorkerProcess,
    carrier_sends,
    check_exactly_once,
    check_workflows,
    keys_per_account,
    make_accounts,
    open_campaign,
    reserved,
    terminate_all,
    wait_all_continue,
    wait_until,
    worker_env,
)

ACCOUNTS = 100
DAY_SECONDS = 8.0
DOWN_SECONDS = 8.0


class TcpProxy:
    """127.0.0.1:<port> → target, with a switch: ``cut()`` resets everything, ``restore()`` listens again."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.listen()

    def listen(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        sock.listen(128)
        self._listener = sock
        threading.Thread(target=self._accept, args=(sock,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._conns.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                with self._lock:
                    self._conns.discard(s)

    def cut(self) -> None:
        """The database is gone: no new connections, every open one reset."""
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            conns = list(self._conns)
        for s in conns:
            # shutdown first: a bare close() does not end a recv() blocked in a pump thread, so the
            # peer (the PostgreSQL backend) would never learn that its client is gone
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()

    def restore(self) -> None:
        self.listen()

    def close(self) -> None:
        self.cut()


async def test_database_away_and_back_activities_retry_nothing_half_written(
    devserver: DevServer, dev_client: Any, chaos_settings: Settings, simulator: Any, tmp_path: Any
) -> None:
    url = make_url(chaos_settings.database_url)
    if url.get_backend_name() != "postgresql":
        pytest.skip("needs PostgreSQL (a server the test can cut off); CI runs on PostgreSQL")
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    worker = WorkerProcess(
        worker_env(chaos_settings, address=devserver.address, database_url=proxied), tmp_path / "worker.log"
    )
    worker.start()
    accounts = make_accounts(ACCOUNTS, rng=random.Random(6_504), due_offsets=(-6, -3), digits=range(0, 60))
    campaign = await open_campaign(dev_client, chaos_settings, accounts, day_seconds=DAY_SECONDS)
    try:
        await wait_until(
            lambda: len(carrier_sends(simulator, campaign.phones)) >= ACCOUNTS // 3,
            within=120,
            every=0.05,
            what="a third of the first reminders",
        )
        proxy.cut()
        at_cut = Counter({to: len(v) for to, v in carrier_sends(simulator, campaign.phones).items()})
        await asyncio.sleep(DOWN_SECONDS)
        # without the database nothing new can be reserved, so nothing new reaches the carrier
        during = sum(len(v) for v in carrier_sends(simulator, campaign.phones).values())
        assert during - sum(at_cut.values()) <= 8, "sends went out without a reservation"  # ≤ in flight
        steps = keys_per_account(campaign)  # read directly, not through the proxy
        proxy.restore()
        await wait_all_continue(campaign, steps, within=180, client=dev_client)
        await wait_until(lambda: not reserved(campaign), within=60, every=1.0, what="no reserved attempt")
        worker.stop()

        tally = check_exactly_once(campaign, simulator)
        kinds = await check_workflows(dev_client, campaign)
        assert kinds == Counter({"DelinquencyWorkflow:running": ACCOUNTS}), kinds
        log = (tmp_path / "worker.log").read_text(errors="replace")
        assert "OperationalError" in log or "connection" in log.lower(), "the outage was not felt"
        print(f"\ndatabase outage: {ACCOUNTS} accounts, {sum(at_cut.values())} sends before the cut, {tally}")
    finally:
        worker.stop()
        proxy.close()
        await terminate_all(dev_client, campaign)
