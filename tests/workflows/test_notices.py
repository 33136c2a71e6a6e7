"""Every request of the debtor's is answered in writing, and the answer comes first (issue 14).

A complaint or dispute is acknowledged once, with its case number and deadline; its decision or
findings, with the jurisdiction's complaint route, reach the debtor before any further contact; a
plan request is declined, escalated or, unanswered, told so, before the next reminder. Each test
reads what the carrier simulator really delivered, in the debtor's own language.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from domain.accounts import Account
from domain.plans import AgreedPlan, PlanKind, PlanProposal
from domain.profiles import load_profile
from domain.timeline import AccountStatus
from store import notes
from store.accounts import account_snapshot
from store.audit import audit_entries
from tests.workflows.conftest import NY, Harness, at_local
from workflows.messages import (
    ComplaintDecision,
    ComplaintIn,
    DisputeIn,
    DisputeVerified,
    NegotiationAnswer,
    NegotiationRequest,
)

#: Every test here also runs with continue-as-new forced at every wake-up (tests/conftest.py): an
#: answer owed, or a plan request waiting for one, goes through every hand-over.
HAND_OVER_EVERY_WAKE_TOO = True

SHANGHAI = ZoneInfo("Asia/Shanghai")
US_ROUTE = load_profile("US").complaint_channel
CN_ROUTE = load_profile("CN").complaint_channel
assert US_ROUTE is not None and CN_ROUTE is not None


async def sent_since(harness: Harness, account: Account, since: datetime) -> list[dict]:
    """What reached the debtor from ``since`` on, oldest first, each with the text the carrier got."""
    bodies = {m.get("sid"): m.get("body") or "" for m in await harness.carrier_log(account.debtor.phone)}
    return [
        {**c, "body": bodies.get(c.get("provider_sid"), "")}
        for c in harness.sent(account)
        if c["at"] >= since
    ]


def templates(contacts: list[dict]) -> list[str]:
    return [c["template"] for c in contacts]


def decision_day(filed: datetime, zone: ZoneInfo, days: int = 15) -> str:
    return (filed + timedelta(days=days)).astimezone(zone).date().isoformat()


# ---- acknowledgements --------------------------------------------------------------------------------
async def test_a_complaint_is_acknowledged_once_with_its_case_number_and_decision_date(
    harness: Harness,
) -> None:
    account = await harness.open_account(due_in_days=-20, phone="+12125550140")
    handle = harness.handle(account)
    await harness.skip_to(at_local(account.due_date + timedelta(days=21), 12))
    filed = await harness.now()
    await handle.signal("complaint_filed", ComplaintIn(reason="note #1", case_id="C-1042"))
    await harness.skip_to(at_local(account.due_date + timedelta(days=24), 12))

    told = await sent_since(harness, account, filed)
    assert templates(told) == ["complaint_ack_case"]  # one answer, and no dunning while it is open
    text = told[0]["body"]
    assert "case C-1042" in text and f"decision by {decision_day(filed, NY)}" in text
    history = await handle.query("history", result_type=list[dict[str, str]])
    assert any(e["kind"] == "complaint_filed" and "C-1042" in e["detail"] for e in history)
    assert any(e["kind"] == "notice" and e["detail"] == "complaint_ack_case: sent" for e in history)
    await harness.finish(account.workflow_id)


async def test_in_chinese_the_acknowledgement_and_the_decision_name_the_case_date_and_the_regulator(
    harness: Harness,
) -> None:
    account = await harness.open_account(
        due_in_days=-20,
        phone="+8613800138042",
        zone="Asia/Shanghai",
        profile="CN",
        currency="CNY",
        language="zh-CN",
    )
    handle = harness.handle(account)
    await harness.skip_to(at_local(account.due_date + timedelta(days=21), 12, SHANGHAI))
    filed = await harness.now()
    await handle.signal("complaint_filed", ComplaintIn(reason="note #1", case_id="C-2077", sla_days=10))
    await harness.skip_to(at_local(account.due_date + timedelta(days=26), 12, SHANGHAI))
    decided = await harness.now()
    await handle.signal("complaint_resolved", ComplaintDecision(decision="rejected", case_id="C-2077"))
    await harness.skip_to(at_local(account.due_date + timedelta(days=28), 12, SHANGHAI))

    told = await sent_since(harness, account, filed)
    assert templates(told)[:2] == ["complaint_ack_case", "complaint_rejected"]
    ack, decision = told[0]["body"], told[1]["body"]
    assert "编号C-2077" in ack and f"{decision_day(filed, SHANGHAI, 10)}前告知您处理结果" in ack
    assert "投诉不成立" in decision
    assert CN_ROUTE.authority_in("zh-CN") in decision and CN_ROUTE.contact in decision
    assert told[1]["at"] >= decided
    assert templates(told).count("complaint_rejected") == 1
    await harness.finish(account.workflow_id)


async def test_a_dispute_is_acknowledged_with_its_case_and_its_findings_come_before_any_reminder(
    harness: Harness,
) -> None:
    account = await harness.open_account(due_in_days=-20, phone="+12125550141")
    handle = harness.handle(account)
    await harness.skip_to(at_local(account.due_date + timedelta(days=21), 12))
    filed = await harness.now()
    await handle.signal("dispute_filed", DisputeIn(reason="note #1", case_id="D-77"))
    # day 26 at noon: its call (10:00) is due the moment collection may resume
    await harness.skip_to(at_local(account.due_date + timedelta(days=26), 12))
    verified = await harness.now()
    await handle.signal("dispute_verified", DisputeVerified(note="statement mailed", case_id="D-77"))
    await harness.skip_to(at_local(account.due_date + timedelta(days=29), 12))

    told = await sent_since(harness, account, filed)
    assert templates(told)[:2] == ["dispute_ack_case", "dispute_findings"]
    assert "case D-77" in told[0]["body"] and "until we have checked it" in told[0]["body"]
    findings = told[1]["body"]
    assert US_ROUTE.authority_in("en") in findings and US_ROUTE.contact in findings
    assert "USD 500.00 is owed" in findings  # what the debtor owes, as verified
    resumed = told[2:]
    assert resumed and all(c["purpose"] == "dunning" for c in resumed)  # collection resumes after it
    assert resumed[0]["template"] == "early_voice" and resumed[0]["at"] - told[1]["at"] < timedelta(minutes=1)
    assert told[1]["at"] >= verified and templates(told).count("dispute_findings") == 1
    await harness.finish(account.workflow_id)


# ---- a complaint's decision --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("decision", "says"), [("upheld", "upheld your complaint"), ("rejected", "not upheld")]
)
async def test_a_complaint_decision_reaches_the_debtor_once_with_the_regulator_before_any_contact(
    harness: Harness, decision: str, says: str
) -> None:
    account = await harness.open_account(due_in_days=-20, phone="+12125550143")
    handle = harness.handle(account)
    await harness.skip_to(at_local(account.due_date + timedelta(days=21), 12))
    filed = await harness.now()
    await handle.signal("complaint_filed", ComplaintIn(reason="note #1"))  # no case: the date alone
    await harness.skip_to(at_local(account.due_date + timedelta(days=26), 12))
    decided = await harness.now()
    await handle.signal("complaint_resolved", ComplaintDecision(decision=decision))  # type: ignore[arg-type]
    await handle.signal("complaint_resolved", ComplaintDecision(decision=decision))  # type: ignore[arg-type]
    await harness.skip_to(at_local(account.due_date + timedelta(days=29), 12))

    told = await sent_since(harness, account, filed)
    assert templates(told)[:2] == ["complaint_ack_due", f"complaint_{decision}"]
    assert f"decision by {decision_day(filed, NY)}" in told[0]["body"] and "case" not in told[0]["body"]
    text = told[1]["body"]
    assert says in text and US_ROUTE.authority_in("en") in text and US_ROUTE.contact in text
    assert told[1]["at"] >= decided
    # collection resumed, and only after the decision: the day's call, due the moment the hold was
    # lifted, waited for it
    resumed = told[2:]
    assert resumed and all(c["purpose"] == "dunning" for c in resumed)
    assert resumed[0]["template"] == "early_voice" and resumed[0]["at"] - told[1]["at"] < timedelta(minutes=1)
    assert templates(told).count(f"complaint_{decision}") == 1  # a repeated decision changes nothing
    assert (await handle.query("status", result_type=AccountStatus)).holds == []
    await harness.finish(account.workflow_id)


async def test_a_complaint_upheld_with_a_close_is_told_once_and_the_account_closes(harness: Harness) -> None:
    account = await harness.open_account(due_in_days=-20, phone="+12125550144")
    handle = harness.handle(account)
    await harness.skip_to(at_local(account.due_date + timedelta(days=21), 12))
    filed = await harness.now()
    await handle.signal("complaint_filed", ComplaintIn(reason="note #1", case_id="C-9"))
    await harness.skip_to(at_local(account.due_date + timedelta(days=22), 12))
    await handle.signal("complaint_resolved", ComplaintDecision(decision="close", case_id="C-9"))
    assert (await handle.result()).state == "closed_complaint_upheld"

    told = await sent_since(harness, account, filed)
    assert templates(told) == ["complaint_ack_case", "complaint_closed"]
    assert "closed your account" in told[1]["body"] and US_ROUTE.contact in told[1]["body"]


# ---- plan requests ---------------------------------------------------------------------------------
async def request_plan(harness: Harness, account: Account) -> datetime:
    """Day 21 at noon: the debtor asks for a plan (dunning pauses for 7 days)."""
    await harness.skip_to(at_local(account.due_date + timedelta(days=21), 12))
    asked = await harness.now()
    await harness.handle(account).signal(
        "negotiation_requested", NegotiationRequest(channel="sms", case_id="P-31")
    )
    return asked


async def test_a_declined_plan_request_is_told_with_its_reason_before_the_reminders_resume(
    harness: Harness,
) -> None:
    account = await harness.open_account(due_in_days=-20, phone="+12125550145")
    handle = harness.handle(account)
    asked = await request_plan(harness, account)
    # day 22 at noon: its reminder (10:00) waits for the pause; declined now, it is due at once
    await harness.skip_to(at_local(account.due_date + timedelta(days=22), 12))
    why = notes.keep(
        harness.sessions, account.account_id, "ana", "plan_answer", "we need proof of income first"
    )
    await handle.signal(
        "negotiation_answered", NegotiationAnswer(decision="declined", reason=why, actor="ana")
    )
    await harness.skip_to(at_local(account.due_date + timedelta(days=23), 12))

    told = await sent_since(harness, account, asked)
    assert templates(told)[:2] == ["plan_request_declined", "early_reminder"]
    assert "we need proof of income first" in told[0]["body"] and "note #" not in told[0]["body"]
    with harness.sessions.begin() as s:
        snap = account_snapshot(s, account.account_id)
        declined = [e for e in audit_entries(s, account.account_id) if e.decision == "plan_request_declined"]
    assert snap is not None and snap.holds == []
    assert len(declined) == 1 and declined[0].actor == "ana"
    await harness.finish(account.workflow_id)


async def test_an_escalated_plan_request_holds_until_its_new_date_and_then_is_told_before_dunning(
    harness: Harness,
) -> None:
    account = await harness.open_account(due_in_days=-20, phone="+12125550146")
    handle = harness.handle(account)
    asked = await request_plan(harness, account)
    await harness.skip_to(at_local(account.due_date + timedelta(days=22), 12))
    by = (await harness.now()) + timedelta(days=10)  # beyond the 7-day pause
    await handle.signal("negotiation_answered", NegotiationAnswer(decision="escalated", answer_by=by))
    await harness.skip_to(by - timedelta(hours=2))

    told = await sent_since(harness, account, asked)
    assert templates(told) == ["plan_request_escalated"]  # and nothing else past the first 7 days
    assert f"answer you by {by.astimezone(NY).date().isoformat()}" in told[0]["body"]
    status = await handle.query("status", result_type=AccountStatus)
    assert status.holds == ["negotiation"]
    with harness.sessions.begin() as s:
        snap = account_snapshot(s, account.account_id)
    assert snap is not None and [(h.kind, h.until) for h in snap.holds] == [("negotiation", by)]

    await harness.skip_to(by + timedelta(days=4))  # day 36: the middle stage's first call is on 35
    told = await sent_since(harness, account, asked)
    assert templates(told)[:2] == ["plan_request_escalated", "plan_request_lapsed"]
    assert told[1]["at"] >= by and "now with a supervisor" in told[1]["body"]
    assert told[2:] and all(c["purpose"] == "dunning" for c in told[2:])
    await harness.finish(account.workflow_id)


async def test_an_unanswered_plan_request_is_told_before_the_first_reminder_after_its_pause(
    harness: Harness,
) -> None:
    account = await harness.open_account(due_in_days=-20, phone="+12125550147")
    handle = harness.handle(account)
    asked = await request_plan(harness, account)
    await harness.skip_to(at_local(account.due_date + timedelta(days=31), 12))

    told = await sent_since(harness, account, asked)
    assert templates(told)[0] == "plan_request_lapsed"  # the first thing after the pause, not a reminder
    assert told[0]["at"] >= asked + timedelta(days=7)
    assert templates(told).count("plan_request_lapsed") == 1
    assert told[1:] and all(c["purpose"] == "dunning" for c in told[1:])
    history = await handle.query("history", result_type=list[dict[str, str]])
    assert any(e["kind"] == "plan_request_lapsed" and "P-31" in e["detail"] for e in history)
    assert any(e["kind"] == "notice" and e["detail"] == "plan_request_lapsed: sent" for e in history)
    with harness.sessions.begin() as s:
        lapsed = [e for e in audit_entries(s, account.account_id) if e.decision == "plan_request_lapsed"]
    assert len(lapsed) == 1 and lapsed[0].rule == "plan_request.unanswered"
    await harness.finish(account.workflow_id)


async def test_a_plan_agreed_answers_the_request_and_nothing_says_otherwise(harness: Harness) -> None:
    account = await harness.open_account(due_in_days=-20, phone="+12125550148")
    handle = harness.handle(account)
    asked = await request_plan(harness, account)
    today = (await harness.now()).astimezone(NY).date()
    await handle.execute_update(
        "propose_settlement",
        PlanProposal(kind=PlanKind.PROMISE_TO_PAY, first_due=today + timedelta(days=20)),
        result_type=AgreedPlan,
    )
    await handle.signal("negotiation_answered", NegotiationAnswer(decision="declined", reason="too late"))
    await harness.skip_to(at_local(account.due_date + timedelta(days=31), 12))
    told = templates(await sent_since(harness, account, asked))
    assert told == ["plan_confirmation"]  # no lapse, no refusal of a plan that was agreed
    await harness.finish(account.workflow_id)


# ---- what the service sends ------------------------------------------------------------------------
def test_a_plan_answer_names_what_is_missing_and_a_case_number_is_short_and_plain() -> None:
    with pytest.raises(ValidationError, match="reason: required"):
        NegotiationAnswer(decision="declined")
    with pytest.raises(ValidationError, match="answer_by: required"):
        NegotiationAnswer(decision="escalated")
    with pytest.raises(ValidationError, match="answer_by: must be timezone-aware"):
        NegotiationAnswer(decision="escalated", answer_by=datetime(2026, 12, 8, 17))
    with pytest.raises(ValidationError, match="reason"):
        NegotiationAnswer(decision="declined", reason="x" * 81)
    for bad in ("C 1042", "see https://x.example", "C-" + "1" * 30, ""):
        with pytest.raises(ValidationError, match="case_id"):
            ComplaintIn(reason="r", case_id=bad)
    assert DisputeIn(reason="r", case_id="D-77").case_id == "D-77"
