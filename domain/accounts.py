"""The account, its debtor, and the state a collection workflow carries from run to run."""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime
from enum import StrEnum

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from domain.clock import PolicyClock
from domain.money import check_currency
from domain.zones import debtor_zones, located, parsed_number

ACCOUNT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class Channel(StrEnum):
    SMS = "sms"
    VOICE = "voice"


class Stage(StrEnum):
    PRE_DUE = "pre_due"
    EARLY = "early"
    MIDDLE = "middle"
    LATE = "late"
    CHARGED_OFF = "charged_off"


class Product(StrEnum):
    """Open-end credit lines charge off at 180 DPD, closed-end loans (e.g. pay-in-4) at 120 (FFIEC)."""

    CREDIT_LINE = "credit_line"
    CLOSED_END = "closed_end"


class Mode(StrEnum):
    """Which workflow currently owns the account; exactly one is ever live."""

    DUNNING = "dunning"
    SETTLEMENT = "settlement"
    CLOSED = "closed"


class CloseReason(StrEnum):
    PAID = "paid"
    SETTLED = "settled"
    CHARGED_OFF = "charged_off"
    COMPLAINT_UPHELD = "complaint_upheld"  # an investigator closed the account on a complaint
    WRITTEN_OFF = "written_off"
    DECEASED = "deceased"
    BANKRUPT = "bankrupt"
    PLACED = "placed"  # charged off and placed with an agency (which may still collect)


#: The debtor's final message per closing reason (a template name), or None where the law forbids
#: one: a bankrupt debtor is protected by the automatic stay (11 U.S.C. 362), a deceased debtor's
#: number may now belong to the family (only the estate's representative may be told about a debt).
FINAL_MESSAGES: dict[CloseReason, str | None] = {
    CloseReason.PAID: "payment_receipt",
    CloseReason.SETTLED: "plan_completed",
    CloseReason.CHARGED_OFF: None,
    CloseReason.PLACED: "agency_placement",
    CloseReason.WRITTEN_OFF: "written_off",
    CloseReason.DECEASED: None,
    CloseReason.BANKRUPT: None,
    CloseReason.COMPLAINT_UPHELD: None,
}


class HoldKind(StrEnum):
    PAUSE = "pause"
    DISPUTE = "dispute"
    COMPLAINT = "complaint"
    CEASE = "cease"
    ATTORNEY = "attorney"
    BANKRUPTCY = "bankruptcy"
    DECEASED = "deceased"
    NEGOTIATION = "negotiation"  # the debtor asked for a plan: dunning waits while an agent answers


class Language(StrEnum):
    EN = "en"
    ZH_CN = "zh-CN"


def check_languages(texts: dict[str, str]) -> None:
    """A text per language names only languages we speak: the profile's and policy's translated
    tables (complaint routes, bureaus) share this check."""
    known = {lang.value for lang in Language}
    unknown = sorted(set(texts) - known)
    if unknown:
        raise ValueError(f"unknown language(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")


class ContactOutcome(StrEnum):
    """What became of one contact attempt; the workflow's next step depends on it."""

    SENT = "sent"  # accepted by the provider, final status not yet known
    DELIVERED = "delivered"
    UNDELIVERABLE = "undeliverable"  # number unreachable / not SMS-capable / landline
    OPTED_OUT = "opted_out"  # provider says the recipient unsubscribed (21610)
    CONVERSATION = "conversation"  # a person answered and heard the message
    VOICEMAIL = "voicemail"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    FAILED = "failed"
    SILENT = "silent"  # answered and hung up at once, or AnsweredBy=unknown
    DENIED = "denied"  # the send-time gate refused against live state
    INDETERMINATE = "indeterminate"  # a crash left it unknown whether the provider sent; never resent


def validate_e164(value: str) -> str:
    """Normalise to E.164 or raise ``ValueError`` saying why (used by intake, API and models alike).

    Full-width forms (``＋８６…`` typed with a Chinese input method) are read as ASCII (NFKC): the
    plus and the digits alike, where phonenumbers alone takes the digits but not the plus."""
    raw = unicodedata.normalize("NFKC", value).strip()
    if not raw.startswith("+"):
        raise ValueError("phone must be in international format starting with + (E.164)")
    try:
        parsed = parsed_number(raw)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"phone is not a phone number ({exc})") from None
    if not phonenumbers.is_possible_number(parsed):
        raise ValueError("phone has the wrong number of digits for its country")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


class Debtor(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str = Field(min_length=1, max_length=200)
    phone: str = Field(description="E.164 mobile number")
    timezone: str | None = Field(default=None, description="IANA zone; else derived from the phone number")
    language: Language = Language.EN
    region: str | None = Field(
        default=None, description="ISO 3166-2 subdivision, e.g. US-MA, for stricter rules"
    )
    date_of_birth: date | None = Field(
        default=None,
        description="Right-party verification: keyed in on a call before the balance is spoken; database only",
    )

    @field_validator("date_of_birth")
    @classmethod
    def _born(cls, value: date | None) -> date | None:
        if value is not None and not date(1900, 1, 1) <= value <= date.today():
            raise ValueError("date_of_birth must lie between 1900-01-01 and today")
        return value

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str) -> str:
        return validate_e164(value)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"timezone {value!r} is not an IANA time zone") from None
        return value

    @model_validator(mode="after")
    def _located(self) -> Debtor:
        """A debtor must be placeable in time: contact hours are local hours (domain.zones)."""
        if reason := located(self.timezone, self.phone):
            raise ValueError(reason)
        return self


class EmergencyContact(BaseModel):
    """Someone the debtor named to reach them through. Asked only how to reach the debtor, and only
    once the debtor is unreachable (domain.gate); never told about the debt (domain.templates)."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(min_length=1, max_length=200)
    phone: str = Field(description="E.164 number")

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str) -> str:
        return validate_e164(value)


class Account(BaseModel):
    """What intake knows about a delinquent account; the input of its first workflow run."""

    model_config = ConfigDict(frozen=True)

    account_id: str
    debtor: Debtor
    product: Product = Product.CREDIT_LINE
    currency: str = Field(min_length=3, max_length=3)
    balance: int = Field(gt=0, description="Overdue amount in minor units")
    fees: int = Field(default=0, ge=0, description="Penalty fees in minor units, part of balance")
    due_date: date
    profile: str = Field(default="US", description="Jurisdiction profile: US, CN, UK or an operator's own")
    policy: str = Field(default="default", description="Collection policy file name")
    emergency: EmergencyContact | None = Field(default=None, description="Optional emergency contact")

    @model_validator(mode="after")
    def _emergency_is_someone_else(self) -> Account:
        if self.emergency is not None and self.emergency.phone == self.debtor.phone:
            raise ValueError("emergency_phone must not be the debtor's own number")
        return self

    @field_validator("account_id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not ACCOUNT_ID_RE.match(value):
            raise ValueError("account_id must be 1-64 letters, digits, '.', '_' or '-'")
        return value

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        return check_currency(value)

    @property
    def workflow_id(self) -> str:
        return workflow_id_for(self.account_id)


def workflow_id_for(account_id: str) -> str:
    return f"account-{account_id}"


class Hold(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: HoldKind
    reason: str = ""
    since: datetime
    channel: Channel | None = Field(default=None, description="Only this channel is held (cease one medium)")
    until: datetime | None = Field(default=None, description="Lifts by itself at this moment (policy time)")


class LedgerEntry(BaseModel):
    """One contact attempt as the frequency caps count it."""

    model_config = ConfigDict(frozen=True)

    at: datetime
    channel: Channel
    outcome: ContactOutcome
    by: str = Field(default="lender", description="lender or the agency that made it: caps count all")

    @property
    def connected(self) -> bool:
        return self.outcome == ContactOutcome.CONVERSATION


class ContactRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    at: datetime
    channel: Channel
    template: str
    outcome: ContactOutcome
    step: str
    provider_sid: str | None = None


class Event(BaseModel):
    """A line of the account's story (stage change, plan agreed, plan broken …) kept across runs."""

    model_config = ConfigDict(frozen=True)

    at: datetime
    kind: str
    detail: str = ""


class Carried(BaseModel):
    """Everything one run hands to the next (continue-as-new, or a switch between the two workflows)."""

    clock: PolicyClock
    balance: int
    paid_total: int = 0
    done_steps: list[str] = Field(default_factory=list)
    ledger: list[LedgerEntry] = Field(default_factory=list)
    holds: list[Hold] = Field(default_factory=list)
    opted_out: list[Channel] = Field(default_factory=list)
    unreachable: list[Channel] = Field(default_factory=list)
    contact_lost: bool = False
    last_contacts: list[ContactRecord] = Field(default_factory=list)
    events: list[Event] = Field(default_factory=list)
    broken_plans: int = 0
    plans_agreed: int = 0
    stage: Stage | None = Field(
        default=None, description="Last stage recorded, so a new run does not repeat it"
    )
    complaints: int = Field(default=0, description="Complaints filed so far (each acknowledged once)")
    disputes: int = 0
    complaint_due: datetime | None = Field(
        default=None, description="The open complaint's investigation deadline (policy time)"
    )
    complaint_escalated: bool = False
    contact_queue: str = Field(
        default="collections-contact", description="The paced task queue the send activity runs on"
    )
    # field visits and placement (issue 7)
    visits: int = Field(default=0, description="Field visits arranged so far")
    last_visit_at: datetime | None = Field(default=None, description="When the last visit was arranged")
    placed_with: str | None = Field(default=None, description="The agency holding the account now")
    recalled_from: list[str] = Field(
        default_factory=list, description="Agencies the account was recalled from"
    )
    # emergency contact (third party) while the debtor is unreachable
    locate_ledger: list[LedgerEntry] = Field(
        default_factory=list, description="Messages to the emergency contact (all: the total cap counts them)"
    )
    payment_references: list[str] = Field(
        default_factory=list,
        description="Every payment reference counted so far: a payment delivered again after a "
        "continue-as-new (a switch to settlement, a fresh history) still counts once",
    )


class AccountTerms(BaseModel):
    """What a workflow knows about an account: the terms of the debt and nothing that identifies a person.

    Names and numbers stay in the database; workflow inputs, histories and search attributes only
    ever hold this, so the Temporal UI cannot leak a debtor's identity even without the codec.
    """

    model_config = ConfigDict(frozen=True)

    account_id: str
    product: Product
    currency: str
    balance: int
    fees: int = 0
    due_date: date
    profile: str = "US"
    policy: str = "default"
    language: Language = Language.EN
    zones: list[str] = Field(min_length=1, description="Every time zone the debtor may be in")
    region: str | None = None
    masked_phone: str = "-"
    emergency_masked: str | None = Field(
        default=None, description="The emergency contact's masked number; None: there is none"
    )
    emergency_zones: list[str] = Field(
        default_factory=list, description="Time zones of the emergency contact's number"
    )

    @property
    def workflow_id(self) -> str:
        return workflow_id_for(self.account_id)

    @classmethod
    def from_account(cls, account: Account) -> AccountTerms:
        from domain.masking import mask_phone

        return cls(
            account_id=account.account_id,
            product=account.product,
            currency=account.currency,
            balance=account.balance,
            fees=account.fees,
            due_date=account.due_date,
            profile=account.profile,
            policy=account.policy,
            language=account.debtor.language,
            zones=debtor_zones(account.debtor.timezone, account.debtor.phone),
            region=account.debtor.region,
            masked_phone=mask_phone(account.debtor.phone),
            emergency_masked=mask_phone(account.emergency.phone) if account.emergency else None,
            emergency_zones=debtor_zones(None, account.emergency.phone) if account.emergency else [],
        )
