"""All of an account workflow's state in one serializable model, and the one input both workflows take.

A run reads and writes only :class:`AccountState`; whatever a handler accepts (a payment, a report,
an acknowledgement owed, a close request, a plan) goes into it at once, so a hand-over by
continue-as-new, which passes the whole state to the next run, cannot lose any of it. What is not
here is only what belongs to one run's event loop (tasks in flight, the wake-up flag) and is settled
before any hand-over.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from domain.accounts import AccountTerms, Carried, CloseReason, Mode
from domain.agencies import RecallRequest
from domain.charges import Charges
from domain.clock import REAL_DAY_SECONDS, PolicyClock
from domain.plans import AgreedPlan
from domain.rules import Rules
from domain.visits import VisitResult
from workflows.messages import OutcomeReport, PaymentIn


class Ack(BaseModel):
    """An answer owed to the debtor, sent once, before the run's next step: a complaint, dispute or
    cease acknowledgement, a decision, a dispute's findings, the answer to a plan request."""

    model_config = ConfigDict(frozen=True)

    key: str
    template: str
    context: dict[str, str] = Field(
        default_factory=dict, description="What the text quotes (case number, deadline, route …)"
    )


class PlanRequest(BaseModel):
    """A plan request waiting for its answer: while it waits, dunning (or a plan's reminders) pauses.

    It ends with an answer (declined, a plan agreed, an operator's resume) or, unanswered when its
    pause is over, with a text telling the debtor it went to a supervisor, before anything else.
    """

    number: int = Field(description="The account's plan requests so far, this one included")
    case_id: str | None = None
    until: datetime = Field(description="When the pause ends (policy time): the answer is due by then")
    escalations: int = Field(default=0, description="Times an agent passed it to a supervisor")
    plans_agreed: int = Field(description="Plans agreed before it: one more means it was answered so")


class CloseOrder(BaseModel):
    """An operator or investigator closed the account; the run closes at its next safe point."""

    model_config = ConfigDict(frozen=True)

    reason: CloseReason
    note: str | None = None


class ReceiptDue(BaseModel):
    """A payment the debtor is owed a receipt for: what came in (minor units) under which reference."""

    model_config = ConfigDict(frozen=True)

    reference: str
    amount: int


class Inbox(BaseModel):
    """What handlers accepted and the run has not acted on yet. Carried across every hand-over."""

    payments: list[PaymentIn] = Field(default_factory=list)
    reports: list[OutcomeReport] = Field(default_factory=list)
    acks: list[Ack] = Field(default_factory=list)
    confirm_opt_out: bool = False
    opt_out_write: bool | None = Field(
        default=None,
        description=(
            "Must the run store the SMS opt-out: True an operator's, False the webhook stored it "
            "already, None as before issue 14 (stored with its confirmation)"
        ),
    )
    confirm_opt_in: bool = Field(default=False, description="The debtor opted back in to texts: confirm once")
    close: CloseOrder | None = None
    recall: RecallRequest | None = None
    upgrade: Rules | None = Field(default=None, description="Rules an operator moved the account to")
    upgrade_actor: str | None = None
    visit_result: VisitResult | None = Field(default=None, description="A field visit's end, not acted on")
    receipts: list[ReceiptDue] = Field(default_factory=list, description="Payments owed a receipt text")

    def empty(self) -> bool:
        return not (
            self.payments
            or self.reports
            or self.acks
            or self.confirm_opt_out
            or self.opt_out_write
            or self.confirm_opt_in
            or self.close
            or self.recall
            or self.upgrade
            or self.visit_result
            or self.receipts
        )


class PlanState(BaseModel):
    """The plan being followed (settlement), or accepted by the update and not yet handed over."""

    plan: AgreedPlan
    paid: int = Field(default=0, description="Minor units paid towards the plan so far")
    stored: bool = Field(default=True, description="The plan's record is in the database")
    recorded: list[int] = Field(default_factory=list, description="Instalments recorded as paid")
    reminded: list[str] = Field(default_factory=list, description="Plan reminders already sent")
    deadlines: dict[int, datetime] = Field(
        default_factory=dict, description="An instalment's deadline, moved by a hold that suspended it"
    )
    suspended: bool = Field(
        default=False, description="A hold is keeping the current instalment from breaking"
    )

    def covered(self) -> list[int]:
        """The instalments the payments so far pay for, in order."""
        due, seqs = 0, []
        for inst in self.plan.instalments:
            due += inst.amount
            if self.paid >= due:
                seqs.append(inst.seq)
        return seqs


class AccountState(BaseModel):
    """Everything a run of either account workflow needs; the whole of what one run hands the next."""

    terms: AccountTerms
    rules: Rules
    mode: Mode
    carried: Carried
    inbox: Inbox = Field(default_factory=Inbox)
    plan: PlanState | None = None
    deferred: dict[str, datetime] = Field(
        default_factory=dict, description="Steps the live gate said to retry later, and when"
    )
    resumed_from: str | None = Field(default=None, description="Why this run started (broken plan …)")
    closing: str | None = Field(
        default=None, description="Set once the run has begun to close (charge-off, paid …): no plan now"
    )
    sms_opt_ins: int = Field(
        default=0,
        description=(
            "Times the debtor opted back in to texts: numbers each opt-in's confirmation and the "
            "opt-out confirmation after it, so a STOP after a START is confirmed again, once"
        ),
    )
    last_send_ended: datetime | None = Field(
        default=None, description="Workflow time the last send or outcome wait ended (any run)"
    )
    next_label: str | None = None
    next_at: datetime | None = None
    voice_paused_until: datetime | None = Field(
        default=None, description="The campaign's call governor paused voice until about then"
    )
    locate_note: str | None = Field(default=None, description="Why the emergency contact was last not asked")
    plan_requests: int = Field(default=0, description="Plan requests the debtor made so far")
    plan_request: PlanRequest | None = Field(default=None, description="The one waiting for an answer")
    continue_as_new_every_wake: bool = Field(
        default=False, description="Test hook: hand over at every wake-up, to prove nothing is lost"
    )
    charges: Charges | None = Field(
        default=None,
        description="Penalty interest and late fees (issue 15); None: the policy has none, or a run from before",
    )


class AccountInput(BaseModel):
    """The input of both account workflows.

    A new account starts with ``terms`` and ``rules``; every hand-over passes ``state``. The other
    fields are those of the runs recorded before the one state existed (``DelinquencyInput`` and
    ``SettlementInput`` had them), so their histories still replay.
    """

    state: AccountState | None = None
    terms: AccountTerms | None = None
    rules: Rules | None = None
    day_seconds: float = Field(default=REAL_DAY_SECONDS, gt=0, description="Real seconds per policy day")
    epoch: datetime | None = Field(
        default=None,
        description=(
            "Where a scaled policy clock starts, chosen by whoever starts the account so that the "
            "database can hold the same clock (store.audit.store_clock); None: the first run's start"
        ),
    )
    contact_queue: str = Field(default="collections-contact", description="Paced task queue for sends")
    continue_as_new_every_wake: bool = False
    code: int = Field(
        default=0,
        ge=0,
        description=(
            "The code generation that started this run (workflows/patches.py): its patches need no "
            "marker. 0 for runs recorded before generations, which ask the server for each"
        ),
    )
    # runs recorded before AccountState
    carried: Carried | None = None
    resumed_from: str | None = None
    plan: AgreedPlan | None = None
    paid_in_plan: int = 0

    def first_clock(self, now: datetime) -> PolicyClock:
        return PolicyClock(epoch=self.epoch or now, day_seconds=self.day_seconds)


#: The names the two workflows' inputs had; kept so callers and recorded histories read the same.
DelinquencyInput = AccountInput
SettlementInput = AccountInput
