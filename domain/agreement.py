"""The plan agreement in writing, as data: everything the debtor's PDF states, and nothing else.

Why a model of its own rather than the database rows or the workflow's ``AgreedPlan``:

* **One checked value between gathering and printing.** ``service/agreement.py`` reads it from the
  database; ``service/agreement_pdf.py`` turns it into bytes and nothing more. A test can build one by
  hand and read the PDF back, and the renderer can never print a schedule that does not add up to the
  total (the validator refuses it, naming the field).
* **Only what the debtor needs.** The account and plan IDs, the terms, the schedule, the waiver and who
  approved it, whom to call and where to complain. No name, no phone number of the debtor: the PDF is a
  file that travels.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from domain.accounts import Language
from domain.money import check_currency
from domain.plans import PlanKind
from domain.profiles import ComplaintChannel

PlanState = Literal["active", "completed", "broken", "cancelled"]


class AgreementInstalment(BaseModel):
    model_config = ConfigDict(frozen=True)

    seq: int = Field(ge=1)
    due_date: date
    amount: int = Field(gt=0, description="Minor units")


class AgreementWaiver(BaseModel):
    """Late fees waived on hardship evidence; only a supervisor's approval makes it part of a plan."""

    model_config = ConfigDict(frozen=True)

    amount: int = Field(gt=0, description="Minor units waived")
    approver: str | None = Field(description="The supervisor who approved it (None: not on record)")
    approved_on: date | None = None


class LenderContact(BaseModel):
    """Whom the debtor calls: the same name and number every text and call of ours carries."""

    model_config = ConfigDict(frozen=True)

    company: str = Field(min_length=1)
    phone: str = Field(min_length=1)
    page: str | None = Field(default=None, description="The self-service address, where the plan is kept")


class Agreement(BaseModel):
    """A plan as agreed, in the language the debtor reads it in."""

    model_config = ConfigDict(frozen=True)

    plan_id: str = Field(min_length=1)
    account_id: str = Field(min_length=1)
    language: Language
    kind: PlanKind
    status: PlanState = "active"
    currency: str
    total: int = Field(gt=0, description="Minor units to pay under the plan")
    agreed_on: date = Field(description="The day it was agreed, in the debtor's own time zone")
    instalments: list[AgreementInstalment] = Field(min_length=1)
    waiver: AgreementWaiver | None = None
    grace_days: int = Field(ge=0, description="Days after a due date before an unpaid instalment breaks it")
    lender: LenderContact
    complaint: ComplaintChannel | None = Field(
        default=None, description="The jurisdiction's complaint channel beyond the lender"
    )

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        return check_currency(value)

    @model_validator(mode="after")
    def _adds_up(self) -> Agreement:
        seqs = [i.seq for i in self.instalments]
        if seqs != list(range(1, len(seqs) + 1)):
            raise ValueError(f"instalments: numbered {seqs}, expected 1 to {len(seqs)} in order")
        dates = [i.due_date for i in self.instalments]
        if dates != sorted(dates):
            raise ValueError("instalments: due dates must not go backwards")
        paid = sum(i.amount for i in self.instalments)
        if paid != self.total:
            raise ValueError(f"instalments: they sum to {paid}, not the total {self.total}")
        return self

    @property
    def end_date(self) -> date:
        return self.instalments[-1].due_date
