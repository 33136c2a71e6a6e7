"""One write per wake and no patch markers in new runs (issue 18), on the real server and database.

A stage that begins on a day with a contact is entered at that contact and written in the send's own
transaction: no wake at midnight, no write of its own. A run started by this code records no patch
markers (each cost a marker and a search-attribute upsert per run), and a run started the old way,
with a bare input, still asks the server for every patch and behaves the same.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio.api.enums.v1 import EventType

from activities.records import apply_change
from bench.histories import account_runs
from domain.accounts import Account, AccountTerms, Event, Stage
from domain.effects import RECORD_BATCH, SEND_CONTACT, Change, SendRequest
from domain.rules import current_rules
from store.accounts import account_snapshot
from store.audit import audit_entries
from store.contacts import contact_attempts, reserve_attempt
from tests.workflows.conftest import NY, Harness, at_local
from workflows.patches import CODE
from workflows.state import AccountInput


async def histories(h: Harness, account: Account):  # type: ignore[no-untyped-def]
    return await account_runs(h.env.client, account.workflow_id)


async def wait_for_sends(h: Harness, account: Account, n: int) -> None:
    for _ in range(150):
        if len(h.sent(account)) >= n:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{account.account_id}: {len(h.sent(account))} sends, expected {n}")


async def test_a_stage_that_begins_on_a_contact_day_is_written_with_that_contact(harness: Harness) -> None:
    h = harness
    account = await h.open_account(due_in_days=0, phone="+12125550161")  # due today: pre-due
    # DPD 4, the first day after the 3-day grace period: "early" and a text
    await h.skip_to(at_local(account.due_date + timedelta(days=4), 12))
    await wait_for_sends(h, account, 1)

    with h.sessions.begin() as s:
        snap = account_snapshot(s, account.account_id)
        [stage] = [
            e
            for e in audit_entries(s, account.account_id)
            if e.details.get("detail", "").startswith("pre_due -> early")
        ]
        [attempt] = contact_attempts(s, account.account_id)
    assert snap is not None and snap.stage == Stage.EARLY
    # entered at the contact (10:00 in New York), not at midnight
    assert stage.at.astimezone(NY).hour == 10 and attempt.template == "early_reminder"

    runs = await histories(h, account)
    events = [e for run in runs for e in run.events]
    fired = [e for e in events if e.event_type == EventType.EVENT_TYPE_TIMER_FIRED]
    assert len(fired) == 1  # one wake that day, the contact's: none at midnight for the stage
    scheduled = [
        e.activity_task_scheduled_event_attributes
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    kinds = [a.activity_type.name for a in scheduled]
    # the opening and the pre-due stage in one write; the day's stage rode on its text
    assert kinds == [RECORD_BATCH, SEND_CONTACT], kinds
    [send] = await h.env.client.data_converter.decode(scheduled[1].input.payloads, [SendRequest])
    assert [(c.decision, c.stage) for c in send.changes] == [("stage", Stage.EARLY)]


async def test_a_change_that_rode_on_a_send_is_written_once(harness: Harness) -> None:
    """A send that failed after its reservation wrote the change already: writing it again (as the
    run does when the activity failed) changes nothing; a send that never reserved gets it written."""
    h = harness
    account = await h.open_account(due_in_days=3, phone="+12125550162", start=False)
    now = await h.now()
    key = f"{account.account_id}/never-reserved"

    def stage_change(detail: str) -> Change:
        return Change(
            account_id=account.account_id,
            at=now,
            stage=Stage.MIDDLE,
            dpd=31,
            decision="stage",
            events=[Event(at=now, kind="stage", detail=detail)],
            unless_sent=key,
        )

    with h.sessions.begin() as s:
        apply_change(s, stage_change("never reserved"))
    with h.sessions.begin() as s:
        reserve_attempt(
            s,
            dedupe_key=key,
            account_id=account.account_id,
            channel="sms",
            purpose="dunning",
            template="early_reminder",
            to_address="+12125550162",
            now=now,
        )
    with h.sessions.begin() as s:
        apply_change(s, stage_change("reserved: skipped"))
        lines = [e.details["detail"] for e in audit_entries(s, account.account_id) if e.action == "stage"]
    assert lines == ["never reserved"]


async def test_a_new_run_records_no_patch_markers_and_a_bare_input_still_asks(harness: Harness) -> None:
    h = harness
    new = await h.open_account(due_in_days=0, phone="+12125550163")
    old = await h.open_account(due_in_days=0, phone="+12125550164", start=False)
    terms = AccountTerms.from_account(old)
    await h.client.start_workflow(
        "DelinquencyWorkflow",
        AccountInput(
            terms=terms,
            rules=current_rules(terms.policy, terms.profile),
            contact_queue=h.settings.contact_task_queue,
        ),
        id=old.workflow_id,
        task_queue=h.settings.task_queue,
    )
    h.started.append(old.workflow_id)
    await h.skip_to(at_local(new.due_date + timedelta(days=4), 12))
    await wait_for_sends(h, new, 1)
    await wait_for_sends(h, old, 1)

    def markers(runs) -> list:  # type: ignore[no-untyped-def]
        return [
            e
            for run in runs
            for e in run.events
            if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
            or (
                e.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
                and "TemporalChangeVersion"
                in e.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
            )
        ]

    new_runs, old_runs = await histories(h, new), await histories(h, old)
    assert markers(new_runs) == []
    assert len(markers(old_runs)) >= 2 * 3  # a marker and an upsert for each patch it reached
    started = new_runs[0].events[0].workflow_execution_started_event_attributes
    [given] = await h.env.client.data_converter.decode(started.input.payloads, [AccountInput])
    assert given.code == CODE
    # the same cadence either way
    assert [(c["channel"], c["template"]) for c in h.sent(new)] == [
        (c["channel"], c["template"]) for c in h.sent(old)
    ]
