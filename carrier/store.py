"""The simulator's in-memory state: messages, calls, callbacks sent, injected faults, counters.

Why in memory: the simulator stands in for a carrier during one test run or one demo; nothing
must survive it. Everything a test wants to assert about "what the carrier saw" lives here and is
served by the control API (``/_sim/...``): how often the same text went to the same number
(Twilio does not deduplicate, neither does the simulator, so a duplicate send is visible), the
TwiML each call executed, and whether any callee was ever held in silence.

Mutations happen on the server's event loop; a lock makes snapshots safe from other threads
(tests may read ``handle.store`` directly).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

API_VERSION = "2010-04-01"
#: a callee who hears nothing for longer than this after answering had a "silent call" (Ofcom/FCC: 2 s)
SILENCE_LIMIT_SECONDS = 2.0


def new_sid(prefix: str) -> str:
    """A Twilio-shaped SID: two letters and 32 lowercase hex digits."""
    return prefix + secrets.token_hex(16)


def rfc2822(moment: datetime | None) -> str | None:
    """Twilio's date format in resources: ``Thu, 24 Aug 2023 05:01:45 +0000``."""
    return format_datetime(moment.astimezone(UTC)).replace("-0000", "+0000") if moment else None


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def segments(body: str) -> int:
    """SMS segments Twilio bills: GSM-7 160/153 chars, UCS-2 (any non-GSM char) 70/67."""
    if not body:
        return 1
    gsm = all(ord(ch) < 128 for ch in body)
    single, multi = (160, 153) if gsm else (70, 67)
    return 1 if len(body) <= single else -(-len(body) // multi)


@dataclass
class CallbackRecord:
    """One HTTP request the simulator made to the application (status callback, TwiML fetch, AMD)."""

    kind: str  # message-status | call-status | amd | twiml
    sid: str
    url: str
    method: str
    params: dict[str, str]
    signature: str
    at: str
    status_code: int | None = None
    error: str | None = None
    response_text: str | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass
class MessageRecord:
    sid: str
    account_sid: str
    to: str
    from_: str | None
    body: str
    media_urls: list[str]
    messaging_service_sid: str | None
    status_callback: str | None
    status: str
    outcome: str
    params: dict[str, list[str]]
    date_created: datetime
    date_updated: datetime
    date_sent: datetime | None = None
    error_code: int | None = None
    error_message: str | None = None
    history: list[str] = field(default_factory=list)
    #: wall-clock epoch seconds the API took the request (``date_created`` has whole seconds only):
    #: what a sender rate limit is measured against
    received_at: float = field(default_factory=time.time)

    @property
    def uri(self) -> str:
        return f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}.json"

    def to_twilio(self) -> dict[str, Any]:
        """The resource exactly as Twilio's Message JSON (field names of the spec's schema)."""
        billed = self.status in ("sent", "delivered", "undelivered")
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": self.body,
            "date_created": rfc2822(self.date_created),
            "date_sent": rfc2822(self.date_sent),
            "date_updated": rfc2822(self.date_updated),
            "direction": "outbound-api",
            "error_code": self.error_code,
            "error_message": self.error_message,
            "from": self.from_,
            "messaging_service_sid": self.messaging_service_sid,
            "num_media": str(len(self.media_urls)),
            "num_segments": str(segments(self.body)),
            "price": "-0.00790" if billed else None,
            "price_unit": "USD",
            "sid": self.sid,
            "status": self.status,
            "subresource_uris": {"media": self.uri.replace(".json", "/Media.json")},
            "to": self.to,
            "uri": self.uri,
        }

    def to_sim(self) -> dict[str, Any]:
        """The Twilio resource plus what only the simulator knows (outcome class, status history)."""
        return {
            **self.to_twilio(),
            "channel": "sms",
            "outcome": self.outcome,
            "history": list(self.history),
            "status_callback": self.status_callback,
            "params": self.params,
        }


@dataclass
class CallRecord:
    sid: str
    account_sid: str
    to: str
    from_: str
    url: str | None
    method: str
    twiml_inline: str | None
    status_callback: str | None
    status_callback_events: list[str]
    machine_detection: str | None
    async_amd: bool
    async_amd_status_callback: str | None
    timeout: int
    outcome: str
    params: dict[str, list[str]]
    date_created: datetime
    date_updated: datetime
    status: str = "queued"
    start_time: datetime | None = None
    end_time: datetime | None = None
    duration: int | None = None
    answered_by: str | None = None
    answered: bool = False
    #: simulated seconds the phone rang
    ring_seconds: int = 0
    #: the TwiML document the call executed (fetched from Url, or the inline Twiml)
    twiml: str | None = None
    twiml_source: str | None = None  # "inline" | "url"
    twiml_error: str | None = None
    #: later documents (a live call redirected with calls(sid).update(url=... / twiml=...))
    twiml_history: list[str] = field(default_factory=list)
    #: seconds a synchronous machine detection kept the answered callee waiting in silence
    held_silent_seconds: float = 0.0
    #: seconds from answer until the first <Say>/<Play>; None if the callee never heard anything
    speech_latency_seconds: float | None = None
    amd_duration_ms: int | None = None
    ended_by_api: str | None = None
    history: list[str] = field(default_factory=list)
    #: wall-clock epoch seconds the API took the request (see :attr:`MessageRecord.received_at`)
    received_at: float = field(default_factory=time.time)

    @property
    def uri(self) -> str:
        return f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{self.sid}.json"

    @property
    def silent(self) -> bool:
        """Answered, then nothing said within 2 s: the call the product must never make."""
        return self.answered and (
            self.speech_latency_seconds is None or self.speech_latency_seconds > SILENCE_LIMIT_SECONDS
        )

    def to_twilio(self) -> dict[str, Any]:
        """The resource exactly as Twilio's Call JSON (field names of the spec's schema)."""
        base = self.uri[: -len(".json")]
        final = self.status in ("completed", "busy", "failed", "no-answer", "canceled")
        return {
            "account_sid": self.account_sid,
            "answered_by": self.answered_by,
            "api_version": API_VERSION,
            "caller_name": None,
            "date_created": rfc2822(self.date_created),
            "date_updated": rfc2822(self.date_updated),
            "direction": "outbound-api",
            "duration": str(self.duration) if self.duration is not None else None,
            "end_time": rfc2822(self.end_time),
            "forwarded_from": None,
            "from": self.from_,
            "from_formatted": self.from_,
            "group_sid": None,
            "parent_call_sid": None,
            "phone_number_sid": None,
            "price": "-0.01400" if final and self.answered else None,
            "price_unit": "USD",
            "queue_time": "0",
            "sid": self.sid,
            "start_time": rfc2822(self.start_time),
            "status": self.status,
            "subresource_uris": {
                "notifications": f"{base}/Notifications.json",
                "recordings": f"{base}/Recordings.json",
                "payments": f"{base}/Payments.json",
                "events": f"{base}/Events.json",
                "siprec": f"{base}/Siprec.json",
                "streams": f"{base}/Streams.json",
                "transcriptions": f"{base}/Transcriptions.json",
                "user_defined_message_subscriptions": f"{base}/UserDefinedMessageSubscriptions.json",
                "user_defined_messages": f"{base}/UserDefinedMessages.json",
            },
            "to": self.to,
            "to_formatted": self.to,
            "trunk_sid": None,
            "uri": self.uri,
        }

    def to_sim(self) -> dict[str, Any]:
        """The Twilio resource plus the evidence tests need (TwiML, silence, detection mode)."""
        return {
            **self.to_twilio(),
            "channel": "call",
            "outcome": self.outcome,
            "answered": self.answered,
            "ring_seconds": self.ring_seconds,
            "timeout": self.timeout,
            "twiml": self.twiml,
            "twiml_source": self.twiml_source,
            "twiml_error": self.twiml_error,
            "twiml_history": list(self.twiml_history),
            "machine_detection": self.machine_detection,
            "async_amd": self.async_amd,
            "amd_duration_ms": self.amd_duration_ms,
            "held_silent_seconds": self.held_silent_seconds,
            "speech_latency_seconds": self.speech_latency_seconds,
            "silent": self.silent,
            "ended_by_api": self.ended_by_api,
            "status_callback": self.status_callback,
            "status_callback_events": list(self.status_callback_events),
            "history": list(self.history),
            "params": self.params,
        }


@dataclass
class Fault:
    """An injected failure for the next ``remaining`` Twilio API requests that match.

    ``status`` answers with that HTTP error (429 → Twilio code 20429, 5xx → 20500); ``delay``
    sleeps first (a slow carrier, for client timeouts). ``commit=True`` processes the request and
    *then* answers with the error: the "lost response" case in which a retry sends twice.
    """

    remaining: int = 1
    status: int | None = None
    delay: float = 0.0
    commit: bool = False
    path: str | None = None
    method: str | None = None

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method.upper() == method.upper()) and (
            self.path is None or self.path in path
        )


@dataclass
class Rejected:
    """A request the API refused (validation, magic number, fault): kept so tests see attempts too."""

    method: str
    path: str
    status: int
    code: int
    message: str
    params: dict[str, list[str]]
    at: str


class SimStore:
    """Everything the simulator remembers; reset between tests with ``POST /_sim/reset``."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.messages: dict[str, MessageRecord] = {}
        self.calls: dict[str, CallRecord] = {}
        self.callbacks: list[CallbackRecord] = []
        self.rejected: list[Rejected] = []
        self.faults: list[Fault] = []
        self.requests: Counter[str] = Counter()
        self.sends: Counter[tuple[str, str, str]] = Counter()
        self.pending = 0

    def reset(self) -> None:
        with self.lock:
            self.messages.clear()
            self.calls.clear()
            self.callbacks.clear()
            self.rejected.clear()
            self.faults.clear()
            self.requests.clear()
            self.sends.clear()

    # --- writes (event loop) -------------------------------------------------------------------

    def add_message(self, message: MessageRecord) -> None:
        with self.lock:
            self.messages[message.sid] = message
            self.sends[("sms", message.to, message.body)] += 1

    def add_call(self, call: CallRecord) -> None:
        with self.lock:
            self.calls[call.sid] = call
            self.sends[("call", call.to, call.twiml_inline or call.url or "")] += 1

    def add_callback(self, record: CallbackRecord) -> None:
        with self.lock:
            self.callbacks.append(record)

    def add_rejected(self, rejected: Rejected) -> None:
        with self.lock:
            self.rejected.append(rejected)

    def take_fault(self, method: str, path: str) -> Fault | None:
        """Consume one use of the first matching fault."""
        with self.lock:
            for fault in self.faults:
                if fault.remaining > 0 and fault.matches(method, path):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self.faults.remove(fault)
                    return fault
        return None

    # --- reads (any thread) ---------------------------------------------------------------------

    def message_list(self, to: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [m.to_sim() for m in self.messages.values() if to is None or m.to == to]

    def call_list(self, to: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [c.to_sim() for c in self.calls.values() if to is None or c.to == to]

    def callback_list(self, sid: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [
                {**asdict(c), "ok": c.ok}
                for c in self.callbacks
                if (sid is None or c.sid == sid) and (kind is None or c.kind == kind)
            ]

    def stats(self) -> dict[str, Any]:
        with self.lock:
            sends = [
                {"channel": ch, "to": to, "body": body, "count": n}
                for (ch, to, body), n in self.sends.items()
            ]
            calls = list(self.calls.values())
            return {
                "requests": dict(self.requests),
                "messages": len(self.messages),
                "calls": len(calls),
                "message_status": dict(Counter(m.status for m in self.messages.values())),
                "call_status": dict(Counter(c.status for c in calls)),
                "answered_by": dict(Counter(c.answered_by for c in calls if c.answered_by)),
                "sends": sends,
                "duplicates": [s for s in sends if s["count"] > 1],
                "silent_calls": sum(1 for c in calls if c.silent),
                "held_silent_calls": sum(1 for c in calls if c.held_silent_seconds > 0),
                "max_speech_latency_seconds": max(
                    (c.speech_latency_seconds for c in calls if c.speech_latency_seconds is not None),
                    default=None,
                ),
                "callbacks_sent": len(self.callbacks),
                "callbacks_failed": sum(1 for c in self.callbacks if not c.ok),
                "rejected": len(self.rejected),
                "faults_pending": sum(f.remaining for f in self.faults),
                "pending": self.pending,
            }
