"""A send whose try died or stalled after the live gate cleared it: once, the right text, never twice.

Runs the real send activity (``activities/contact.py``) as Temporal would run two tries of it (two
``ActivityEnvironment``s with attempt numbers 1 and 2), the real database and the real twilio SDK
against the carrier simulator. What the carrier received is the evidence.

* Reconciliation (a retry finds a cleared attempt with no provider answer) adopts only a message
  of ours with the same text, made after the clearance: not the service's automatic reply to the
  same number, not an older call.
* Fencing: a try that stalls after its clearance, and whose retry took over and sent, must not
  call the provider when it wakes up. And a try that waits for the carrier's per-second window
  heartbeats all along, so the server does not take it for stalled.
* The live gate and the call governor judge by the profile version the account runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import time as _time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from sqlalchemy import create_engine, select
from temporalio import activity
from temporalio.testing import ActivityEnvironment

import activities.contact as contact_module
from activities.contact import ContactActivities
from activities.deps import Deps
from activities.twilio_client import make_twilio_client
from domain.accounts import Account, Channel, ContactOutcome, Debtor, Language
from domain.clock import PolicyClock
from domain.effects import SendRequest, SendResult
from domain.gate import Purpose
from domain.rules import RuleSource, read_source, version_of
from runtime.settings import Settings
from store.accounts import upsert_account
from store.models import ContactAttempt, SenderSendRow
from store.pacing import BEAT_SECONDS, NotAdmitted, admit, provider_request, release
from store.rules import save_sources
from tests.conftest import random_phone

NY = ZoneInfo("America/New_York")
CAMPAIGN = "send-fencing-tests"
HELP_REPLY = "Acme Finance: for help call +1 800 555 0100. Reply STOP to opt out."
SAY = '<?xml version="1.0" encoding="UTF-8"?><Response><Say>Hello, this is Acme Finance.</Say></Response>'


def noon_in(days: int) -> datetime:
    """A weekday noon in New York, years from now (policy time ahead of the wall clock)."""
    return datetime.combine(date(2041, 3, 6) + timedelta(days=7 * days), time(12), tzinfo=NY)


def running_clock_at(policy_now: datetime) -> PolicyClock:
    """A policy clock that reads ``policy_now`` at this real instant and then runs (twice as fast).

    Sends timed by it clear at a policy instant that maps back to the real one, as in production
    and the sped-up demo, so reconciliation has a real clearance time to compare the carrier's with.
    """
    real = datetime.now(UTC)
    return PolicyClock(epoch=real - (policy_now - real), day_seconds=43_200)


def request(
    account: Account,
    *,
    channel: Channel = Channel.SMS,
    at: datetime | None = None,
    clock: PolicyClock | None = None,
) -> SendRequest:
    at = at or noon_in(0)
    return SendRequest(
        dedupe_key=f"{account.account_id}/dpd-3:{channel.value}",
        account_id=account.account_id,
        channel=channel,
        purpose=Purpose.DUNNING,
        template="early_reminder" if channel == Channel.SMS else "early_voice",
        language=Language.EN,
        profile="US",
        clock=clock or PolicyClock(epoch=at),
        planned_at=at,
        context={"amount": "USD 500.00", "stage": "early"},
    )


def try_(n: int) -> ActivityEnvironment:
    """The activity environment of try ``n`` of one send (``activity.info().attempt == n``)."""
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=n)
    return env


@pytest.fixture
def deps(settings: Settings) -> Iterator[Deps]:
    deps = Deps(settings=settings, engine=create_engine(settings.database_url))
    yield deps
    deps.engine.dispose()


def open_account(deps: Deps, at: datetime) -> Account:
    account = Account(
        account_id=f"F-{uuid.uuid4().hex[:10]}",
        debtor=Debtor(name="Jane Doe", phone=random_phone(), timezone="America/New_York"),
        currency="USD",
        balance=50_000,
        due_date=(at - timedelta(days=3)).date(),
        # a campaign of its own: the calls here stay pending at a policy time years ahead, and the
        # call governor counts such calls in every window of their campaign for the rest of the session
        policy=CAMPAIGN,
    )
    with deps.sessions.begin() as s:
        upsert_account(s, account, at)
    return account


def with_client(deps: Deps, **create: Callable[..., Any]) -> ContactActivities:
    """The send activity on its own twilio client, ``messages.create`` / ``calls.create`` replaced."""
    mine = Deps(settings=deps.settings, engine=deps.engine)
    st = deps.settings
    client = make_twilio_client(st.twilio_sid, st.twilio_token, st.twilio_base)
    for resource, fn in create.items():
        getattr(client, resource).create = fn
    mine.__dict__["twilio"] = client
    return ContactActivities(mine)


def lost_before_the_carrier(**kwargs: Any) -> Any:
    """The request died on its way out (the carrier never took it), after the gate cleared the send."""
    raise requests.exceptions.ReadTimeout("read timed out")


def carrier_log(simulator: Any, phone: str) -> list[dict[str, Any]]:
    simulator.control("POST", "/_sim/wait_idle", params={"timeout": 5})
    messages = simulator.control("GET", "/_sim/messages", params={"to": phone}).json()
    calls = simulator.control("GET", "/_sim/calls", params={"to": phone}).json()
    return messages + calls


def attempt_row(deps: Deps, key: str) -> ContactAttempt:
    with deps.sessions.begin() as s:
        row = s.scalars(select(ContactAttempt).where(ContactAttempt.dedupe_key == key)).one()
        s.expunge(row)
    return row


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_reconciliation_does_not_adopt_an_automatic_reply(
    deps: Deps, settings: Settings, simulator: Any
) -> None:
    at = noon_in(1)
    account = open_account(deps, at)
    req = request(account, at=at)
    phone = account.debtor.phone

    # try 1: cleared by the gate, then its request died before the carrier took it (no answer)
    crashed = with_client(deps, messages=lost_before_the_carrier)
    with pytest.raises(requests.exceptions.ReadTimeout):
        try_(1).run(crashed.send_contact, req)
    assert attempt_row(deps, req.dedupe_key).sent_at is not None  # cleared, no provider answer
    # meanwhile the debtor texted HELP and the service answered through the twilio client
    reply = deps.twilio.messages.create(to=phone, from_=settings.twilio_from_number, body=HELP_REPLY)

    result = try_(2).run(ContactActivities(deps).send_contact, req)

    assert result.outcome == ContactOutcome.SENT and result.provider_sid != reply.sid, result
    sent = carrier_log(simulator, phone)
    assert sorted(m["sid"] for m in sent) == sorted([reply.sid, result.provider_sid])  # the reminder went
    reminder = next(m for m in sent if m["sid"] == result.provider_sid)
    assert reminder["body"] != HELP_REPLY and "USD 500.00" in reminder["body"]
    row = attempt_row(deps, req.dedupe_key)
    assert (row.state, row.provider_sid, row.body_digest) == (
        "accepted",
        reminder["sid"],
        digest(reminder["body"]),
    )


def test_reconciliation_adopts_our_own_lost_message_and_sends_nothing_again(
    deps: Deps, settings: Settings, simulator: Any
) -> None:
    at = noon_in(2)
    account = open_account(deps, at)
    req = request(account, at=at)
    phone = account.debtor.phone
    # an automatic reply to this number before the reminder: the oldest message no attempt owns
    reply = deps.twilio.messages.create(to=phone, from_=settings.twilio_from_number, body=HELP_REPLY)

    # try 1: the carrier took the reminder but the answer never came back
    carrier_took: list[str] = []
    plain = make_twilio_client(settings.twilio_sid, settings.twilio_token, settings.twilio_base)

    def answer_lost(**kwargs: Any) -> Any:
        carrier_took.append(plain.messages.create(**kwargs).sid)
        raise requests.exceptions.ReadTimeout("read timed out")

    with pytest.raises(requests.exceptions.ReadTimeout):
        try_(1).run(with_client(deps, messages=answer_lost).send_contact, req)

    result = try_(2).run(ContactActivities(deps).send_contact, req)

    assert (result.outcome, result.provider_sid, result.replayed) == (
        ContactOutcome.SENT,
        carrier_took[0],
        True,
    ), result
    sent = carrier_log(simulator, phone)
    assert sorted(m["sid"] for m in sent) == sorted([reply.sid, carrier_took[0]])  # nothing sent twice
    row = attempt_row(deps, req.dedupe_key)
    assert (row.state, row.provider_sid) == ("accepted", carrier_took[0])


def test_reconciliation_does_not_adopt_a_call_placed_before_the_clearance(
    deps: Deps, settings: Settings, simulator: Any
) -> None:
    account = open_account(deps, noon_in(3))
    phone = account.debtor.phone
    # a call to this number that no attempt owns (an earlier send whose fate was never known)
    older = deps.twilio.calls.create(to=phone, from_=settings.twilio_from_number, twiml=SAY)
    _time.sleep(3.5)  # the carrier's clock has whole seconds; reconciliation allows 2 s of skew
    req = request(account, channel=Channel.VOICE, at=noon_in(3), clock=running_clock_at(noon_in(3)))

    with pytest.raises(requests.exceptions.ReadTimeout):
        try_(1).run(with_client(deps, calls=lost_before_the_carrier).send_contact, req)
    result = try_(2).run(ContactActivities(deps).send_contact, req)

    assert result.outcome == ContactOutcome.SENT and result.provider_sid != older.sid, result
    assert sorted(c["sid"] for c in carrier_log(simulator, phone)) == sorted([older.sid, result.provider_sid])
    assert attempt_row(deps, req.dedupe_key).provider_sid == result.provider_sid


def test_a_stalled_try_does_not_send_after_its_retry_took_over(
    deps: Deps, simulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = noon_in(4)
    account = open_account(deps, at)
    req = request(account, at=at)
    stalled, wake_up = threading.Event(), threading.Event()
    real_provider_request = contact_module.provider_request

    @contextmanager
    def stalls_on_try_1(*args: Any, **kwargs: Any) -> Iterator[None]:
        # try 1 is past the gate (cleared) and waits for the per-second window far too long: the
        # server times it out and starts try 2, which must be able to send
        if activity.info().attempt == 1:
            stalled.set()
            assert wake_up.wait(30)
        with real_provider_request(*args, **kwargs):
            yield

    monkeypatch.setattr(contact_module, "provider_request", stalls_on_try_1)
    sends = ContactActivities(deps)
    with ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(try_(1).run, sends.send_contact, req)
        try:
            assert stalled.wait(30), "try 1 never reached the provider request"
            second: SendResult = try_(2).run(sends.send_contact, req)
        finally:
            wake_up.set()
        late: SendResult = first.result(timeout=30)

    assert second.outcome == ContactOutcome.SENT and second.provider_sid, second
    sent = carrier_log(simulator, account.debtor.phone)
    assert [m["sid"] for m in sent] == [second.provider_sid], sent  # once: the stalled try sent nothing
    assert (late.outcome, late.provider_sid, late.rule) == (ContactOutcome.INDETERMINATE, None, "in_flight")
    row = attempt_row(deps, req.dedupe_key)
    assert (row.state, row.provider_sid) == ("accepted", second.provider_sid)


def test_the_per_second_window_heartbeats_while_it_waits_and_fences_at_admission(deps: Deps) -> None:
    sender = f"+1999{uuid.uuid4().int % 10**7:07d}"  # a sender of its own: an empty window
    beats: list[float] = []
    ahead = admit(deps.sessions, sender, 1.0)  # one request a second, and one is on its way
    answered = threading.Timer(0.5, release, (deps.sessions, ahead))
    answered.start()
    started = _time.monotonic()
    with provider_request(deps.sessions, sender, 1.0, heartbeat=lambda: beats.append(_time.monotonic())):
        waited = _time.monotonic() - started
    answered.join()
    assert waited >= 1.4  # in flight 0.5 s, then a whole second's window after its answer
    gaps = [b - a for a, b in zip([started, *beats], [*beats, started + waited], strict=True)]
    assert len(beats) > 2 and max(gaps) <= BEAT_SECONDS + 0.2, gaps  # never a beat missed

    def in_window() -> int:
        with deps.sessions.begin() as s:
            return len(s.scalars(select(SenderSendRow.id).where(SenderSendRow.sender == sender)).all())

    before = in_window()
    with pytest.raises(NotAdmitted), provider_request(deps.sessions, sender, 1.0, admit_if=lambda s: False):
        pytest.fail("a refused request must not be made")
    assert in_window() == before  # and takes no place in the window


def test_the_live_gate_judges_by_the_accounts_pinned_profile(deps: Deps, simulator: Any) -> None:
    at = noon_in(5)
    account = open_account(deps, at)
    # the version this account was pinned to lets collectors write only from 13:00; the file says 08:00
    text = read_source("profile", "US").text.replace('contact_start = "08:00"', 'contact_start = "13:00"')
    assert 'contact_start = "13:00"' in text
    pinned = RuleSource(kind="profile", name="US", version=version_of("US", text), text=text)
    with deps.sessions.begin() as s:
        save_sources(s, [pinned], at)
    req = request(account, at=at).model_copy(update={"profile_version": pinned.version})

    result = try_(1).run(ContactActivities(deps).send_contact, req)

    assert result.outcome == ContactOutcome.DENIED and result.deferred_until is not None, result
    assert result.deferred_until.astimezone(NY).time() >= time(13), result  # by the pinned version
    assert carrier_log(simulator, account.debtor.phone) == []
