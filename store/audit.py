"""The audit log: appending decisions exactly once, reading an account's history, purging lines
past their retention, and the newest event's time.

One clock: ``at`` is always the account's *policy* time, the clock its rules run on, so one account's
log reads in the order things happened even under the demo's day scaling. Workflows and activities
know policy time; the service and the CLI know the wall clock and say so (``clock="wall"``): their
time is carried onto the account's policy clock (``accounts.clock_epoch``). The wall time of writing
is kept beside (``wall_at``) whenever the two differ.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from domain.clock import REAL_DAY_SECONDS, PolicyClock
from store.models import AccountRow, AuditRow
from store.rows import _json

#: Policy and wall time closer than this are the same moment (the line shows one time).
SAME_MOMENT = timedelta(seconds=1)


class AuditEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    at: datetime
    account_id: str | None
    actor: str
    action: str
    decision: str
    rule: str | None
    details: dict[str, Any]
    wall_at: datetime | None = None


def account_clock(s: Session, account_id: str | None) -> PolicyClock | None:
    """The account's scaled policy clock, or None where it runs in real time (or is unknown)."""
    if account_id is None:
        return None
    row = s.get(AccountRow, account_id)
    if row is None or row.clock_epoch is None or row.clock_day_seconds is None:
        return None
    return PolicyClock(epoch=row.clock_epoch, day_seconds=row.clock_day_seconds)


def store_clock(s: Session, account_id: str, clock: PolicyClock) -> None:
    """Remember the clock an account's workflow runs on (only a scaled one differs from the wall)."""
    row = s.get(AccountRow, account_id)
    if row is not None:
        scaled = clock.day_seconds != REAL_DAY_SECONDS
        row.clock_epoch = clock.epoch if scaled else None
        row.clock_day_seconds = clock.day_seconds if scaled else None


RULE_LENGTH: int = AuditRow.__table__.c.rule.type.length  # type: ignore[attr-defined]


def audit(
    s: Session,
    *,
    at: datetime,
    clock: Literal["policy", "wall"],
    account_id: str | None,
    actor: str,
    action: str,
    decision: str,
    rule: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> bool:
    """Append one decision to the audit log (who decided what, under which rule, when); False if present.

    An identical line (same moment, actor, action, decision, rule and details) is written once: it can
    only come from a retried activity whose first commit went through, and a compliance log that shows
    one contact twice is wrong. Distinct events differ at least in their time or details.

    ``clock`` says which clock ``at`` is on: ``"policy"`` (workflows and activities) or ``"wall"``
    (the service and the CLI, carried onto the account's policy clock here).
    """
    if clock == "wall":
        wall_at = at
        scaled = account_clock(s, account_id)
        at = scaled.policy_now(at) if scaled is not None else at
    else:
        wall_at = datetime.now(UTC)
    if at.tzinfo is None or abs(at - wall_at) < SAME_MOMENT:  # a naive ``at`` is refused on flush
        wall_at = None
    if rule is not None and len(rule) > RULE_LENGTH:
        # a proposal that breaks many rules at once names them all: the column keeps what fits and
        # the line keeps the whole list, so the refusal is written (it was a 500) and nothing is lost
        details = {**(details or {}), "rules": rule}
        rule = rule[: RULE_LENGTH - 1] + "…"
    clean = _json(details)
    candidates = s.scalars(
        select(AuditRow).where(
            AuditRow.account_id.is_(None) if account_id is None else AuditRow.account_id == account_id,
            AuditRow.at == at,
            AuditRow.actor == actor,
            AuditRow.action == action,
            AuditRow.decision == decision,
        )
    ).all()
    if any(c.rule == rule and (c.details or {}) == clean for c in candidates):
        return False
    s.add(
        AuditRow(
            at=at,
            account_id=account_id,
            actor=actor,
            action=action,
            decision=decision,
            rule=rule,
            details=clean,
            wall_at=wall_at,
        )
    )
    s.flush()
    return True


def audit_entries(s: Session, account_id: str) -> list[AuditEntry]:
    """An account's audit log in the order things happened."""
    rows = s.scalars(
        select(AuditRow).where(AuditRow.account_id == account_id).order_by(AuditRow.at, AuditRow.id)
    ).all()
    return [_entry(r) for r in rows]


def latest_entries(
    s: Session, account_id: str, *, leave_out: Collection[str] = (), limit: int = 20
) -> list[AuditEntry]:
    """An account's last ``limit`` lines as they were written, newest first, without the ``leave_out``
    actions (the console's page shows decisions, not every read and contact of a long history)."""
    rows = s.scalars(
        select(AuditRow)
        .where(AuditRow.account_id == account_id, AuditRow.action.not_in(list(leave_out)))
        .order_by(AuditRow.id.desc())
        .limit(limit)
    ).all()
    return [_entry(r) for r in rows]


def _entry(r: AuditRow) -> AuditEntry:
    return AuditEntry(
        id=r.id,
        at=r.at,
        account_id=r.account_id,
        actor=r.actor,
        action=r.action,
        decision=r.decision,
        rule=r.rule,
        details=dict(r.details or {}),
        wall_at=r.wall_at,
    )


def purge_expired_audit(
    s: Session, now: datetime, retention_years: Mapping[str, int], *, dry_run: bool = False
) -> dict[str, int]:
    """Delete audit lines older than their profile's retention (CN 5 years, US 3 …); counts per profile.

    Retention is a floor set by law (kept at least this long) and a ceiling set by data-protection
    rules (not kept much longer), so the operator runs this on a schedule. Accounts of a profile not
    in ``retention_years`` are never touched.
    """
    counts: dict[str, int] = {}
    for profile, years in sorted(retention_years.items()):
        cutoff = now - timedelta(days=round(365.25 * years))
        ids = select(AccountRow.account_id).where(AccountRow.profile == profile)
        expired = select(func.count(AuditRow.id)).where(AuditRow.account_id.in_(ids), AuditRow.at < cutoff)
        counts[profile] = s.scalar(expired) or 0
        if not dry_run and counts[profile]:
            s.execute(delete(AuditRow).where(AuditRow.account_id.in_(ids), AuditRow.at < cutoff))
    return counts


def latest_event_at(s: Session) -> datetime | None:
    """The newest audit line's time: policy time runs ahead of the wall clock in a sped-up demo."""
    return s.scalar(select(func.max(AuditRow.at)))
