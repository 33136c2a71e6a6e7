"""Status, AMD and key-press webhooks: signed or refused, applied once, delivered to the workflow."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from xml.etree import ElementTree

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from domain.accounts import Channel, ContactOutcome
from domain.timeline import AccountStatus
from store import cases as case_store
from store.accounts import AccountSnapshot, account_snapshot
from store.audit import audit_entries
from store.contacts import AttemptView, attempt_by_sid, contact_attempts
from tests.service.conftest import (
    PUBLIC,
    Probe,
    Served,
    Signer,
    new_account,
    quiesce,
    random_phone,
    sent_attempt,
)
from tests.workflows.conftest import at_local

ALL_PATHS = [
    "/webhooks/twilio/message-status",
    "/webhooks/twilio/call-status",
    "/webhooks/twilio/amd",
    "/webhooks/twilio/gather",
    "/webhooks/twilio/sms",
]


def attempt(sessions: sessionmaker[Session], sid: str) -> AttemptView:
    with sessions.begin() as s:
        view = attempt_by_sid(s, sid)
    assert view is not None
    return view


def snapshot(sessions: sessionmaker[Session], account_id: str) -> AccountSnapshot:
    with sessions.begin() as s:
        snap = account_snapshot(s, account_id)
    assert snap is not None
    return snap


def msg(sid: str, status: str, code: int | None = None) -> dict[str, str]:
    params = {
        "MessageSid": sid,
        "SmsSid": sid,
        "MessageStatus": status,
        "SmsStatus": status,
        "To": "+16465550142",
    }
    if code:
        params["ErrorCode"] = str(code)
    return params


def audit_entries_of(sessions: sessionmaker[Session], account_id: str) -> list:  # type: ignore[type-arg]
    with sessions.begin() as s:
        return audit_entries(s, account_id)


def first_verb(xml: str) -> str:
    root = ElementTree.fromstring(xml)
    first = root[0]
    return first[0].tag if first.tag == "Gather" else first.tag


@pytest.mark.parametrize("path", ALL_PATHS)
async def test_forged_missing_or_replayed_signature_is_refused_and_changes_nothing(
    path: str, http: httpx.AsyncClient, twilio: Signer, sessions: sessionmaker[Session], probe: Probe
) -> None:
    account = new_account(sessions, random_phone())
    await probe.start(account)
    sid = sent_attempt(sessions, account, Channel.SMS if "message" in path else Channel.VOICE)
    params = {
        **msg(sid, "undelivered", 21610),
        "CallSid": sid,
        "CallStatus": "completed",
        "AnsweredBy": "unknown",
        "Digits": "9",
        "From": account.debtor.phone,
        "Body": "STOP",
    }
    before_attempt, before_snap = attempt(sessions, sid), snapshot(sessions, account.account_id)
    good = twilio.sign(PUBLIC + path, params)

    assert (await twilio.post(http, path, params, signature=None)).status_code == 403
    assert (await twilio.post(http, path, params, signature="bm90IGEgc2lnbmF0dXJl")).status_code == 403
    # a real signature replayed with a changed body, or one made for another URL (an internal host)
    changed = {**params, "Body": "HELP", "MessageStatus": "delivered", "Digits": "1"}
    assert (await twilio.post(http, path, changed, signature=good)).status_code == 403
    other_url = Signer(twilio.token).sign("http://10.0.0.5:8000" + path, params)
    assert (await twilio.post(http, path, params, signature=other_url)).status_code == 403
    # signed with another account's token
    assert (await Signer("someone-elses-token").post(http, path, params)).status_code == 403

    assert attempt(sessions, sid) == before_attempt
    assert snapshot(sessions, account.account_id) == before_snap
    with sessions.begin() as s:
        assert not [e for e in audit_entries(s, account.account_id) if e.actor == "twilio_webhook"]
    assert await probe.got(account, count=1, within=0.3) == []


async def test_query_string_is_part_of_what_is_signed(
    http: httpx.AsyncClient, twilio: Signer, sessions: sessionmaker[Session]
) -> None:
    account = new_account(sessions, random_phone())
    sid = sent_attempt(sessions, account, Channel.SMS)
    path = "/webhooks/twilio/message-status?attempt=7"
    params = msg(sid, "sent")
    assert (await twilio.post(http, path, params)).status_code == 200
    wrong = twilio.sign(PUBLIC + "/webhooks/twilio/message-status", params)  # query left out
    assert (await twilio.post(http, path, params, signature=wrong)).status_code == 403


async def test_delivered_updates_the_attempt_and_reaches_the_workflow(
    http: httpx.AsyncClient, twilio: Signer, sessions: sessionmaker[Session], probe: Probe
) -> None:
    account = new_account(sessions, random_phone())
    await probe.start(account)
    sid = sent_attempt(sessions, account, Channel.SMS)
    for status in ("queued", "sent", "delivered"):
        response = await twilio.post(http, "/webhooks/twilio/message-status", msg(sid, status))
        assert response.status_code == 200
    view = attempt(sessions, sid)
    assert (view.provider_status, view.outcome) == ("delivered", ContactOutcome.DELIVERED)
    got = await probe.got(account)
    assert [(g["signal"], g["outcome"], g["dedupe_key"]) for g in got] == [
        ("contact_outcome", "delivered", view.dedupe_key)
    ]


@pytest.mark.parametrize(
    ("code", "outcome", "unreachable", "opted_out"),
    [
        (30003, ContactOutcome.UNDELIVERABLE, ["sms"], []),
        (30006, ContactOutcome.UNDELIVERABLE, ["sms"], []),
        (21610, ContactOutcome.OPTED_OUT, [], ["sms"]),
    ],
)
async def test_undelivered_marks_the_number_and_tells_the_workflow(
    code: int,
    outcome: ContactOutcome,
    unreachable: list[str],
    opted_out: list[str],
    http: httpx.AsyncClient,
    twilio: Signer,
    sessions: sessionmaker[Session],
    probe: Probe,
) -> None:
    account = new_account(sessions, random_phone())
    await probe.start(account)
    sid = sent_attempt(sessions, account, Channel.SMS)
    await twilio.post(http, "/webhooks/twilio/message-status", msg(sid, "sent"))
    response = await twilio.post(http, "/webhooks/twilio/message-status", msg(sid, "undelivered", code))
    assert response.status_code == 200
    view = attempt(sessions, sid)
    assert (view.provider_status, view.outcome, view.error_code) == ("undelivered", outcome, code)
    snap = snapshot(sessions, account.account_id)
    assert [c.value for c in snap.unreachable] == unreachable
    assert [c.value for c in snap.opted_out] == opted_out
    got = await probe.got(account)
    assert [(g["signal"], g["outcome"], g["error_code"]) for g in got] == [
        ("contact_outcome", outcome.value, code)
    ]


async def test_duplicate_and_late_callbacks_change_nothing(
    http: httpx.AsyncClient, twilio: Signer, sessions: sessionmaker[Session], probe: Probe
) -> None:
    account = new_account(sessions, random_phone())
    await probe.start(account)
    sid = sent_attempt(sessions, account, Channel.SMS)
    path = "/webhooks/twilio/message-status"
    await twilio.post(http, path, msg(sid, "delivered"))
    settled = attempt(sessions, sid)
    with sessions.begin() as s:
        audit_before = len(audit_entries(s, account.account_id))
    for params in (
        msg(sid, "sent"),
        msg(sid, "queued"),
        msg(sid, "delivered"),
        msg(sid, "undelivered", 30003),
    ):
        assert (await twilio.post(http, path, params)).status_code == 200
    after = attempt(sessions, sid)
    assert (after.provider_status, after.outcome, after.error_code) == (
        "delivered",
        ContactOutcome.DELIVERED,
        None,
    )
    assert after.updated_at >= settled.updated_at
    with sessions.begin() as s:
        assert len(audit_entries(s, account.account_id)) == audit_before
    assert snapshot(sessions, account.account_id).unreachable == []
    got = await probe.got(account, count=3, within=1.0)
    assert {g["outcome"] for g in got} == {"delivered"}  # a repeat re-sends the stored outcome only


async def test_unknown_sid_is_a_logged_no_op(
    http: httpx.AsyncClient, twilio: Signer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING", logger="humane_collect.webhooks"):
        response = await twilio.post(http, "/webhooks/twilio/message-status", msg("SMnope", "delivered"))
        call = await twilio.post(
            http,
            "/webhooks/twilio/call-status",
            {"CallSid": "CAnope", "CallStatus": "completed", "To": "+16465550142"},
        )
    assert response.status_code == 200 and call.status_code == 200
    assert "SMnope" in caplog.text and "+16465550142" not in caplog.text  # masked: +1 646***0142
    assert "646***0142" in caplog.text


@pytest.mark.parametrize(
    ("events", "outcome"),
    [
        ([("completed", {"AnsweredBy": "human", "CallDuration": "35"})], ContactOutcome.CONVERSATION),
        ([("completed", {"AnsweredBy": "unknown", "CallDuration": "1"})], ContactOutcome.SILENT),
        ([("completed", {"CallDuration": "2"})], ContactOutcome.SILENT),
        ([("completed", {"AnsweredBy": "machine_end_beep", "CallDuration": "20"})], ContactOutcome.VOICEMAIL),
        ([("busy", {})], ContactOutcome.BUSY),
        ([("no-answer", {})], ContactOutcome.NO_ANSWER),
        ([("failed", {})], ContactOutcome.UNDELIVERABLE),
        # async AMD before the end: the final status without AnsweredBy still knows it
        (
            [("amd", {"AnsweredBy": "machine_start"}), ("completed", {"CallDuration": "20"})],
            ContactOutcome.VOICEMAIL,
        ),
        # AMD deciding after the callee hung up: the outcome is refined to silent
        ([("completed", {"CallDuration": "3"}), ("amd", {"AnsweredBy": "unknown"})], ContactOutcome.SILENT),
    ],
)
async def test_call_outcomes(
    events: list[tuple[str, dict[str, str]]],
    outcome: ContactOutcome,
    http: httpx.AsyncClient,
    twilio: Signer,
    sessions: sessionmaker[Session],
    probe: Probe,
) -> None:
    account = new_account(sessions, random_phone())
    await probe.start(account)
    sid = sent_attempt(sessions, account, Channel.VOICE)
    for status in ("initiated", "ringing", "in-progress"):
        await twilio.post(http, "/webhooks/twilio/call-status", {"CallSid": sid, "CallStatus": status})
    for kind, extra in events:
        if kind == "amd":
            response = await twilio.post(http, "/webhooks/twilio/amd", {"CallSid": sid, **extra})
        else:
            response = await twilio.post(
                http, "/webhooks/twilio/call-status", {"CallSid": sid, "CallStatus": kind, **extra}
            )
        assert response.status_code == 200
    assert attempt(sessions, sid).outcome == outcome
    got = await probe.got(account)
    assert got and got[-1]["outcome"] == outcome.value


# ---- key presses --------------------------------------------------------------------------------
async def test_gather_balance_only_after_the_callee_keys_in_the_date_of_birth(
    http: httpx.AsyncClient, twilio: Signer, sessions: sessionmaker[Session]
) -> None:
    """Found: key 2 spoke the balance to whoever answered (a third-party disclosure)."""
    verify = f"{PUBLIC}/webhooks/twilio/gather?step=verify"
    en = new_account(sessions, random_phone(), born=date(1980, 3, 7))
    zh = new_account(sessions, random_phone(), language="zh-CN", born=date(1975, 12, 31))
    for account, lang, words, keyed in (
        (en, "en-US", "USD 1,234.56", "07031980"),
        (zh, "cmn-CN", "余额", "31121975"),
    ):
        sid = sent_attempt(sessions, account, Channel.VOICE)
        asked = await twilio.post(http, "/webhooks/twilio/gather", {"CallSid": sid, "Digits": "2"})
        assert asked.status_code == 200 and asked.headers["content-type"].startswith("application/xml")
        assert "1,234.56" not in asked.text and "1234" not in asked.text  # nothing before verification
        assert 'numDigits="8"' in asked.text and f'action="{verify.replace("&", "&amp;")}"' in asked.text
        assert f'language="{lang}"' in asked.text
        told = await twilio.post(
            http, "/webhooks/twilio/gather?step=verify", {"CallSid": sid, "Digits": keyed}, base=PUBLIC
        )
        assert first_verb(told.text) == "Say"
        assert words in told.text and f'language="{lang}"' in told.text
        assert f'action="{PUBLIC}/webhooks/twilio/gather"' in told.text  # the menu again


async def test_a_wrong_date_of_birth_hears_nothing_about_a_debt(
    http: httpx.AsyncClient, twilio: Signer, sessions: sessionmaker[Session]
) -> None:
    account = new_account(sessions, random_phone(), born=date(1980, 3, 7))
    sid = sent_attempt(sessions, account, Channel.VOICE)
    await twilio.post(http, "/webhooks/twilio/gather", {"CallSid": sid, "Digits": "2"})
    path = "/webhooks/twilio/gather?step=verify"
    first = await twilio.post(http, path, {"CallSid": sid, "Digits": "01011990"})
    assert first_verb(first.text) == "Say" and "<Gather" in first.text and "did not match" in first.text
    second = await twilio.post(http, path, {"CallSid": sid, "Digits": "07031981"})
    for answer in (first, second):
        text = answer.text.lower()
        assert "1,234.56" not in text and "balance" not in text.split("<gather")[0]
        assert "debt" not in text and "account" not in text and "owe" not in text
    assert first_verb(second.text) == "Say" and "<Hangup" in second.text
    assert "could not confirm" in second.text
    lines = [e for e in audit_entries_of(sessions, account.account_id) if e.action == "verify"]
    assert [e.decision for e in lines] == ["failed", "failed"]
    assert all("01011990" not in str(e.details) and "07031981" not in str(e.details) for e in lines)


async def test_without_a_date_of_birth_on_file_the_balance_is_never_spoken(
    http: httpx.AsyncClient, twilio: Signer, sessions: sessionmaker[Session]
) -> None:
    account = new_account(sessions, random_phone())
    sid = sent_attempt(sessions, account, Channel.VOICE)
    asked = await twilio.post(http, "/webhooks/twilio/gather", {"CallSid": sid, "Digits": "2"})
    assert first_verb(asked.text) == "Say" and "1,234.56" not in asked.text
    assert "link in our text" in asked.text and "<Gather" in asked.text  # and the menu again
    forced = await twilio.post(
        http, "/webhooks/twilio/gather?step=verify", {"CallSid": sid, "Digits": "00000000"}
    )
    assert "1,234.56" not in forced.text and "<Hangup" in forced.text


async def test_gather_1_asks_for_a_plan_and_9_stops_calls(
    http: httpx.AsyncClient, twilio: Signer, sessions: sessionmaker[Session], probe: Probe
) -> None:
    account = new_account(sessions, random_phone())
    await probe.start(account)
    sid = sent_attempt(sessions, account, Channel.VOICE)
    one = await twilio.post(http, "/webhooks/twilio/gather", {"CallSid": sid, "Digits": "1"})
    nine = await twilio.post(http, "/webhooks/twilio/gather", {"CallSid": sid, "Digits": "9"})
    other = await twilio.post(http, "/webhooks/twilio/gather", {"CallSid": sid, "Digits": "5"})
    for response in (one, nine, other):
        assert response.status_code == 200 and first_verb(response.text) == "Say"
    assert "<Hangup" in one.text and "<Hangup" in nine.text and "<Gather" in other.text
    got = await probe.got(account, count=2)
    assert [(g["signal"], g.get("channel")) for g in got] == [
        ("negotiation_requested", "voice"),
        ("opt_out", "voice"),
    ]
    assert [c.value for c in snapshot(sessions, account.account_id).opted_out] == ["voice"]


async def test_gather_on_an_unknown_call_still_speaks(http: httpx.AsyncClient, twilio: Signer) -> None:
    response = await twilio.post(http, "/webhooks/twilio/gather", {"CallSid": "CAunknown", "Digits": "9"})
    assert response.status_code == 200 and first_verb(response.text) == "Say"


async def test_gather_9_on_the_real_account_workflow(
    served: Served, http: httpx.AsyncClient, twilio: Signer, sessions: sessionmaker[Session]
) -> None:
    harness = served.harness
    account = await harness.open_account(due_in_days=30, phone=random_phone())
    sid = sent_attempt(sessions, account, Channel.VOICE)
    response = await twilio.post(http, "/webhooks/twilio/gather", {"CallSid": sid, "Digits": "9"})
    assert response.status_code == 200
    status = await harness.handle(account).query("status", result_type=AccountStatus)
    assert status.opted_out == ["voice"]
    await quiesce(harness.handle(account))


# ---- the whole chain: carrier simulator -> signed callbacks -> service -> workflow ------------------
async def test_end_to_end_undelivered_sms_through_the_simulator(served: Served, simulator: object) -> None:
    h = served.harness
    phone = random_phone(last_two=90)  # the simulator: SMS undelivered, 30003
    # the last day of the grace: the first reminder is tomorrow's at 10:00 (nothing before intake is caught up)
    account = await h.open_account(due_in_days=-3, phone=phone)
    handle = h.handle(account)
    await h.skip_to(at_local(account.due_date + timedelta(days=4), 11))
    deadline = asyncio.get_running_loop().time() + 15
    status = await handle.query("status", result_type=AccountStatus)
    while "sms" not in status.unreachable and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.1)
        status = await handle.query("status", result_type=AccountStatus)
    assert "sms" in status.unreachable
    await asyncio.to_thread(simulator.wait_idle)  # type: ignore[attr-defined]  (it calls back into our loop)
    hooks = [c for c in simulator.store.callbacks if c.url.startswith(served.base)]  # type: ignore[attr-defined]
    assert hooks and all(c.status_code == 200 for c in hooks), [(c.url, c.status_code) for c in hooks]
    with h.sessions.begin() as s:
        sms = [a for a in contact_attempts(s, account.account_id) if a.channel == Channel.SMS]
        snap = account_snapshot(s, account.account_id)
    assert sms[0].provider_status == "undelivered" and sms[0].error_code == 30003
    assert snap is not None and snap.unreachable[:1] == [Channel.SMS]


async def test_gather_3_files_a_complaint_with_its_case_once_per_call(
    served: Served, twilio: Signer, sessions: sessionmaker[Session]
) -> None:
    harness = served.harness
    account = await harness.open_account(due_in_days=-20, phone=random_phone())
    sid = sent_attempt(sessions, account, Channel.VOICE)
    async with httpx.AsyncClient(base_url=served.base) as http:
        said = [
            await twilio.post(
                http, "/webhooks/twilio/gather", {"CallSid": sid, "Digits": "3"}, base=served.base
            )
            for _ in range(2)  # pressed twice on the same call: one complaint, one case
        ]
    for response in said:
        assert (
            response.status_code == 200 and first_verb(response.text) == "Say" and "<Hangup" in response.text
        )
    with harness.sessions.begin() as s:
        [case] = case_store.cases_of(s, account.account_id)
    assert case.kind.value == "complaint" and case.channel == "call"
    assert "case C - " in said[0].text and " ".join(case.number) in said[0].text  # read digit by digit
    status = await harness.handle(account).query("status", result_type=AccountStatus)
    assert status.holds == ["complaint"]
    await quiesce(harness.handle(account))
