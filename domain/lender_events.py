"""What the lender's systems hear about an account: the events, drafted from a state change.

The lender freezes and restores the credit line, stops interest and posts the charge-off in its own
systems, so every state change the workflows record (a :class:`~domain.effects.Change`) is read here for
the events it means. Drafting is a pure function of the change and of a few facts the store knew just
before applying it (:class:`Before`): whether the plan was already stored, the hold already on, the
account already closed for that reason. So a change written twice (an activity retried after its commit)
drafts nothing the second time, and the events say what changed, not what was asked.

**The line freeze, for now.** A grace period and explicit freeze rules come later (issue 15, items 1 and
3); until then the line is *frozen* the first time the account enters a dunning stage past its due date
(``early`` or later) while it is not frozen, and *restored* when the account is paid in full, settled,
or a plan is completed (a promise kept for part of the balance too), while it is frozen. A restored
account that is still delinquent is frozen again at its next stage. Nothing here reads the grace
period: the rule is :func:`freezes` and :func:`restores`, one place to change.

**No personal data** beyond the account ID: amounts in minor units with their currency, plan and
placement IDs, hold kinds and channels, stage and days past due. Never a name, a number, a hold's typed
reason, a complaint's text or the operator's name.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from domain.accounts import CloseReason, Mode, Stage
from domain.effects import Change


class EventType(StrEnum):
    PLAN_AGREED = "plan_agreed"
    PLAN_BROKEN = "plan_broken"
    PLAN_COMPLETED = "plan_completed"
    PAYMENT_APPLIED = "payment_applied"
    CHARGED_OFF = "charged_off"
    PLACED = "placed"
    CLOSED = "closed"
    COMPLAINT_FILED = "complaint_filed"
    DISPUTE_FILED = "dispute_filed"
    HOLD_ADDED = "hold_added"
    HOLD_LIFTED = "hold_lifted"
    OPTED_OUT = "opted_out"
    LINE_FROZEN = "line_frozen"
    LINE_RESTORED = "line_restored"


#: close reasons that leave our collection as a charge-off (placed: charged off and placed with an agency)
CHARGE_OFF_REASONS = frozenset({CloseReason.CHARGED_OFF.value, CloseReason.PLACED.value})
#: close reasons that restore the line: the debt is paid or settled
RESTORING_REASONS = frozenset({CloseReason.PAID.value, CloseReason.SETTLED.value})
#: the workflows' decisions that are events whatever else the change holds (each one counts)
FILED = {"complaint_filed": EventType.COMPLAINT_FILED, "dispute_filed": EventType.DISPUTE_FILED}


class Before(BaseModel):
    """What the store knew about the account just before the change was applied."""

    model_config = ConfigDict(frozen=True)

    currency: str
    mode: str
    close_reason: str | None = None
    line_frozen: bool = False
    plan_id: str | None = Field(default=None, description="The plan the change's plan status is about")
    plan_status: str | None = Field(default=None, description="That plan's status; None: not stored")
    payment_known: bool = Field(default=False, description="The change's payment reference is stored")
    active_holds: frozenset[tuple[str, str | None]] = frozenset()
    channel_statuses: dict[str, str] = Field(default_factory=dict)
    agency_id: str | None = Field(default=None, description="The agency of the active placement")
    placement_id: str | None = None


class Draft(BaseModel):
    """One event before it has an ID and a place in the account's sequence."""

    model_config = ConfigDict(frozen=True)

    type: EventType
    data: dict[str, Any] = Field(default_factory=dict)


def money(amount: int, currency: str) -> dict[str, Any]:
    """An amount as every payload carries it: integer minor units and the ISO 4217 code."""
    return {"amount": int(amount), "currency": currency}


def freezes(change: Change, before: Before) -> bool:
    """The line freezes when the account enters a dunning stage past due and is not frozen."""
    return change.stage is not None and change.stage != Stage.PRE_DUE and not before.line_frozen


def restores(change: Change, frozen: bool) -> str | None:
    """Why the line is restored by this change (paid, settled, plan_completed), or None."""
    if not frozen:
        return None
    if change.mode == Mode.CLOSED and change.close_reason in RESTORING_REASONS:
        return change.close_reason
    if change.plan_status == "completed":
        return "plan_completed"
    return None


def may_publish(change: Change) -> bool:
    """Whether the change can mean an event at all: the store reads nothing for the others."""
    return bool(
        change.payment is not None
        or change.plan is not None
        or change.plan_status in ("broken", "completed")
        or change.hold_added is not None
        or change.hold_lifted is not None
        or change.holds_lifted
        or (change.stage is not None and change.stage != Stage.PRE_DUE)
        or change.mode == Mode.CLOSED
        or (change.channel_status is not None and change.channel_status[1] == "opted_out")
        or change.decision in FILED
        or change.decision == "placed"
    )


def lifted_kinds(change: Change) -> list[str]:
    """The hold kinds a change lifts, once each, in a stable order."""
    kinds = [change.hold_lifted] if change.hold_lifted is not None else []
    kinds += list(change.holds_lifted)
    return sorted({k.value for k in kinds})


def draft_events(change: Change, before: Before) -> list[Draft]:
    """The events a change means, in the order the lender should apply them."""
    cur = before.currency
    out: list[Draft] = []

    def add(event_type: EventType, /, **data: Any) -> None:
        out.append(Draft(type=event_type, data=data))

    if change.plan is not None and before.plan_status is None:
        p = change.plan
        add(
            EventType.PLAN_AGREED,
            plan_id=p.plan_id,
            kind=p.kind.value,
            total=money(p.total, p.currency),
            waived=money(p.waived, p.currency),
            instalments=[
                {"seq": i.seq, "due_date": i.due_date.isoformat(), "amount": money(i.amount, p.currency)}
                for i in p.instalments
            ],
        )
    if change.payment is not None and not before.payment_known:
        pay = change.payment
        refunded = change.refund.amount if change.refund is not None else 0
        add(
            EventType.PAYMENT_APPLIED,
            reference=pay.reference,
            amount=money(pay.amount, pay.currency),
            applied=money(pay.amount - refunded, pay.currency),
            refund=money(refunded, pay.currency),
            balance=money(change.balance, cur) if change.balance is not None else None,
        )
    plan_id = change.plan.plan_id if change.plan is not None else before.plan_id
    was_active = before.plan_status == "active"
    if change.plan_status == "broken" and was_active:
        add(EventType.PLAN_BROKEN, plan_id=plan_id, missed_instalment=change.instalment_missed)
    completed = change.plan_status == "completed" and was_active
    if completed:
        add(EventType.PLAN_COMPLETED, plan_id=plan_id, account_closed=change.mode == Mode.CLOSED)
    if change.decision in FILED:
        add(FILED[change.decision])
    kinds_on = {kind for kind, _ in before.active_holds}
    for kind in lifted_kinds(change):
        if kind in kinds_on:
            add(EventType.HOLD_LIFTED, kind=kind)
    if (hold := change.hold_added) is not None:
        channel = hold.channel.value if hold.channel is not None else None
        if (hold.kind.value, channel) not in before.active_holds:
            until = hold.until.isoformat() if hold.until is not None else None
            add(EventType.HOLD_ADDED, kind=hold.kind.value, channel=channel, until=until)
    if change.channel_status is not None:
        channel, status = change.channel_status
        if status == "opted_out" and before.channel_statuses.get(channel.value) != "opted_out":
            add(EventType.OPTED_OUT, channel=channel.value)
    frozen = before.line_frozen
    if freezes(change, before):
        assert change.stage is not None
        add(EventType.LINE_FROZEN, reason="dunning_stage", stage=change.stage.value, dpd=change.dpd)
        frozen = True
    closing = change.mode == Mode.CLOSED
    same_close = before.mode == Mode.CLOSED.value and before.close_reason == change.close_reason
    if (
        closing
        and change.close_reason in CHARGE_OFF_REASONS
        and before.close_reason not in CHARGE_OFF_REASONS
    ):
        add(
            EventType.CHARGED_OFF,
            dpd=change.dpd,
            balance=money(change.balance, cur) if change.balance is not None else None,
        )
    newly_placed = closing and change.close_reason == CloseReason.PLACED.value and not same_close
    if (newly_placed or change.decision == "placed") and before.agency_id is not None:
        add(EventType.PLACED, agency_id=before.agency_id, placement_id=before.placement_id)
    if closing and not same_close:
        add(
            EventType.CLOSED,
            reason=change.close_reason,
            balance=money(change.balance, cur) if change.balance is not None else None,
        )
    if (why := restores(change, frozen)) is not None and (why != "plan_completed" or completed):
        if not (closing and same_close):
            add(EventType.LINE_RESTORED, reason=why)
    return out


def line_after(drafts: list[Draft], before: Before) -> bool:
    """Whether the line is frozen once the drafted events are applied."""
    frozen = before.line_frozen
    for d in drafts:
        if d.type == EventType.LINE_FROZEN:
            frozen = True
        elif d.type == EventType.LINE_RESTORED:
            frozen = False
    return frozen


def change_key(change: Change) -> str:
    """The change's identity: the same change retried has the same key, so its events are written once.

    ``unless_sent`` is left out: a change that rode on a send and is written again because the send
    failed is the same change (and the store skips it when the send's transaction wrote it)."""
    text = change.model_dump_json(exclude={"unless_sent"})
    return hashlib.sha256(text.encode()).hexdigest()


def retry_delay(
    failures: int, *, base: float, cap: float, rand: Callable[[], float] = random.random
) -> float:
    """Seconds until the next try after ``failures`` failed tries: exponential (base, 2 base, 4 base …,
    at most ``cap``) with jitter, a random point in the upper half, so subscribers that failed together
    are not all tried again in the same second (Standard Webhooks: exponential backoff with jitter)."""
    ceiling = min(cap, base * 2 ** max(failures - 1, 0))
    return ceiling / 2 + rand() * ceiling / 2


__all__ = [
    "Before",
    "Draft",
    "EventType",
    "change_key",
    "draft_events",
    "freezes",
    "line_after",
    "may_publish",
    "money",
    "restores",
    "retry_delay",
]
