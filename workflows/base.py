"""The core both account workflows share: the one state, the policy clock, recording, and the one hand-over.

Both workflows own the same account under the same workflow ID, one at a time. Everything a run
knows is in ``self.state`` (:class:`~workflows.state.AccountState`); a run ends either by closing
the account (``finish``, in workflows/handlers.py) or by handing the whole state to the next run
(:meth:`AccountCore.hand_over`), and those are the only two ways out.
"""

from __future__ import annotations

import asyncio
import math
from datetime import datetime, timedelta
from typing import NoReturn

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

from workflows import patches

with workflow.unsafe.imports_passed_through():
    from domain.accounts import AccountTerms, Carried, Event, Mode
    from domain.cadence import dpd_at
    from domain.charge_view import ChargesAnswer
    from domain.effects import RECORD, RECORD_BATCH, Change, ChangeBatch, PaymentRecord, RefundDue
    from domain.money import format_minor
    from domain.plans import AgreedPlan
    from domain.policy import Policy, load_legacy_policy
    from domain.profiles import Profile, load_profile
    from domain.rules import Rules
    from domain.timeline import AccountStatus, ContactView, Timeline, project_dunning, project_plan
    from workflows import charging, search
    from workflows.state import AccountInput, AccountState, ReceiptDue

KEEP_LEDGER_DAYS = 8
KEEP_EVENTS = 60
KEEP_CONTACTS = 12

RECORD_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_interval=timedelta(minutes=1)
)

#: A signal that arrived between two sleeps wakes the next one at once (``sleep_until``).
WAKE_PATCH = patches.WAKE
#: Payments that arrive while a run is closing are recorded before it ends (they used to be dropped).
LATE_PAYMENTS_PATCH = patches.LATE_PAYMENTS
#: Search attributes are upserted only when a value changes (runs recorded before upserted every wake)
CHANGED_ONLY_PATCH = patches.CHANGED_ONLY
#: A wake writes once (issue 18): a stage entered is noted and written with the wake's send, in the
#: send's own first transaction, or with the next write, or before the run sleeps; the account is
#: opened with its first stage in one write; a stage whose day has a contact is entered at that
#: contact, not at midnight. Runs recorded before wrote each at once; their replay is unchanged.
ONE_WRITE_PATCH = patches.ONE_WRITE
#: A payment that asks for a receipt is owed one text (issue 13: the debtor's own checkout).
PAYMENT_RECEIPTS_PATCH = patches.PAYMENT_RECEIPTS


def legacy_rules(terms: AccountTerms) -> Rules:
    """Runs recorded before rules were pinned read the files, as they always did; the first
    hand-over then carries what they read, and from there on the files no longer matter to them."""
    return Rules(
        policy=load_legacy_policy(terms.policy),
        profile=load_profile(terms.profile),
        policy_version=f"{terms.policy}@file",
        profile_version=f"{terms.profile}@file",
    )


def initial_state(start: AccountInput, mode: Mode, now: datetime) -> AccountState:
    """The state a run begins with: the one handed over, or one built from a first or recorded input."""
    if start.state is not None:
        return start.state.model_copy(update={"mode": mode})
    assert start.terms is not None, "a first run needs the account's terms"
    carried = start.carried or Carried(
        clock=start.first_clock(now), balance=start.terms.balance, contact_queue=start.contact_queue
    )
    state = AccountState(
        terms=start.terms,
        rules=start.rules or legacy_rules(start.terms),
        mode=mode,
        carried=carried,
        resumed_from=start.resumed_from,
        continue_as_new_every_wake=start.continue_as_new_every_wake,
    )
    if start.carried is None:  # a new account: charges as its policy provides (issue 15)
        state.charges = charging.begin(state)
    if start.plan is not None:  # a settlement run recorded before the one state: its plan and payments
        from workflows.state import PlanState

        state.plan = PlanState(plan=start.plan, paid=start.paid_in_plan)
        state.plan.recorded = state.plan.covered()  # recorded by the run that handed it over
    return state


class AccountCore:
    """State, time, recording and the two ways a run ends; see the module docstring."""

    state: AccountState

    def _setup(self, start: AccountInput, mode: Mode) -> None:
        self.state = initial_state(start, mode, workflow.now())
        self.handed_state = start.state is not None
        # What belongs to this run's event loop only, settled before any hand-over:
        self.wake = False
        self.stop_contacts = False  # set the instant a plan or full payment lands; nothing new goes out
        self.plan_stored: asyncio.Future[None] | None = None  # a quiet plan's record, under way
        self.noted: list[Change] = []  # written with the next send or write, or before any sleep
        self.code = start.code  # the code generation this run was started with (workflows/patches.py)

    def patched(self, patch_id: str) -> bool:
        """``workflow.patched``, without a marker when this run's generation includes the patch."""
        return patches.patched(patch_id, self.code)

    # ---- views on the state -----------------------------------------------------------------------
    @property
    def terms(self) -> AccountTerms:
        return self.state.terms

    @property
    def carried(self) -> Carried:
        return self.state.carried

    @property
    def mode(self) -> Mode:
        return self.state.mode

    @property
    def policy(self) -> Policy:
        return self.state.rules.policy

    @property
    def profile(self) -> Profile:
        return self.state.rules.profile

    # ---- time -------------------------------------------------------------------------------------
    def now(self) -> datetime:
        """Policy time: what the rules see (equal to workflow time unless the demo speeds it up)."""
        return self.carried.clock.policy_now(workflow.now())

    async def sleep_until(self, policy_at: datetime) -> bool:
        """Sleep until a policy instant, or until a signal sets ``wake``; True if it really waited.

        A signal that landed while the loop was busy (writing a stage change, say) set ``wake``
        before this sleep began: it returns at once, so the loop takes what came in instead of
        sleeping through it until the next contact. Runs recorded before kept the flag cleared at
        the start (``workflow.patched``), and replay identically.
        """
        await self.flush()
        delay = self.carried.clock.real_delay(self.now(), policy_at)
        if self.patched(WAKE_PATCH):
            woken, self.wake = self.wake, False
            if woken or delay <= timedelta(0):
                return False
        else:
            self.wake = False
            if delay <= timedelta(0):
                return False
        # whole milliseconds, rounded up, so a wake-up never lands a hair before the target
        delay = timedelta(milliseconds=math.ceil(delay.total_seconds() * 1000) + 1)
        try:
            await workflow.wait_condition(lambda: self.wake, timeout=delay)
        except TimeoutError:
            pass
        self.wake = False  # taken: the loop looks at whatever set it now
        return True

    def should_hand_over(self, slept: bool) -> bool:
        """Time for a fresh history: the server suggests it, or (tests) every wake-up."""
        return workflow.info().is_continue_as_new_suggested() or (
            slept and self.state.continue_as_new_every_wake
        )

    # ---- recording --------------------------------------------------------------------------------
    def event(self, kind: str, detail: str = "") -> Event:
        ev = Event(at=self.now(), kind=kind, detail=detail)
        self.carried.events = [*self.carried.events, ev][-KEEP_EVENTS:]
        return ev

    async def record(self, change: Change) -> None:
        """One atomic write, with whatever was noted before it. A write the database can never take
        (the activity says so, non-retryably, after raising an operator alert) is noted and the
        account goes on instead of freezing on it."""
        changes, self.noted = [*self.noted, change], []
        label = ",".join(c.decision or (c.mode.value if c.mode else "progress") for c in changes)
        try:
            if len(changes) == 1:
                await workflow.execute_activity(
                    RECORD,
                    change,
                    start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=RECORD_RETRY,
                    summary=f"record {label}",
                )
            else:  # only runs under ONE_WRITE_PATCH note anything
                await workflow.execute_activity(
                    RECORD_BATCH,
                    ChangeBatch(changes=changes),
                    start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=RECORD_RETRY,
                    summary=f"record {label}",
                )
        except ActivityError as err:
            self.event("record_rejected", f"{label}: {err.cause or err}"[:300])

    async def note(self, change: Change) -> None:
        """A change that may wait for the wake's write: the send's transaction, the next record, or
        the flush before the run sleeps (runs recorded before wrote it at once)."""
        if self.patched(ONE_WRITE_PATCH):
            self.noted = [*self.noted, change]
        else:
            await self.record(change)

    async def flush(self) -> None:
        """Write what was noted and not yet written: before a sleep, a hand-over or a run's end."""
        if self.noted:
            last, self.noted = self.noted[-1], self.noted[:-1]
            await self.record(last)

    def change(self, **fields: object) -> Change:
        return Change(account_id=self.terms.account_id, at=self.now(), **fields)  # type: ignore[arg-type]

    def trim(self) -> None:
        horizon = self.now() - timedelta(days=KEEP_LEDGER_DAYS)
        self.carried.ledger = [e for e in self.carried.ledger if e.at >= horizon]
        self.carried.holds = [h for h in self.carried.holds if h.until is None or h.until > self.now()]

    # ---- what the Temporal UI shows -------------------------------------------------------------
    def hold_label(self) -> str:
        kinds = sorted({h.kind.value for h in self.carried.holds if h.until is None or h.until > self.now()})
        return ",".join(kinds) if kinds else "none"

    def upsert_common(self, **extra: object) -> None:
        updates = [
            search.MODE.value_set(self.mode.value),
            search.BALANCE.value_set(self.carried.balance),
            search.HOLD.value_set(self.hold_label()),
            search.JURISDICTION.value_set(self.terms.profile),
        ]
        if self.state.next_at is not None:
            updates.append(search.NEXT_CONTACT.value_set(self.state.next_at))
        else:
            updates.append(search.NEXT_CONTACT.value_unset())
        updates += list(extra.values())  # type: ignore[arg-type]
        if self.patched(CHANGED_ONLY_PATCH):
            # only what changed: an unchanged upsert is still an event, a workflow task's worth of work
            # for the server and an action on Temporal Cloud (issue 18)
            current = workflow.info().typed_search_attributes
            updates = [u for u in updates if current.get(u.key) != u.value]  # type: ignore[attr-defined]
            if not updates:
                return
        workflow.upsert_search_attributes(updates)  # type: ignore[arg-type]

    def set_details(self, line: str) -> None:
        zone_note = self.terms.zones[0]
        workflow.set_current_details(
            f"**{self.mode.value}** · {format_minor(self.carried.balance, self.terms.currency)} · "
            f"debtor {self.terms.masked_phone} ({zone_note})\n\n{line}"
        )

    def status_view(
        self, plan: AgreedPlan | None = None, plan_paid: int = 0, at: datetime | None = None
    ) -> AccountStatus:
        """``at``: the asker's wall-clock time. A query runs at the time of the run's last workflow task,
        which may be days ago for an account waiting for its next step; charges accrue meanwhile, so
        the balance a debtor is shown (and pays) is worked out for the asker's moment instead."""
        now = self.now() if at is None else max(self.now(), self.carried.clock.policy_now(at))
        dpd = dpd_at(now, self.terms)
        return AccountStatus(
            account_id=self.terms.account_id,
            mode=self.mode,
            stage=self.policy.stage_for(dpd, self.terms.product),
            dpd=dpd,
            currency=self.terms.currency,
            balance=charging.owed_now(self.state, now),
            paid_total=self.carried.paid_total,
            holds=[
                f"{h.kind.value}:{h.channel.value}" if h.channel else h.kind.value
                for h in self.carried.holds
                if h.until is None or h.until > now
            ],
            complaint_due=self.carried.complaint_due,
            complaint_escalated=self.carried.complaint_escalated,
            opted_out=[c.value for c in self.carried.opted_out],
            unreachable=[c.value for c in self.carried.unreachable],
            contact_lost=self.carried.contact_lost,
            next_action=self.state.next_label,
            next_action_at=self.state.next_at,
            last_contacts=[
                ContactView(at=c.at, channel=c.channel.value, template=c.template, outcome=c.outcome.value)
                for c in self.carried.last_contacts
            ],
            plan=plan,
            plan_paid=plan_paid,
            masked_phone=self.terms.masked_phone,
            policy_now=now,
            closing=self.state.closing,
            rules_version=self.state.rules.versions,
            charges=charging.summary(self.state, now),
            voice_paused_until=self.state.voice_paused_until
            if self.state.voice_paused_until and self.state.voice_paused_until > now
            else None,
        )

    @workflow.query
    def charges(self, at: datetime | None = None) -> ChargesAnswer | None:
        """Penalty interest and late fees: the formula and each day's figure (issue 15); ``at`` as
        for ``status``."""
        now = self.now() if at is None else max(self.now(), self.carried.clock.policy_now(at))
        return charging.every_day(self.state, now)

    @workflow.query
    def timeline(self) -> Timeline:
        """What happens next, as the state says, whichever workflow runs the account: with a plan, what
        the debtor was promised (a dunning run on its way to settlement); without one, the dunning
        schedule (a settlement run whose plan is over, handing back to dunning). It agrees with the
        status in every moment of a run, its end included (a closed run answers queries too)."""
        if self.mode == Mode.CLOSED:
            return Timeline(mode=Mode.CLOSED, entries=[])
        if (ps := self.state.plan) is not None:
            return project_plan(
                self.terms, self.carried, ps.plan, ps.paid, self.policy, self.profile, self.now()
            )
        return project_dunning(self.terms, self.carried, self.policy, self.profile, self.now())

    @workflow.query
    def history(self) -> list[dict[str, str]]:
        return [{"at": e.at.isoformat(), "kind": e.kind, "detail": e.detail} for e in self.carried.events]

    # ---- payments ---------------------------------------------------------------------------------
    async def take_payments(self) -> int:
        """Record queued payments once each; returns the amount newly applied.

        A payment beyond what is owed (an overpayment, or money that came in while the account was
        closing) lowers the balance to zero and the rest goes to the refund queue with its reason.
        """
        applied = 0
        await self.take_charges()
        while self.state.inbox.payments:
            payment = self.state.inbox.payments.pop(0)
            record = PaymentRecord(
                amount=payment.amount,
                currency=payment.currency,
                reference=payment.reference,
                received_at=self.now(),
                source=payment.source,
            )
            excess = min(payment.amount, max(payment.amount - max(self.carried.balance, 0), 0))
            refund = None
            if excess > 0:
                why = f"closing ({self.state.closing})" if self.state.closing else "paid beyond the balance"
                refund = RefundDue(
                    amount=excess, currency=payment.currency, reference=payment.reference, reason=why
                )
            self.carried.balance = max(self.carried.balance - payment.amount, 0)
            charging.paid(self.state, payment.amount - excess)
            self.carried.paid_total += payment.amount
            if self.state.plan is not None:
                self.state.plan.paid += payment.amount
            applied += payment.amount
            self.event("payment", f"{format_minor(payment.amount, payment.currency)} ref {payment.reference}")
            await self.record(
                self.change(
                    payment=record,
                    refund=refund,
                    balance=self.carried.balance,
                    paid_total=self.carried.paid_total,
                    decision="payment",
                )
            )
            if payment.receipt and self.patched(PAYMENT_RECEIPTS_PATCH):
                due = ReceiptDue(reference=payment.reference, amount=payment.amount)
                self.state.inbox.receipts = [*self.state.inbox.receipts, due]
        return applied

    async def take_charges(self) -> None:
        """Add the charges of every day that has ended (workflows/charging.py); the new balance rides
        on the wake's next write, with an audit line saying what was added and why."""
        added = charging.catch_up(self.state, self.now())
        if added is not None:
            ev = self.event("charges", added)
            await self.note(self.change(balance=self.carried.balance, decision="charges", events=[ev]))

    async def drain_payments(self) -> int:
        """Wait for every handler to finish, then apply every payment already received.

        Returns the amount applied; with nothing queued it issues no command (replay-safe).
        """
        applied = 0
        while True:
            await workflow.wait_condition(workflow.all_handlers_finished)
            if not self.state.inbox.payments:
                return applied
            applied += await self.take_payments()

    # ---- the two ways a run ends ------------------------------------------------------------------
    async def hand_over(self, workflow_type: str) -> NoReturn:
        """The one way a run continues as new: to a fresh history, to settlement, or back to dunning.

        Every handler has finished, every queued payment is recorded, a plan accepted on a quiet
        account is stored; everything else a handler accepted (reports, acknowledgements owed, a
        close order, deferrals …) is in the state, and the whole state goes to the next run.
        """
        while True:
            await self.drain_payments()
            await self.flush()
            if self.plan_stored is None:
                break
            await self.plan_stored
            self.plan_stored = None
            if self.state.plan is not None:
                self.state.plan.stored = True
        workflow.continue_as_new(AccountInput(state=self.state, code=patches.CODE), workflow=workflow_type)
