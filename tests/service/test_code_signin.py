"""Signing in with a one-time code, through the HTTP app, the real twilio SDK and the carrier simulator.

The code the tests type in is the one the simulator received: a text's body, or the TwiML a call
spoke. Nothing is read from the application's own tables to sign in.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from domain.accounts import Account
from domain.masking import mask_phone
from domain.templates import forbidden_in, sms_segments
from runtime.settings import Settings
from service import code_sender
from service.app import create_app
from store.audit import audit_entries
from store.models import AuditRow
from tests.service.conftest import PUBLIC, Signer, new_account, random_phone
from tests.service.test_selfservice import BORN, CSRF, overdue
from tests.workflows.conftest import Harness, running_harness

CODE = re.compile(r"(?<!\d)(\d{6})(?!\d)")
SAID = re.compile(r"(\d(?:(?:, |，)\d){5})")


def national(phone: str) -> str:
    """A +1 number as a debtor types it: ``(646) 555-0142``."""
    digits = phone.removeprefix("+1")
    return f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"


def sim_get(simulator: Any, what: str, phone: str) -> list[dict[str, Any]]:
    simulator.wait_idle()
    response = simulator.control("GET", f"/_sim/{what}", params={"to": phone})
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


def code_texts(simulator: Any, phone: str) -> list[str]:
    """The codes texted to ``phone``, oldest first (dunning texts to the same number left out)."""
    found = [
        m
        for m in sim_get(simulator, "messages", phone)
        if "sign-in code" in m["body"] or "验证码" in m["body"]
    ]
    found.sort(key=lambda m: m["date_created"])
    return [CODE.search(m["body"]).group(1) for m in found]  # type: ignore[union-attr]


def spoken_code(twiml: str) -> str:
    """The code a call read out, digit by digit (each ``<Say>`` says it once)."""
    said = SAID.findall(twiml)
    assert len(said) == 2 and said[0] == said[1], twiml
    return re.sub(r"\D", "", said[0])


@pytest.fixture
def code_settings(service_settings: Settings) -> Settings:
    return service_settings.model_copy(update={"link_secret": SecretStr("code-tests-link-secret")})


@pytest.fixture
def app(code_settings: Settings, env: Any) -> FastAPI:
    application = create_app(code_settings)
    application.state.temporal_client = env.client
    return application


@pytest.fixture
async def web(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC) as client:
        yield client


async def ask(
    web: httpx.AsyncClient, phone: str, *, via: str = "sms", country: str = "US", lang: str = ""
) -> httpx.Response:
    return await web.post("/me/code", data={"phone": phone, "country": country, "via": via, "lang": lang})


async def enter(web: httpx.AsyncClient, code: str, lang: str = "") -> httpx.Response:
    return await web.post("/me/code/verify", data={"code": code, "lang": lang})


def audit_of(sessions: Any, account: Account) -> list[tuple[str, str, dict[str, Any]]]:
    with sessions.begin() as s:
        return [(e.action, e.decision, e.details) for e in audit_entries(s, account.account_id)]


# ---- the whole way in: a code by text, the date of birth, the account -------------------------------
@pytest.fixture
async def harness(env: Any, settings: Settings, simulator: Any) -> AsyncIterator[Harness]:
    async with running_harness(
        env, settings.model_copy(update={"link_secret": SecretStr("code-tests-link-secret")}), simulator
    ) as h:
        yield h


async def test_a_code_texted_to_the_number_on_file_opens_the_page_after_the_date_of_birth(
    harness: Harness, simulator: Any
) -> None:
    app = create_app(harness.settings)
    app.state.temporal_client = harness.client
    app.state.sessions = harness.sessions
    account = await overdue(harness)
    phone = account.debtor.phone
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC) as web:
        landing = await web.get("/me")
        assert (
            landing.status_code == 200 and 'name="phone"' in landing.text and "Send me a code" in landing.text
        )
        asked = await ask(web, national(phone))
        assert asked.status_code == 303 and asked.headers["location"] == "/me/code"
        cookie = asked.headers["set-cookie"].lower()
        assert "collect_me_code=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
        page = await web.get("/me/code")
        assert "If this number is on file, a code is on its way" in page.text
        await code_sender.settle(app)

        texts = [m for m in sim_get(simulator, "messages", phone) if "sign-in code" in m["body"]]
        assert len(texts) == 1 and texts[0]["from"] == harness.settings.twilio_from_number
        assert "Acme Finance" in texts[0]["body"] and "5 minutes" in texts[0]["body"]
        code = CODE.search(texts[0]["body"]).group(1)  # type: ignore[union-attr]

        opened = await enter(web, code)
        assert opened.status_code == 303 and opened.headers["location"] == "/me/account"
        assert any(c.startswith("collect_me=") for c in opened.headers.get_list("set-cookie"))
        asked_born = await web.get("/me/account")  # the same unverified session a link opens
        assert "date of birth" in asked_born.text and "USD" not in asked_born.text
        csrf = CSRF.search(asked_born.text).group(1)  # type: ignore[union-attr]
        shown = await web.post(
            "/me/verify", data={"born": BORN.isoformat(), "csrf": csrf}, follow_redirects=True
        )
        assert shown.status_code == 200 and "USD 500.00" in shown.text

        again = await enter(web, code)  # used once: the challenge is gone from the browser too
        assert again.status_code == 410 and "no longer works" in again.text

    lines = audit_of(harness.sessions, account)
    codes = [(a, d, x) for a, d, x in lines if a == "signin_code"]
    assert [d for _, d, _ in codes] == ["requested", "sent"]
    assert all(x["to"] == mask_phone(phone) for _, _, x in codes) and codes[1][2]["channel"] == "sms"
    assert ("self_service", "opened", {"by": "code", "via": "sms"}) in lines
    assert not any(code in str(x) or phone in str(x) for _, _, x in lines)  # neither code nor number


# ---- texts that cannot arrive: the call reads the code ---------------------------------------------
@pytest.mark.parametrize(
    ("language", "voice", "words"),
    [("en", "en-US", "This is Acme Finance"), ("zh-CN", "cmn-CN", "这里是Acme Finance")],
)
async def test_a_number_that_replied_stop_gets_a_call_that_reads_the_code_until_it_replies_start(
    web: httpx.AsyncClient,
    app: FastAPI,
    sessions: Any,
    simulator: Any,
    twilio: Signer,
    language: str,
    voice: str,
    words: str,
) -> None:
    phone = random_phone(42)
    account = new_account(sessions, phone, language=language, born=BORN)
    stop = {"From": phone, "Body": "STOP", "MessageSid": f"SM{uuid.uuid4().hex}"}
    assert (await twilio.post(web, "/webhooks/twilio/sms", stop)).status_code == 200

    assert (await ask(web, national(phone), via="sms")).status_code == 303
    await code_sender.settle(app)
    assert code_texts(simulator, phone) == []  # no text from our sender to a number that said STOP
    calls = sim_get(simulator, "calls", phone)
    assert len(calls) == 1 and calls[0]["from"] == app.state.settings.twilio_from_number
    twiml = calls[0]["twiml"]
    assert twiml.startswith(
        '<?xml version="1.0" encoding="UTF-8"?><Response><Say language="' + voice + '">' + words
    )
    assert calls[0]["speech_latency_seconds"] == 0  # our name at once: never a silent call
    opened = await enter(web, spoken_code(twiml))
    assert opened.status_code == 303 and opened.headers["location"] == "/me/account"
    sent = [x for a, d, x in audit_of(sessions, account) if a == "signin_code" and d == "sent"]
    assert sent == [
        {"to": mask_phone(phone), "channel": "voice", "sid": calls[0]["sid"], "because": "texts_blocked"}
    ]

    start = {"From": phone, "Body": "START", "MessageSid": f"SM{uuid.uuid4().hex}"}
    assert (await twilio.post(web, "/webhooks/twilio/sms", start)).status_code == 200
    assert (await ask(web, national(phone), via="sms")).status_code == 303
    await code_sender.settle(app)
    texted = code_texts(simulator, phone)
    assert len(texted) == 1 and len(sim_get(simulator, "calls", phone)) == 1
    assert (await enter(web, texted[0])).status_code == 303


@pytest.mark.parametrize(
    ("last_two", "why"),
    [
        (95, "sms_undelivered_30006"),  # a landline: the text is undelivered, a call gets through
        (99, "sms_undelivered_21610"),  # unsubscribed from our sender (the carrier says so later)
        (None, "sms_refused_21614"),  # Twilio refuses +15005550009 at once: not a mobile number
    ],
)
async def test_a_text_the_carrier_cannot_deliver_is_followed_by_a_call(
    web: httpx.AsyncClient, app: FastAPI, sessions: Any, simulator: Any, last_two: int | None, why: str
) -> None:
    # a fresh number per run (the simulator's outcome is its last two digits), chosen at run time: the
    # test ids must be the same in every xdist worker
    phone = random_phone(last_two) if last_two is not None else "+15005550009"
    account = new_account(sessions, phone, born=BORN)
    assert (await ask(web, phone)).status_code == 303
    await code_sender.settle(app)
    calls = sim_get(simulator, "calls", phone)
    assert (await enter(web, spoken_code(calls[-1]["twiml"]))).status_code == 303
    sent = [
        (x["channel"], x.get("because"))
        for a, d, x in audit_of(sessions, account)
        if (a, d) == ("signin_code", "sent")
    ]
    assert sent[-1] == ("voice", why)
    if why.endswith("21610"):  # noted: the next code goes by voice at once, no text tried
        await ask(web, phone)
        await code_sender.settle(app)
        sent = [
            (x["channel"], x.get("because"))
            for a, d, x in audit_of(sessions, account)
            if (a, d) == ("signin_code", "sent")
        ]
        assert sent[-1] == ("voice", "texts_blocked")


async def test_the_debtor_may_ask_for_the_call_and_the_country_reads_a_national_number(
    web: httpx.AsyncClient, app: FastAPI, sessions: Any, simulator: Any
) -> None:
    # fresh digits, but the last two choose the carrier simulator's outcome: 42 answers normally
    phone = "+86138" + f"{uuid.uuid4().int % 10**6:06d}" + "42"
    new_account(sessions, phone, language="zh-CN", born=BORN)
    typed = f"{phone[3:6]} {phone[6:10]} {phone[10:]}"  # 138 1234 5678, no +86
    assert (await ask(web, typed, via="voice", country="CN", lang="zh-CN")).status_code == 303
    await code_sender.settle(app)
    calls = sim_get(simulator, "calls", phone)
    assert len(calls) == 1 and 'language="cmn-CN"' in calls[0]["twiml"] and "再说一遍" in calls[0]["twiml"]
    assert sim_get(simulator, "messages", phone) == []


# ---- no account enumeration -------------------------------------------------------------------------
def _shape(response: httpx.Response) -> tuple[int, str, list[str]]:
    cookies = [re.sub(r"=[^;]*;", "=<value>;", c, count=1) for c in response.headers.get_list("set-cookie")]
    return response.status_code, response.headers.get("location", ""), cookies


async def test_a_number_on_no_account_gets_the_same_answer_and_nothing_is_sent(
    app: FastAPI, sessions: Any, simulator: Any
) -> None:
    known, unknown = random_phone(42), random_phone(42)
    new_account(sessions, known, born=BORN)
    pages: dict[str, list[Any]] = {}
    for name, phone in (("known", known), ("unknown", unknown)):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC) as web:
            asked = await ask(web, national(phone))
            shown = await web.get("/me/code")
            await code_sender.settle(app)
            sent = code_texts(simulator, phone)
            bad = f"{(int(sent[0]) + 1) % 10**6:06d}" if sent else "000000"
            tries = [await enter(web, bad) for _ in range(5)]
            pages[name] = [_shape(asked), shown.text] + [(t.status_code, t.text) for t in tries]
    assert pages["known"] == pages["unknown"]  # redirect, cookie, page, tries left and the lock-out alike
    assert sim_get(simulator, "messages", unknown) == [] and sim_get(simulator, "calls", unknown) == []
    assert len(code_texts(simulator, known)) == 1
    with sessions.begin() as s:  # the unknown number is audited masked, under no account
        lines = (
            s.query(AuditRow).filter(AuditRow.action == "signin_code", AuditRow.account_id.is_(None)).all()
        )
        masked = [r.details.get("to") for r in lines if r.decision == "no_account"]
    assert mask_phone(unknown) in masked and all(unknown not in str(r.details) for r in lines)


# ---- what a debtor gets wrong ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("typed", "lang", "says"),
    [
        ("12ab", "", 'Mobile number: "12ab" is not a phone number.'),
        ("555 01", "", 'Mobile number: "555 01" has the wrong number of digits for United States.'),
        ("", "", "Mobile number: please enter it."),
        ("12ab", "zh-CN", "手机号码：“12ab”不是电话号码。"),
        ("555 01", "zh-CN", "手机号码：“555 01”的位数不符合美国的号码。"),
    ],
)
async def test_a_malformed_number_is_a_form_error_naming_the_field(
    web: httpx.AsyncClient, typed: str, lang: str, says: str
) -> None:
    answer = await ask(web, typed, lang=lang)
    assert answer.status_code == 422 and says in answer.text.replace("&#34;", '"').replace("&quot;", '"')
    assert 'aria-invalid="true"' in answer.text and "set-cookie" not in answer.headers


async def test_a_code_that_is_not_six_digits_costs_no_try(
    web: httpx.AsyncClient, app: FastAPI, sessions: Any, simulator: Any
) -> None:
    phone = random_phone(42)
    new_account(sessions, phone, born=BORN)
    await ask(web, phone)
    await code_sender.settle(app)
    code = code_texts(simulator, phone)[0]
    short = await enter(web, code[:5])
    assert short.status_code == 422 and "please enter the 6 digits" in short.text
    other = f"{(int(code) + 1) % 10**6:06d}"
    typed = " ".join(chr(ord("０") + int(d)) for d in other)  # full-width digits with spaces: read as digits
    wrong = await enter(web, typed)
    assert wrong.status_code == 422 and "Tries left: 4" in wrong.text
    assert (await enter(web, code)).status_code == 303


async def test_five_wrong_codes_lock_the_number_out(
    web: httpx.AsyncClient, app: FastAPI, sessions: Any, simulator: Any
) -> None:
    phone = random_phone(42)
    new_account(sessions, phone, born=BORN)
    await ask(web, phone)
    await code_sender.settle(app)
    code = code_texts(simulator, phone)[0]
    bad = f"{(int(code) + 1) % 10**6:06d}"
    for left in (4, 3, 2, 1):
        assert f"Tries left: {left}" in (await enter(web, bad)).text
    locked = await enter(web, bad)
    assert locked.status_code == 429 and "Too many wrong codes" in locked.text
    assert 14 * 60 < int(locked.headers["retry-after"]) <= 15 * 60 + 1
    assert (await enter(web, code)).status_code == 410  # the browser's challenge is gone
    again = await ask(web, phone)  # and no new code for that number meanwhile
    assert again.status_code == 429 and "Too many wrong codes" in again.text
    await code_sender.settle(app)
    assert len(code_texts(simulator, phone)) == 1


# ---- rate limits --------------------------------------------------------------------------------------
async def test_codes_are_limited_per_number_whether_or_not_it_is_on_file(
    web: httpx.AsyncClient, app: FastAPI, sessions: Any, simulator: Any
) -> None:
    limit = app.state.settings.signin_codes_per_number_per_hour
    known, unknown = random_phone(42), random_phone(42)
    new_account(sessions, known, born=BORN)
    for phone in (known, unknown):
        for _ in range(limit):
            assert (await ask(web, national(phone))).status_code == 303
        refused = await ask(web, phone)  # typed another way: the same number
        assert refused.status_code == 429 and 3000 < int(refused.headers["retry-after"]) <= 3601
        assert "Please wait" in refused.text
    await code_sender.settle(app)
    assert len(code_texts(simulator, known)) == limit


async def test_codes_are_limited_per_client_address(code_settings: Settings, env: Any) -> None:
    app = create_app(code_settings.model_copy(update={"signin_codes_per_address_per_hour": 3}))
    app.state.temporal_client = env.client
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC) as web:
        for _ in range(3):
            assert (await ask(web, random_phone(42))).status_code == 303
        refused = await ask(web, random_phone(42))
        assert refused.status_code == 429 and "Retry-After" in refused.headers
        assert "请稍后再获取" in (await ask(web, random_phone(42), lang="zh-CN")).text


# ---- the wording ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("language", ["en", "zh-CN"])
def test_the_code_text_and_call_name_no_debt_and_the_text_is_one_segment(language: str) -> None:
    from domain.accounts import Language

    lang = Language(language)
    text = code_sender.code_text(lang, "Acme Finance", "012345")
    assert "012345" in text and forbidden_in(text) == []
    assert sms_segments(text)[1] == 1
    twiml = code_sender.code_twiml(lang, "Acme Finance", "012345")
    assert forbidden_in(re.sub(r"<[^>]+>", " ", twiml)) == []
    assert spoken_code(twiml) == "012345"
