"""The case store: open a case once, claim it, note it, remind, escalate, answer it once; the queues.

Opening is idempotent by ``source_key`` (a redelivered webhook, a form posted twice open one case). Each
step is once: a reminder or an escalation that already happened, or an answer already given, changes
nothing and says so (the case workflow's activities retry safely).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from domain.cases import AGENTS, OPEN_STATUSES, SUPERVISORS, CaseKind, CaseStatus, Deadlines, case_number
from store.models import CaseEventRow, CaseRow


class View(StrEnum):
    MINE = "mine"
    TEAM = "team"
    OVERDUE = "overdue"
    ESCALATED = "escalated"


@dataclass(frozen=True)
class CaseView:
    id: int
    number: str
    account_id: str | None
    kind: CaseKind
    status: CaseStatus
    channel: str
    summary: str
    owner: str | None
    team: str
    opened_at: datetime
    remind_at: datetime
    escalate_at: datetime
    due_at: datetime
    reminded_at: datetime | None
    escalated_at: datetime | None
    overdue_at: datetime | None
    answered_at: datetime | None
    answer: str | None

    @property
    def overdue(self) -> bool:
        """Past its deadline unanswered (the case workflow marks it, on the engine's clock)."""
        return self.status != CaseStatus.ANSWERED and self.overdue_at is not None


@dataclass(frozen=True)
class CaseEvent:
    at: datetime
    actor: str
    action: str
    note: str


def _view(row: CaseRow) -> CaseView:
    return CaseView(
        id=row.id,
        number=case_number(row.id),
        account_id=row.account_id,
        kind=CaseKind(row.kind),
        status=CaseStatus(row.status),
        channel=row.channel,
        summary=row.summary,
        owner=row.owner,
        team=row.team,
        opened_at=row.opened_at,
        remind_at=row.remind_at,
        escalate_at=row.escalate_at,
        due_at=row.due_at,
        reminded_at=row.reminded_at,
        escalated_at=row.escalated_at,
        overdue_at=row.overdue_at,
        answered_at=row.answered_at,
        answer=row.answer,
    )


def _event(s: Session, case_id: int, at: datetime, actor: str, action: str, note: str = "") -> None:
    s.add(CaseEventRow(case_id=case_id, at=at, actor=actor, action=action, note=note[:2000]))


def open_case(
    s: Session,
    *,
    source_key: str,
    account_id: str | None,
    kind: CaseKind,
    channel: str,
    summary: str,
    deadlines: Deadlines,
    actor: str,
    now: datetime,
) -> tuple[CaseView, bool]:
    """The case for ``source_key``: (case, True) when opened now, (the earlier one, False) when it exists."""
    found = s.scalars(select(CaseRow).where(CaseRow.source_key == source_key)).first()
    if found is not None:
        return _view(found), False
    row = CaseRow(
        source_key=source_key,
        account_id=account_id,
        kind=kind.value,
        status=CaseStatus.OPEN.value,
        channel=channel,
        summary=summary[:2000],
        owner=None,
        team=AGENTS,
        opened_at=now,
        remind_at=deadlines.remind_at,
        escalate_at=deadlines.escalate_at,
        due_at=deadlines.due_at,
    )
    s.add(row)
    s.flush()
    _event(s, row.id, now, actor, "opened", f"{kind.value} by {channel}")
    return _view(row), True


def case(s: Session, case_id: int) -> CaseView | None:
    row = s.get(CaseRow, case_id)
    return _view(row) if row is not None else None


def history(s: Session, case_id: int) -> list[CaseEvent]:
    rows = s.scalars(select(CaseEventRow).where(CaseEventRow.case_id == case_id).order_by(CaseEventRow.id))
    return [CaseEvent(r.at, r.actor, r.action, r.note) for r in rows]


def _locked(s: Session, case_id: int) -> CaseRow:
    row = s.scalars(select(CaseRow).where(CaseRow.id == case_id).with_for_update()).first()
    if row is None:
        raise KeyError(case_id)
    return row


def claim(s: Session, case_id: int, person: str, now: datetime) -> CaseView:
    row = _locked(s, case_id)
    if row.owner != person:
        before = row.owner
        row.owner = person
        _event(s, case_id, now, person, "claimed", f"from {before}" if before else "")
    return _view(row)


def note(s: Session, case_id: int, person: str, text: str, now: datetime) -> None:
    log(s, case_id, person, "noted", text, now)


def log(s: Session, case_id: int, person: str, action: str, text: str, now: datetime) -> None:
    """A line of the case's history (a note, a reply texted to the debtor …)."""
    _locked(s, case_id)
    _event(s, case_id, now, person, action, text)


def remind(s: Session, case_id: int, now: datetime) -> bool:
    """The owner's reminder, once, while the case is open."""
    row = _locked(s, case_id)
    if row.reminded_at is not None or row.status == CaseStatus.ANSWERED.value:
        return False
    row.reminded_at = now
    _event(s, case_id, now, "workflow", "reminded", f"answer due {row.due_at:%Y-%m-%d %H:%M %Z}")
    return True


def escalate(s: Session, case_id: int, now: datetime, actor: str = "workflow", why: str = "") -> bool:
    """A supervisor takes the case over, once, while it is unanswered."""
    row = _locked(s, case_id)
    if row.escalated_at is not None or row.status == CaseStatus.ANSWERED.value:
        return False
    row.escalated_at, row.status, row.team = now, CaseStatus.ESCALATED.value, SUPERVISORS
    _event(s, case_id, now, actor, "escalated", why or f"unanswered; due {row.due_at:%Y-%m-%d %H:%M %Z}")
    return True


def overdue(s: Session, case_id: int, now: datetime) -> bool:
    """Past its deadline unanswered: marked once."""
    row = _locked(s, case_id)
    if row.overdue_at is not None or row.status == CaseStatus.ANSWERED.value:
        return False
    row.overdue_at = now
    _event(s, case_id, now, "workflow", "overdue", f"was due {row.due_at:%Y-%m-%d %H:%M %Z}")
    return True


def set_deadlines(s: Session, case_id: int, deadlines: Deadlines) -> None:
    """The deadlines on the case workflow's clock (the one its timers run on)."""
    row = _locked(s, case_id)
    row.remind_at, row.escalate_at, row.due_at = deadlines.remind_at, deadlines.escalate_at, deadlines.due_at


def answer(s: Session, case_id: int, person: str, text: str, now: datetime) -> bool:
    """The case's answer, once; False when it was already answered (nothing changes)."""
    row = _locked(s, case_id)
    if row.status == CaseStatus.ANSWERED.value:
        return False
    row.status, row.answered_at, row.answer = CaseStatus.ANSWERED.value, now, text[:2000]
    row.owner = row.owner or person
    _event(s, case_id, now, person, "answered", text)
    return True


def open_case_of(s: Session, account_id: str, kind: CaseKind) -> CaseView | None:
    """The account's oldest open case of ``kind`` (the one an answer through another path closes)."""
    row = s.scalars(
        select(CaseRow)
        .where(
            CaseRow.account_id == account_id,
            CaseRow.kind == kind.value,
            CaseRow.status.in_([st.value for st in OPEN_STATUSES]),
        )
        .order_by(CaseRow.id)
    ).first()
    return _view(row) if row is not None else None


def cases_of(s: Session, account_id: str) -> list[CaseView]:
    rows = s.scalars(select(CaseRow).where(CaseRow.account_id == account_id).order_by(CaseRow.id.desc()))
    return [_view(r) for r in rows]


def queue(s: Session, view: View, person: str, limit: int = 200) -> list[CaseView]:
    """A work queue, soonest due first: ``mine`` (claimed by the person), ``team`` (open and unclaimed,
    agents' and supervisors'), ``overdue`` (past due, anyone's), ``escalated`` (the supervisors')."""
    open_ = CaseRow.status.in_([st.value for st in OPEN_STATUSES])
    query = select(CaseRow).where(open_)
    if view == View.MINE:
        query = query.where(CaseRow.owner == person)
    elif view == View.TEAM:
        query = query.where(or_(CaseRow.owner.is_(None), CaseRow.status == CaseStatus.ESCALATED.value))
    elif view == View.OVERDUE:
        query = query.where(CaseRow.overdue_at.is_not(None))
    else:
        query = query.where(CaseRow.status == CaseStatus.ESCALATED.value)
    return [_view(r) for r in s.scalars(query.order_by(CaseRow.due_at, CaseRow.id).limit(limit))]
