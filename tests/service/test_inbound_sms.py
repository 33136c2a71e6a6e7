"""Texts from debtors: STOP words stop SMS for good with one confirmation, HELP says who we are, PLAN asks."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy.orm import Session, sessionmaker

from domain.timeline import AccountStatus
from runtime.settings import Settings
from service.app import create_app
from service.inbound_sms import STOP_WORDS, keyword
from service.links import verify
from store.accounts import account_snapshot
from tests.service.conftest import PUBLIC, Probe, Served, Signer, new_account, quiesce, random_phone
from tests.workflows.conftest import at_local

SMS = "/webhooks/twilio/sms"


def inbound(phone: str, body: str, n: int = 1) -> dict[str, str]:
    sid = f"SMin{n:030d}"
    return {"MessageSid": sid, "SmsSid": sid, "From": phone, "To": "+15005550006", "Body": body}


@pytest.mark.parametrize(
    ("body", "word"),
    [
        (" stop ", "STOP"),
        ("Stop.", "STOP"),
        ("ＳＴＯＰ", "STOP"),
        ("１", "1"),
        ("协商", "协商"),
        ("opt out", "OPT OUT"),
    ],
)
def test_keyword_normalisation(body: str, word: str) -> None:
    assert keyword(body) == word


@pytest.mark.parametrize("word", sorted(STOP_WORDS))
async def test_every_stop_word_opts_sms_out_and_signals(
    word: str, http: httpx.AsyncClient, twilio: Signer, sessions: sessionmaker[Session], probe: Probe
) -> None:
    account = new_account(sessions, random_phone())
    await probe.start(account)
    response = await twilio.post(http, SMS, inbound(account.debtor.phone, word.lower()))
    assert response.status_code == 200
    with sessions.begin() as s:
        snap = account_snapshot(s, account.account_id)
    assert snap is not None and [c.value for c in snap.opted_out] == ["sms"]
    got = await probe.got(account)
    assert [(g["signal"], g["channel"]) for g in got] == [("opt_out", "sms")]
    assert "<Message" not in response.text  # the workflow confirms, once; no second text from here


async def test_stop_with_no_running_workflow_is_confirmed_here_once(
    app, http: httpx.AsyncClient, twilio: Signer, sessions: sessionmaker[Session]
) -> None:  # type: ignore[no-untyped-def]
    account = new_account(sessions, random_phone())  # no workflow (e.g. a closed account)
    first = await twilio.post(http, SMS, inbound(account.debtor.phone, "STOP", 1))
    second = await twilio.post(http, SMS, inbound(account.debtor.phone, "STOP", 2))
    assert first.text.count("<Message>") == 1 and "no more texts" in first.text
    assert "<Message" not in second.text


async def test_help_says_who_we_are_and_how_to_stop(
    twilio: Signer, sessions: sessionmaker[Session], service_settings: Settings, env: Any
) -> None:
    settings = service_settings.model_copy(update={"link_secret": SecretStr("help-reply-test-secret")})
    application = create_app(settings)
    application.state.temporal_client = env.client
    transport = httpx.ASGITransport(app=application)
    en = new_account(sessions, random_phone())
    zh = new_account(sessions, random_phone(), language="zh-CN")
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC) as http:
        stranger = await twilio.post(http, SMS, inbound("+16465550000", "help"))
        mine = await twilio.post(http, SMS, inbound(en.debtor.phone, "HELP"))
        zh_reply = await twilio.post(http, SMS, inbound(zh.debtor.phone, "help"))
    for response in (mine, stranger):
        assert response.text.count("<Message>") == 1
        assert settings.company_name in response.text
        assert settings.callback_number in response.text
        assert "Reply STOP to opt out" in response.text  # the language pack's help_reply, with its way out
    # the debtor's own signed link opens their account; a stranger gets the sign-in page, nobody's account
    base = settings.self_service_url.rstrip("/")
    link = re.search(re.escape(base) + r"/(\S+) Reply STOP", mine.text)
    assert link is not None
    assert settings.link_secret is not None
    assert verify(link.group(1), settings.link_secret, now=datetime.now(UTC)) == en.account_id
    assert base in stranger.text and f"{base}/" not in stranger.text
    assert "如需帮助" in zh_reply.text and zh_reply.text.count("回复TD退订") == 1
    with sessions.begin() as s:  # HELP changes nothing but the audit log
        snap = account_snapshot(s, en.account_id)
    assert snap is not None and snap.opted_out == []


@pytest.mark.parametrize("body", ["1", "PLAN", "plan", "协商"])
async def test_plan_words_ask_for_negotiation(
    body: str, http: httpx.AsyncClient, twilio: Signer, sessions: sessionmaker[Session], probe: Probe
) -> None:
    account = new_account(sessions, random_phone())
    await probe.start(account)
    response = await twilio.post(http, SMS, inbound(account.debtor.phone, body))
    assert response.status_code == 200 and response.text.count("<Message>") == 1
    got = await probe.got(account)
    assert [(g["signal"], g["channel"]) for g in got] == [("negotiation_requested", "sms")]


async def test_other_text_changes_nothing(
    http: httpx.AsyncClient, twilio: Signer, sessions: sessionmaker[Session], probe: Probe
) -> None:
    account = new_account(sessions, random_phone())
    await probe.start(account)
    response = await twilio.post(http, SMS, inbound(account.debtor.phone, "please don't stop calling me"))
    assert response.status_code == 200 and "<Message" not in response.text
    assert await probe.got(account, within=0.3) == []


# ---- against the real account workflow ----------------------------------------------------------
async def test_stop_twice_on_the_real_workflow_gets_one_confirmation(
    served: Served, http: httpx.AsyncClient, twilio: Signer
) -> None:
    harness = served.harness
    phone = random_phone()
    account = await harness.open_account(due_in_days=30, phone=phone)
    handle = harness.handle(account)
    await harness.skip_to(at_local((await harness.now()).date() + timedelta(days=1), 12))  # lawful hours
    await twilio.post(http, SMS, inbound(phone, "STOP", 1))
    for _ in range(100):  # the workflow's confirmation goes out through the carrier simulator
        if [c for c in harness.sent(account) if c["template"] == "opt_out_confirmation"]:
            break
        await asyncio.sleep(0.1)
    await twilio.post(http, SMS, inbound(phone, "stop", 2))
    status = await handle.query("status", result_type=AccountStatus)
    await quiesce(handle)
    await asyncio.sleep(0.5)
    assert "sms" in status.opted_out
    confirmations = [c for c in harness.sent(account) if c["template"] == "opt_out_confirmation"]
    assert len(confirmations) == 1
    assert len(await harness.carrier_log(phone)) == 1  # the carrier saw exactly one text


async def test_plan_by_sms_puts_the_negotiation_hold_on(
    served: Served, http: httpx.AsyncClient, twilio: Signer
) -> None:
    harness = served.harness
    phone = random_phone()
    account = await harness.open_account(due_in_days=30, phone=phone)
    response = await twilio.post(http, SMS, inbound(phone, "协商"))
    assert "<Message>" in response.text
    handle = harness.handle(account)
    status = await handle.query("status", result_type=AccountStatus)
    await quiesce(handle)
    assert "negotiation" in status.holds
