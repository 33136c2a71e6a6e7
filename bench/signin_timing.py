"""``python -m bench.signin_timing [--rounds 300]``: does asking for a sign-in code take the same time
whether or not the number is on file?

The service runs under uvicorn on a loopback port with a SQLite database and the carrier simulator;
a client in a process of its own asks, over one keep-alive HTTP connection, for codes for a number on file and for a number on no account,
in a shuffled order, and times each answer (request sent to response read). The answer for the known
number is followed by a real send (text, delivery followed, at the simulator); it runs after the
answer, in a task of its own, so neither that answer nor the next one on the same connection waits
for it. Printed: the median, p90 and p99 of each, and how often a known-number answer is slower than
an unknown-number one (0.5: indistinguishable). Timings belong here, not in the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import uvicorn

from bench.infra import free_port, percentile
from carrier import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, run_in_thread
from domain.accounts import Account, Debtor
from runtime.settings import Settings
from service import code_sender
from service.app import create_app
from store.accounts import upsert_account
from store.db import make_engine, session_factory, upgrade

KNOWN, UNKNOWN = "+16465550142", "+16465550143"
WARM_UP = 10  # requests, half of each kind


async def measure(rounds: int, directory: Path) -> dict[str, list[float]]:
    url = f"sqlite:///{directory / 'timing.db'}"
    upgrade(url)
    account = Account(
        account_id="TIMING-1",
        debtor=Debtor(
            name="Jane Doe", phone=KNOWN, timezone="America/New_York", date_of_birth=date(1980, 1, 2)
        ),
        currency="USD",
        balance=50_000,
        due_date=date(2026, 11, 1),
    )
    with session_factory(make_engine(url)).begin() as s:
        upsert_account(s, account, datetime.now(UTC))
    carrier = run_in_thread("127.0.0.1", 0, DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN)
    port = free_port()
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=url,
        twilio_api_base_url=carrier.url,
        sender_messages_per_second=1000.0,
        status_poll_first_seconds=0.01,
        signin_codes_per_number_per_hour=10**6,
        signin_codes_per_address_per_hour=10**6,
    )
    app = create_app(settings)
    app.state.temporal_client = object()  # never used by these routes
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    serving = asyncio.create_task(server.serve())
    for _ in range(1000):
        if server.started:
            break
        await asyncio.sleep(0.01)
    try:
        # the client in a process of its own, as a guesser's would be: in this one it would share the
        # GIL with the deliveries the known number's answers start and time them as its own
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.signin_timing",
            "--client",
            str(port),
            "--rounds",
            str(rounds),
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await proc.communicate()
        times: dict[str, list[float]] = json.loads(out)
        await code_sender.settle(app)
        sent = carrier.control("GET", "/_sim/messages", params={"to": KNOWN}).json()
        assert len(sent) == rounds + WARM_UP // 2, f"{len(sent)} texts for {rounds + WARM_UP // 2} codes"
    finally:
        server.should_exit = True
        await serving
        carrier.stop()
    return times


def client(port: int, rounds: int) -> dict[str, list[float]]:
    """Ask for codes in a shuffled order over one keep-alive connection; each answer's time by kind."""
    times: dict[str, list[float]] = {"known": [], "unknown": []}
    order = ["known", "unknown"] * rounds
    random.shuffle(order)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
        for name in ["known", "unknown"] * (WARM_UP // 2):  # connections, caches, the first scrypt
            http.post("/me/code", data={"phone": KNOWN if name == "known" else UNKNOWN})
        for name in order:
            started = time.perf_counter()
            answer = http.post("/me/code", data={"phone": KNOWN if name == "known" else UNKNOWN})
            times[name].append(time.perf_counter() - started)
            assert answer.status_code == 303, answer.text
    return times


def report(times: dict[str, list[float]]) -> None:
    known, unknown = times["known"], times["unknown"]
    for name, values in times.items():
        ms = [v * 1000 for v in values]
        print(
            f"{name:8} n={len(ms)} median {percentile(ms, 50):6.1f} ms  p90 {percentile(ms, 90):6.1f} ms"
            f"  p99 {percentile(ms, 99):6.1f} ms"
        )
    slower = sum(1 for k in known for u in unknown if k > u) + 0.5 * sum(
        1 for k in known for u in unknown if k == u
    )
    print(
        f"P(known answer slower than unknown) = {slower / (len(known) * len(unknown)):.3f} (0.5: no difference)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=300, help="requests per kind of number")
    parser.add_argument("--client", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client:
        print(json.dumps(client(args.client, args.rounds)))
        return 0
    with tempfile.TemporaryDirectory() as directory:
        report(asyncio.run(measure(args.rounds, Path(directory))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
