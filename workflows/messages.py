"""Payloads of the signals, updates and workflow inputs, shared by workflows and their callers."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from domain.accounts import Channel, ContactOutcome
from domain.money import MAX_PAYMENT_MINOR
from domain.rules import Rules
from domain.templates import MAX_QUOTED_CHARS


class PaymentIn(BaseModel):
    model_config = ConfigDict(frozen=True)

    amount: int = Field(gt=0, le=MAX_PAYMENT_MINOR, description="Minor units")
    currency: str
    reference: str = Field(
        min_length=1, max_length=128, description="Idempotency key: the same reference counts once"
    )
    source: str = "lender"
    receipt: bool = Field(
        default=False,
        description="Text the debtor a receipt for this payment (the debtor's own checkout asks for one)",
    )


#: A case number as the debtor reads it in a text ("C-1042"): short, letters, digits and dashes only,
#: so it can neither lengthen a text past its limit nor carry a link or words into it.
CASE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9-]{0,23}$"
#: The longest reason a declined plan request gives the debtor: it is quoted in one text.
ANSWER_REASON_MAX = MAX_QUOTED_CHARS


def _case_id() -> Any:
    return Field(
        default=None,
        pattern=CASE_ID_PATTERN,
        description="The service's case number, quoted to the debtor (e.g. C-1042); None: no case",
    )


class NegotiationRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    channel: str = "api"
    note: str = ""
    case_id: str | None = _case_id()


class ReplyOut(BaseModel):
    """An agent's answer to a debtor's message (a case in the inbox): one text, through the contact gate.

    ``text`` is a note reference (store/notes.py: the words stay in the database; the send activity
    reads them back), or the words themselves when no database is at hand; at most
    :data:`ANSWER_REASON_MAX` characters are quoted."""

    model_config = ConfigDict(frozen=True)

    case_id: str = Field(pattern=CASE_ID_PATTERN)
    seq: int = Field(default=1, ge=1, description="The case's n-th reply (one text each, once)")
    text: str = Field(min_length=1, max_length=ANSWER_REASON_MAX)
    actor: str = "agent"


class NegotiationAnswer(BaseModel):
    """An agent's answer to a plan request that did not end in an agreed plan.

    ``declined``: no plan on these terms; the pause ends now and the debtor is told why (``reason``,
    in the debtor's language: it is quoted in the text). ``escalated``: a supervisor answers; the
    pause lasts until ``answer_by`` and the debtor is told by when they hear back. An agreed plan is
    the ``propose_settlement`` update, not this.
    """

    model_config = ConfigDict(frozen=True)

    decision: Literal["declined", "escalated"]
    reason: str = Field(
        default="",
        max_length=ANSWER_REASON_MAX,
        description="Why it was declined, for the debtor (required when declined)",
    )
    answer_by: datetime | None = Field(
        default=None, description="When the supervisor answers, timezone-aware (required when escalated)"
    )
    case_id: str | None = _case_id()
    actor: str = "agent"

    @field_validator("reason")
    @classmethod
    def _one_line(cls, value: str) -> str:
        return " ".join(value.split())

    @model_validator(mode="after")
    def _what_each_needs(self) -> NegotiationAnswer:
        if self.decision == "declined" and not self.reason:
            raise ValueError("reason: required when the decision is 'declined' (the debtor is told why)")
        if self.decision == "escalated":
            if self.answer_by is None:
                raise ValueError("answer_by: required when the decision is 'escalated'")
            if self.answer_by.tzinfo is None or self.answer_by.utcoffset() is None:
                raise ValueError("answer_by: must be timezone-aware")
        return self


class HoldRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    reason: str = Field(min_length=1, max_length=500)
    actor: str = "operator"


class OptOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    channel: Channel
    source: str = "debtor"
    confirm: bool = Field(
        default=True,
        description=(
            "Send the one SMS confirmation. False when it is not this account's to send: another "
            "account on the same number sends it"
        ),
    )
    stored: bool = Field(
        default=False,
        description=(
            "The opt-out is in the database already (the inbound-SMS webhook writes it before it "
            "signals): the run does not write it again, so it can never land after a later START"
        ),
    )


class OptIn(BaseModel):
    """The debtor texted an opt-in word (START, UNSTOP, 开始 ...): texts may go again, confirmed once.

    Only the inbound-SMS webhook sends it, after it has written the opt-in to the database.
    """

    model_config = ConfigDict(frozen=True)

    channel: Channel = Channel.SMS
    source: str = "debtor_sms"
    confirm: bool = Field(default=True, description="Send the one confirmation (as for OptOut)")


class ContactUpdate(BaseModel):
    """A new number was stored in the database; the workflow learns only its masked form and zones."""

    model_config = ConfigDict(frozen=True)

    masked_phone: str
    zones: list[str] = Field(min_length=1)
    region: str | None = None


class OutcomeReport(BaseModel):
    """A provider callback (delivery status, call result) mapped to an outcome by the webhook service."""

    model_config = ConfigDict(frozen=True)

    dedupe_key: str
    outcome: ContactOutcome
    error_code: int | None = None
    at: datetime | None = None


class RunResult(BaseModel):
    """How a workflow run ended when it did not continue as new."""

    account_id: str
    state: str  # closed_paid, closed_settled, charged_off
    balance: int
    paid_total: int
    at: datetime


class ComplaintIn(BaseModel):
    """A complaint about how the debt is collected: contact pauses until an investigator decides."""

    model_config = ConfigDict(frozen=True)

    reason: str = Field(min_length=1, max_length=1000)
    source: str = Field(default="debtor", description="debtor, agent, regulator, agency …")
    actor: str = "debtor"
    sla_days: int | None = Field(
        default=None, gt=0, description="Investigation deadline; profile default if unset"
    )
    case_id: str | None = _case_id()


class ComplaintDecision(BaseModel):
    """The investigator's decision; the debtor is told it (and where to go next) before any contact.

    ``upheld`` and ``rejected`` resume collection, saying whether the debtor was right; ``close``
    upholds it and closes the account; ``resume`` (older callers) resumes without a verdict.
    """

    model_config = ConfigDict(frozen=True)

    decision: Literal["upheld", "rejected", "close", "resume"] = Field(
        description="upheld or rejected (collection resumes), close (upheld: the account closes), "
        "resume (no verdict given)"
    )
    note: str = Field(default="", max_length=1000, description="For the account's history, not the debtor")
    case_id: str | None = _case_id()
    actor: str = "investigator"


class DisputeIn(BaseModel):
    """The debtor disputes the debt: no collection until it is verified."""

    model_config = ConfigDict(frozen=True)

    reason: str = Field(min_length=1, max_length=1000)
    actor: str = "debtor"
    case_id: str | None = _case_id()


class DisputeVerified(BaseModel):
    """The debt is verified: the debtor is sent the findings (what is owed, where to complain)
    before collection resumes."""

    model_config = ConfigDict(frozen=True)

    note: str = Field(default="", max_length=1000, description="For the account's history, not the debtor")
    case_id: str | None = _case_id()
    actor: str = "agent"


class CeaseRequest(BaseModel):
    """Stop communication: on one channel (a prohibited medium) or on all of them (cease-communication)."""

    model_config = ConfigDict(frozen=True)

    channel: Channel | None = Field(default=None, description="None: every channel")
    actor: str = "debtor"


class RulesUpgrade(BaseModel):
    """An operator moves a running account to another version of its policy or profile."""

    model_config = ConfigDict(frozen=True)

    rules: Rules
    actor: str = Field(min_length=1, max_length=100)
