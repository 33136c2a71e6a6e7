"""Payloads of the signals, updates and workflow inputs, shared by workflows and their callers."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.accounts import Channel, ContactOutcome
from domain.money import MAX_PAYMENT_MINOR
from domain.rules import Rules


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


class NegotiationRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    channel: str = "api"
    note: str = ""


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


class ComplaintDecision(BaseModel):
    model_config = ConfigDict(frozen=True)

    decision: Literal["resume", "close"] = Field(description="resume collection, or close the account")
    note: str = Field(default="", max_length=1000)
    actor: str = "investigator"


class DisputeIn(BaseModel):
    """The debtor disputes the debt: no collection until it is verified."""

    model_config = ConfigDict(frozen=True)

    reason: str = Field(min_length=1, max_length=1000)
    actor: str = "debtor"


class DisputeVerified(BaseModel):
    model_config = ConfigDict(frozen=True)

    note: str = Field(default="", max_length=1000)
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
