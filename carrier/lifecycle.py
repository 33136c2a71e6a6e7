"""The simulated network: how a queued message or call moves through Twilio's statuses.

Why separate from the HTTP layer: the order and content of status callbacks, the TwiML fetch on
answer and the machine-detection timing are the behaviour the application is tested against, and
they are easier to read as one coroutine per resource than spread over request handlers.

Simulated durations (ringing, machine detection, talk time) are *recorded*, not waited; between
two events the simulator only sleeps ``SimConfig.step_delay`` (a few ms) so tests stay fast while
callbacks still arrive one after another, in Twilio's order:

* SMS: ``queued`` → ``sent`` → ``delivered`` | ``undelivered`` (ErrorCode); or ``queued`` → ``failed``.
* Calls (``StatusCallbackEvent``; only ``completed`` when none is given): ``initiated`` → ``ringing``
  → ``answered`` (CallStatus ``in-progress``; the TwiML is fetched now) → ``completed``; or
  ``completed`` with CallStatus ``busy`` / ``no-answer`` / ``failed`` / ``canceled``. With
  ``AsyncAmd=true`` the AnsweredBy result goes separately to ``AsyncAmdStatusCallback`` after the
  answer; with synchronous detection the callee is held silent while it decides and the TwiML is
  fetched only afterwards: that hold is recorded as ``held_silent_seconds``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from defusedxml import ElementTree  # TwiML from the network: no entity expansion, no DTDs

from carrier.callbacks import CallbackDispatcher
from carrier.outcomes import ERROR_MESSAGES, Outcome
from carrier.store import API_VERSION, CallRecord, MessageRecord, SimStore, rfc2822, utcnow

log = logging.getLogger("carrier")

CALL_FINAL = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
MESSAGE_FINAL = frozenset({"delivered", "undelivered", "failed"})
#: verbs after which nothing we control is said (the callee hears an agent, a queue, or nothing)
_NON_SPEECH_STOP = frozenset(
    {"Hangup", "Reject", "Redirect", "Dial", "Connect", "Enqueue", "Record", "Leave"}
)


@dataclass
class SimConfig:
    """Knobs of the simulated network, changeable at run time through ``POST /_sim/config``."""

    #: real seconds between two consecutive events of one message or call
    step_delay: float = 0.005
    #: real seconds an answered call stays in progress (so a test can hang it up); 0 = step_delay
    talk_seconds: float = 0.0
    #: seconds the simulator waits for the application to answer a webhook
    callback_timeout: float = 5.0


def speech_latency(twiml: str | None) -> float | None:
    """Seconds from answer until the callee hears the first ``<Say>``/``<Play>`` of ``twiml``.

    Leading ``<Pause>`` verbs add their length (default 1 s); a document that hangs up, dials out
    or never speaks gives None: the callee heard nothing from us.
    """
    if not twiml:
        return None
    try:
        root = ElementTree.fromstring(twiml)
    except ElementTree.ParseError:
        return None
    latency = 0.0
    for element in root.iter():
        if element is root:
            continue
        if element.tag in ("Say", "Play"):
            return latency
        if element.tag == "Pause":
            try:
                latency += float(element.get("length", "1"))
            except ValueError:
                latency += 1.0
        elif element.tag in _NON_SPEECH_STOP:
            return None
    return None


def _valid_twiml(text: str) -> bool:
    try:
        return ElementTree.fromstring(text).tag == "Response"
    except ElementTree.ParseError:
        return False


class Network:
    """Runs one background coroutine per message and call; knows when all of them are done."""

    def __init__(self, store: SimStore, dispatcher: CallbackDispatcher, config: SimConfig) -> None:
        self.store = store
        self.dispatcher = dispatcher
        self.config = config
        self.tasks: set[asyncio.Task[None]] = set()
        self.errors: list[str] = []
        self._hangups: dict[str, asyncio.Event] = {}

    # --- bookkeeping ---------------------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        with self.store.lock:
            self.store.pending = len(self.tasks)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        with self.store.lock:
            self.store.pending = len(self.tasks)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.error("carrier simulator lifecycle failed", exc_info=exc)
            self.errors.append(f"{type(exc).__name__}: {exc}")

    async def wait_idle(self, within: float) -> bool:
        """True once every pending lifecycle (and so every callback) has finished, within ``within`` s."""
        deadline = time.monotonic() + within
        while self.tasks:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            await asyncio.wait(set(self.tasks), timeout=remaining)
        return True

    async def cancel_all(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=2)
        self._hangups.clear()
        self.errors.clear()

    async def _step(self) -> None:
        await asyncio.sleep(self.config.step_delay)

    # --- messages ------------------------------------------------------------------------------

    async def run_message(self, message: MessageRecord, outcome: Outcome) -> None:
        await self._message_status(message, "queued")
        await self._step()
        if outcome.sms_status == "failed":
            await self._message_status(message, "failed", outcome.sms_error_code)
            return
        message.date_sent = utcnow()
        await self._message_status(message, "sent")
        await self._step()
        await self._message_status(message, outcome.sms_status, outcome.sms_error_code)

    async def _message_status(
        self, message: MessageRecord, status: str, error_code: int | None = None
    ) -> None:
        with self.store.lock:
            message.status = status
            message.date_updated = utcnow()
            if error_code:
                message.error_code = error_code
                message.error_message = ERROR_MESSAGES.get(error_code)
            message.history.append(status)
        if not message.status_callback:
            return
        params = {
            "SmsSid": message.sid,
            "SmsStatus": status,
            "MessageStatus": status,
            "To": message.to,
            "MessageSid": message.sid,
            "AccountSid": message.account_sid,
            "ApiVersion": API_VERSION,
        }
        if message.from_:
            params["From"] = message.from_
        if message.messaging_service_sid:
            params["MessagingServiceSid"] = message.messaging_service_sid
        if error_code:
            params["ErrorCode"] = str(error_code)
        await self.dispatcher.deliver("message-status", message.sid, message.status_callback, params)

    # --- calls ---------------------------------------------------------------------------------

    def hangup_event(self, sid: str) -> asyncio.Event:
        return self._hangups.setdefault(sid, asyncio.Event())

    def end_by_api(self, call: CallRecord, status: str) -> None:
        """``calls(sid).update(status=...)``: end the call now; the lifecycle reports it."""
        with self.store.lock:
            if call.status in CALL_FINAL:
                return
            if status == "canceled" and call.status not in ("queued", "ringing"):
                return  # Twilio: canceling only affects calls not yet answered
            now = utcnow()
            call.status = "completed" if call.answered else "canceled"
            call.ended_by_api = status
            call.end_time = now
            call.date_updated = now
            call.duration = int((now - call.start_time).total_seconds()) if call.start_time else 0
            call.history.append(call.status)
        self.hangup_event(call.sid).set()

    def _call_params(self, call: CallRecord, status: str) -> dict[str, str]:
        return {
            "AccountSid": call.account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": call.sid,
            "CallStatus": status,
            "Called": call.to,
            "Caller": call.from_,
            "Direction": "outbound-api",
            "From": call.from_,
            "To": call.to,
        }

    async def _progress(self, call: CallRecord, event: str, status: str, **extra: str) -> None:
        """Record a status change and, if the app subscribed to ``event``, tell it."""
        with self.store.lock:
            if status != "initiated":
                call.status = status
            call.date_updated = utcnow()
            if not call.history or call.history[-1] != status:
                call.history.append(status)
        if not call.status_callback or event not in call.status_callback_events:
            return
        with self.store.lock:
            sequence = sum(1 for c in self.store.callbacks if c.sid == call.sid and c.kind == "call-status")
        params = {
            **self._call_params(call, status),
            "CallbackSource": "call-progress-events",
            "SequenceNumber": str(sequence),
            "Timestamp": rfc2822(utcnow()) or "",
            **extra,
        }
        method = call.params.get("StatusCallbackMethod", ["POST"])[0]
        await self.dispatcher.deliver("call-status", call.sid, call.status_callback, params, method)

    async def _ended(self, call: CallRecord) -> bool:
        """If the API already ended the call, report its final status and stop the lifecycle."""
        if call.status not in CALL_FINAL:
            return False
        extra = {"CallDuration": str(call.duration or 0)}
        if call.answered_by:
            extra["AnsweredBy"] = call.answered_by
        await self._progress(call, "completed", call.status, **extra)
        return True

    def _finish(self, call: CallRecord, status: str, duration: int) -> None:
        with self.store.lock:
            now = utcnow()
            call.status = status
            call.duration = duration
            call.end_time = now if call.start_time else None
            call.date_updated = now

    async def run_call(self, call: CallRecord, outcome: Outcome) -> None:
        md = call.machine_detection
        await self._step()
        if await self._ended(call):
            return
        await self._progress(call, "initiated", "initiated")
        await self._step()
        if outcome.call_status == "failed":
            self._finish(call, "failed", 0)
            await self._progress(call, "completed", "failed", CallDuration="0")
            return
        if await self._ended(call):
            return
        await self._progress(call, "ringing", "ringing")
        await self._step()
        if await self._ended(call):
            return
        if outcome.call_status == "busy":
            self._finish(call, "busy", 0)
            await self._progress(call, "completed", "busy", CallDuration="0")
            return
        if not outcome.answers or outcome.ring_seconds > call.timeout:
            call.ring_seconds = call.timeout
            self._finish(call, "no-answer", 0)
            await self._progress(call, "completed", "no-answer", CallDuration="0")
            return

        # answered
        answered_by = outcome.answered_by_for(md)
        amd_ms = outcome.amd_duration_ms(md) if md else None
        if amd_ms is not None and outcome.hangs_up_after is not None:
            amd_ms = min(amd_ms, int(outcome.hangs_up_after * 1000))
        with self.store.lock:
            call.ring_seconds = outcome.ring_seconds
            call.answered = True
            call.start_time = utcnow()
            if md and not call.async_amd:
                # synchronous AMD: Twilio listens (the callee hears silence) before it runs any TwiML
                call.held_silent_seconds = (amd_ms or 0) / 1000
                call.answered_by = answered_by
                call.amd_duration_ms = amd_ms
        sync_extra = {"AnsweredBy": answered_by} if md and not call.async_amd and answered_by else {}
        await self._progress(call, "answered", "in-progress", **sync_extra)
        document = await self._load_twiml(call, call.twiml_inline, call.url, call.method, sync_extra)
        latency = speech_latency(document)
        with self.store.lock:
            call.twiml = document
            call.twiml_source = "inline" if call.twiml_inline else "url"
            call.speech_latency_seconds = None if latency is None else latency + call.held_silent_seconds
        await self._step()
        if md and call.async_amd:
            with self.store.lock:
                call.answered_by = answered_by
                call.amd_duration_ms = amd_ms
            if call.async_amd_status_callback:
                params = {
                    "AccountSid": call.account_sid,
                    "CallSid": call.sid,
                    "AnsweredBy": answered_by or "unknown",
                    "MachineDetectionDuration": str(amd_ms or 0),
                }
                method = call.params.get("AsyncAmdStatusCallbackMethod", ["POST"])[0]
                await self.dispatcher.deliver("amd", call.sid, call.async_amd_status_callback, params, method)
        if await self._ended(call):
            return
        talk = self.config.talk_seconds or self.config.step_delay
        try:
            await asyncio.wait_for(self.hangup_event(call.sid).wait(), timeout=talk)
        except TimeoutError:
            pass
        if await self._ended(call):
            return
        self._finish(call, "completed", outcome.call_duration)
        extra = {
            "CallDuration": str(outcome.call_duration),
            "Duration": str(math.ceil(outcome.call_duration / 60)),
        }
        if call.answered_by:
            extra["AnsweredBy"] = call.answered_by
        await self._progress(call, "completed", "completed", **extra)

    async def _load_twiml(
        self, call: CallRecord, inline: str | None, url: str | None, method: str, extra: dict[str, str]
    ) -> str | None:
        """The document Twilio would execute: the inline ``Twiml``, or a signed fetch of ``Url``."""
        if inline:
            return inline
        if not url:
            return None
        params = {**self._call_params(call, "in-progress"), **extra}
        record = await self.dispatcher.deliver("twiml", call.sid, url, params, method)
        if not record.ok:
            call.twiml_error = f"11200 HTTP retrieval failure: {record.status_code or record.error}"
            return None
        text = record.response_text or ""
        if not _valid_twiml(text):
            call.twiml_error = "12100 Document parse failure"
            return None
        return text

    async def redirect(self, call: CallRecord, twiml: str | None, url: str | None, method: str) -> None:
        """A live call given new instructions (``update(url=...)`` / ``update(twiml=...)``)."""
        document = await self._load_twiml(call, twiml, url, method, {})
        if document:
            with self.store.lock:
                call.twiml_history.append(document)
