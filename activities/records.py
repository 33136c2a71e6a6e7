"""The ``record`` activity: one atomic write of an account's state and audit lines."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.deps import Deps
from domain.effects import RECORD, RECORD_BATCH, Change, ChangeBatch
from store.accounts import account_snapshot, set_mode, update_progress
from store.audit import audit
from store.contacts import attempt_exists, set_contact_status
from store.holds import add_hold, lift_hold
from store.ledger import active_plan_id, mark_instalment, record_payment, save_plan, set_plan_status
from store.outbox import prepare, publish
from store.refunds import queue_refund
from store.rules import set_account_rules

log = logging.getLogger(__name__)

#: What a write can never get past by being retried: the input itself is refused by the store.
REFUSED = (ValueError, LookupError, IntegrityError)


class RecordActivities:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    @activity.defn(name=RECORD)
    def record(self, change: Change) -> None:
        """Apply a :class:`Change` in one transaction; every part is idempotent, so a retry is harmless.

        A change the database refuses for good (an unknown account, a reference already used by
        another payment of the account, a value a check forbids) is not retried for ever, which
        would freeze the account's workflow on this one write: an operator alert goes into the audit
        log (with the whole change, so nothing is lost) and the workflow is told, non-retryably.
        A database that is down or busy is retried as before.
        """
        self._write([change])

    @activity.defn(name=RECORD_BATCH)
    def record_batch(self, batch: ChangeBatch) -> None:
        """Several changes in one transaction, in order: all of them or none (issue 18: a stage noted
        on a wake and the close that follows it are one write, one activity, not two)."""
        self._write(batch.changes)

    def _write(self, changes: list[Change]) -> None:
        try:
            with self.deps.sessions.begin() as s:
                for change in changes:
                    apply_change(s, change)
        except REFUSED as exc:
            reason = f"{type(exc).__name__}: {exc}"[:500]
            first = changes[0]
            decisions = ",".join(c.decision or "progress" for c in changes)
            log.error("record refused for account %s (%s): %s", first.account_id, decisions, reason)
            with self.deps.sessions.begin() as s:
                audit(
                    s,
                    at=datetime.now(UTC),
                    clock="wall",
                    account_id=first.account_id if _known(s, first.account_id) else None,
                    actor="record",
                    action="operator_alert",
                    decision="record_refused",
                    rule=decisions,
                    details={
                        "reason": reason,
                        "change": "[" + ",".join(c.model_dump_json() for c in changes)[:4000] + "]"
                        if len(changes) > 1
                        else first.model_dump_json()[:4000],
                    },
                )
            raise ApplicationError(reason, type="RecordRefused", non_retryable=True) from None


def apply_change(s, change: Change) -> None:  # type: ignore[no-untyped-def]
    """One change, in the caller's transaction, with the lender's events it means (the outbox, written
    in this same transaction: an event exists exactly when its change was committed, once)."""
    if change.unless_sent is not None and attempt_exists(s, change.unless_sent):
        return  # it rode on that send, whose reservation wrote it in the same transaction
    events = prepare(s, change)  # what the account was before, for the events (store/outbox.py)
    acct, at = change.account_id, change.at
    if change.plan is not None:
        save_plan(s, acct, change.plan)
    if change.mode is not None:
        set_mode(s, acct, change.mode, close_reason=change.close_reason, now=at)
    if change.stage is not None or change.balance is not None or change.paid_total is not None:
        snap = account_snapshot(s, acct)
        update_progress(
            s,
            acct,
            stage=change.stage or (snap.stage if snap else None),
            dpd=change.dpd if change.dpd is not None else (snap.dpd if snap else None),
            balance_minor=change.balance
            if change.balance is not None
            else (snap.balance_minor if snap else None),
            paid_minor=change.paid_total
            if change.paid_total is not None
            else (snap.paid_minor if snap else None),
            now=at,
        )
    if change.payment is not None:
        p = change.payment
        record_payment(
            s,
            account_id=acct,
            amount_minor=p.amount,
            currency=p.currency,
            reference=p.reference,
            received_at=p.received_at,
            source=p.source,
        )
    # Instalments first: once the plan's status leaves "active" it is no longer found by active_plan_id.
    if change.instalment_paid is not None or change.instalment_missed is not None:
        plan_id = active_plan_id(s, acct)
        if plan_id and change.instalment_paid is not None:
            seq, amount = change.instalment_paid
            mark_instalment(s, plan_id, seq, paid_minor=amount, status="paid")
        if plan_id and change.instalment_missed is not None:
            mark_instalment(s, plan_id, change.instalment_missed, paid_minor=0, status="missed")
    if change.plan_status is not None:
        plan_id = change.plan.plan_id if change.plan else active_plan_id(s, acct)
        if plan_id:
            set_plan_status(s, plan_id, change.plan_status, now=at)
    # lifted before added: a change with both replaces a hold (a plan request escalated to a later date)
    if change.hold_lifted is not None:
        lift_hold(s, acct, change.hold_lifted, now=at)
    for kind in change.holds_lifted:
        lift_hold(s, acct, kind, now=at)
    if change.hold_added is not None:
        add_hold(s, acct, change.hold_added)
    if change.refund is not None:
        r = change.refund
        queue_refund(
            s,
            account_id=acct,
            reference=r.reference,
            amount_minor=r.amount,
            currency=r.currency,
            reason=r.reason,
            now=at,
        )
    if change.rules is not None:
        set_account_rules(s, acct, change.rules, at)
    if change.channel_status is not None:
        channel, status = change.channel_status
        set_contact_status(s, acct, channel, status, now=at)
    for ev in change.events:
        audit(
            s,
            at=ev.at,
            clock="policy",
            account_id=acct,
            actor=change.actor,
            action=ev.kind,
            decision=change.decision or ev.kind,
            rule=change.rule,
            details={"detail": ev.detail},
        )
    if not change.events and change.decision:
        audit(
            s,
            at=at,
            clock="policy",
            account_id=acct,
            actor=change.actor,
            action=change.decision,
            decision=change.decision,
            rule=change.rule,
            details={},
        )
    publish(s, events)


def _known(s, account_id: str) -> bool:  # type: ignore[no-untyped-def]
    from store.models import AccountRow

    return s.get(AccountRow, account_id) is not None
