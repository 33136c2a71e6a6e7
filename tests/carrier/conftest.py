"""Fixtures for the carrier simulator and Twilio contract tests.

* ``carrier_sim``: a running simulator (own credentials, own port, Twilio spec validation on when
  the spec is installed), reset before each test.
* ``twilio_client``: the real ``twilio.rest.Client`` from ``make_twilio_client``, aimed at it.
* ``webhooks``: a tiny HTTP server that receives the simulator's callbacks, checks every
  ``X-Twilio-Signature`` with the SDK's ``RequestValidator`` and serves TwiML documents.
* ``twilio_spec``: Twilio's OpenAPI document; missing → skip locally, **fail** when ``CI=true``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import pytest
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from activities.twilio_client import make_twilio_client
from carrier import SimulatorHandle, run_in_thread
from carrier.contract import TwilioSpec, find_spec, spec_path_from_env

ACCOUNT_SID = "AC" + "ab" * 16
AUTH_TOKEN = "carrier-test-token"
SENDER = "+15005550006"
SAY_FIRST = (
    '<?xml version="1.0" encoding="UTF-8"?><Response><Say>Hello, this is Acme Finance.</Say></Response>'
)


@pytest.fixture(scope="session")
def twilio_spec_path() -> str:
    path = spec_path_from_env()
    if not path.is_file():
        message = f"Twilio OpenAPI spec not found at {path}: run scripts/fetch_twilio_spec.sh"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return str(path)


@pytest.fixture(scope="session")
def twilio_spec(twilio_spec_path: str) -> TwilioSpec:
    return TwilioSpec.load(twilio_spec_path)


@pytest.fixture(scope="session")
def _carrier_server() -> Iterator[SimulatorHandle]:
    handle = run_in_thread("127.0.0.1", 0, ACCOUNT_SID, AUTH_TOKEN, spec_path=find_spec())
    yield handle
    handle.stop()


@pytest.fixture
def carrier_sim(_carrier_server: SimulatorHandle) -> Iterator[SimulatorHandle]:
    _carrier_server.reset()
    _carrier_server.configure(step_delay=0.002, talk_seconds=0)
    yield _carrier_server
    _carrier_server.control("DELETE", "/_sim/faults")


@pytest.fixture
def twilio_client(carrier_sim: SimulatorHandle) -> Client:
    return make_twilio_client(ACCOUNT_SID, AUTH_TOKEN, carrier_sim.url)


@dataclass
class Hook:
    """One request the simulator made to us."""

    method: str
    path: str
    params: dict[str, str]
    signature: str
    valid: bool


@dataclass
class Webhooks:
    """Receives signed webhooks; ``twiml[path]`` is the document served on that path."""

    base: str = ""
    hooks: list[Hook] = field(default_factory=list)
    twiml: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return self.base + path

    def at(self, path: str) -> list[Hook]:
        with self.lock:
            return [h for h in self.hooks if h.path == path]

    def clear(self) -> None:
        with self.lock:
            self.hooks.clear()
            self.twiml.clear()


def _handler(state: Webhooks) -> type[BaseHTTPRequestHandler]:
    validator = RequestValidator(AUTH_TOKEN)

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            params = dict(parse_qsl(body, keep_blank_values=True))
            url = f"http://{self.headers['Host']}{self.path}"
            signature = self.headers.get("X-Twilio-Signature", "")
            path = urlsplit(self.path).path
            hook = Hook(self.command, path, params, signature, validator.validate(url, params, signature))
            with state.lock:
                state.hooks.append(hook)
                document = state.twiml.get(path)
            if document is not None:
                payload, content_type = document.encode(), "application/xml"
            else:
                payload, content_type = b"", "text/plain"
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = _handle
        do_POST = _handle

        def log_message(self, format: str, *args: object) -> None:  # quiet
            return

    return Handler


@pytest.fixture(scope="session")
def _webhook_server() -> Iterator[Webhooks]:
    state = Webhooks()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def webhooks(_webhook_server: Webhooks) -> Webhooks:
    _webhook_server.clear()
    return _webhook_server
