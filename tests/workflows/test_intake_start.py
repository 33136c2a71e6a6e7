"""A newly taken-in account starts at its stage's next step: nothing is "caught up" for a step that fell
due before the account was ours (a debtor taken in at 17:00 got that morning's reminder at once)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from domain.accounts import AccountTerms, Product
from domain.cadence import due_before
from domain.policy import load_policy
from store.audit import audit_entries
from tests.workflows.conftest import NY, Harness, at_local


async def test_taken_in_after_the_days_step_waits_for_the_next_one(harness: Harness) -> None:
    today = (await harness.now()).astimezone(NY).date()
    # day 4 past due, 17:00 New York: day 4's 10:00 reminder fell due before intake
    await harness.skip_to(at_local(today + timedelta(days=1), 17))
    late = await harness.open_account(due_in_days=-4, phone="+12125550171")
    await harness.skip_to(at_local(late.due_date + timedelta(days=5), 9))
    assert harness.sent(late) == [], "nothing is sent for a step from before intake"
    with harness.sessions.begin() as s:
        [note] = [e for e in audit_entries(s, late.account_id) if e.action == "steps_before_intake"]
    assert "1 steps fell due before intake" in note.details["detail"]
    # the stage's next step (day 5's call at 10:00) goes as planned
    await harness.skip_to(at_local(late.due_date + timedelta(days=5), 12))
    assert [(c["channel"], c["template"]) for c in harness.sent(late)] == [("voice", "early_voice")]
    await harness.finish(late.workflow_id)


async def test_taken_in_before_the_days_step_gets_it(harness: Harness) -> None:
    today = (await harness.now()).astimezone(NY).date()
    await harness.skip_to(at_local(today + timedelta(days=1), 8))
    early = await harness.open_account(due_in_days=-4, phone="+12125550172")
    await harness.skip_to(at_local(early.due_date + timedelta(days=4), 12))
    assert [(c["channel"], c["template"]) for c in harness.sent(early)] == [("sms", "early_reminder")]
    await harness.finish(early.workflow_id)


async def test_intake_is_the_moment_the_account_was_started_not_its_first_task(harness: Harness) -> None:
    """Started at 09:59 with its first workflow task only at 10:30 (a burst of a thousand starts, a
    worker catching up): day 4's 10:00 reminder fell due after intake and goes, late, not never."""
    from domain.rules import current_rules
    from workflows.state import AccountInput

    today = (await harness.now()).astimezone(NY).date()
    day = today + timedelta(days=1)
    await harness.skip_to(datetime.combine(day, time(10, 30), tzinfo=NY))
    account = await harness.open_account(due_in_days=-4, phone="+12125550174", start=False)
    terms = AccountTerms.from_account(account)
    await harness.client.start_workflow(
        "DelinquencyWorkflow",
        AccountInput(
            terms=terms,
            rules=current_rules(terms.policy, terms.profile),
            epoch=datetime.combine(day, time(9, 59), tzinfo=NY),
            contact_queue=harness.settings.contact_task_queue,
            continue_as_new_every_wake=harness.hand_over_every_wake,
        ),
        id=terms.workflow_id,
        task_queue=harness.settings.task_queue,
    )
    harness.started.append(terms.workflow_id)
    await harness.skip_to(at_local(day, 12))
    assert [(c["channel"], c["template"]) for c in harness.sent(account)] == [("sms", "early_reminder")]
    await harness.finish(terms.workflow_id)


async def test_a_file_zone_and_a_phone_region_that_disagree_are_both_respected(harness: Harness) -> None:
    """The file says New York, the number is a Los Angeles one (Reg F: conflicting location
    information). Day 4's 10:00 reminder would reach Los Angeles at 07:00; it waits for 08:00 there."""
    la = ZoneInfo("America/Los_Angeles")
    today = (await harness.now()).astimezone(NY).date()
    await harness.skip_to(at_local(today + timedelta(days=1), 8))
    account = await harness.open_account(due_in_days=-4, phone="+13105550173", zone="America/New_York")
    await harness.skip_to(at_local(account.due_date + timedelta(days=4), 10, la))
    [text] = harness.sent(account)
    assert text["template"] == "early_reminder"
    local = text["at"].astimezone(la)
    assert (local.date(), local.hour, local.minute) == (account.due_date + timedelta(days=4), 8, 0)
    assert text["at"].astimezone(NY).hour == 11
    await harness.finish(account.workflow_id)


def test_due_before_lists_only_the_catch_up_window() -> None:
    """Older steps are never sent anyway; the list (carried in the workflow state) stays short."""
    policy = load_policy()
    terms = AccountTerms(
        account_id="A-1",
        product=Product.CREDIT_LINE,
        currency="USD",
        balance=1,
        due_date=date(2026, 6, 1),
        zones=["America/New_York"],
    )
    # day 5 at noon: day 4's text and day 5's call were before; day 1's is outside the catch-up window
    assert due_before(terms, policy, datetime(2026, 6, 6, 12, tzinfo=NY)) == [
        "4:sms:early_reminder",
        "5:voice:early_voice",
    ]
    assert due_before(terms, policy, datetime(2026, 6, 6, 9, tzinfo=NY)) == ["4:sms:early_reminder"]
