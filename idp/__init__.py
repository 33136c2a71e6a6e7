"""A small OpenID Connect provider of our own, for the tests and the demo (issue 16: operator sign-in).

Why our own: the console's sign-in must be exercised end to end, browser included, with nothing
mocked and nothing downloaded; a production deployment points ``COLLECT_OIDC_ISSUER`` at its real
identity provider (Keycloak, Entra ID, Okta, Google Workspace …) instead. Users and their roles come
from a JSON file; the signing key is made at start.

    python -m idp --port 8098 --users users.json --client collect:<secret>:http://localhost:8000/console/oidc/callback

or inside a process: ``handle = run_in_thread(provider)`` (port 0: any free port).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass

import uvicorn

from idp.app import Client, Provider, User, create_app

__all__ = ["Client", "IdpHandle", "Provider", "User", "create_app", "free_socket", "run_in_thread"]


@dataclass
class IdpHandle:
    url: str
    provider: Provider
    _server: uvicorn.Server
    _thread: threading.Thread

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def free_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def run_in_thread(provider: Provider, sock: socket.socket, *, startup_timeout: float = 10.0) -> IdpHandle:
    """Serve ``provider`` on ``sock`` (bound already: the issuer URL names its port) from a thread."""
    server = uvicorn.Server(
        uvicorn.Config(create_app(provider), log_level=logging.WARNING, access_log=False, lifespan="off")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="idp", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("the identity provider did not start")
        time.sleep(0.01)
    return IdpHandle(url=provider.issuer, provider=provider, _server=server, _thread=thread)
