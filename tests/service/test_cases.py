"""Cases: every request gets a number, an owner, a deadline from the jurisdiction's tiers, a reminder and an
escalation before that deadline, and an answer once (the case's clock runs as a workflow)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from domain.cases import AGENTS, SUPERVISORS, CaseKind, CaseStatus, ResponseTier, ResponseTiers, deadlines
from domain.profiles import load_profile
from service import cases as case_service
from store import cases as store
from tests.workflows import conftest as workflow_fixtures
from tests.workflows.conftest import Harness

NY = "America/New_York"
#: a worker (with the case workflow) on the module's time-skipping server
harness = workflow_fixtures.harness


# ---- deadlines (pure) -----------------------------------------------------------------------------
def test_a_business_day_tier_skips_the_weekend_and_ends_at_five() -> None:
    friday_evening = datetime(2026, 12, 4, 23, 30, tzinfo=UTC)  # 18:30 in New York
    due = deadlines(CaseKind.PLAN_REQUEST, friday_evening, ResponseTiers(), NY)
    assert due.due_at == datetime(2026, 12, 8, 22, 0, tzinfo=UTC)  # Tuesday 17:00 in New York
    assert friday_evening < due.remind_at < due.escalate_at < due.due_at
    span = due.due_at - friday_evening
    assert due.remind_at == friday_evening + span * 0.5 and due.escalate_at == friday_evening + span * 0.8


def test_each_jurisdiction_has_its_own_complaint_deadline() -> None:
    opened = datetime(2026, 12, 1, 12, tzinfo=UTC)
    days = {
        name: (
            deadlines(CaseKind.COMPLAINT, opened, load_profile(name).response_tiers, NY).due_at - opened
        ).days
        for name in ("US", "UK", "CN")
    }
    assert days == {"US": 15, "UK": 56, "CN": 15}  # CFPB, FCA DISP 1.6.2R (8 weeks), CN rules
    assert all(load_profile(n).response_tiers.complaint.source for n in ("US", "UK", "CN"))


def test_a_tier_names_what_is_wrong_with_it() -> None:
    with pytest.raises(ValidationError, match="give exactly one"):
        ResponseTier(days=3, business_days=2)
    with pytest.raises(ValidationError, match="escalate_at: must come after remind_at"):
        ResponseTier(days=3, remind_at=0.8, escalate_at=0.5)


# ---- the store and the case's clock -------------------------------------------------------------------
async def _open(harness: Harness, kind: CaseKind = CaseKind.INBOUND_TEXT, key: str | None = None) -> Any:
    return await case_service.open_case(
        harness.client, harness.sessions, harness.settings, source_key=key or f"test/{uuid.uuid4().hex}",
        account_id=None, kind=kind, channel="sms", summary="Can I pay next week instead?", actor="debtor",
    )  # fmt: skip


def _case(harness: Harness, case_id: int) -> store.CaseView:
    with harness.sessions.begin() as s:
        found = store.case(s, case_id)
    assert found is not None
    return found


async def _settled(harness: Harness, case_id: int, check: Any, what: str) -> store.CaseView:
    for _ in range(100):
        found = _case(harness, case_id)
        if check(found):
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}; case is {found}")


async def test_a_case_is_opened_once_reminded_escalated_and_marked_overdue_on_its_clock(
    harness: Harness,
) -> None:
    key = f"sms/{uuid.uuid4().hex}"
    first = await _open(harness, key=key)
    again = await _open(harness, key=key)  # the same message delivered twice: one case
    assert again.id == first.id and first.number == f"C-{first.id}"
    assert first.status == CaseStatus.OPEN and first.team == AGENTS and first.owner is None
    opened = await harness.now()
    due = await _settled(harness, first.id, lambda c: c.due_at > opened, "deadlines on the engine's clock")

    await harness.skip_to(due.remind_at + timedelta(minutes=1))
    reminded = await _settled(harness, first.id, lambda c: c.reminded_at is not None, "the reminder")
    assert reminded.status == CaseStatus.OPEN
    await harness.skip_to(due.escalate_at + timedelta(minutes=1))
    escalated = await _settled(
        harness, first.id, lambda c: c.status == CaseStatus.ESCALATED, "the escalation"
    )
    assert escalated.team == SUPERVISORS and escalated.escalated_at is not None
    assert escalated.escalated_at < escalated.due_at  # before the deadline, not after it
    await harness.skip_to(due.due_at + timedelta(minutes=1))
    late = await _settled(harness, first.id, lambda c: c.overdue, "overdue")
    with harness.sessions.begin() as s:
        overdue = store.queue(s, store.View.OVERDUE, "ann")
        actions = [e.action for e in store.history(s, first.id)]
    assert late.id in [c.id for c in overdue]
    assert actions == ["opened", "reminded", "escalated", "overdue"]

    assert await case_service.answer_case(harness.client, harness.sessions, first.id, "ann", "Called back")
    assert not await case_service.answer_case(harness.client, harness.sessions, first.id, "bob", "again")
    answered = _case(harness, first.id)
    assert (
        answered.status == CaseStatus.ANSWERED
        and answered.answer == "Called back"
        and answered.owner == "ann"
    )


async def test_an_answered_case_stops_its_clock(harness: Harness) -> None:
    case = await _open(harness)
    opened = await harness.now()
    due = await _settled(harness, case.id, lambda c: c.due_at > opened, "deadlines")
    with harness.sessions.begin() as s:
        store.claim(s, case.id, "ann", datetime.now(UTC))
        mine = store.queue(s, store.View.MINE, "ann")
    assert case.id in [c.id for c in mine]
    assert await case_service.answer_case(
        harness.client, harness.sessions, case.id, "ann", "Replied by phone"
    )
    result = await harness.client.get_workflow_handle(f"case-{case.number}").result()
    assert result == "answered"
    await harness.skip_to(due.due_at + timedelta(hours=1))
    after = _case(harness, case.id)
    assert after.reminded_at is None and after.escalated_at is None and not after.overdue
    with harness.sessions.begin() as s:
        assert case.id not in [c.id for c in store.queue(s, store.View.MINE, "ann")]
