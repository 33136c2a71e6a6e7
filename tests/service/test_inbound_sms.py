"""Texts from debtors through the signed inbound webhook: every keyword of the README's table does what
it says, twice in a row (the database first, then the workflow's signal; HELP answered at once).

The account's workflow here is a probe that records each signal it gets; tests/service/test_sms_consent.py
drives the same keywords against the real account workflows and the carrier simulator.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy.orm import Session, sessionmaker

from domain.accounts import Account
from domain.keywords import Intent, Keyword, keywords
from domain.templates import load_pack
from runtime.settings import Settings
from service.app import create_app
from service.links import verify
from store.accounts import account_snapshot
from store.audit import audit_entries
from tests.service.conftest import PUBLIC, Probe, Signer, new_account, random_phone

SMS = "/webhooks/twilio/sms"
FOOTER = {
    lang: load_pack(lang).opt_out for lang in ("en", "zh-CN")
}  # "Reply STOP to opt out." / "回复TD退订"
_counter = iter(range(1, 10**9))


def inbound(phone: str, body: str, **extra: str) -> dict[str, str]:
    sid = f"SMin{next(_counter):030d}"
    return {"MessageSid": sid, "SmsSid": sid, "From": phone, "To": "+15005550006", "Body": body, **extra}


def opted_out(sessions: sessionmaker[Session], account: Account) -> list[str]:
    with sessions.begin() as s:
        snap = account_snapshot(s, account.account_id)
    assert snap is not None
    return [c.value for c in snap.opted_out]


def signals(got: list[dict[str, Any]]) -> list[tuple[str, str, bool]]:
    return [(g["signal"], g["channel"], g.get("confirm", True)) for g in got]


def ids(words: list[Keyword]) -> list[str]:
    return [k.word for k in words]


OPT_OUTS, OPT_INS, HELPS, PLANS = (
    keywords(i) for i in (Intent.OPT_OUT, Intent.OPT_IN, Intent.HELP, Intent.PLAN)
)


# ---- opt out, opt back in: the database, then one signal per text ---------------------------------
@pytest.mark.parametrize("kw", OPT_OUTS, ids=ids(OPT_OUTS))
async def test_every_opt_out_word_twice_opts_sms_out_and_signals_each_time(
    kw: Keyword, http: httpx.AsyncClient, twilio: Signer, sessions: sessionmaker[Session], probe: Probe
) -> None:
    account = new_account(sessions, random_phone())
    await probe.start(account)
    first = await twilio.post(http, SMS, inbound(account.debtor.phone, kw.word.lower()))
    second = await twilio.post(http, SMS, inbound(account.debtor.phone, f" {kw.word}. "))
    assert first.status_code == second.status_code == 200
    assert opted_out(sessions, account) == ["sms"]
    got = await probe.got(account, count=2)
    assert signals(got) == [("opt_out", "sms", True)] * 2  # the workflow ignores the repeat
    assert all(g["stored"] for g in got)  # the database has it: the run must not write it again
    # the workflow confirms (once); the webhook's reply carries nothing
    assert "<Message" not in first.text and "<Message" not in second.text


@pytest.mark.parametrize("kw", OPT_INS, ids=ids(OPT_INS))
async def test_every_opt_in_word_twice_opts_sms_back_in(
    kw: Keyword, http: httpx.AsyncClient, twilio: Signer, sessions: sessionmaker[Session], probe: Probe
) -> None:
    account = new_account(sessions, random_phone())
    await probe.start(account)
    await twilio.post(http, SMS, inbound(account.debtor.phone, "STOP"))
    assert opted_out(sessions, account) == ["sms"]
    first = await twilio.post(http, SMS, inbound(account.debtor.phone, kw.word.lower()))
    second = await twilio.post(http, SMS, inbound(account.debtor.phone, kw.word))
    assert opted_out(sessions, account) == []
    got = await probe.got(account, count=3)
    assert signals(got) == [("opt_out", "sms", True), ("opt_in", "sms", True), ("opt_in", "sms", True)]
    assert "<Message" not in first.text and "<Message" not in second.text
    with sessions.begin() as s:  # the consent is documented: which word, which message
        lines = [e for e in audit_entries(s, account.account_id) if e.action == "inbound_sms"]
    assert [e.decision for e in lines] == ["stop", "start", "start"]
    assert lines[1].details["keyword"] == kw.word


async def test_an_opt_in_from_a_number_that_never_opted_out_changes_nothing(
    http: httpx.AsyncClient, twilio: Signer, sessions: sessionmaker[Session], probe: Probe
) -> None:
    account = new_account(sessions, random_phone())
    await probe.start(account)
    response = await twilio.post(http, SMS, inbound(account.debtor.phone, "START"))
    assert "<Message" not in response.text and opted_out(sessions, account) == []
    assert signals(await probe.got(account)) == [("opt_in", "sms", True)]  # the run: nothing to do


async def test_one_number_of_several_accounts_is_confirmed_by_one_of_them(
    http: httpx.AsyncClient, twilio: Signer, sessions: sessionmaker[Session], probe: Probe
) -> None:
    phone = random_phone()
    first, second = new_account(sessions, phone), new_account(sessions, phone)
    await probe.start(first)
    await probe.start(second)
    await twilio.post(http, SMS, inbound(phone, "stop"))
    assert opted_out(sessions, first) == opted_out(sessions, second) == ["sms"]
    got = signals(await probe.got(first)) + signals(await probe.got(second))
    # both record it; exactly one of them sends the confirmation
    assert sorted(got) == [("opt_out", "sms", False), ("opt_out", "sms", True)]


# ---- no workflow to tell: the webhook's reply is the one confirmation -----------------------------
@pytest.mark.parametrize(
    ("language", "stop", "start", "stopped", "way_back", "started"),
    [
        (
            "en",
            "STOP",
            "START",
            "you will not receive any more text messages",
            "Reply START",
            "from us again",
        ),
        ("zh-CN", "退订", "开始", "我们将不再向您发送短信", "回复“开始”", "您已恢复接收我们的短信"),
    ],
)
async def test_with_no_running_workflow_each_change_is_confirmed_here_once(
    language: str,
    stop: str,
    start: str,
    stopped: str,
    way_back: str,
    started: str,
    http: httpx.AsyncClient,
    twilio: Signer,
    sessions: sessionmaker[Session],
    service_settings: Settings,
) -> None:
    account = new_account(sessions, random_phone(), language=language)  # no workflow (a closed account)
    replies = [
        (await twilio.post(http, SMS, inbound(account.debtor.phone, word))).text
        for word in (stop, stop, start, start)
    ]
    assert [r.count("<Message>") for r in replies] == [1, 0, 1, 0]  # a repeat changes nothing
    assert stopped in replies[0] and way_back in replies[0]
    assert FOOTER[language] not in replies[0]  # no "reply STOP" right after a STOP
    assert started in replies[2] and replies[2].count(FOOTER[language]) == 1  # the texts' own way out
    for reply in (replies[0], replies[2]):
        assert service_settings.company_name in reply and service_settings.callback_number in reply
    assert opted_out(sessions, account) == []


# ---- Twilio's own verdict (Advanced Opt-Out's OptOutType) ---------------------------------------
async def test_a_keyword_only_twilio_knows_still_opts_out_and_in_once(
    http: httpx.AsyncClient, twilio: Signer, sessions: sessionmaker[Session], probe: Probe
) -> None:
    """ARRET and REPRENDRE: words an operator added to the Messaging Service. Twilio blocked and
    unblocked the number; the database follows, and the one confirmation still goes."""
    running = new_account(sessions, random_phone())
    await probe.start(running)
    idle = new_account(sessions, random_phone())  # no workflow: the webhook confirms itself
    for account in (running, idle):
        replies = [
            (await twilio.post(http, SMS, inbound(account.debtor.phone, word, OptOutType=kind))).text
            for word, kind in (("ARRET", "STOP"), ("ARRET", "STOP"), ("REPRENDRE", "START"))
        ]
        assert opted_out(sessions, account) == []
        expected = [0, 0, 0] if account is running else [1, 0, 1]
        assert [r.count("<Message>") for r in replies] == expected
    assert signals(await probe.got(running, count=3)) == [
        ("opt_out", "sms", True),
        ("opt_out", "sms", True),
        ("opt_in", "sms", True),
    ]
    reply = (await twilio.post(http, SMS, inbound(idle.debtor.phone, "AIDE", OptOutType="HELP"))).text
    assert reply.count("<Message>") == 1 and FOOTER["en"] in reply


# ---- HELP: who we are, how to reach us, how to stop, in the texts' own words ---------------------
@pytest.mark.parametrize("kw", HELPS, ids=ids(HELPS))
async def test_every_help_word_twice_answers_in_the_accounts_language_and_its_words(
    kw: Keyword,
    http: httpx.AsyncClient,
    twilio: Signer,
    sessions: sessionmaker[Session],
    service_settings: Settings,
) -> None:
    for language in ("en", "zh-CN"):
        account = new_account(sessions, random_phone(), language=language)
        for body in (kw.word, f"{kw.word.lower()}?"):
            reply = (await twilio.post(http, SMS, inbound(account.debtor.phone, body))).text
            assert reply.count("<Message>") == 1
            assert service_settings.company_name in reply and service_settings.callback_number in reply
            assert reply.count(FOOTER[language]) == 1  # STOP in English, 回复TD退订 in Chinese
            assert ("如需帮助" in reply) == (language == "zh-CN")
        assert opted_out(sessions, account) == []  # HELP changes nothing but the audit log
    # a number we do not know is answered in the word's own language
    stranger = (await twilio.post(http, SMS, inbound(random_phone(), kw.word))).text
    assert FOOTER[kw.language.value if kw.language else "en"] in stranger


async def test_help_links_the_debtors_own_account_and_a_stranger_to_sign_in(
    twilio: Signer, sessions: sessionmaker[Session], service_settings: Settings, env: Any
) -> None:
    settings = service_settings.model_copy(update={"link_secret": SecretStr("help-reply-test-secret")})
    application = create_app(settings)
    application.state.temporal_client = env.client
    en = new_account(sessions, random_phone())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url=PUBLIC) as http:
        stranger = await twilio.post(http, SMS, inbound("+16465550000", "help"))
        mine = await twilio.post(http, SMS, inbound(en.debtor.phone, "HELP"))
    base = settings.self_service_url.rstrip("/")
    link = re.search(re.escape(base) + r"/(\S+) Reply STOP", mine.text)
    assert link is not None and settings.link_secret is not None
    assert verify(link.group(1), settings.link_secret, now=datetime.now(UTC)) == en.account_id
    assert base in stranger.text and f"{base}/" not in stranger.text


# ---- plan requests, and everything else ----------------------------------------------------------
@pytest.mark.parametrize("kw", PLANS, ids=ids(PLANS))
async def test_every_plan_word_twice_asks_for_negotiation(
    kw: Keyword, http: httpx.AsyncClient, twilio: Signer, sessions: sessionmaker[Session], probe: Probe
) -> None:
    account = new_account(sessions, random_phone())
    await probe.start(account)
    for body in (kw.word, f"{kw.word.lower()}!"):
        response = await twilio.post(http, SMS, inbound(account.debtor.phone, body))
        assert response.status_code == 200 and response.text.count("<Message>") == 1
    got = await probe.got(account, count=2)
    assert [(g["signal"], g["channel"]) for g in got] == [("negotiation_requested", "sms")] * 2


@pytest.mark.parametrize(
    "body", ["please don't stop calling me", "yes I paid", "can you help me", "退订了吗"]
)
async def test_a_text_that_merely_contains_a_keyword_changes_nothing(
    body: str, http: httpx.AsyncClient, twilio: Signer, sessions: sessionmaker[Session], probe: Probe
) -> None:
    account = new_account(sessions, random_phone())
    await probe.start(account)
    response = await twilio.post(http, SMS, inbound(account.debtor.phone, body))
    assert response.status_code == 200 and "<Message" not in response.text
    assert await probe.got(account, within=0.3) == []
    assert opted_out(sessions, account) == []


async def test_an_unsigned_stop_changes_nothing(
    http: httpx.AsyncClient, twilio: Signer, sessions: sessionmaker[Session]
) -> None:
    account = new_account(sessions, random_phone())
    response = await twilio.post(http, SMS, inbound(account.debtor.phone, "STOP"), signature="forged")
    assert response.status_code == 403
    assert opted_out(sessions, account) == []
