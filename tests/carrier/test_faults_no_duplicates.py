"""The carrier answers 500 or 429, then works: the send is retried with backoff and goes out once.

Runs the real account workflow, its real send activity with the workflow's own retry policy
(``SEND_RETRY``: 2 s, then doubling) and the real twilio SDK against the carrier simulator, whose
fault injection refuses the next ``Messages.json`` creates *without* creating a message (what a
Twilio 5xx / 429 means). What must hold afterwards: the carrier has exactly one message for the
account, the database one attempt, the audit one ``sent`` line after the ``retry`` lines.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType

from domain.accounts import Channel
from domain.timeline import AccountStatus
from store.contacts import contact_attempts
from tests.conftest import unplaced_phone
from tests.workflows.conftest import Harness, at_local
from tests.workflows.conftest import harness as harness  # the fixture, for this directory


def fictional_phone(last_two: int = 42) -> str:
    """A fictional number, unique in the session, whose last digits mean "delivered" to the simulator.

    Unique because the carrier's log is read by number: the random one of a hundred this used to be
    met another test's account now and then, and its reminders counted as duplicates here."""
    return unplaced_phone(last_two)


async def settled_sms(h: Harness, account: Any, within: float = 20.0) -> AccountStatus:
    handle = h.handle(account)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        status = await handle.query("status", result_type=AccountStatus)
        if any(c.channel == "sms" and c.outcome not in ("sent", "denied") for c in status.last_contacts):
            return status
        assert loop.time() < deadline, status.last_contacts
        await asyncio.sleep(0.1)


async def send_activity_events(h: Harness, account: Any) -> tuple[Any, Any]:
    """The ``send_contact`` activity's scheduled and started events (the started one is the last attempt)."""
    history = await h.client.get_workflow_handle(account.workflow_id).fetch_history()
    scheduled = {
        e.event_id: e
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name == "send_contact"
    }
    started = [
        e
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        and e.activity_task_started_event_attributes.scheduled_event_id in scheduled
    ]
    assert len(started) == 1, started  # one SMS, one send activity
    return scheduled[started[0].activity_task_started_event_attributes.scheduled_event_id], started[0]


@pytest.mark.parametrize(("status", "failures"), [(500, 2), (429, 1)])
async def test_provider_error_then_success_sends_exactly_once(
    harness: Harness, simulator: Any, status: int, failures: int
) -> None:
    h = harness
    phone = fictional_phone()
    simulator.control("DELETE", "/_sim/faults").raise_for_status()
    simulator.control(
        "POST",
        "/_sim/faults",
        json={"status": status, "count": failures, "method": "POST", "path": "/Messages.json"},
    ).raise_for_status()
    try:
        # DPD 4's reminder (the first after the grace) goes out tomorrow at 10:00 (a future timer,
        # whatever the clock says now)
        account = await h.open_account(due_in_days=-3, phone=phone)
        await h.skip_to(at_local(account.due_date + timedelta(days=4), 11))
        state = await settled_sms(h, account)
    finally:
        simulator.control("DELETE", "/_sim/faults")

    # the carrier refused `failures` creates for this number and then accepted exactly one
    refused = [
        r for r in simulator.control("GET", "/_sim/rejected").json() if r["params"].get("To") == [phone]
    ]
    assert [r["status"] for r in refused] == [status] * failures
    assert all(r["path"].endswith("/Messages.json") for r in refused)
    carrier = await h.carrier_log(phone)
    assert len(carrier) == 1, carrier
    assert carrier[0]["status"] == "delivered"
    stats = simulator.control("GET", "/_sim/stats").json()
    assert not [d for d in stats["duplicates"] if d["to"] == phone]

    # the activity: `failures` retryable attempts, then one send, one audit 'sent' line
    lines = [c for c in h.contacts(account) if c["channel"] == "sms"]
    retries = [c for c in lines if c["decision"] == "retry"]
    sent = [c for c in lines if c["decision"] == "sent"]
    assert [(c["rule"], c["attempt"]) for c in retries] == [
        (f"provider.http_{status}", str(n)) for n in range(1, failures + 1)
    ]
    assert len(sent) == 1 and sent[0]["attempt"] == str(failures + 1)
    assert sent[0]["provider_sid"] == carrier[0]["sid"]
    assert [c["decision"] for c in h.sent(account) if c["channel"] == "sms"] == ["sent"]
    # backoff, from the workflow's history: the successful attempt started after 2 s (+ 4 s, ...)
    scheduled, started = await send_activity_events(h, account)
    assert started.activity_task_started_event_attributes.attempt == failures + 1
    policy = scheduled.activity_task_scheduled_event_attributes.retry_policy
    assert (policy.initial_interval.seconds, policy.backoff_coefficient) == (2, 2.0)
    waited = started.event_time.ToDatetime() - scheduled.event_time.ToDatetime()
    assert waited >= timedelta(seconds=sum(2 * 2**n for n in range(failures))), waited

    # one attempt in the database, the workflow heard one delivered text
    with h.sessions.begin() as s:
        attempts = [a for a in contact_attempts(s, account.account_id) if a.channel == Channel.SMS]
    assert [(a.provider_sid, a.outcome) for a in attempts] == [(carrier[0]["sid"], "delivered")]
    assert [c.outcome for c in state.last_contacts if c.channel == "sms"] == ["delivered"]
