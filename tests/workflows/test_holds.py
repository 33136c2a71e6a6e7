"""Complaints, disputes and cease requests: contact stops at once, the debtor hears back once, and the
hold is visible to operators (status query, search attribute, audit)."""

from __future__ import annotations

from datetime import timedelta

from domain.accounts import Channel
from domain.timeline import AccountStatus
from store.accounts import account_snapshot
from store.audit import audit_entries
from tests.workflows.conftest import Harness, at_local
from workflows.messages import CeaseRequest, ComplaintDecision, ComplaintIn, DisputeIn, DisputeVerified

#: Every test here also runs with continue-as-new forced at every wake-up (tests/conftest.py).
HAND_OVER_EVERY_WAKE_TOO = True


def templates(harness: Harness, account) -> list[str]:  # type: ignore[no-untyped-def]
    return [c["template"] for c in harness.sent(account)]


async def test_complaint_pauses_everything_acknowledges_once_and_escalates_a_missed_sla(
    harness: Harness,
) -> None:
    account = await harness.open_account(due_in_days=-20, phone="+12125550130")
    handle = harness.handle(account)
    await harness.skip_to(at_local(account.due_date + timedelta(days=22), 12))
    before = len(harness.sent(account))
    assert before >= 1  # dunning was running

    await handle.signal("complaint_filed", ComplaintIn(reason="called me at work", sla_days=10))
    await handle.signal("complaint_filed", ComplaintIn(reason="and again", sla_days=10))  # a second one
    await harness.skip_to(at_local(account.due_date + timedelta(days=40), 12))

    after = templates(harness, account)[before:]
    # one answer per complaint, each with the decision date, and no dunning at all
    assert after == ["complaint_ack_due", "complaint_ack_due"]
    status = await handle.query("status", result_type=AccountStatus)
    assert status.holds == ["complaint"] and status.complaint_escalated
    with harness.sessions.begin() as s:
        audit = audit_entries(s, account.account_id)
    escalations = [e for e in audit if e.decision == "complaint_escalated"]
    assert len(escalations) == 1 and escalations[0].rule == "complaint.sla"

    # the investigator decides: collection resumes
    await handle.signal("complaint_resolved", ComplaintDecision(decision="resume", note="no breach found"))
    await harness.skip_to(at_local(account.due_date + timedelta(days=55), 12))
    resumed = templates(harness, account)[before + 2 :]
    # the decision first (tests/workflows/test_notices.py), then collection again
    assert resumed[0] == "complaint_decision" and len(resumed) > 1
    assert not [t for t in resumed if t.startswith("complaint_ack")]
    status = await handle.query("status", result_type=AccountStatus)
    assert status.holds == []
    await harness.finish(account.workflow_id)


async def test_an_upheld_complaint_closes_the_account(harness: Harness) -> None:
    account = await harness.open_account(due_in_days=-30, phone="+12125550131")
    handle = harness.handle(account)
    await handle.signal("complaint_filed", ComplaintIn(reason="harassment", source="regulator"))
    await handle.signal("complaint_resolved", ComplaintDecision(decision="close", note="upheld"))
    result = await handle.result()
    assert result.state == "closed_complaint_upheld"
    with harness.sessions.begin() as s:
        snap = account_snapshot(s, account.account_id)
    assert snap is not None and snap.mode == "closed"


async def test_a_dispute_holds_collection_until_verified(harness: Harness) -> None:
    account = await harness.open_account(due_in_days=-10, phone="+12125550132")
    handle = harness.handle(account)
    await handle.signal("dispute_filed", DisputeIn(reason="not my debt"))
    await harness.skip_to(at_local(account.due_date + timedelta(days=40), 12))
    assert templates(harness, account) == ["dispute_ack"]
    status = await handle.query("status", result_type=AccountStatus)
    assert status.holds == ["dispute"]

    await handle.signal("dispute_verified", DisputeVerified(note="contract and statement mailed"))
    await handle.signal("dispute_verified", DisputeVerified(note="duplicate"))  # harmless
    await harness.skip_to(at_local(account.due_date + timedelta(days=50), 12))
    sent = templates(harness, account)
    assert sent[1] == "dispute_findings" and sent.count("dispute_findings") == 1 and len(sent) > 2
    assert (await handle.query("status", result_type=AccountStatus)).holds == []
    await harness.finish(account.workflow_id)


async def test_cease_one_medium_keeps_the_other_and_cease_all_stops_everything(harness: Harness) -> None:
    voice_off = await harness.open_account(due_in_days=-1, phone="+12125550133")
    await harness.handle(voice_off).signal("cease_requested", CeaseRequest(channel=Channel.VOICE))
    everything = await harness.open_account(due_in_days=-1, phone="+12125550134")
    await harness.handle(everything).signal("cease_requested", CeaseRequest(channel=None))
    await harness.skip_to(at_local(voice_off.due_date + timedelta(days=45), 12))

    channels = [c["channel"] for c in harness.sent(voice_off)]
    assert "voice" not in channels and channels.count("sms") >= 3
    assert templates(harness, everything) == ["cease_ack"]
    status = await harness.handle(everything).query("status", result_type=AccountStatus)
    assert status.holds == ["cease"]
    assert (await harness.handle(voice_off).query("status", result_type=AccountStatus)).holds == [
        "cease:voice"
    ]
    await harness.finish(voice_off.workflow_id)
    await harness.finish(everything.workflow_id)
