"""Deterministic carrier outcomes, chosen by the destination number alone.

Why: tests, the demo and the workflows need every real-world outcome of an SMS or a call
(delivered, undelivered, voicemail, busy, a callee who hangs up in silence, ...) on demand and
reproducibly, without a real carrier. The rule is deliberately dumb: **the last two digits of the
destination number pick the outcome**, so any test can choose one by choosing a number (use the
fictional range ``+1 NPA 555-01XX``, e.g. ``+12025550163`` is a voicemail machine).

Twilio's magic test numbers (``+1 500 555 00XX``, from Twilio's "test credentials" page) are
answered first, with the API error Twilio documents for them, before the two-digit rule applies.

Last two digits of ``To`` (any number that is not a magic number):

=======  ===============================  ========================================================
digits   SMS (final status, ErrorCode)    Call (final status, AnsweredBy with machine detection)
=======  ===============================  ========================================================
00-59    delivered                        completed, ``human``, 35 s
60-69    delivered                        completed, ``machine_end_beep`` (``machine_start`` with
                                          MachineDetection=Enable), 20 s (a voicemail box)
70-74    delivered                        completed, ``unknown``, 1 s: the callee answers, says
                                          nothing and hangs up within 2 s ("silent/hang-up")
75-79    delivered                        no-answer (rang for ``Timeout`` seconds)
80-84    delivered                        busy
85-89    delivered                        failed
90-94    undelivered, 30003 unreachable   no-answer
95-97    undelivered, 30006 landline      completed, ``human``, 35 s (a landline answers calls)
98       failed, 30005 unknown handset    failed
99       undelivered, 21610 unsubscribed  completed, ``human``, 35 s (opted out of SMS only)
=======  ===============================  ========================================================

An answered call also rings first (human 6 s, machine 12 s, silent 4 s, simulated, not waited):
a call whose ``Timeout`` is shorter than that ends ``no-answer``, as on a real network.

Magic numbers (synchronous API errors, HTTP 400, nothing is created):

==================  ==========================================  ===================================
number              as ``To`` of an SMS                          as ``To`` of a call
==================  ==========================================  ===================================
+15005550001        21211 invalid 'To' number                   21217 number does not appear valid
+15005550002        21612 cannot route to this number           21214 'To' number cannot be reached
+15005550003        21408 no international permission           21215 no geo permission
+15005550004        21610 recipient unsubscribed / blocked      21216 number blocked
+15005550009        21614 not a mobile (SMS-capable) number     (answered by the two-digit rule)
==================  ==========================================  ===================================

As ``From``: +15005550001 → 21212 invalid 'From' (SMS and calls); +15005550007 → 21606 not an
SMS-capable number of the account; +15005550008 → 21611 SMS queue full. +15005550006 (the project's
default sender) and every other number are accepted: the simulator does not own numbers.

Everything here is pure (no I/O, no clock), so workflow tests can ask "what will the carrier do
with this number?" without a running simulator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

SmsFinal = Literal["delivered", "undelivered", "failed"]
CallFinal = Literal["completed", "no-answer", "busy", "failed"]
Channel = Literal["sms", "call"]

#: Twilio's description of each error code the simulator can produce (shown as error_message).
ERROR_MESSAGES: dict[int, str] = {
    21211: "Invalid 'To' Phone Number",
    21212: "Invalid 'From' Phone Number",
    21214: "'To' phone number cannot be reached",
    21215: "Geo Permission configuration is not permitting call",
    21216: "Call blocked by Twilio blocklist",
    21217: "Phone number does not appear to be valid",
    21408: "Permission to send an SMS has not been enabled for the region indicated by the 'To' number",
    21606: "The 'From' phone number provided is not a valid message-capable Twilio phone number for this destination/account",
    21610: "Attempt to send to unsubscribed recipient",
    21611: "This 'From' number has exceeded the maximum number of queued messages",
    21612: "The 'To' phone number is not currently reachable via SMS",
    21614: "'To' number is not a valid mobile number",
    30003: "Unreachable destination handset",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
}


@dataclass(frozen=True)
class Rejection:
    """A synchronous API error: the request is refused and no resource is created."""

    code: int
    message: str
    status: int = 400


@dataclass(frozen=True)
class Outcome:
    """What the simulated network does with one destination number, for both channels."""

    label: str
    sms_status: SmsFinal
    sms_error_code: int | None
    call_status: CallFinal
    #: AnsweredBy reported when machine detection is on; None when the call is never answered.
    answered_by: str | None
    #: simulated seconds of conversation once answered (Twilio's CallDuration)
    call_duration: int
    #: simulated seconds of ringing before the callee answers (compared with the call's Timeout)
    ring_seconds: int
    #: simulated milliseconds machine detection needs (MachineDetection=Enable)
    amd_ms: int
    #: ... and with DetectMessageEnd, which waits for the greeting to end (the beep)
    amd_end_ms: int
    #: the callee hangs up this many seconds after answering (the "silent/hang-up" class)
    hangs_up_after: float | None = None
    sms_rejection: Rejection | None = None
    call_rejection: Rejection | None = None

    @property
    def answers(self) -> bool:
        """True when someone (or something) picks up the call."""
        return self.call_status == "completed"

    def answered_by_for(self, machine_detection: str | None) -> str | None:
        """AnsweredBy as Twilio reports it for this detection mode (Enable stops at the greeting's start)."""
        if not self.answers or not machine_detection:
            return None
        if self.answered_by and self.answered_by.startswith("machine_end") and machine_detection == "Enable":
            return "machine_start"
        return self.answered_by

    def amd_duration_ms(self, machine_detection: str | None) -> int:
        """How long detection listens before it decides (what a synchronous AMD holds the callee)."""
        return self.amd_end_ms if machine_detection == "DetectMessageEnd" else self.amd_ms

    def rejection(self, channel: Channel) -> Rejection | None:
        return self.sms_rejection if channel == "sms" else self.call_rejection


def _reject(code: int, number: str) -> Rejection:
    return Rejection(code=code, message=f"{ERROR_MESSAGES[code]}: {number}")


_HUMAN = Outcome("human", "delivered", None, "completed", "human", 35, 6, 2800, 2800)
_MACHINE = Outcome("machine", "delivered", None, "completed", "machine_end_beep", 20, 12, 4200, 9000)
_SILENT = Outcome(
    "silent-hangup", "delivered", None, "completed", "unknown", 1, 4, 1000, 1000, hangs_up_after=1.0
)
_NO_ANSWER = Outcome("no-answer", "delivered", None, "no-answer", None, 0, 0, 0, 0)
_BUSY = Outcome("busy", "delivered", None, "busy", None, 0, 0, 0, 0)
_FAILED = Outcome("failed", "delivered", None, "failed", None, 0, 0, 0, 0)
_UNREACHABLE = Outcome("sms-unreachable", "undelivered", 30003, "no-answer", None, 0, 0, 0, 0)
_LANDLINE = Outcome("landline", "undelivered", 30006, "completed", "human", 35, 6, 2800, 2800)
_UNKNOWN = Outcome("unknown-handset", "failed", 30005, "failed", None, 0, 0, 0, 0)
_UNSUBSCRIBED = Outcome("sms-unsubscribed", "undelivered", 21610, "completed", "human", 35, 6, 2800, 2800)

#: (first, last) two-digit suffix → outcome; contiguous and complete over 00-99 (checked by tests)
TABLE: tuple[tuple[int, int, Outcome], ...] = (
    (0, 59, _HUMAN),
    (60, 69, _MACHINE),
    (70, 74, _SILENT),
    (75, 79, _NO_ANSWER),
    (80, 84, _BUSY),
    (85, 89, _FAILED),
    (90, 94, _UNREACHABLE),
    (95, 97, _LANDLINE),
    (98, 98, _UNKNOWN),
    (99, 99, _UNSUBSCRIBED),
)

#: Twilio's magic ``To`` numbers: (SMS rejection code, call rejection code); None = normal rule
MAGIC_TO: dict[str, tuple[int | None, int | None]] = {
    "+15005550001": (21211, 21217),
    "+15005550002": (21612, 21214),
    "+15005550003": (21408, 21215),
    "+15005550004": (21610, 21216),
    "+15005550009": (21614, None),
}

#: Twilio's magic ``From`` numbers: (SMS rejection code, call rejection code)
MAGIC_FROM: dict[str, tuple[int | None, int | None]] = {
    "+15005550001": (21212, 21212),
    "+15005550007": (21606, None),
    "+15005550008": (21611, None),
}


def normalize(number: str) -> str:
    """Drop the formatting people type (spaces, dashes, dots, brackets); keep '+' and any scheme."""
    return re.sub(r"[\s\-().]", "", number or "")


def _two_digits(number: str) -> int:
    digits = re.sub(r"\D", "", number)
    return int(digits[-2:]) if len(digits) >= 2 else 0


def outcome_for(number: str) -> Outcome:
    """The outcome the simulated network gives ``number`` (see the module table). Pure."""
    n = normalize(number)
    base = _outcome_by_digits(_two_digits(n))
    magic = MAGIC_TO.get(n)
    if magic is None:
        return base
    sms_code, call_code = magic
    return Outcome(
        label=f"magic-{n[-4:]}",
        sms_status=base.sms_status,
        sms_error_code=base.sms_error_code,
        call_status=base.call_status,
        answered_by=base.answered_by,
        call_duration=base.call_duration,
        ring_seconds=base.ring_seconds,
        amd_ms=base.amd_ms,
        amd_end_ms=base.amd_end_ms,
        hangs_up_after=base.hangs_up_after,
        sms_rejection=_reject(sms_code, n) if sms_code else None,
        call_rejection=_reject(call_code, n) if call_code else None,
    )


def _outcome_by_digits(two: int) -> Outcome:
    for first, last, outcome in TABLE:
        if first <= two <= last:
            return outcome
    raise AssertionError(f"outcome table has a gap at {two:02d}")  # pragma: no cover


def sender_rejection(number: str, channel: Channel) -> Rejection | None:
    """The API error a magic ``From`` number causes on ``channel``, if any."""
    n = normalize(number)
    codes = MAGIC_FROM.get(n)
    if not codes:
        return None
    code = codes[0] if channel == "sms" else codes[1]
    return _reject(code, n) if code else None
