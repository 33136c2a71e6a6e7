"""The ``record`` activity: one atomic write of an account's state and audit lines."""

from __future__ import annotations

from temporalio import activity

from activities.deps import Deps
from domain.effects import RECORD, Change
from store import repo


class RecordActivities:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    @activity.defn(name=RECORD)
    def record(self, change: Change) -> None:
        """Apply a :class:`Change` in one transaction; every part is idempotent, so a retry is harmless."""
        with self.deps.sessions.begin() as s:
            apply_change(s, change)


def apply_change(s, change: Change) -> None:  # type: ignore[no-untyped-def]
    acct, at = change.account_id, change.at
    if change.plan is not None:
        repo.save_plan(s, acct, change.plan)
    if change.mode is not None:
        repo.set_mode(s, acct, change.mode, close_reason=change.close_reason, now=at)
    if change.stage is not None or change.balance is not None or change.paid_total is not None:
        snap = repo.account_snapshot(s, acct)
        repo.update_progress(
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
        repo.record_payment(
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
        plan_id = repo.active_plan_id(s, acct)
        if plan_id and change.instalment_paid is not None:
            seq, amount = change.instalment_paid
            repo.mark_instalment(s, plan_id, seq, paid_minor=amount, status="paid")
        if plan_id and change.instalment_missed is not None:
            repo.mark_instalment(s, plan_id, change.instalment_missed, paid_minor=0, status="missed")
    if change.plan_status is not None:
        plan_id = change.plan.plan_id if change.plan else repo.active_plan_id(s, acct)
        if plan_id:
            repo.set_plan_status(s, plan_id, change.plan_status, now=at)
    if change.hold_added is not None:
        repo.add_hold(s, acct, change.hold_added)
    if change.hold_lifted is not None:
        repo.lift_hold(s, acct, change.hold_lifted, now=at)
    if change.channel_status is not None:
        channel, status = change.channel_status
        repo.set_contact_status(s, acct, channel, status, now=at)
    for ev in change.events:
        repo.audit(
            s,
            at=ev.at,
            account_id=acct,
            actor=change.actor,
            action=ev.kind,
            decision=change.decision or ev.kind,
            rule=change.rule,
            details={"detail": ev.detail},
        )
    if not change.events and change.decision:
        repo.audit(
            s,
            at=at,
            account_id=acct,
            actor=change.actor,
            action=change.decision,
            decision=change.decision,
            rule=change.rule,
            details={},
        )
