"""A Twilio-compatible carrier simulator: the real twilio SDK talks to it instead of api.twilio.com.

Why: the product's guarantees (never a silent call, never a duplicate or post-settlement send) are
about what the carrier sees, so tests and the demo need a carrier that answers like Twilio and can
be asked afterwards what happened. See ``carrier.app`` for the API, ``carrier.outcomes`` for the
outcome-by-number table, ``carrier.contract`` for validation against Twilio's OpenAPI spec.

Run it standalone with ``python -m carrier --host 127.0.0.1 --port 8099``, or inside a process:

    handle = run_in_thread("127.0.0.1", 0, account_sid, auth_token)   # port 0: any free port
    ... make_twilio_client(account_sid, auth_token, handle.url) ...
    handle.stop()
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from carrier.app import Simulator, create_app
from carrier.lifecycle import SimConfig
from carrier.outcomes import Outcome, outcome_for
from carrier.store import SimStore

__all__ = [
    "DEFAULT_ACCOUNT_SID",
    "DEFAULT_AUTH_TOKEN",
    "Outcome",
    "SimConfig",
    "SimulatorHandle",
    "create_app",
    "outcome_for",
    "run_in_thread",
]

#: the same defaults as runtime.settings (SIMULATOR_SID / SIMULATOR_TOKEN), kept here so the
#: simulator has no dependency on the application
DEFAULT_ACCOUNT_SID = "AC" + "0" * 31 + "1"
DEFAULT_AUTH_TOKEN = "simulator-auth-token"


@dataclass
class SimulatorHandle:
    """A simulator served by uvicorn on a background thread of this process."""

    url: str
    account_sid: str
    auth_token: str
    simulator: Simulator
    _server: uvicorn.Server = field(repr=False)
    _thread: threading.Thread = field(repr=False)
    _http: httpx.Client | None = field(default=None, repr=False)
    _http_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def store(self) -> SimStore:
        """Direct (thread-safe snapshot) access to what the simulator saw."""
        return self.simulator.store

    def control(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Call the control API (``/_sim/...``) synchronously (one pooled client: creating one costs ~40 ms)."""
        with self._http_lock:
            if self._http is None:
                self._http = httpx.Client(base_url=self.url, timeout=30)
        return self._http.request(method, path, **kwargs)

    def reset(self) -> None:
        self.control("POST", "/_sim/reset").raise_for_status()

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """True once every pending status callback, TwiML fetch and AMD result has been delivered."""
        return self.control("POST", "/_sim/wait_idle", params={"timeout": timeout}).status_code == 200

    def configure(self, **changes: float) -> dict[str, Any]:
        """Change ``SimConfig`` knobs at run time (e.g. ``talk_seconds=5`` to hang a call up)."""
        response = self.control("POST", "/_sim/config", json=changes)
        response.raise_for_status()
        return response.json()

    def stop(self, timeout: float = 5.0) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
        self._server.should_exit = True
        self._thread.join(timeout)


def run_in_thread(
    host: str,
    port: int,
    account_sid: str,
    auth_token: str,
    spec_path: str | Path | None = None,
    *,
    config: SimConfig | None = None,
    startup_timeout: float = 10.0,
) -> SimulatorHandle:
    """Start the simulator (uvicorn) on a daemon thread and return once it accepts connections.

    ``port=0`` binds any free port (read it from ``handle.url``). With ``spec_path`` every request
    body is validated against Twilio's OpenAPI schema (see ``carrier.contract.find_spec``).
    """
    app = create_app(account_sid, auth_token, spec_path=spec_path, config=config)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # accepted sockets inherit this: without it every keep-alive request waits ~40 ms (Nagle + delayed ACK)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            app, log_level=logging.WARNING, access_log=False, lifespan="on", timeout_graceful_shutdown=2
        )
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"carrier-{bound_port}", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"carrier simulator did not start on {host}:{bound_port}")
        time.sleep(0.01)
    shown = f"[{host}]" if ":" in host else host
    return SimulatorHandle(
        url=f"http://{shown}:{bound_port}",
        account_sid=account_sid,
        auth_token=auth_token,
        simulator=app.state.sim,
        _server=server,
        _thread=thread,
    )
