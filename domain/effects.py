"""Contracts between workflows and activities: names and payloads, with no implementation.

Workflows import only this module (never the activity code, which pulls in twilio and SQLAlchemy),
so the sandbox stays small and a workflow cannot accidentally do I/O.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from domain.accounts import Channel, ContactOutcome, Event, Hold, HoldKind, Language, Mode, Stage
from domain.clock import PolicyClock
from domain.gate import Audience, Purpose
from domain.plans import AgreedPlan

SEND_CONTACT = "send_contact"
AWAIT_OUTCOME = "await_outcome"
RECORD = "record"
#: Several changes in one transaction (a stage change noted on a wake with nothing to send, then a close)
RECORD_BATCH = "record_batch"

CONTACT_TASK_QUEUE = "collections-contact"  # paced: Twilio's per-sender throughput
MAIN_TASK_QUEUE = "collections"


class SendRequest(BaseModel):
    """One contact. No name or number in it: the activity reads them live from the database."""

    model_config = ConfigDict(frozen=True)

    dedupe_key: str
    account_id: str
    channel: Channel
    purpose: Purpose
    template: str
    language: Language
    profile: str
    clock: PolicyClock
    planned_at: datetime = Field(description="Policy time at which the workflow decided to send")
    context: dict[str, str] = Field(default_factory=dict, description="Non-personal text for the template")
    audience: Audience = Field(
        default=Audience.DEBTOR,
        description="third_party: to the emergency contact, whose number the activity reads from the database",
    )
    profile_version: str | None = Field(
        default=None, description="The profile version the account runs: the live gate uses the same rules"
    )
    wait_final_seconds: float = Field(
        default=0.0,
        ge=0,
        description=(
            "Once the provider took it, wait this long for its final status in this same activity "
            "(0: return at once, the workflow asks with a separate await_outcome activity)"
        ),
    )
    fallback: SendRequest | None = Field(
        default=None,
        description=(
            "A call's step by text, sent by this same activity when the campaign's call governor "
            "pauses voice (the workflow has cleared it at plan time): one activity, not two"
        ),
    )
    changes: list[Change] = Field(
        default_factory=list,
        description=(
            "State changes noted since the last write (a stage entered on this wake), written in the "
            "send's own first transaction, once: by the try that reserves the send"
        ),
    )


class SendResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    outcome: ContactOutcome
    provider_sid: str | None = None
    rule: str | None = Field(default=None, description="Gate rule when denied or deferred at send time")
    deferred_until: datetime | None = None
    error_code: int | None = None
    replayed: bool = Field(
        default=False, description="A retry found the attempt already made: nothing resent"
    )
    voice_paused_until: datetime | None = Field(
        default=None,
        description="The campaign's abandoned-call governor paused voice: when it expects to allow calls again",
    )
    fallback: SendResult | None = Field(
        default=None, description="What became of the request's fallback text, when voice was paused"
    )


class OutcomeRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    dedupe_key: str
    provider_sid: str
    channel: Channel
    timeout_seconds: float = 120.0


class PaymentRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    amount: int
    currency: str
    reference: str
    received_at: datetime
    source: str = "lender"


class RefundDue(BaseModel):
    """Money received beyond what was owed (an overpayment, or a payment after the account closed):
    it goes to the refund queue, where an operator refunds it or applies it."""

    model_config = ConfigDict(frozen=True)

    amount: int = Field(gt=0, description="Minor units")
    currency: str
    reference: str
    reason: str


class Change(BaseModel):
    """One atomic write of an account's state; the ``record`` activity applies all of it or nothing."""

    model_config = ConfigDict(frozen=True)

    account_id: str
    at: datetime
    actor: str = "workflow"
    mode: Mode | None = None
    close_reason: str | None = None
    stage: Stage | None = None
    dpd: int | None = None
    balance: int | None = None
    paid_total: int | None = None
    plan: AgreedPlan | None = None
    plan_status: str | None = None
    instalment_paid: tuple[int, int] | None = Field(default=None, description="(seq, paid minor units)")
    instalment_missed: int | None = None
    payment: PaymentRecord | None = None
    refund: RefundDue | None = None
    hold_added: Hold | None = None
    hold_lifted: HoldKind | None = None
    holds_lifted: list[HoldKind] = Field(default_factory=list, description="Several kinds lifted at once")
    rules: tuple[str, str] | None = Field(
        default=None, description="(policy version, profile version) now run"
    )
    channel_status: tuple[Channel, str] | None = None
    events: list[Event] = Field(default_factory=list, description="Audit lines: kind -> action, detail")
    decision: str | None = None
    rule: str | None = None
    unless_sent: str | None = Field(
        default=None,
        description=(
            "A change that rode on this send (dedupe key) and is written again because the send "
            "failed: skipped if the send was reserved, whose transaction already wrote it"
        ),
    )


class ChangeBatch(BaseModel):
    """Changes the ``record_batch`` activity writes in one transaction, in order."""

    model_config = ConfigDict(frozen=True)

    changes: list[Change] = Field(min_length=1)


SendRequest.model_rebuild()
SendResult.model_rebuild()
