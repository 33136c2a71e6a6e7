"""Nothing a handler accepted is lost when the run hands over by continue-as-new.

Every test here runs with continue-as-new forced at every wake-up of every run (the test hook of
``AccountState``): the signal or update that wakes the run is then always taken in the same
activation as the hand-over, which is the moment the earlier code dropped it (it carried only the
ledger part of the state, so a plan the update had just answered 200 for, an opt-out confirmation, an
acknowledgement owed or a complaint decision to close went nowhere).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.accounts import Channel
from domain.plans import AgreedPlan, PlanKind, PlanProposal
from domain.timeline import AccountStatus
from store.accounts import account_snapshot
from store.contacts import opt_back_in
from store.ledger import active_plan_id
from tests.workflows.conftest import EVERY_WAKE, NY, Harness, at_local
from workflows.messages import ComplaintDecision, ComplaintIn, OptIn, OptOut

pytestmark = pytest.mark.parametrize("harness", [EVERY_WAKE], indirect=True)


async def test_a_plan_answered_at_a_hand_over_reaches_settlement(harness: Harness) -> None:
    account = await harness.open_account(due_in_days=-20)
    handle = harness.handle(account)
    # 23:00 in New York: the day's reminder went out at 10:00, the account is quiet, so the update
    # answers at once and the run, woken by it, hands over in that same activation
    await harness.skip_to(at_local(account.due_date + timedelta(days=21), 23))
    today = (await harness.now()).astimezone(NY).date()
    plan = await handle.execute_update(
        "propose_settlement",
        PlanProposal(
            kind=PlanKind.REINSTALMENT, first_due=today + timedelta(days=7), periods=2, period_days=14
        ),
        result_type=AgreedPlan,
    )
    agreed_at = await harness.now()
    await harness.skip_to(agreed_at + timedelta(days=3))

    status = await handle.query("status", result_type=AccountStatus)
    assert status.mode == "settlement" and status.plan is not None and status.plan.plan_id == plan.plan_id
    assert (await handle.describe()).workflow_type == "SettlementWorkflow"
    with harness.sessions.begin() as s:
        assert active_plan_id(s, account.account_id) == plan.plan_id
        snap = account_snapshot(s, account.account_id)
        assert snap is not None and snap.mode == "settlement"
    dunning_after = [c for c in harness.sent(account) if c["at"] >= agreed_at and c["purpose"] == "dunning"]
    assert dunning_after == []


async def test_an_opt_out_confirmation_owed_at_a_hand_over_is_sent_once(harness: Harness) -> None:
    account = await harness.open_account(due_in_days=-20)
    handle = harness.handle(account)
    await harness.skip_to(at_local(account.due_date + timedelta(days=21), 12))
    await handle.signal("opt_out", OptOut(channel="sms", source="debtor"))
    await harness.skip_to(at_local(account.due_date + timedelta(days=24), 12))
    templates = [c["template"] for c in harness.sent(account)]
    assert templates.count("opt_out_confirmation") == 1
    status = await handle.query("status", result_type=AccountStatus)
    assert status.opted_out == ["sms"]


async def test_an_opt_in_owed_at_a_hand_over_is_confirmed_once_and_texts_resume(harness: Harness) -> None:
    account = await harness.open_account(due_in_days=-20)
    handle = harness.handle(account)
    await harness.skip_to(at_local(account.due_date + timedelta(days=21), 12))
    opted_out_at = await harness.now()
    await handle.signal("opt_out", OptOut(channel="sms", source="cli"))  # the run stores this one
    await harness.skip_to(at_local(account.due_date + timedelta(days=23), 12))
    opted_in_at = await harness.now()
    with harness.sessions.begin() as s:  # what the inbound-SMS webhook does before it signals
        assert opt_back_in(s, account.account_id, Channel.SMS, opted_in_at)
    await handle.signal("opt_in", OptIn())
    await handle.signal("opt_in", OptIn())  # START twice
    await harness.skip_to(at_local(account.due_date + timedelta(days=30), 12))
    sent = harness.sent(account)
    templates = [c["template"] for c in sent]
    assert templates.count("opt_out_confirmation") == 1 and templates.count("opt_in_confirmation") == 1
    assert not [c for c in sent if c["channel"] == "sms" and opted_out_at < c["at"] < opted_in_at and
                c["purpose"] == "dunning"]  # fmt: skip
    # the reminder of day 29 goes by text again
    assert [c for c in sent if c["template"] == "early_reminder" and c["at"] > opted_in_at]
    status = await handle.query("status", result_type=AccountStatus)
    assert status.opted_out == []


async def test_an_acknowledgement_owed_at_a_hand_over_is_sent_once(harness: Harness) -> None:
    account = await harness.open_account(due_in_days=-20)
    handle = harness.handle(account)
    await harness.skip_to(at_local(account.due_date + timedelta(days=21), 12))
    filed_at = await harness.now()
    await handle.signal("complaint_filed", ComplaintIn(reason="too many calls", source="debtor"))
    await harness.skip_to(at_local(account.due_date + timedelta(days=25), 12))
    after = [c["template"] for c in harness.sent(account) if c["at"] >= filed_at]
    assert after == ["complaint_ack_due"]  # the one answer, and no dunning while the complaint is open


async def test_a_complaint_decision_to_close_at_a_hand_over_closes_the_account(harness: Harness) -> None:
    account = await harness.open_account(due_in_days=-20)
    handle = harness.handle(account)
    await harness.skip_to(at_local(account.due_date + timedelta(days=21), 12))
    await handle.signal("complaint_filed", ComplaintIn(reason="harassment", source="regulator"))
    await harness.skip_to(at_local(account.due_date + timedelta(days=23), 12))
    await handle.signal("complaint_resolved", ComplaintDecision(decision="close", note="upheld"))
    result = await handle.result()
    assert result.state == "closed_complaint_upheld"
    with harness.sessions.begin() as s:
        snap = account_snapshot(s, account.account_id)
    assert snap is not None and snap.mode == "closed"


async def test_every_wake_really_hands_over(harness: Harness) -> None:
    """The hook is live: a quiet week of dunning is many runs, each continuing the one before."""
    account = await harness.open_account(due_in_days=-3)
    await harness.skip_to(at_local(account.due_date + timedelta(days=9), 12))
    handle = harness.handle(account)
    history = await handle.fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    assert started.continued_execution_run_id  # this run was handed the state by an earlier one
    status = await handle.query("status", result_type=AccountStatus)
    # what each run learnt went through every hand-over: DPD 4's text, 5's call and 8's text
    assert [
        (c.template, (c.at.astimezone(NY).date() - account.due_date).days) for c in status.last_contacts
    ] == [
        ("early_reminder", 4),
        ("early_voice", 5),
        ("early_reminder", 8),
    ]
