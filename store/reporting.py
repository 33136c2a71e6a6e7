"""The reporting dashboard's numbers, read in one transaction."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from domain.accounts import Channel, ContactOutcome, HoldKind, Mode
from store.contacts import COUNTED_ATTEMPT_STATES
from store.models import (
    AccountRow,
    AuditRow,
    ContactAttempt,
    HoldRow,
    PaymentRow,
    PlacementRow,
    PlanRow,
    VisitRow,
)
from store.variants import VariantResult, variant_results


class DashboardData(BaseModel):
    """Everything the reporting dashboard draws, read in one transaction."""

    model_config = ConfigDict(frozen=True)

    funnel: list[tuple[str, int]]
    #: Accounts not closed: one running account workflow each (``DelinquencyWorkflow`` or
    #: ``SettlementWorkflow``; field visits are child workflows and no account), including those taken
    #: in whose workflow has not recorded a stage yet (not in the funnel)
    open_accounts: int = 0
    closed: list[tuple[str, int]]
    currency: str  # recovery is shown in the portfolio's main currency (money is never summed across them)
    recovery: list[tuple[date, int, int]]  # week start, collected minor units, cumulative
    opening_total: int
    outcomes: dict[str, dict[str, int]]  # channel -> outcome -> count
    silent: list[tuple[date, int, int]]  # day, silent calls, answered calls
    settlements: dict[str, int]
    holds: list[tuple[str, int]]
    complaints: dict[str, int]  # within_sla, overdue, escalated, resolved
    visits: dict[str, int]
    placements: dict[str, int]
    #: champion/challenger: each variant's results (store.variants), empty when no account is in one
    variants: list[VariantResult] = []


STAGE_ORDER = ("pre_due", "early", "middle", "late", "charged_off")


def dashboard_data(s: Session, now: datetime, *, weeks: int = 12, days: int = 30) -> DashboardData:
    funnel_rows = dict(
        s.execute(
            select(AccountRow.stage, func.count())
            .where(AccountRow.mode != Mode.CLOSED.value)
            .group_by(AccountRow.stage)
        ).all()
    )
    funnel = [(stage, int(funnel_rows.get(stage, 0))) for stage in STAGE_ORDER]
    open_accounts = int(sum(funnel_rows.values()))
    closed = sorted(
        (str(reason or "closed"), int(n))
        for reason, n in s.execute(
            select(AccountRow.close_reason, func.count())
            .where(AccountRow.mode == Mode.CLOSED.value)
            .group_by(AccountRow.close_reason)
        ).all()
    )
    by_currency = s.execute(
        select(AccountRow.currency, func.count()).group_by(AccountRow.currency).order_by(func.count().desc())
    ).first()
    currency = by_currency[0] if by_currency else "USD"
    opening_total = int(
        s.scalar(
            select(func.coalesce(func.sum(AccountRow.opening_balance_minor), 0)).where(
                AccountRow.currency == currency
            )
        )
        or 0
    )
    start = (now - timedelta(weeks=weeks)).date()
    start -= timedelta(days=start.weekday())
    buckets: dict[date, int] = {start + timedelta(weeks=i): 0 for i in range(weeks + 1)}
    before = 0
    for amount, received in s.execute(
        select(PaymentRow.amount_minor, PaymentRow.received_at).where(PaymentRow.currency == currency)
    ).all():
        day = received.date()
        if day < start:
            before += amount
            continue
        week = day - timedelta(days=day.weekday())
        buckets[week] = buckets.get(week, 0) + amount
    recovery, running = [], before
    for week in sorted(buckets):
        running += buckets[week]
        recovery.append((week, buckets[week], running))

    outcomes: dict[str, dict[str, int]] = {}
    for channel, outcome, n in s.execute(
        select(ContactAttempt.channel, ContactAttempt.outcome, func.count())
        .where(ContactAttempt.state.in_(COUNTED_ATTEMPT_STATES))
        .group_by(ContactAttempt.channel, ContactAttempt.outcome)
    ).all():
        outcomes.setdefault(channel, {})[outcome or "sent"] = int(n)

    since = now - timedelta(days=days)
    per_day: dict[date, list[int]] = {(since + timedelta(days=i + 1)).date(): [0, 0] for i in range(days)}
    for outcome, sent_at in s.execute(
        select(ContactAttempt.outcome, ContactAttempt.sent_at).where(
            ContactAttempt.channel == Channel.VOICE.value,
            ContactAttempt.sent_at > since,  # the 30-day window ending now (policy time), as the governor's
            ContactAttempt.sent_at <= now,
            ContactAttempt.outcome.in_([ContactOutcome.SILENT.value, ContactOutcome.CONVERSATION.value]),
        )
    ).all():
        cell = per_day.setdefault(sent_at.date(), [0, 0])
        cell[1] += 1
        if outcome == ContactOutcome.SILENT.value:
            cell[0] += 1
    silent = [(day, v[0], v[1]) for day, v in sorted(per_day.items())]

    plan_counts = dict(s.execute(select(PlanRow.status, func.count()).group_by(PlanRow.status)).all())
    rejected = int(
        s.scalar(
            select(func.count(AuditRow.id)).where(AuditRow.decision.in_(["plan_rejected", "waiver_rejected"]))
        )
        or 0
    )
    accepted = int(sum(plan_counts.values()))
    settlements = {
        "proposed": accepted + rejected,
        "accepted": accepted,
        "kept": int(plan_counts.get("completed", 0)),
        "broken": int(plan_counts.get("broken", 0)),
    }

    hold_rows = s.scalars(select(HoldRow).where(HoldRow.lifted_at.is_(None))).all()
    live = [h for h in hold_rows if h.until is None or h.until > now]
    kinds: dict[str, int] = {}
    for h in live:
        kinds[h.kind] = kinds.get(h.kind, 0) + 1
    holds = sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))
    escalated_accounts = set(
        s.scalars(select(AuditRow.account_id).where(AuditRow.decision == "complaint_escalated")).all()
    )
    complaints = {"within_sla": 0, "overdue": 0, "escalated": 0, "resolved": 0}
    for h in s.scalars(select(HoldRow).where(HoldRow.kind == HoldKind.COMPLAINT.value)).all():
        if h.lifted_at is not None:
            complaints["resolved"] += 1
        elif h.account_id in escalated_accounts:
            complaints["escalated"] += 1
        elif now > h.since + timedelta(days=15):
            complaints["overdue"] += 1
        else:
            complaints["within_sla"] += 1
    visits = {
        str(k): int(v)
        for k, v in s.execute(select(VisitRow.status, func.count()).group_by(VisitRow.status)).all()
    }
    placements = {
        str(k): int(v)
        for k, v in s.execute(select(PlacementRow.status, func.count()).group_by(PlacementRow.status)).all()
    }
    return DashboardData(
        funnel=funnel,
        open_accounts=open_accounts,
        closed=closed,
        currency=currency,
        recovery=recovery,
        opening_total=opening_total,
        outcomes=outcomes,
        silent=silent,
        settlements=settlements,
        holds=holds,
        complaints=complaints,
        visits=visits,
        placements=placements,
        variants=variant_results(s),
    )
