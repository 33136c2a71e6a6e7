"""A lost debtor found and confirmed, end to end: the real account workflow on the time-skipping
server, the HTTP app (API, console, the debtor's page, the signed SMS webhook), the real database and
the real twilio SDK against the carrier simulator. The codes typed in are the ones the simulator
received (a text's body, or what a call said); nothing is read from the application's tables to act.

What counts is what reached each number: before its code is keyed in, a new number gets its code and
nothing else, and collection resumes on it only after.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from domain.accounts import Account
from domain.cases import CaseKind, CaseStatus
from domain.masking import mask_phone
from domain.timeline import AccountStatus
from runtime.settings import Settings
from service import code_sender
from service.app import create_app
from store import cases as case_store
from store.accounts import account_snapshot
from store.audit import audit_entries
from tests.service.conftest import PUBLIC, Signer, random_phone
from tests.service.test_code_signin import spoken_code
from tests.service.test_console import browser, csrf_of
from tests.service.test_selfservice import CSRF, SECRET, link_for, overdue, signed_in
from tests.workflows.conftest import NY, Harness, at_local, running_harness
from tests.workflows.test_emergency_contact import contact_lost, open_unreachable

AGENT, AUDITOR = "numbers-agent-token-xxxxxxxxxxxxxxxx", "numbers-auditor-token-xxxxxxxxxxxxxx"
TOKENS = {AGENT: "ann:agent", AUDITOR: "olga:auditor"}
AS_ANN, AS_OLGA = {"Authorization": f"Bearer {AGENT}"}, {"Authorization": f"Bearer {AUDITOR}"}
CODE = re.compile(r"(?<!\d)(\d{6})(?!\d)")
CONFIRM_WORDS = ("confirm this number", "确认此号码")


@pytest.fixture
async def harness(env: Any, settings: Settings, simulator: Any) -> AsyncIterator[Harness]:
    async with running_harness(env, settings, simulator) as h:
        yield h


@pytest.fixture
def app(harness: Harness) -> FastAPI:
    application = create_app(
        harness.settings.model_copy(
            update={
                "api_tokens": TOKENS,
                "public_base_url": PUBLIC,
                "link_secret": SecretStr(SECRET),
                "self_service_url": f"{PUBLIC}/me",
            }
        )
    )
    application.state.temporal_client = harness.client
    application.state.sessions = harness.sessions
    return application


@pytest.fixture
async def api(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC) as client:
        yield client


async def codes_to(app: FastAPI, harness: Harness, phone: str) -> list[str]:
    """The confirmation codes the carrier got for ``phone``, oldest first: texts, then calls' speech."""
    await code_sender.settle(app)
    got = await harness.carrier_log(phone)
    texts = [m for m in got if "body" in m and any(w in m["body"] for w in CONFIRM_WORDS)]
    calls = [c for c in got if "twiml" in c and c.get("twiml") and "confirm this number" in c["twiml"]]
    said = [CODE.search(m["body"]).group(1) for m in texts] + [spoken_code(c["twiml"]) for c in calls]  # type: ignore[union-attr]
    return list(dict.fromkeys(said))  # a text that did not arrive and the call after it: one code


def not_codes(log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What reached a number besides confirmation codes (texts and calls)."""
    return [m for m in log if not any(w in (m.get("body") or m.get("twiml") or "") for w in CONFIRM_WORDS)]


def audit_of(harness: Harness, account: Account, action: str) -> list[tuple[str, str, dict[str, Any]]]:
    with harness.sessions.begin() as s:
        return [
            (e.actor, e.decision, e.details)
            for e in audit_entries(s, account.account_id)
            if e.action == action
        ]


async def status_of(harness: Harness, account: Account) -> AccountStatus:
    return await harness.handle(account).query("status", result_type=AccountStatus)


async def settled(check: Any, what: str) -> Any:
    for _ in range(200):
        if found := await check():
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


# ---- found through the emergency contact, confirmed by the code the debtor reads out -----------------------
async def test_a_lost_debtor_found_through_the_emergency_contact_is_contacted_only_after_the_code(
    harness: Harness, app: FastAPI, api: httpx.AsyncClient
) -> None:
    day = (await harness.now()).astimezone(NY).date() + timedelta(days=1)
    await harness.skip_to(at_local(day, 3))
    account = await open_unreachable(harness, day - timedelta(days=4))  # day 4: texts bounce, calls stopped
    assert account.emergency is not None
    old = account.debtor.phone
    await harness.skip_to(at_local(day + timedelta(days=1), 12))  # the locate text went in Shanghai's day
    assert await contact_lost(harness, account)
    asked = [m for m in await harness.carrier_log(account.emergency.phone) if "body" in m]
    assert len(asked) == 1 and "Jane" in asked[0]["body"]

    # the emergency contact answers with a new number: a case in the inbox, holding the lead
    new = random_phone(42)
    digits = new.removeprefix("+1")
    reply = f"她换号码了 Her new number is ({digits[:3]}) {digits[3:6]}-{digits[6:]}"
    sid = f"SM{uuid.uuid4().hex}"
    form = {"MessageSid": sid, "SmsSid": sid, "From": account.emergency.phone, "To": "+1", "Body": reply}
    signer = Signer(harness.settings.twilio_token)
    for _ in range(2):  # Twilio delivers it twice: one case
        answered = await signer.post(api, "/webhooks/twilio/sms", form)
        assert answered.status_code == 200 and "<Message" not in answered.text  # nothing is sent back
    with harness.sessions.begin() as s:
        cases = case_store.cases_of(s, account.account_id)
    assert [(c.kind, c.status, c.summary) for c in cases] == [
        (CaseKind.EMERGENCY_REPLY, CaseStatus.OPEN, reply)
    ]
    case = cases[0]
    with harness.sessions.begin() as s:
        assert account_snapshot(s, account.account_id).phone == old  # type: ignore[union-attr]  # a lead only
    [(actor, decision, details)] = audit_of(harness, account, "inbound_sms")
    assert (actor, decision, details["case"], details["leads"]) == (
        "emergency_contact", "emergency_reply", case.number, [mask_phone(new)],
    )  # fmt: skip
    assert details["from"] == mask_phone(account.emergency.phone)

    async with browser(app, AGENT) as web:
        queue = await web.get("/console/queue", params={"view": "team"})
        assert case.number in queue.text
        page = await web.get(f"/console/cases/{case.id}")
        assert "Numbers in this reply" in page.text and f'value="{new}"' in page.text
        recorded = await web.post(
            f"/console/accounts/{account.account_id}/number",
            data={"csrf": csrf_of(page.text), "phone": new, "via": "sms", "case": str(case.id)},
        )
        assert recorded.status_code == 303
        shown = (await web.get(recorded.headers["location"])).text
    assert (
        "New number recorded, unverified" in shown
        and f"New number <strong>{mask_phone(new)}</strong>" in shown
    )
    assert new not in shown
    with harness.sessions.begin() as s:
        lead = case_store.case(s, case.id)
    assert lead is not None and lead.status == CaseStatus.ANSWERED and lead.owner == "ann"
    assert lead.answer is not None and "unverified" in lead.answer and mask_phone(new) in lead.answer

    [code] = await codes_to(app, harness, new)
    texts = await harness.carrier_log(new)
    assert len(texts) == 1 and "Acme Finance" in texts[0]["body"] and "5 minutes" in texts[0]["body"]
    assert "USD" not in texts[0]["body"] and "1,234.56" not in texts[0]["body"]  # no debt for a claim

    # three days on: collection steps came and went, nothing but the code reached the new number
    await harness.skip_to(at_local(day + timedelta(days=4), 12))
    assert not_codes(await harness.carrier_log(new)) == []
    status = await status_of(harness, account)
    assert status.contact_lost and status.masked_phone == mask_phone(old)

    # the agent calls the new number; the debtor reads the code out (first wrongly)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    async with browser(app, AGENT) as web:
        page = await web.get(f"/console/accounts/{account.account_id}")
        change = re.search(r'name="change" value="(\d+)"', page.text).group(1)  # type: ignore[union-attr]
        refused = await web.post(
            f"/console/accounts/{account.account_id}/number/confirm",
            data={"csrf": csrf_of(page.text), "change": change, "code": wrong},
        )
        assert refused.status_code == 422 and "code: that code is not right; tries left: 4" in refused.text
        assert (await status_of(harness, account)).contact_lost
        confirmed = await web.post(
            f"/console/accounts/{account.account_id}/number/confirm",
            data={"csrf": csrf_of(page.text), "change": change, "code": code},
        )
        shown = (await web.get(confirmed.headers["location"])).text
    assert "Number confirmed" in shown and "New number <strong>" not in shown
    today = datetime.now(UTC).date()
    how = f"confirmed by code on {today} via agent ann; recorded by ann from the emergency contact&#39;s reply {case.number}"
    assert how in shown

    status = await settled(
        lambda: _found(harness, account), "the run takes in the new number (contact_lost lifted)"
    )
    assert status.masked_phone == mask_phone(new) and status.unreachable == []
    described = (await api.get(f"/api/accounts/{account.account_id}", headers=AS_OLGA)).json()
    assert described["number"]["how"] == how.replace("&#39;", "'")
    assert described["number"]["confirmed_by"] == "ann" and described["number"]["case"] == case.number

    # contact resumes on the verified number, and the dead one hears nothing more
    before_old = len(await harness.carrier_log(old))
    await harness.skip_to(at_local(day + timedelta(days=9), 12))
    reached = not_codes(await harness.carrier_log(new))
    assert reached and all("Acme Finance" in m["body"] for m in reached)
    assert len(await harness.carrier_log(old)) == before_old

    # the audit log names the person at every step, the numbers masked; Temporal never saw them
    lines = audit_of(harness, account, "contact_point")
    assert [(a, d) for a, d, _ in lines] == [("ann", "recorded"), ("ann", "code_wrong"), ("ann", "confirmed")]
    assert lines[0][2]["case"] == case.number and lines[0][2]["source"] == "emergency_contact"
    assert lines[2][2]["to"] == mask_phone(new) and lines[2][2]["previous"] == mask_phone(old)
    assert [(a, d) for a, d, _ in audit_of(harness, account, "contact_code")] == [("ann", "sent")]
    with harness.sessions.begin() as s:
        everything = " ".join(str(e.details) for e in audit_entries(s, account.account_id))
    assert digits not in everything and code not in everything
    history = await harness.client.get_workflow_handle(account.workflow_id).fetch_history()
    raw = b"".join(e.SerializeToString() for e in history.events)
    assert digits.encode() not in raw and new.encode() not in raw
    await harness.finish(account.workflow_id)


async def _found(harness: Harness, account: Account) -> AccountStatus | None:
    status = await status_of(harness, account)
    return status if not status.contact_lost else None


# ---- the API: roles, the fields named, the code by a call where texts cannot reach -------------------------
async def test_the_api_records_a_number_and_refuses_naming_the_field(
    harness: Harness, app: FastAPI, api: httpx.AsyncClient
) -> None:
    account = await harness.open_account(due_in_days=-10, phone=random_phone(42))
    base = f"/api/accounts/{account.account_id}/contact-points"
    assert (await api.post(base, json={"phone": "+12125550143"})).status_code == 401
    assert (await api.post(base, json={"phone": "+12125550143"}, headers=AS_OLGA)).status_code == 403
    unknown = await api.post(
        "/api/accounts/NOPE-1/contact-points", json={"phone": "+12125550143"}, headers=AS_ANN
    )
    assert unknown.status_code == 404
    for given, message in (
        ("2125550143", "phone: must be in international format starting with + (E.164)"),
        (account.debtor.phone, "phone: is already the number on file"),
    ):
        refused = await api.post(base, json={"phone": given}, headers=AS_ANN)
        assert refused.status_code == 422 and refused.json()["detail"] == [
            {"loc": ["body", "phone"], "msg": message, "type": "value_error"}
        ]
    odd = await api.post(base, json={"phone": "+12125550143", "via": "fax"}, headers=AS_ANN)
    assert odd.status_code == 422 and odd.json()["detail"][0]["loc"] == ["body", "via"]

    # a landline: the text cannot reach it, so a call reads the code out
    landline = random_phone(95)
    made = await api.post(base, json={"phone": landline}, headers=AS_ANN)
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["status"] == "pending" and body["masked_phone"] == mask_phone(landline)
    assert body["source"] == "agent" and body["recorded_by"] == "ann" and landline not in made.text
    [code] = await codes_to(app, harness, landline)
    sent = audit_of(harness, account, "contact_code")
    assert [(d, x.get("channel"), x.get("because")) for _, d, x in sent] == [
        ("sent", "sms", None),
        ("undelivered", "sms", None),
        ("sent", "voice", "sms_undelivered_30006"),
    ]
    listed = (await api.get(base, headers=AS_OLGA)).json()
    assert listed["number"]["pending"]["id"] == body["id"] and listed["number"]["source"] == "intake"

    confirm = f"{base}/{body['id']}/confirm"
    assert (await api.post(confirm, json={"code": "12345"}, headers=AS_ANN)).json()["detail"][0]["msg"] == (
        "code: enter the 6 digits"
    )
    done = await api.post(confirm, json={"code": code}, headers=AS_ANN)
    assert done.status_code == 200 and done.json()["status"] == "confirmed" and done.json()["told"] is True
    again = await api.post(confirm, json={"code": code}, headers=AS_ANN)
    assert again.status_code == 200 and again.json()["status"] == "confirmed"  # nothing more to do
    with harness.sessions.begin() as s:
        assert account_snapshot(s, account.account_id).phone == landline  # type: ignore[union-attr]

    # a wrong lead is dropped: its code stops working; a number dropped takes no more codes
    lead = (await api.post(base, json={"phone": random_phone(42)}, headers=AS_ANN)).json()
    dropped = await api.post(f"{base}/{lead['id']}/cancel", headers=AS_ANN)
    assert dropped.status_code == 200 and dropped.json()["status"] == "cancelled"
    late = await api.post(f"{base}/{lead['id']}/code", headers=AS_ANN)
    assert late.status_code == 409 and "waits for a code" in late.json()["detail"]
    assert [(a, d) for a, d, _ in audit_of(harness, account, "contact_point")] == [
        ("ann", "recorded"), ("ann", "confirmed"), ("ann", "recorded"), ("ann", "cancelled"),
    ]  # fmt: skip
    await harness.finish(account.workflow_id)


# ---- the debtor on their own page --------------------------------------------------------------------------
async def debtor(harness: Harness, language: str = "en") -> Account:
    """A debtor 20 days past due, with the date of birth the page asks for, their run going."""
    return await overdue(harness, days=20, language=language)


async def test_the_debtor_gives_a_new_number_on_their_page_and_confirms_it_with_the_code(
    harness: Harness, app: FastAPI
) -> None:
    account = await debtor(harness)
    new = random_phone(42)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC) as web:
        home = (await signed_in(web, link_for(account))).text
        assert 'href="/me/number?lang=en"' in home
        page = await web.get("/me/number")
        assert page.status_code == 200 and mask_phone(account.debtor.phone) in page.text
        csrf = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
        bad = await web.post(
            "/me/number", data={"csrf": csrf, "lang": "en", "phone": "12ab", "country": "US"}
        )
        assert bad.status_code == 422 and "Mobile number: &#34;12ab&#34; is not a phone number." in bad.text
        same = await web.post(
            "/me/number", data={"csrf": csrf, "lang": "en", "phone": account.debtor.phone, "country": "US"}
        )
        assert same.status_code == 422 and "this is already the number we have" in same.text
        digits = new.removeprefix("+1")
        sent = await web.post(
            "/me/number",
            data={
                "csrf": csrf,
                "lang": "en",
                "phone": f"{digits[:3]}-{digits[3:6]}-{digits[6:]}",
                "country": "US",
            },
        )
        assert sent.status_code == 303
        waiting = await web.get(sent.headers["location"])
        assert f"A 6-digit code was sent to {mask_phone(new)} by text message" in waiting.text
        [code] = await codes_to(app, harness, new)
        with harness.sessions.begin() as s:
            assert account_snapshot(s, account.account_id).phone == account.debtor.phone  # type: ignore[union-attr]

        wrong = f"{(int(code) + 1) % 10**6:06d}"
        tried = await web.post("/me/number/confirm", data={"csrf": csrf, "lang": "en", "code": wrong})
        assert tried.status_code == 422 and "That code is not right. Tries left: 4." in tried.text
        done = await web.post("/me/number/confirm", data={"csrf": csrf, "lang": "en", "code": code})
        assert done.status_code == 303 and done.headers["location"] == "/me/account?lang=en&done=number"
        home = (await web.get(done.headers["location"])).text
    assert f"Your new number is confirmed. Our messages now go to {mask_phone(new)}." in home
    with harness.sessions.begin() as s:
        assert account_snapshot(s, account.account_id).phone == new  # type: ignore[union-attr]
    lines = audit_of(harness, account, "contact_point")
    assert [(a, d) for a, d, _ in lines] == [
        ("debtor", "recorded"),
        ("debtor", "code_wrong"),
        ("debtor", "confirmed"),
    ]
    assert lines[2][2]["via"] == "page" and lines[2][2]["source"] == "debtor"
    status = await settled(lambda: _told(harness, account, new), "the run hears of the new number")
    assert status.masked_phone == mask_phone(new)
    await harness.finish(account.workflow_id)


async def _told(harness: Harness, account: Account, phone: str) -> AccountStatus | None:
    status = await status_of(harness, account)
    return status if status.masked_phone == mask_phone(phone) else None


async def test_a_number_an_agent_recorded_waits_on_the_debtors_page_in_their_language(
    harness: Harness, app: FastAPI, api: httpx.AsyncClient
) -> None:
    account = await debtor(harness, language="zh-CN")
    new = random_phone(42)
    made = await api.post(
        f"/api/accounts/{account.account_id}/contact-points", json={"phone": new}, headers=AS_ANN
    )
    assert made.status_code == 201
    [code] = await codes_to(app, harness, new)
    [text] = await harness.carrier_log(new)
    assert "确认此号码的验证码" in text["body"] and code in text["body"]  # the account's language
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC) as web:
        home = (await signed_in(web, link_for(account))).text
        assert f"新号码 {mask_phone(new)} 正等待您用我们发送的验证码确认。" in home
        page = await web.get("/me/number")
        assert '<html lang="zh-CN">' in page.text and "输入验证码即可开始使用此号码" in page.text
        csrf = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
        done = await web.post("/me/number/confirm", data={"csrf": csrf, "lang": "zh-CN", "code": code})
        assert done.status_code == 303
        home = (await web.get(done.headers["location"])).text
    assert f"您的新号码已确认。我们的信息今后发送至 {mask_phone(new)}。" in home
    described = (await api.get(f"/api/accounts/{account.account_id}", headers=AS_ANN)).json()["number"]
    today = datetime.now(UTC).date()
    assert described["how"] == f"confirmed by code on {today} by the debtor on the page; recorded by ann"
    await harness.finish(account.workflow_id)
