"""Intake pins the rules it starts an account with, never restarts a closed account, and
``reopen`` restarts one on purpose, audited, from what is stored (real time-skipping server)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from temporalio.service import RPCError, RPCStatusCode

from domain.accounts import Account, Debtor, Mode, Product
from domain.agencies import CloseRequest
from domain.rules import current_rules
from domain.timeline import AccountStatus
from runtime.intake import intake_accounts
from store.accounts import account_snapshot, set_mode, upsert_account
from store.audit import audit_entries
from store.models import AccountRow
from store.rules import source
from tests.conftest import random_phone
from tests.workflows.conftest import Harness
from workflows.messages import PaymentIn, RunResult


def new_account(today, balance: int = 50_000) -> Account:  # type: ignore[no-untyped-def]
    return Account(
        account_id=f"CL-{uuid.uuid4().hex[:10]}",
        debtor=Debtor(name="Jane Doe", phone=random_phone(), timezone="America/New_York"),
        product=Product.CREDIT_LINE,
        profile="US",
        currency="USD",
        balance=balance,
        fees=0,
        due_date=today - timedelta(days=10),
    )


async def intake(harness: Harness, accounts: list[Account]):  # type: ignore[no-untyped-def]
    return await intake_accounts(
        harness.client,
        harness.sessions,
        accounts,
        task_queue=harness.settings.task_queue,
        contact_queue=harness.settings.contact_task_queue,
        day_seconds=86_400,
    )


def pinned(harness: Harness, account_id: str) -> tuple[str | None, str | None]:
    """The policy and profile versions stored for the account."""
    with harness.sessions.begin() as s:
        row = s.get(AccountRow, account_id)
        assert row is not None
        return row.policy_version, row.profile_version


async def workflow_exists(harness: Harness, workflow_id: str) -> bool:
    try:
        await harness.client.get_workflow_handle(workflow_id).fetch_history()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def test_intake_pins_the_current_versions_stores_their_text_and_starts_with_them(
    harness: Harness,
) -> None:
    account = new_account((await harness.now()).date())
    result = await intake(harness, [account])
    harness.started.append(account.workflow_id)
    assert result.started == [account.account_id]

    rules = current_rules("default", "US")
    assert pinned(harness, account.account_id) == (rules.policy_version, rules.profile_version)
    with harness.sessions.begin() as s:
        policy_src = source(s, rules.policy_version)
        profile_src = source(s, rules.profile_version)
    assert policy_src is not None and policy_src.kind == "policy" and policy_src.name == "default"
    assert profile_src is not None and profile_src.kind == "profile" and profile_src.name == "US"
    status = await harness.handle(account).query("status", result_type=AccountStatus)
    assert status.rules_version == rules.versions


async def test_intake_never_restarts_a_closed_account_whose_run_temporal_no_longer_keeps(
    harness: Harness,
) -> None:
    now = await harness.now()
    account = new_account(now.date())
    with (
        harness.sessions.begin() as s
    ):  # taken in, collected, then closed as paid (as the workflow's record does)
        upsert_account(s, account, now)
        set_mode(s, account.account_id, Mode.CLOSED, close_reason="paid", now=now)
    assert not await workflow_exists(harness, account.workflow_id)  # retention dropped the closed run

    result = await intake(harness, [account])  # the old file, run again

    if await workflow_exists(harness, account.workflow_id):  # the bug: the paid debtor is chased again
        harness.started.append(account.workflow_id)
    assert result.started == [] and result.already == [] and result.failed == []
    assert result.closed == [(account.account_id, "paid")]
    assert not await workflow_exists(harness, account.workflow_id)
    with harness.sessions.begin() as s:
        snap = account_snapshot(s, account.account_id)
    assert snap is not None and snap.mode == Mode.CLOSED and snap.close_reason == "paid"


async def reopen(
    harness: Harness, account_id: str, *, actor: str = "alice", reason: str = "sale reversed"
) -> object:
    """``reopen_account`` as the command line calls it, on the harness's queues and clock."""
    from runtime.operator_actions import reopen_account

    return await reopen_account(
        harness.client,
        harness.sessions,
        account_id,
        reason=reason,
        actor=actor,
        task_queue=harness.settings.task_queue,
        contact_queue=harness.settings.contact_task_queue,
        day_seconds=86_400,
        now=await harness.now(),
    )


async def test_reopen_restarts_a_closed_account_from_its_stored_balance_audited(harness: Harness) -> None:
    from runtime.operator_actions import Refused

    account = await harness.open_account(due_in_days=-10, phone=random_phone(), balance=50_000, fees=0)
    handle = harness.handle(account)
    await handle.signal("payment_received", PaymentIn(amount=20_000, currency="USD", reference="cl-p1"))
    await handle.signal("close", CloseRequest(reason="written_off", note="portfolio sale", actor="cli"))
    # A day of the server's time lets the closing text reach a lawful hour, and the run ends. Not
    # ``handle.result()``: it lets the test server skip freely, and once the run has ended the server
    # leapt to its ten-year run timeout, so the reopened account was 3,660 days past due and its run
    # charged it off at once, racing the check below (it failed so in fresh-clone suites, stops 31-32)
    await harness.skip_to(await harness.now() + timedelta(days=1))
    ended = harness.client.get_workflow_handle(account.workflow_id, result_type=RunResult)
    assert (await ended.result()).state == "closed_written_off"
    with harness.sessions.begin() as s:
        closed = account_snapshot(s, account.account_id)
    assert closed is not None and closed.mode == Mode.CLOSED and closed.balance_minor == 30_000

    # re-running the old file (balance 500.00) restarts nothing, though Temporal still keeps the run
    again = await intake(harness, [account])
    assert again.started == [] and again.closed == [(account.account_id, "written_off")]

    with pytest.raises(Refused, match="who reopens"):
        await reopen(harness, account.account_id, actor=" ")
    with pytest.raises(Refused, match="reason"):
        await reopen(harness, account.account_id, reason="")
    done = await reopen(harness, account.account_id)

    rules = current_rules("default", "US")
    assert done.rules.versions == rules.versions  # type: ignore[attr-defined]
    status = await handle.query("status", result_type=AccountStatus)
    assert status.mode == Mode.DUNNING
    assert status.balance == 30_000  # what is stored, not the file's 500.00
    assert status.rules_version == rules.versions
    with harness.sessions.begin() as s:
        snap = account_snapshot(s, account.account_id)
        audit = audit_entries(s, account.account_id)
    # on failure, the audit trail in the order it was written says who wrote last (a reopened run
    # charged off at once wrote "closed, charged_off" here: the clock's leap, above)
    written = [
        (e.id, e.at.isoformat(), e.actor, e.action, e.decision) for e in sorted(audit, key=lambda e: e.id)
    ]
    assert snap is not None and snap.mode == Mode.DUNNING and snap.close_reason is None, "\n".join(
        map(str, written)
    )
    assert pinned(harness, account.account_id) == (rules.policy_version, rules.profile_version)
    reopened = [e for e in audit if e.action == "reopened"]
    assert len(reopened) == 1
    assert reopened[0].actor == "alice"
    assert reopened[0].details["reason"] == "sale reversed"
    assert reopened[0].details["close_reason"] == "written_off"

    with pytest.raises(Refused, match="running"):  # a running account is never reopened
        await reopen(harness, account.account_id)


async def test_reopen_refuses_an_account_past_its_charge_off(harness: Harness) -> None:
    """Its run would charge it off again in its first moment: refused, naming the days, nothing changed."""
    from runtime.operator_actions import Refused

    account = await harness.open_account(due_in_days=-200, phone=random_phone(), start=False)
    with harness.sessions.begin() as s:
        set_mode(s, account.account_id, Mode.CLOSED, close_reason="written_off", now=await harness.now())
    with pytest.raises(Refused, match="200 days past due, past its policy's charge-off at 180 days"):
        await reopen(harness, account.account_id)
    with harness.sessions.begin() as s:
        snap = account_snapshot(s, account.account_id)
        audit = audit_entries(s, account.account_id)
    assert snap is not None and snap.mode == Mode.CLOSED and snap.close_reason == "written_off"
    assert not any(e.action == "reopened" for e in audit)


async def test_reopen_refuses_an_account_that_is_not_closed(harness: Harness) -> None:
    from runtime.operator_actions import Refused

    account = await harness.open_account(due_in_days=-10, phone=random_phone())
    await harness.finish(account.workflow_id)  # its run ended (terminated), the stored mode is dunning
    with pytest.raises(Refused, match="not closed"):
        await reopen(harness, account.account_id, reason="why not")
    with harness.sessions.begin() as s:
        snap = account_snapshot(s, account.account_id)
        audit = audit_entries(s, account.account_id)
    assert snap is not None and snap.mode == Mode.DUNNING
    assert not any(e.action == "reopened" for e in audit)


async def test_a_write_off_from_the_command_line_takes_two_operators(harness: Harness) -> None:
    """``./collect close ACC written_off --as NAME``: the same four eyes as the API (issue 16)."""
    from service.write_offs import close_for

    account = await harness.open_account(due_in_days=-10, phone=random_phone(), balance=50_000, fees=0)
    handle = harness.handle(account)
    first = await close_for(harness.client, harness.sessions, account.account_id, "written_off", "", "alice")
    assert first["status"] == "awaiting_second_supervisor"
    again = await close_for(harness.client, harness.sessions, account.account_id, "written_off", "", "alice")
    assert again["status"] == "awaiting_second_supervisor"  # the same person twice is still one
    assert (await handle.query("status", result_type=AccountStatus)).mode == Mode.DUNNING
    done = await close_for(harness.client, harness.sessions, account.account_id, "written_off", "sold", "bob")
    assert done["status"] == "closing" and done["requested_by"] == "alice"
    assert (await handle.result()).state == "closed_written_off"
    with harness.sessions.begin() as s:
        lines = [
            (e.actor, e.decision) for e in audit_entries(s, account.account_id) if e.action == "write_off"
        ]
    assert lines == [("alice", "requested"), ("alice", "requested"), ("bob", "confirmed")]
