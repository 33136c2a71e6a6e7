"""The debtor's self-service pages and their signed links, over real workflows, a real database and the
carrier simulator: the link the SMS carries is the link that opens the page.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from temporalio.client import Client

from domain.accounts import Account, Debtor, HoldKind, Mode
from domain.masking import mask_phone
from domain.plans import add_months
from domain.timeline import AccountStatus
from runtime.devserver import free_port
from runtime.settings import Settings
from service import links
from service.app import create_app
from service.selfservice import strings
from store.accounts import upsert_account
from store.audit import audit_entries
from store.models import AccountRow
from tests.service.conftest import PUBLIC, random_phone
from tests.workflows.conftest import NY, Harness, at_local, running_harness

SECRET = "test-link-secret"
T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
BORN = date(1979, 6, 30)
AGENT = "selfservice-agent-token-0123456789abcdef"
AUDITOR = "selfservice-auditor-token-0123456789abcde"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


# ---- the links themselves (pure) -------------------------------------------------------------------
def test_a_link_opens_its_own_account_until_it_expires() -> None:
    token = links.issue("ACC-00001", SECRET, now=T0, ttl_days=14)
    assert len(token) < 50  # fits a text message with room to spare
    assert links.verify(token, SECRET, now=T0 + timedelta(days=13, hours=23)) == "ACC-00001"
    with pytest.raises(links.LinkExpired):
        links.verify(token, SECRET, now=T0 + timedelta(days=14))


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t.replace("ACC-00001", "ACC-00002", 1),  # another account
        lambda t: "ACC-00001.zzzzzzz." + t.rsplit(".", 1)[1],  # a later expiry
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # an edited signature
        lambda t: "ACC-00001",  # no signature at all
        lambda t: t + ".extra",
    ],
)
def test_an_edited_link_is_refused_as_forged(tamper: Any) -> None:
    token = links.issue("ACC-00001", SECRET, now=T0, ttl_days=14)
    with pytest.raises(links.LinkForged):
        links.verify(tamper(token), SECRET, now=T0)
    with pytest.raises(links.LinkForged):  # and another secret does not open it either
        links.verify(token, "another-secret", now=T0)


def test_without_a_secret_messages_carry_the_bare_address() -> None:
    plain = Settings(_env_file=None, self_service_url="https://pay.example.com/me")  # type: ignore[call-arg]
    assert links.self_service_link(plain, "ACC-1") == "https://pay.example.com/me"
    signed = plain.model_copy(update={"link_secret": SecretStr(SECRET)})
    url = links.self_service_link(signed, "ACC-1", T0)
    assert url.startswith("https://pay.example.com/me/ACC-1.")
    assert links.verify(url.rsplit("/", 1)[1], SECRET, now=T0) == "ACC-1"


def test_both_languages_have_every_string() -> None:
    texts = strings()
    assert set(texts) == {"en", "zh-CN"}
    assert set(texts["en"]) == set(texts["zh-CN"])


# ---- the pages over real workflows ------------------------------------------------------------------
@pytest.fixture
async def harness(env: Any, settings: Settings, simulator: Any) -> AsyncIterator[Harness]:
    linked = settings.model_copy(
        update={
            "link_secret": SecretStr(SECRET),
            "self_service_url": f"{PUBLIC}/me",
            "link_ttl_days": 14,
            "api_tokens": {AGENT: "ann:agent", AUDITOR: "olga:auditor"},
        }
    )
    async with running_harness(env, linked, simulator) as h:
        yield h


@pytest.fixture
async def web(harness: Harness) -> AsyncIterator[httpx.AsyncClient]:
    app: FastAPI = create_app(harness.settings)
    app.state.temporal_client = harness.client
    app.state.sessions = harness.sessions
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC) as client:
        yield client


def link_for(account: Account) -> str:
    return "/me/" + links.issue(account.account_id, SECRET, now=datetime.now(UTC), ttl_days=14)


async def overdue(
    harness: Harness, *, days: int = 40, language: str = "en", born: date | None = BORN, balance: int = 50_000
) -> Account:
    """A debtor ``days`` past due on USD 500.00 (or ``balance``; fees 25.00), stored and with their
    workflow running."""
    today = (await harness.now()).astimezone(NY).date()
    account = Account(
        account_id=f"M-{uuid.uuid4().hex[:10]}",
        debtor=Debtor(
            name="Jane Doe",
            phone=random_phone(42),
            timezone="America/New_York",
            language=language,
            date_of_birth=born,
        ),
        currency="USD",
        balance=balance,
        fees=2_500,
        due_date=today - timedelta(days=days),
    )
    with harness.sessions.begin() as s:
        upsert_account(s, account, await harness.now())
    await harness.start(account)
    return account


async def signed_in(web: httpx.AsyncClient, link: str, lang: str | None = None) -> httpx.Response:
    """Open the link of a text and confirm the date of birth: the account's page."""
    params = {"lang": lang} if lang else {}
    asked = await web.get(link, params=params, follow_redirects=True)
    assert asked.status_code == 200 and str(asked.url).endswith(
        "/me/account" + (f"?lang={lang}" if lang else "")
    )
    form = {"born": BORN.isoformat(), "csrf": CSRF.search(asked.text).group(1), "lang": lang or ""}  # type: ignore[union-attr]
    return await web.post("/me/verify", data=form, follow_redirects=True)


def csrf_of(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found, page.text
    return found.group(1)


async def status_of(harness: Harness, account: Account) -> AccountStatus:
    return await harness.client.get_workflow_handle(account.workflow_id).query(
        "status", result_type=AccountStatus
    )


async def test_the_page_says_what_is_owed_what_is_next_and_when_contact_ends(
    harness: Harness, web: httpx.AsyncClient
) -> None:
    account = await overdue(harness)
    page = await signed_in(web, link_for(account))
    assert page.status_code == 200
    html = page.text
    assert "USD 500.00" in html  # what is owed
    assert "40 days past due" in html and "overdue" in html
    chargeoff = account.due_date + timedelta(days=180)
    assert f"we stop contacting you on {chargeoff}" in html
    assert f"at the latest on {add_months(account.due_date, 13)}" in html  # the deferral limit of the policy
    assert "within the next 30 days" in html  # the promise window
    assert mask_phone(account.debtor.phone) in html and account.debtor.phone not in html
    assert "Jane" not in html
    assert page.headers["cache-control"] == "no-store" and page.headers["referrer-policy"] == "no-referrer"


async def test_with_temporal_out_of_reach_the_page_asks_to_come_back_not_a_server_error(
    harness: Harness,
) -> None:
    """The page asks the account's run what is owed; when Temporal cannot be reached (or the run cannot
    answer) the debtor gets a 503 that says nothing changed and to try again, in their language."""
    account = await overdue(harness, language="zh-CN")
    app: FastAPI = create_app(harness.settings)
    app.state.temporal_client = harness.client
    app.state.sessions = harness.sessions
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC) as web:
        assert (await signed_in(web, link_for(account))).status_code == 200
        app.state.temporal_client = await Client.connect(f"127.0.0.1:{free_port()}", lazy=True)
        page = await web.get("/me/account")
    assert page.status_code == 503 and page.headers["retry-after"] == "60"
    assert "暂时无法显示您的账户" in page.text and "您的账户没有任何变化" in page.text
    assert page.headers["cache-control"] == "no-store"


async def test_the_page_speaks_the_debtors_language_and_can_switch(
    harness: Harness, web: httpx.AsyncClient
) -> None:
    account = await overdue(harness, language="zh-CN")
    page = await signed_in(web, link_for(account))
    assert '<html lang="zh-CN">' in page.text
    assert "已逾期 40 天" in page.text and "申请还款计划" in page.text
    english = await web.get("/me/account", params={"lang": "en"})
    assert '<html lang="en">' in english.text and "Request a plan" in english.text


async def test_forged_and_expired_links_get_a_friendly_page(harness: Harness, web: httpx.AsyncClient) -> None:
    account = await overdue(harness)
    forged = await web.get(link_for(account).replace(account.account_id, "ACC-99999"))
    assert forged.status_code == 403
    assert "This link does not work" in forged.text and "USD" not in forged.text
    old = links.issue(account.account_id, SECRET, now=datetime.now(UTC) - timedelta(days=15), ttl_days=14)
    expired = await web.get(f"/me/{old}")
    assert expired.status_code == 410
    assert "This link has expired" in expired.text and "14 days" in expired.text
    posted = await web.post("/me/request-plan", data={"lang": "en"})  # no session: nothing happens
    assert posted.status_code == 401
    assert HoldKind.NEGOTIATION.value not in (await status_of(harness, account)).holds


async def test_requesting_a_plan_pauses_dunning_with_the_negotiation_hold(
    harness: Harness, web: httpx.AsyncClient
) -> None:
    account = await overdue(harness)
    page = await signed_in(web, link_for(account))
    forged = await web.post("/me/request-plan", data={"lang": "en", "csrf": "not-the-token"})
    assert forged.status_code == 403
    assert HoldKind.NEGOTIATION.value not in (await status_of(harness, account)).holds
    response = await web.post("/me/request-plan", data={"lang": "en", "csrf": csrf_of(page)})
    assert response.status_code == 303
    status = await status_of(harness, account)
    assert HoldKind.NEGOTIATION.value in status.holds
    page = await web.get(response.headers["location"])
    assert "An agent will contact you about a plan" in page.text


async def test_a_promise_outside_the_rules_is_explained_and_a_fitting_one_agreed(
    harness: Harness, web: httpx.AsyncClient
) -> None:
    account = await overdue(harness)
    csrf = csrf_of(await signed_in(web, link_for(account)))
    today = (await harness.now()).date()
    too_far = await web.post(
        "/me/promise",
        data={"lang": "en", "csrf": csrf, "date": (today + timedelta(days=45)).isoformat(), "amount": "100"},
    )
    assert too_far.status_code == 422 and "promise.too_far" in too_far.text
    assert (await status_of(harness, account)).mode == Mode.DUNNING

    kept = await web.post(
        "/me/promise",
        data={
            "lang": "en",
            "csrf": csrf,
            "date": (today + timedelta(days=10)).isoformat(),
            "amount": "200.00",
        },
    )
    assert kept.status_code == 303
    status = await status_of(harness, account)
    assert status.mode == Mode.SETTLEMENT
    assert status.plan is not None and status.plan.proposed_by == "debtor" and status.plan.total == 20_000


async def test_the_dunning_sms_carries_a_signed_link_that_opens_the_page(
    harness: Harness, web: httpx.AsyncClient
) -> None:
    # the grace period's last day: the first text is tomorrow's at 10:00 (and the day's call only the day
    # after: skipping past it held the test server's clock for the call's outcome, 300 s in a full suite)
    account = await harness.open_account(due_in_days=-3, phone=random_phone(42))
    await harness.skip_to(at_local(account.due_date + timedelta(days=4), 12))
    texts = [m["body"] for m in await harness.carrier_log(account.debtor.phone) if m.get("body")]
    assert texts, "no SMS went out"
    found = re.search(re.escape(f"{PUBLIC}/me/") + r"(\S+)", texts[0])
    assert found, texts[0]
    token = found.group(1)
    assert links.verify(token, SECRET, now=datetime.now(UTC)) == account.account_id
    with harness.sessions.begin() as s:  # the debtor's date of birth on file (intake's column)
        row = s.get(AccountRow, account.account_id)
        assert row is not None
        row.debtor.date_of_birth = BORN
    page = await signed_in(web, f"/me/{token}")
    assert page.status_code == 200 and "USD 500.00" in page.text


# ---- the debtor's session: right-party verification, CSRF, signing out (issue 16) ---------------------
async def test_the_link_leaves_the_address_bar_and_nothing_shows_before_the_date_of_birth(
    harness: Harness, web: httpx.AsyncClient
) -> None:
    account = await overdue(harness)
    opened = await web.get(link_for(account))
    assert opened.status_code == 303 and opened.headers["location"] == "/me/account"
    assert (
        "collect_me=" in opened.headers["set-cookie"] and "httponly" in opened.headers["set-cookie"].lower()
    )
    asked = await web.get("/me/account")
    assert asked.status_code == 200 and "date of birth" in asked.text
    for leak in ("USD", "500.00", "past due", "overdue", mask_phone(account.debtor.phone), "Jane"):
        assert leak not in asked.text, leak
    wrong = await web.post("/me/verify", data={"born": "1979-06-29", "csrf": csrf_of(asked)})
    assert wrong.status_code == 422 and "does not match" in wrong.text and "Tries left: 4" in wrong.text
    assert "USD" not in wrong.text and "overdue" not in wrong.text
    right = await web.post("/me/verify", data={"born": BORN.isoformat(), "csrf": csrf_of(asked)})
    assert right.status_code == 303
    assert "USD 500.00" in (await web.get("/me/account")).text
    with harness.sessions.begin() as s:
        tries = [e.decision for e in audit_entries(s, account.account_id) if e.action == "verify"]
    assert tries == ["failed", "matched"]  # audited, never the date keyed in


async def test_five_wrong_dates_close_the_session(harness: Harness, web: httpx.AsyncClient) -> None:
    account = await overdue(harness)
    asked = await web.get(link_for(account), follow_redirects=True)
    csrf = csrf_of(asked)
    for left in (4, 3, 2, 1):
        wrong = await web.post("/me/verify", data={"born": "2000-01-01", "csrf": csrf})
        assert f"Tries left: {left}" in wrong.text
    locked = await web.post("/me/verify", data={"born": "2000-01-01", "csrf": csrf})
    assert locked.status_code == 403 and "could not confirm who you are" in locked.text
    assert (await web.get("/me/account")).status_code == 401  # the session is gone
    late = await web.post("/me/verify", data={"born": BORN.isoformat(), "csrf": csrf})
    assert late.status_code == 401 and "USD" not in late.text


async def test_without_a_date_of_birth_on_file_the_page_says_to_call(
    harness: Harness, web: httpx.AsyncClient
) -> None:
    account = await overdue(harness, born=None)
    page = await web.get(link_for(account), follow_redirects=True)
    assert page.status_code == 403 and "cannot confirm who you are online" in page.text
    assert "USD" not in page.text


async def test_signing_out_everywhere_voids_every_session_and_link(
    harness: Harness, web: httpx.AsyncClient
) -> None:
    account = await overdue(harness)
    link = link_for(account)
    page = await signed_in(web, link)
    gone = await web.post("/me/sign-out-everywhere", data={"csrf": csrf_of(page)})
    assert gone.status_code == 200 and "no longer works" in gone.text
    assert (await web.get("/me/account")).status_code == 401
    assert (await web.get(link)).status_code == 410  # the link of the earlier text is void
    later = links.issue(account.account_id, SECRET, now=datetime.now(UTC) + timedelta(seconds=2), ttl_days=14)
    assert "USD 500.00" in (await signed_in(web, f"/me/{later}")).text  # the next text's link works


def test_the_access_log_never_holds_a_link() -> None:
    import logging

    from service.debtor_signin import RedactLinks

    token = links.issue("ACC-1", SECRET, now=T0, ttl_days=14)
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("1.2.3.4:5", "GET", f"/me/{token}?lang=en", "1.1", 303),
        None,
    )
    assert RedactLinks().filter(record)
    assert token not in record.getMessage() and "/me/<link>?lang=en" in record.getMessage()


async def test_an_agent_voids_the_links_and_sessions_of_an_account(
    harness: Harness, web: httpx.AsyncClient
) -> None:
    account = await overdue(harness)
    link = link_for(account)
    await signed_in(web, link)
    url = f"/api/accounts/{account.account_id}/links/revoke"
    refused = await web.post(url, headers={"Authorization": f"Bearer {AUDITOR}"})
    assert refused.status_code == 403  # an auditor reads, never writes
    revoked = await web.post(url, headers={"Authorization": f"Bearer {AGENT}"})
    assert revoked.status_code == 200 and revoked.json()["sessions_closed"] == 1
    assert (await web.get("/me/account")).status_code == 401
    assert (await web.get(link)).status_code == 410
    with harness.sessions.begin() as s:
        lines = [
            (e.actor, e.decision) for e in audit_entries(s, account.account_id) if e.action == "self_service"
        ]
    assert ("ann", "links_revoked") in lines
