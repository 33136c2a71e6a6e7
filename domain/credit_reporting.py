"""Credit reporting: when an account may be furnished to a credit bureau, what it is reported as, and
until when the record may stay.

The law's order is *notice first, report later*: CN 《征信业管理条例》第十五条 (tell the person before
negative information is provided), US Reg F 12 CFR 1006.30(a) (no furnishing before the debtor was
communicated with and a notice of undeliverability had time to arrive) and FCRA §623(a)(7) (the
negative-information notice), UK CCA 1974 s.86B/s.87-88 (notice of sums in arrears, default notice).
Each profile says how in its ``[credit_reporting]`` table (:class:`ReportingRules`); a profile without
one never reports. The numbers live in the profile files beside their sources, the arithmetic here.

Everything in this module is pure: the store builds :class:`AccountFacts` from the database
(``store/credit_facts.py``), the file writers (``domain/metro2.py``, ``domain/credit_csv.py``) format
what :func:`metro2_status` and :func:`record_stays_until` decide.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from domain.accounts import Language, Product, check_languages
from domain.money import check_currency

#: Days past due that make an account "30 days late", the first negative status (CRRG account status 71);
#: also the Date of First Delinquency convention (the day the account became 30 days past due).
THIRTY_DAYS = 30


class RetentionStart(StrEnum):
    """From what the retention period of a reported record runs."""

    FIRST_DELINQUENCY = "first_delinquency"  # US FCRA 605(c): commencement of the delinquency (+180 days)
    END_OF_DEFAULT = "end_of_default"  # CN 《征信业管理条例》第十六条: 自不良行为或者事件终止之日
    DEFAULT_DATE = "default_date"  # UK: the date of the default (SCOR principles)


class Furnishing(BaseModel):
    """A policy's ``[credit_reporting]`` table: the lender's choice to report its accounts, and when the
    notice goes. Furnishing is the lender's decision (no law makes a lender report); what the law asks
    before the first report, and how long the record stays, is the profile's (:class:`ReportingRules`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    notice_dpd: int = Field(
        ge=1,
        le=120,
        description=(
            "Days past due on which the notice before the first report is sent (a cadence step: through "
            "the contact gate, at a lawful hour, recorded; no notice delivered, no report)"
        ),
    )


class ReportingRules(BaseModel):
    """A profile's ``[credit_reporting]`` table: how and when its accounts go to a credit bureau."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["metro2", "csv"] = Field(description="metro2 (US bureaus) or the documented CSV")
    notice_template: str = Field(
        default="credit_report_notice", min_length=1, description="The SMS sent before the first report"
    )
    notice_source: str = Field(min_length=1, description="The rule that asks for the notice")
    waiting_days: int = Field(ge=0, le=365, description="Days after the notice before the first report")
    waiting_source: str = Field(min_length=1, description="Why this many days")
    min_days_past_due: int = Field(
        default=THIRTY_DAYS, ge=1, description="Days past due before an account is reported at all"
    )
    retention_years: int = Field(ge=1, le=30, description="How long a reported record may stay")
    retention_from: RetentionStart
    retention_extra_days: int = Field(
        default=0, ge=0, description="Added to the start before the years run (US FCRA 605(c): 180)"
    )
    retention_source: str = Field(min_length=1)
    bureau: dict[str, str] = Field(
        description="Who receives the file, by language (en required), for the notice"
    )
    note: str = Field(default="", description="What the notice does not do (e.g. UK formal letters)")

    @field_validator("bureau")
    @classmethod
    def _languages(cls, value: dict[str, str]) -> dict[str, str]:
        check_languages(value)
        if Language.EN.value not in value or any(not text.strip() for text in value.values()):
            raise ValueError("an 'en' text is required and no text may be empty")
        return value

    def bureau_in(self, language: str) -> str:
        return self.bureau.get(language) or self.bureau[Language.EN.value]


class AccountState(StrEnum):
    """Where an account stands for the bureau: open, or the reason it closed (domain.accounts.CloseReason)."""

    OPEN = "open"
    PAID = "paid"
    SETTLED = "settled"
    CHARGED_OFF = "charged_off"
    PLACED = "placed"  # charged off and placed with an agency
    WRITTEN_OFF = "written_off"
    DECEASED = "deceased"
    BANKRUPT = "bankrupt"
    COMPLAINT_UPHELD = "complaint_upheld"


#: Closed states the file never carries automatically: each needs a person (ECOA code X and the estate for
#: a deceased debtor; the bankruptcy chapter for the Consumer Information Indicator; an upheld complaint
#: may mean an earlier report must be deleted, status DA).
NOT_FURNISHED = frozenset({AccountState.DECEASED, AccountState.BANKRUPT, AccountState.COMPLAINT_UPHELD})
#: Closed by the debtor paying: the last status a bureau must hear, in the next file.
PAID_STATES = frozenset({AccountState.PAID, AccountState.SETTLED})
#: Reported to the lender's books as a loss (CRRG status 97 while unpaid).
LOSS_STATES = frozenset({AccountState.CHARGED_OFF, AccountState.PLACED, AccountState.WRITTEN_OFF})


class DisputeState(StrEnum):
    NONE = "none"
    OPEN = "open"  # a dispute hold is on: the file says so (FCRA 623(a)(3))
    RESOLVED = "resolved"  # the dispute hold was lifted after verification


class AccountFacts(BaseModel):
    """What a furnishing file needs to know about one account at a cycle date, and nothing about the person.

    Amounts are minor units of ``currency``. ``days_past_due`` is at the cycle date for an open account
    and at closing for a closed one (a paid account stops ageing).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    account_id: str = Field(min_length=1, max_length=64)
    product: Product
    currency: str
    cycle_date: date
    date_opened: date = Field(description="When the account was taken in (we hold no contract open date)")
    due_date: date = Field(description="The missed payment's due date: the delinquency begins the day after")
    original_minor: int = Field(ge=0, description="What intake delivered")
    balance_minor: int = Field(ge=0)
    past_due_minor: int = Field(ge=0)
    charged_off_minor: int = Field(default=0, ge=0, description="The balance when it was charged off")
    days_past_due: int
    state: AccountState
    closed_on: date | None = None
    charged_off_on: date | None = None
    settled_for_less: bool = Field(default=False, description="Closed paid for less than the full balance")
    last_payment_on: date | None = None
    paid_in_cycle_minor: int = Field(default=0, ge=0, description="Paid in the month up to the cycle date")
    dispute: DisputeState = DisputeState.NONE
    notice_delivered_at: datetime | None = Field(
        default=None, description="When the credit-report notice went out (sent or delivered, not failed)"
    )

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        return check_currency(value)

    @field_validator("notice_delivered_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.utcoffset() is None:
            raise ValueError("must be timezone-aware")
        return value

    @property
    def delinquency_began(self) -> date:
        """The commencement of the delinquency (FCRA 605(c)): the day after the missed due date."""
        return self.due_date + timedelta(days=1)

    @property
    def first_delinquency(self) -> date:
        """Metro 2's Date of First Delinquency: the day the account became 30 days past due (CRRG)."""
        return self.due_date + timedelta(days=THIRTY_DAYS)


class Furnished(BaseModel):
    """One account for a file: its facts and the debtor's name (read from the database, never logged)."""

    model_config = ConfigDict(frozen=True)

    facts: AccountFacts
    name: str = Field(repr=False, min_length=1)


def add_years(day: date, years: int) -> date:
    """``day`` that many years on; 29 February becomes 28 February (never later than the law allows)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def earliest_report_date(notice_sent_on: date, rules: ReportingRules, due_date: date | None = None) -> date:
    """The first day an account may be reported once its notice goes out on ``notice_sent_on``: the
    notice's ``report_date``. With the missed ``due_date``, never before the account is
    ``min_days_past_due`` late either (what the notice promises is what :func:`reportable` keeps)."""
    after_notice = notice_sent_on + timedelta(days=rules.waiting_days)
    if due_date is None:
        return after_notice
    return max(after_notice, due_date + timedelta(days=rules.min_days_past_due))


def report_from(facts: AccountFacts, rules: ReportingRules) -> date | None:
    """The first day this account may be reported, or None while no notice went out."""
    if facts.notice_delivered_at is None:
        return None
    return earliest_report_date(facts.notice_delivered_at.date(), rules, facts.due_date)


def record_stays_until(facts: AccountFacts, rules: ReportingRules) -> date | None:
    """The last day a reported record may stay; None while its start is not known yet.

    US: 7 years from the end of the 180 days that begin with the delinquency (FCRA 605(a)(4), 605(c)(1));
    CN: 5 years from the day the default ended (paid or settled), so None while it goes on;
    UK: 6 years from the default date, which here is the first day the default could be registered.
    """
    match rules.retention_from:
        case RetentionStart.FIRST_DELINQUENCY:
            start: date | None = facts.delinquency_began
        case RetentionStart.END_OF_DEFAULT:
            if facts.state in PAID_STATES:
                start = facts.closed_on or facts.last_payment_on
            elif facts.state in LOSS_STATES and facts.balance_minor == 0:
                start = facts.last_payment_on  # paid after the charge-off: the default ended then
            else:
                start = None
        case RetentionStart.DEFAULT_DATE:
            start = report_from(facts, rules)
    if start is None:
        return None
    return add_years(start + timedelta(days=rules.retention_extra_days), rules.retention_years)


def reportable(facts: AccountFacts, rules: ReportingRules, cycle_date: date) -> tuple[bool, str]:
    """Whether this account goes into the file of ``cycle_date``, and if not, why (a short reason people read).

    Never before the notice went out and its waiting period passed; never an account that is not
    delinquent. A paid or settled account that was reportable before it closed stays in the files (its
    new status is what the bureau must learn) until its record's retention ends.
    """
    if facts.date_opened > cycle_date:
        return False, "taken in after the cycle date"
    if facts.state in NOT_FURNISHED:
        return False, f"{facts.state.value}: furnished by hand, not in the file"
    if facts.days_past_due <= 0:
        return False, "no delinquency"
    if facts.days_past_due < rules.min_days_past_due:
        return False, f"under {rules.min_days_past_due} days past due"
    start = report_from(facts, rules)
    if start is None:
        return False, "no notice yet"
    if start > cycle_date:
        return False, f"waiting period until {start.isoformat()}"
    if facts.state in PAID_STATES and facts.closed_on is not None and facts.closed_on < start:
        return False, "paid before it could be reported"
    until = record_stays_until(facts, rules)
    if until is not None and cycle_date > until:
        return False, f"past retention (until {until.isoformat()})"
    return True, "reported"


class Metro2Status(BaseModel):
    """The codes of one base segment (CDIA Credit Reporting Resource Guide, Metro 2 Format)."""

    model_config = ConfigDict(frozen=True)

    account_status: str
    payment_rating: str = ""
    special_comment: str = ""
    compliance_condition: str = ""


# CRRG account status by days past due: 11 current (0-29), 71 30-59, 78 60-89, 80 90-119, 82 120-149,
# 83 150-179, 84 180 or more; and the payment rating / history digit of the same bands.
_BANDS: tuple[tuple[int, str, str], ...] = (
    (180, "84", "6"),
    (150, "83", "5"),
    (120, "82", "4"),
    (90, "80", "3"),
    (60, "78", "2"),
    (30, "71", "1"),
    (0, "11", "0"),
)


def _band(dpd: int) -> tuple[str, str]:
    for floor, status, digit in _BANDS:
        if dpd >= floor:
            return status, digit
    return "11", "0"


def metro2_status(facts: AccountFacts) -> Metro2Status:
    """Account status, payment rating, special comment and compliance condition code (CRRG).

    - open: 11 current, 71/78/80/82/83/84 by days past due;
    - charged off, placed or written off: 97 "unpaid balance reported as a loss"; once paid to zero
      64 "paid in full, was a charge-off" (payment rating L);
    - paid or settled: 13 "paid or closed account/zero balance", the rating the band it closed in;
    - settled for less than the balance: special comment AU "account paid in full for less than the
      full balance";
    - an open dispute: compliance condition XB "account information disputed by consumer under the
      FCRA"; a resolved one: XH "account previously in dispute - investigation completed, reported by
      data furnisher".

    Statuses 62 and 93 (collection) are not used: our "placed" accounts were charged off first (97, 64).
    """
    compliance = {DisputeState.OPEN: "XB", DisputeState.RESOLVED: "XH"}.get(facts.dispute, "")
    comment = "AU" if facts.settled_for_less else ""
    if facts.state in LOSS_STATES:
        if facts.balance_minor == 0:
            return Metro2Status(account_status="64", payment_rating="L", special_comment=comment,
                                compliance_condition=compliance)  # fmt: skip
        return Metro2Status(account_status="97", special_comment=comment, compliance_condition=compliance)
    status, digit = _band(facts.days_past_due)
    if facts.state in PAID_STATES:
        return Metro2Status(account_status="13", payment_rating=digit, special_comment=comment,
                            compliance_condition=compliance)  # fmt: skip
    return Metro2Status(account_status=status, compliance_condition=compliance)


def _month_end(year: int, month: int) -> date:
    first_next = date(year + (month == 12), month % 12 + 1, 1)
    return first_next - timedelta(days=1)


def payment_history(facts: AccountFacts) -> str:
    """Metro 2's 24-month Payment History Profile, the month before the cycle's first (CRRG).

    Months before we took the account in are ``B`` (no history available prior to this time); after it,
    the band digit of the days past due at that month's end, ``L`` once charged off, and ``E`` (zero
    balance and current) once paid. We hold no month-by-month record, so a month's digit is worked
    out from the one missed due date, which is exact for an account that never paid part of it.
    """
    out: list[str] = []
    year, month = facts.cycle_date.year, facts.cycle_date.month
    for _ in range(24):
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
        end = _month_end(year, month)
        if end < facts.date_opened:
            out.append("B")
        elif facts.charged_off_on is not None and end >= facts.charged_off_on:
            out.append("L")
        elif facts.closed_on is not None and end >= facts.closed_on:
            out.append("E")
        else:
            out.append(_band((end - facts.due_date).days)[1])
    return "".join(out)
