"""An account's latest agreed plan as it is on record: the plan row, its schedule and the waiver decision.

The debtor's written agreement (``service/agreement.py``) is read from here, not from the workflow:
the record outlives the run (a completed or broken plan is still something the debtor agreed), and
who approved a waiver, and when, is only on the approval queue's row.
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session

from domain.plans import Instalment
from store.models import PlanRow, WaiverRequestRow


class PlanRecord(BaseModel):
    """One stored plan with its instalments in order, and, for a fee waiver, the approval."""

    model_config = ConfigDict(frozen=True)

    plan_id: str
    account_id: str
    kind: str
    status: str
    currency: str
    total_minor: int
    waived_minor: int
    agreed_at: datetime
    proposed_by: str
    approver: str | None
    instalments: list[Instalment]
    #: the supervisor's decision on the approval queue (None: agreed without it, or before the queue)
    waiver_decided_by: str | None = None
    waiver_decided_at: datetime | None = None

    @property
    def end_date(self) -> date:
        return self.instalments[-1].due_date


def latest_plan(s: Session, account_id: str) -> PlanRecord | None:
    """The plan agreed last on the account, whatever its status now (None: none was ever agreed)."""
    row = s.scalars(
        select(PlanRow)
        .where(PlanRow.account_id == account_id)
        .order_by(PlanRow.agreed_at.desc(), PlanRow.plan_id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    decision = s.scalars(
        select(WaiverRequestRow)
        .where(WaiverRequestRow.plan_id == row.plan_id, WaiverRequestRow.status == "approved")
        .order_by(WaiverRequestRow.decided_at.desc())
        .limit(1)
    ).first()
    return PlanRecord(
        plan_id=row.plan_id,
        account_id=row.account_id,
        kind=row.kind,
        status=row.status,
        currency=row.currency,
        total_minor=row.total_minor,
        waived_minor=row.waived_minor,
        agreed_at=row.agreed_at,
        proposed_by=row.proposed_by,
        approver=row.approver,
        instalments=[
            Instalment(seq=i.seq, due_date=i.due_date, amount=i.amount_minor) for i in row.instalments
        ],
        waiver_decided_by=decision.decided_by if decision is not None else None,
        waiver_decided_at=decision.decided_at if decision is not None else None,
    )
