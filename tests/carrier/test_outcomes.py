"""The outcome table is a contract with every other test: pin it down (pure, no simulator)."""

from __future__ import annotations

import pytest

from carrier.outcomes import TABLE, outcome_for, sender_rejection


def test_table_covers_every_two_digit_suffix_exactly_once() -> None:
    covered = [n for first, last, _ in TABLE for n in range(first, last + 1)]
    assert covered == list(range(100))


@pytest.mark.parametrize(
    ("number", "label", "sms", "sms_error", "call", "answered_by"),
    [
        ("+12025550100", "human", "delivered", None, "completed", "human"),
        ("+12025550159", "human", "delivered", None, "completed", "human"),
        ("+12025550163", "machine", "delivered", None, "completed", "machine_end_beep"),
        ("+12025550172", "silent-hangup", "delivered", None, "completed", "unknown"),
        ("+12025550177", "no-answer", "delivered", None, "no-answer", None),
        ("+12025550182", "busy", "delivered", None, "busy", None),
        ("+12025550187", "failed", "delivered", None, "failed", None),
        ("+12025550191", "sms-unreachable", "undelivered", 30003, "no-answer", None),
        ("+12025550196", "landline", "undelivered", 30006, "completed", "human"),
        ("+12025550198", "unknown-handset", "failed", 30005, "failed", None),
        ("+12025550199", "sms-unsubscribed", "undelivered", 21610, "completed", "human"),
        ("+1 (202) 555-0163", "machine", "delivered", None, "completed", "machine_end_beep"),
    ],
)
def test_last_two_digits_pick_the_outcome(
    number: str, label: str, sms: str, sms_error: int | None, call: str, answered_by: str | None
) -> None:
    outcome = outcome_for(number)
    assert (outcome.label, outcome.sms_status, outcome.sms_error_code) == (label, sms, sms_error)
    assert (outcome.call_status, outcome.answered_by_for("DetectMessageEnd")) == (call, answered_by)
    assert outcome.sms_rejection is None and outcome.call_rejection is None


def test_answered_by_follows_the_detection_mode() -> None:
    machine = outcome_for("+12025550163")
    assert machine.answered_by_for("Enable") == "machine_start"
    assert machine.answered_by_for(None) is None  # no detection: Twilio reports no AnsweredBy
    assert machine.amd_duration_ms("DetectMessageEnd") > machine.amd_duration_ms("Enable")
    silent = outcome_for("+12025550170")
    assert silent.hangs_up_after is not None and silent.hangs_up_after < 2
    assert silent.call_duration == 1


@pytest.mark.parametrize(
    ("number", "sms_code", "call_code"),
    [
        ("+15005550001", 21211, 21217),
        ("+15005550002", 21612, 21214),
        ("+15005550003", 21408, 21215),
        ("+15005550004", 21610, 21216),
        ("+15005550009", 21614, None),
    ],
)
def test_twilio_magic_to_numbers(number: str, sms_code: int, call_code: int | None) -> None:
    outcome = outcome_for(number)
    assert outcome.sms_rejection is not None and outcome.sms_rejection.code == sms_code
    assert outcome.sms_rejection.status == 400
    if call_code is None:
        assert outcome.call_rejection is None
    else:
        assert outcome.call_rejection is not None and outcome.call_rejection.code == call_code


def test_magic_from_numbers() -> None:
    assert sender_rejection("+15005550006", "sms") is None
    assert sender_rejection("+15005550006", "call") is None
    assert getattr(sender_rejection("+15005550001", "sms"), "code", None) == 21212
    assert getattr(sender_rejection("+15005550001", "call"), "code", None) == 21212
    assert getattr(sender_rejection("+15005550007", "sms"), "code", None) == 21606
    assert getattr(sender_rejection("+15005550008", "sms"), "code", None) == 21611
    assert sender_rejection("+15005550008", "call") is None
