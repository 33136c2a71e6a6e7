"""What the other end does with a text or a call: the simulator's only source of outcomes.

:class:`CarrierTable` answers exactly as the project's carrier simulator does (the last two digits of
the number choose, ``carrier/outcomes.py``), mapped to outcomes by the same functions the send
activity uses (``domain/outcomes.py``). That is what makes the differential test possible: the
workflows, talking to the carrier simulator, and the lab, asking this table, see the same network.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from carrier.outcomes import outcome_for
from domain.accounts import Channel, ContactOutcome
from domain.outcomes import call_outcome, error_outcome, message_outcome

#: What the send activity asks of every call (activities/contact_provider.py): ring this long, detect machines
CALL_TIMEOUT_SECONDS = 25
MACHINE_DETECTION = "DetectMessageEnd"


@dataclass(frozen=True, slots=True)
class Answer:
    """One attempt's final outcome; ``accepted`` False: the provider refused it synchronously (an
    API error), so it never counts as an attempt in the live ledger."""

    outcome: ContactOutcome
    accepted: bool = True


class Behaviour(Protocol):
    def answer(self, phone: str, channel: Channel, at: datetime) -> Answer: ...


class CarrierTable:
    """The carrier simulator's outcome-by-number table, as final outcomes."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, Channel], Answer] = {}

    def answer(self, phone: str, channel: Channel, at: datetime) -> Answer:
        key = (phone, channel)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = _table_answer(phone, channel)
        return found


def _table_answer(phone: str, channel: Channel) -> Answer:
    net = outcome_for(phone)
    if channel == Channel.SMS:
        if net.sms_rejection is not None:
            return Answer(error_outcome(net.sms_rejection.code), accepted=False)
        return Answer(message_outcome(net.sms_status, net.sms_error_code))
    if net.call_rejection is not None:
        return Answer(error_outcome(net.call_rejection.code), accepted=False)
    if net.answers and net.ring_seconds >= CALL_TIMEOUT_SECONDS:
        return Answer(call_outcome("no-answer", None, None))
    return Answer(call_outcome(net.call_status, net.answered_by_for(MACHINE_DETECTION), net.call_duration))
