"""End to end, no shortcut: the account workflow → the real send activity and twilio SDK → the carrier
simulator → its *signed* status / AMD callbacks → the HTTP service on a real local port → signals
back into the workflow. One test per outcome class the issue names, plus a replayed callback whose
body was changed (refused, changes nothing).

Each test picks the outcome by the destination number's last two digits (``carrier/outcomes.py``)
and reads the result where an agent would: the workflow's ``status`` query and the database.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from bench.histories import account_runs
from carrier.store import CallbackRecord
from domain.accounts import Account, Channel, ContactOutcome, Language
from domain.effects import SEND_CONTACT
from domain.gate import Purpose
from domain.governor import rules_for_profile
from domain.profiles import load_profile
from domain.templates import render
from domain.timeline import AccountStatus, ContactView
from starter import voice_paused_line
from store.accounts import account_snapshot
from store.audit import audit_entries
from store.contacts import AttemptView, attempt_by_sid, contact_attempts
from store.governor import voice_verdict
from store.rows import ContactStatus
from tests.service.conftest import Served, random_phone
from tests.workflows.conftest import Harness, at_local

#: contact outcomes after which the workflow has heard the provider's last word
SETTLED = {o.value for o in ContactOutcome} - {"sent", "denied", "indeterminate"}
GOVERNOR_WINDOW = timedelta(days=31)  # the US rolling window is 30 days


@dataclass
class E2E:
    """The served app + harness, and the session's carrier simulator they talk to."""

    served: Served
    simulator: Any

    @property
    def harness(self) -> Harness:
        return self.served.harness

    def callbacks(self, sid: str) -> list[CallbackRecord]:
        """The signed callbacks the simulator delivered to our service for one message or call."""
        with self.simulator.store.lock:
            hooks = list(self.simulator.store.callbacks)
        return [c for c in hooks if c.sid == sid and c.url.startswith(self.served.base)]


@pytest.fixture
def e2e(served: Served, simulator: Any) -> E2E:
    return E2E(served, simulator)


@dataclass
class Result:
    account: Account
    status: AccountStatus
    contact: ContactView
    attempt: AttemptView
    carrier: dict[str, Any]


async def wait_settled(h: Harness, account: Account, channel: Channel, within: float = 15.0) -> AccountStatus:
    """The ``status`` query once the workflow holds a settled outcome for a contact on ``channel``."""
    handle = h.handle(account)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        status = await handle.query("status", result_type=AccountStatus)
        if any(c.channel == channel.value and c.outcome in SETTLED for c in status.last_contacts):
            return status
        assert loop.time() < deadline, f"no settled {channel.value} contact: {status.last_contacts}"
        await asyncio.sleep(0.1)


async def clear_governor(h: Harness, phone: str, at: datetime) -> None:
    """Make the shared "default" campaign callable at ``at``.

    The governor's window spans every test of the session (one database, one clock): an earlier test's
    silent or unsettled call would pause voice here. If so, move the shared clock past the window.
    """
    profile = load_profile("US")
    rules = rules_for_profile(
        profile.max_abandoned_rate, profile.no_redial_after_abandoned_hours, profile.legal_jurisdiction
    )
    with h.sessions.begin() as s:
        allowed = voice_verdict(s, "default", phone, at, rules=rules).allowed
    if not allowed:
        await h.skip_to(await h.now() + GOVERNOR_WINDOW)


async def contact_through_carrier(e2e: E2E, last_two: int, channel: Channel) -> Result:
    """Open an account whose number gives the wanted outcome, let its first ``channel`` contact go out
    (SMS on DPD 4, the first day after the grace period, the call on DPD 5, per the default policy) and wait until the workflow knows how it
    ended."""
    h = e2e.harness
    phone = random_phone(last_two)
    # the contact is always tomorrow at 10:00 (a future timer, whatever the shared clock says now)
    due_in_days, dpd = (-3, 4) if channel == Channel.SMS else (-4, 5)
    if channel == Channel.VOICE:
        # before the account opens: moving the clock past the window later would skip its DPD-5 call
        await clear_governor(h, phone, at_local((await h.now()).date() + timedelta(days=1), 11))
    account = await h.open_account(due_in_days=due_in_days, phone=phone)
    target = at_local(account.due_date + timedelta(days=dpd), 11)
    await h.skip_to(target)
    status = await wait_settled(h, account, channel)
    contact = next(c for c in status.last_contacts if c.channel == channel.value and c.outcome in SETTLED)
    with h.sessions.begin() as s:
        attempts = [a for a in contact_attempts(s, account.account_id) if a.channel == channel]
    assert len(attempts) == 1, attempts
    log = [
        r for r in await h.carrier_log(phone) if r["channel"] == ("sms" if channel == Channel.SMS else "call")
    ]
    assert len(log) == 1, log  # the carrier saw exactly one
    hooks = e2e.callbacks(log[0]["sid"])
    assert hooks and all(c.status_code == 200 for c in hooks), [(c.kind, c.status_code) for c in hooks]
    return Result(account, status, contact, attempts[0], log[0])


def contact_status(h: Harness, account: Account, channel: Channel) -> ContactStatus | None:
    with h.sessions.begin() as s:
        snap = account_snapshot(s, account.account_id)
    assert snap is not None
    if channel in snap.opted_out:
        return ContactStatus.OPTED_OUT
    if channel in snap.unreachable:
        return ContactStatus.UNREACHABLE
    return None


# ---- SMS -------------------------------------------------------------------------------------------
async def test_sms_delivered(e2e: E2E) -> None:
    r = await contact_through_carrier(e2e, 42, Channel.SMS)
    assert r.contact.outcome == ContactOutcome.DELIVERED
    assert (r.attempt.provider_status, r.attempt.outcome, r.attempt.error_code) == (
        "delivered",
        "delivered",
        None,
    )
    assert r.status.unreachable == [] and r.status.opted_out == []
    assert r.carrier["history"] == ["queued", "sent", "delivered"]


async def test_sms_undelivered_30003_marks_the_channel_unreachable(e2e: E2E) -> None:
    r = await contact_through_carrier(e2e, 91, Channel.SMS)
    assert r.contact.outcome == ContactOutcome.UNDELIVERABLE
    assert (r.attempt.provider_status, r.attempt.error_code) == ("undelivered", 30003)
    assert r.status.unreachable == ["sms"] and r.status.opted_out == []
    assert contact_status(e2e.harness, r.account, Channel.SMS) == ContactStatus.UNREACHABLE


async def test_sms_21610_marks_the_number_opted_out(e2e: E2E) -> None:
    r = await contact_through_carrier(e2e, 99, Channel.SMS)
    assert r.contact.outcome == ContactOutcome.OPTED_OUT
    assert (r.attempt.provider_status, r.attempt.error_code) == ("undelivered", 21610)
    assert r.status.opted_out == ["sms"] and r.status.unreachable == []
    assert contact_status(e2e.harness, r.account, Channel.SMS) == ContactStatus.OPTED_OUT


# ---- voice -----------------------------------------------------------------------------------------
async def test_call_answered_by_a_person_is_a_conversation_and_is_not_redirected(e2e: E2E) -> None:
    r = await contact_through_carrier(e2e, 23, Channel.VOICE)
    assert r.contact.outcome == ContactOutcome.CONVERSATION
    assert (r.attempt.provider_status, r.attempt.outcome) == ("completed", "conversation")
    assert r.carrier["answered_by"] == "human" and not r.carrier["silent"]
    assert r.carrier["twiml_history"] == []  # the person heard the opening; nothing replaced it


async def test_call_answered_by_a_machine_gets_only_the_limited_voicemail(e2e: E2E) -> None:
    r = await contact_through_carrier(e2e, 63, Channel.VOICE)
    assert r.contact.outcome == ContactOutcome.VOICEMAIL
    assert (r.attempt.provider_status, r.attempt.outcome) == ("completed", "voicemail")
    assert r.carrier["answered_by"] == "machine_end_beep"
    # after the beep the call was redirected, through the SDK, to the limited message and a hang-up
    assert len(r.carrier["twiml_history"]) == 1
    st = e2e.harness.settings
    limited = render(
        "voicemail_limited",
        Language.EN.value,
        purpose=Purpose.DUNNING,
        channel=Channel.VOICE,
        context={
            "company": st.company_name,
            "agent_name": st.agent_name,
            "callback_number": st.callback_number,
        },
    ).text
    document = r.carrier["twiml_history"][0]
    assert f">{limited}</Say><Hangup /></Response>" in document
    assert document.count("<Say") == 1 and "<Gather" not in document
    with e2e.harness.sessions.begin() as s:
        audit = [e for e in audit_entries(s, r.account.account_id) if e.action == "voicemail"]
    assert [(e.decision, e.details.get("sid")) for e in audit] == [("voicemail_limited", r.carrier["sid"])]


async def a_paused_campaign_texts_instead_and_says_until_when(e2e: E2E, silent: Result) -> None:
    """The silent call pauses the campaign's voice (one abandoned call in a window of under 34 live
    answers): the next account's DPD-5 call is not placed, the SMS fallback goes instead, and ``status``
    and the console say until when voice is paused: when the silent call leaves the 30-day window."""
    h = e2e.harness
    phone = random_phone(23)  # a person would answer: only the governor can stop this call
    account = await h.open_account(due_in_days=-4, phone=phone)
    await h.skip_to(at_local(account.due_date + timedelta(days=5), 11))
    handle = h.handle(account)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    while (status := await handle.query("status", result_type=AccountStatus)).voice_paused_until is None:
        assert loop.time() < deadline, status.last_contacts
        await asyncio.sleep(0.1)
    assert silent.attempt.sent_at is not None
    ages_out = silent.attempt.sent_at + GOVERNOR_WINDOW - timedelta(days=1)  # the US window: 30 days
    assert ages_out - timedelta(minutes=1) <= status.voice_paused_until <= ages_out + timedelta(minutes=1)
    assert "call" not in [r["channel"] for r in await h.carrier_log(phone)]  # no call reached the carrier
    fallback = [c for c in status.last_contacts if c.at >= at_local(account.due_date + timedelta(days=5), 0)]
    assert [c.channel for c in fallback] == ["sms"]  # the text instead
    with h.sessions.begin() as s:
        denied = [a for a in contact_attempts(s, account.account_id) if a.channel == Channel.VOICE]
    assert [(a.state, a.outcome) for a in denied] == [("denied", ContactOutcome.DENIED)]
    # the refused call and its text were one send activity: the call's request carried the text
    # (issue 18), so every attempt but one had an activity of its own
    runs = await account_runs(h.env.client, handle.id)
    sends = [
        e
        for run in runs
        for e in run.events
        if e.activity_task_scheduled_event_attributes.activity_type.name == SEND_CONTACT
    ]
    with h.sessions.begin() as s:
        attempts = contact_attempts(s, account.account_id)
    assert len(sends) == len(attempts) - 1, [(a.channel, a.template, a.state) for a in attempts]
    line = voice_paused_line(status)  # what `./collect status` prints
    assert line is not None and f"{status.voice_paused_until.astimezone(UTC):%Y-%m-%d %H:%M} UTC" in line

    # the next call step (DPD 12), still inside the pause: the account does what its status says
    # and texts without asking the governor again (no second refused attempt, no send activity)
    dpd12 = at_local(account.due_date + timedelta(days=12), 0)
    await h.skip_to(dpd12 + timedelta(hours=11))
    deadline = loop.time() + 15
    while True:
        status = await handle.query("status", result_type=AccountStatus)
        if any(c.at >= dpd12 for c in status.last_contacts):
            break
        assert loop.time() < deadline, status.last_contacts
        await asyncio.sleep(0.1)
    assert [c.channel for c in status.last_contacts if c.at >= dpd12] == ["sms"]
    with h.sessions.begin() as s:
        voice = [a for a in contact_attempts(s, account.account_id) if a.channel == Channel.VOICE]
    assert len(voice) == 1 and "call" not in [r["channel"] for r in await h.carrier_log(phone)]


async def test_call_answered_in_silence_is_silent(e2e: E2E) -> None:
    h = e2e.harness
    try:
        r = await contact_through_carrier(e2e, 71, Channel.VOICE)
        assert r.contact.outcome == ContactOutcome.SILENT
        assert (r.attempt.provider_status, r.attempt.outcome) == ("completed", "silent")
        assert r.carrier["answered_by"] == "unknown" and r.carrier["twiml_history"] == []
        await a_paused_campaign_texts_instead_and_says_until_when(e2e, r)
    finally:
        # this abandoned call pauses voice for the whole "default" campaign for 30 days: end the run
        # and move the shared clock past the window so later tests are not governed by it
        for workflow_id in h.started:
            await h.finish(workflow_id)
        await h.skip_to(await h.now() + GOVERNOR_WINDOW)


@pytest.mark.parametrize(
    ("last_two", "outcome", "provider_status"),
    [
        (77, ContactOutcome.NO_ANSWER, "no-answer"),
        (82, ContactOutcome.BUSY, "busy"),
        (86, ContactOutcome.UNDELIVERABLE, "failed"),
    ],
)
async def test_calls_nobody_answers(
    e2e: E2E, last_two: int, outcome: ContactOutcome, provider_status: str
) -> None:
    r = await contact_through_carrier(e2e, last_two, Channel.VOICE)
    assert r.contact.outcome == outcome
    assert (r.attempt.provider_status, r.attempt.outcome) == (provider_status, outcome)
    assert r.carrier["status"] == provider_status and not r.carrier["answered"]
    assert r.status.unreachable == (["voice"] if outcome == ContactOutcome.UNDELIVERABLE else [])


# ---- forged callbacks ------------------------------------------------------------------------------
async def test_a_replayed_callback_with_a_changed_body_is_refused_and_changes_nothing(e2e: E2E) -> None:
    h = e2e.harness
    r = await contact_through_carrier(e2e, 42, Channel.SMS)
    delivered = next(
        c
        for c in e2e.callbacks(r.carrier["sid"])
        if c.kind == "message-status" and c.params["MessageStatus"] == "delivered"
    )
    changed = {
        **delivered.params,
        "MessageStatus": "undelivered",
        "SmsStatus": "undelivered",
        "ErrorCode": "30003",
    }
    sid = r.carrier["sid"]

    def attempt() -> AttemptView | None:
        with h.sessions.begin() as s:
            return attempt_by_sid(s, sid)

    async with httpx.AsyncClient() as http:
        headers = {"X-Twilio-Signature": delivered.signature}
        refused = await http.post(delivered.url, data=changed, headers=headers)
        assert refused.status_code == 403
        await asyncio.sleep(0.3)  # a signal, had one been sent, would have reached the workflow by now
        assert attempt() == r.attempt  # not a byte of the row changed
        status = await h.handle(r.account).query("status", result_type=AccountStatus)
        assert status.unreachable == [] and status.last_contacts == r.status.last_contacts
        assert contact_status(h, r.account, Channel.SMS) is None
        # the untouched replay is signed correctly: accepted, and as a duplicate it changes no fact
        replayed = await http.post(delivered.url, data=delivered.params, headers=headers)
        assert replayed.status_code == 200
    after = attempt()
    assert after is not None
    assert after.model_dump(exclude={"updated_at"}) == r.attempt.model_dump(exclude={"updated_at"})
    status = await h.handle(r.account).query("status", result_type=AccountStatus)
    assert status.unreachable == [] and status.last_contacts == r.status.last_contacts
