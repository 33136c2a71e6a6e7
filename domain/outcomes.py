"""Provider statuses to contact outcomes: one mapping for polling and for webhooks alike."""

from __future__ import annotations

from domain.accounts import ContactOutcome

# 30003-30006 undeliverable handset/landline/unknown; 21211/21217/21214/13224 invalid or unreachable "To"
# (calls and messages); 21612/21614 not a mobile number or not reachable by this sender.
UNREACHABLE_CODES = {30003, 30004, 30005, 30006, 21211, 21214, 21217, 13224, 21612, 21614}
OPTED_OUT_CODES = {21610}
MESSAGE_FINAL = {"delivered", "undelivered", "failed", "read", "canceled"}
CALL_FINAL = {"completed", "busy", "no-answer", "failed", "canceled"}
SILENT_SECONDS = 3  # answered but over within this: the callee heard nothing useful, count as silent


def message_outcome(status: str, error_code: int | None) -> ContactOutcome:
    status = status.lower()
    if status in ("delivered", "read"):
        return ContactOutcome.DELIVERED
    if error_code in OPTED_OUT_CODES:
        return ContactOutcome.OPTED_OUT
    if status in ("undelivered", "failed") and (error_code in UNREACHABLE_CODES or error_code is None):
        return (
            ContactOutcome.UNDELIVERABLE if status == "undelivered" or error_code else ContactOutcome.FAILED
        )
    if status in ("undelivered", "failed"):
        return ContactOutcome.FAILED
    return ContactOutcome.SENT


def call_outcome(status: str, answered_by: str | None, duration: int | None) -> ContactOutcome:
    status = status.lower()
    if status == "busy":
        return ContactOutcome.BUSY
    if status in ("no-answer", "canceled"):
        return ContactOutcome.NO_ANSWER
    if status == "failed":
        return ContactOutcome.UNDELIVERABLE
    if status != "completed":
        return ContactOutcome.SENT
    who = (answered_by or "").lower()
    if who.startswith("machine") or who == "fax":
        return ContactOutcome.VOICEMAIL
    if who == "unknown" or (duration is not None and duration < SILENT_SECONDS):
        return ContactOutcome.SILENT
    return ContactOutcome.CONVERSATION


def error_outcome(code: int | None) -> ContactOutcome:
    """A synchronous refusal by the provider (HTTP 400 with a Twilio error code)."""
    if code in OPTED_OUT_CODES:
        return ContactOutcome.OPTED_OUT
    if code in UNREACHABLE_CODES:
        return ContactOutcome.UNDELIVERABLE
    return ContactOutcome.FAILED
