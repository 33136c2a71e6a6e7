"""Check who is contacting you: the debtor's contact list (every contact by channel, each visit with the
agency's name, licence and collector ID) and the public ``/verify`` page (yes, or one and the same "we
cannot confirm"), over the real app, the real database and, for the account page, real workflows."""

from __future__ import annotations

import re
import time as clock
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from domain.accounts import Account, Channel, Debtor
from domain.agencies import AGENCY_FILE, load_agencies
from domain.gate import Audience
from domain.timeline import Timeline
from runtime.settings import Settings
from service import links
from service.app import create_app
from service.verify import ANSWER_SECONDS
from store import agencies
from store.accounts import upsert_account
from store.audit import audit_entries
from store.contacts import mark_attempt, reserve_attempt
from store.models import AuditRow
from tests.service.conftest import PUBLIC, new_account, random_phone
from tests.workflows.conftest import NY, Harness, running_harness

SECRET = "collectors-link-secret"
BORN = date(1981, 2, 3)
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
NATIONAL = "National Recovery Partners"


# ---- the debtor's contact list (a verified session over a running account) ---------------------------
@pytest.fixture
async def harness(env: Any, settings: Settings, simulator: Any) -> AsyncIterator[Harness]:
    linked = settings.model_copy(
        update={"link_secret": SecretStr(SECRET), "self_service_url": f"{PUBLIC}/me", "link_ttl_days": 14}
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


async def signed_in(web: httpx.AsyncClient, account: Account) -> httpx.Response:
    token = links.issue(account.account_id, SECRET, now=datetime.now(UTC), ttl_days=14)
    asked = await web.get(f"/me/{token}", follow_redirects=True)
    form = {"born": BORN.isoformat(), "csrf": CSRF.search(asked.text).group(1)}  # type: ignore[union-attr]
    page = await web.post("/me/verify", data=form, follow_redirects=True)
    assert page.status_code == 200, page.text
    return page


def contacts_of(page: str) -> str:
    found = re.search(r'<section class="card" aria-label="[^"]*" id="contacts">.*?</section>', page, re.S)
    assert found, "no contact list on the page"
    return found.group(0)


def attempt(
    sessions: sessionmaker[Session],
    account: Account,
    channel: Channel,
    template: str,
    at: datetime,
    *,
    state: str = "accepted",
    purpose: str = "dunning",
    audience: Audience = Audience.DEBTOR,
) -> None:
    key = f"{account.account_id}/{uuid.uuid4().hex[:8]}"
    with sessions.begin() as s:
        reserve_attempt(
            s,
            dedupe_key=key,
            account_id=account.account_id,
            channel=channel,
            purpose=purpose,
            template=template,
            to_address=account.debtor.phone,
            now=at,
            audience=audience,
        )
        sid = ("SM" if channel == Channel.SMS else "CA") + uuid.uuid4().hex
        mark_attempt(s, key, state=state, provider_sid=sid if state == "accepted" else None, now=at)


def visit_at(
    sessions: sessionmaker[Session],
    account_id: str,
    day: date,
    *,
    agency_id: str = "national-recovery",
    collector: str | None = None,
    status: str | None = None,
) -> agencies.VisitView:
    """A visit stored as the visit activity stores it (10:00-13:00 in New York), named as the agency names it."""
    start = datetime.combine(day, time(10), tzinfo=NY)
    visit_id = f"account-{account_id}-visit-{uuid.uuid4().hex[:6]}"
    with sessions.begin() as s:
        agencies.create_visit(
            s,
            visit_id=visit_id,
            account_id=account_id,
            agency_id=agency_id,
            window_start=start,
            window_end=start + timedelta(hours=3),
            report_due=start + timedelta(days=2),
            now=datetime.now(UTC),
        )
        if collector:
            agencies.set_collector(s, visit_id, collector, datetime.now(UTC))
        if status:
            agencies.update_visit(s, visit_id, datetime.now(UTC), status=status)
        found = agencies.visit(s, visit_id)
    assert found is not None
    return found


async def test_the_page_lists_every_contact_by_channel_and_the_visit_with_its_collector(
    harness: Harness, web: httpx.AsyncClient
) -> None:
    now = await harness.now()
    today = now.astimezone(NY).date()
    account = Account(
        account_id=f"W-{uuid.uuid4().hex[:10]}",
        debtor=Debtor(
            name="Jane Doe", phone=random_phone(42), timezone="America/New_York", date_of_birth=BORN
        ),
        currency="USD",
        balance=50_000,
        due_date=today - timedelta(days=40),
    )
    with harness.sessions.begin() as s:
        upsert_account(s, account, now)
    text_at, call_at, agency_at = now - timedelta(days=2), now - timedelta(days=1), now - timedelta(days=3)
    attempt(harness.sessions, account, Channel.SMS, "early_reminder", text_at)
    attempt(harness.sessions, account, Channel.VOICE, "agent_call", call_at)
    attempt(harness.sessions, account, Channel.VOICE, "agency:national-recovery", agency_at)
    # none of these reached the debtor in the last 30 days, so none is listed
    attempt(harness.sessions, account, Channel.SMS, "settlement_offer", call_at, state="denied")
    attempt(harness.sessions, account, Channel.SMS, "plan_offer", now - timedelta(days=45))
    attempt(
        harness.sessions, account, Channel.SMS, "third_party_locate", call_at, audience=Audience.THIRD_PARTY
    )
    visit_day = (now + timedelta(days=3)).astimezone(NY).date()
    collector = f"NRP-{uuid.uuid4().hex[:6].upper()}"
    visit_at(harness.sessions, account.account_id, visit_day, collector=collector)
    await harness.start(account)

    listed = contacts_of((await signed_in(web, account)).text)
    upcoming, recent = listed.split("<h3>In the last 30 days</h3>")
    in_ny = lambda at: at.astimezone(NY).strftime("%Y-%m-%d %H:%M %z")  # noqa: E731
    for at, channel, about, who in (
        (text_at, "text message", "Reminder that a payment is overdue", "Us (Acme Finance)"),
        (call_at, "phone call", "Call from an agent about the account", "Us (Acme Finance)"),
        (agency_at, "phone call", "A call from the agency about the account", NATIONAL),
    ):
        row = re.search(rf"<tr>\s*<td[^>]*><time>{re.escape(in_ny(at))}</time></td>(.*?)</tr>", recent, re.S)
        assert row, f"no row at {in_ny(at)}: {listed}"
        assert channel in row.group(1) and about in row.group(1) and who in row.group(1)
    assert len(re.findall(r"<tr>\s*<td", recent)) == 3  # nothing refused, older, or to someone else
    for never in ("Offer to settle the account", "Offer of a payment plan", "Home visit (called off)"):
        assert never not in recent
    # the visit: its window in the debtor's zone, the agency, its licence and the collector's ID
    licence = load_agencies(harness.settings.agencies_file).get("national-recovery").licence_number  # type: ignore[union-attr]
    assert f"{visit_day.isoformat()}, 10:00-13:00" in upcoming
    assert f"{NATIONAL}, licence {licence}" in upcoming and f"Collector ID: {collector}" in upcoming
    assert 'href="/verify?lang=' in listed
    # coming up: the workflow's own next contact, in plain words
    timeline = await harness.handle(account).query("timeline", result_type=Timeline)
    status_now = max(now, datetime.now(UTC))
    first = next(e for e in timeline.entries if e.channel and e.at >= status_now - timedelta(minutes=5))
    assert in_ny(first.at) in upcoming
    # what a contact was about, never the message itself (nor an amount or the number)
    for body in ("has not reached us yet", "USD", "500.00", account.debtor.phone, "Jane"):
        assert body not in listed, body

    chinese = contacts_of((await web.get("/me/account", params={"lang": "zh-CN"})).text)
    assert "谁在联系您" in chinese and "逾期还款提醒" in chinese and "短信" in chinese
    assert f"催收员编号：{collector}" in chinese and f"许可证号 {licence}" in chinese


# ---- /verify: yes or the same "we cannot confirm" (no workflow needed: it reads the database) -------
@pytest.fixture
def sessions_(settings: Settings) -> sessionmaker[Session]:
    from store.db import make_engine, session_factory

    return session_factory(make_engine(settings.database_url))


@pytest.fixture
async def public(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app as anyone reaches it: no token, no session."""
    app = create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC) as client:
        yield client


async def check(client: httpx.AsyncClient, collector: str, agency: str, **extra: str) -> httpx.Response:
    started = clock.perf_counter()
    answer = await client.post("/verify", data={"collector_id": collector, "agency": agency, **extra})
    answer.extensions["took"] = clock.perf_counter() - started
    return answer


def shape(page: httpx.Response) -> str:
    """The page without what the person typed (echoed back into the form): what the answer reveals."""
    return re.sub(r'(name="(?:collector_id|agency)"[^>]*?) value="[^"]*"', r"\1", page.text)


def wall_today() -> date:
    return datetime.now(NY).date()


async def test_verify_says_yes_only_for_a_collector_on_an_open_visit_and_reveals_nothing(
    public: httpx.AsyncClient, sessions_: sessionmaker[Session]
) -> None:
    n = uuid.uuid4().hex[:6].upper()  # the session shares one database: IDs of this test's own
    nrp, reported, cancelled, over, nef = (
        f"{prefix}-{n}" for prefix in ("NRP", "NRP1", "NRP2", "NRP3", "NEF")
    )
    owner = new_account(sessions_, random_phone(42))
    other = new_account(sessions_, random_phone(43))
    soon = wall_today() + timedelta(days=2)
    open_visit = visit_at(sessions_, owner.account_id, soon, collector=nrp)
    visit_at(sessions_, other.account_id, soon, collector=reported, status="reported")
    visit_at(sessions_, other.account_id, soon, collector=cancelled, status="cancelled")
    visit_at(sessions_, other.account_id, wall_today() - timedelta(days=1), collector=over)  # window over
    visit_at(sessions_, other.account_id, soon, agency_id="northeast-field", collector=nef)

    yes = await check(public, nrp.lower(), NATIONAL)  # as typed at the door: any case
    assert yes.status_code == 200
    assert f"Yes: collector {nrp} of {NATIONAL} is working an account of ours now." in yes.text
    assert 'data-answer="yes"' in yes.text
    for alias in ("national-recovery", "  NATIONAL recovery partners "):  # its id, or its name in any spacing
        assert 'data-answer="yes"' in (await check(public, nrp, alias)).text
    for leak in (owner.account_id, "Jane", owner.debtor.phone, soon.isoformat(), "10:00", "USD", "1,234.56"):
        assert leak not in yes.text, leak

    noes = {
        "unknown id": await check(public, f"NRP-{n}9", NATIONAL),
        "reported visit": await check(public, reported, NATIONAL),
        "cancelled visit": await check(public, cancelled, NATIONAL),
        "window over": await check(public, over, NATIONAL),
        "another agency's collector": await check(public, nef, NATIONAL),
        "right id, wrong agency": await check(public, nrp, "Northeast Field Services"),
        "unknown agency": await check(public, nrp, "Acme Collectors"),
        "not an id": await check(public, "<b>x</b>", NATIONAL),
    }
    shapes = {what: shape(page) for what, page in noes.items()}
    first = shapes["unknown id"]
    for what, page in noes.items():
        assert page.status_code == 200, what
        assert "We cannot confirm this person." in page.text and 'data-answer="no"' in page.text, what
        assert shapes[what] == first, f"{what}: the page differs from an unknown ID's"
        assert other.account_id not in page.text and owner.account_id not in page.text, what
    assert "call us at +15005550006" in first  # the lender's own number
    # yes and no: one template, the answer sentence the only difference
    assert len(shape(yes).splitlines()) == len(first.splitlines())
    # and the same time: nothing answers before the floor, known or not
    for what, page in {"yes": yes, **noes}.items():
        assert page.extensions["took"] >= ANSWER_SECONDS, what

    # audited: the lender sees that someone checked its visitor; an impostor's tries leave a trace
    with sessions_.begin() as s:
        lines = [e for e in audit_entries(s, owner.account_id) if e.action == "collector_check"]
        unmatched = s.scalars(
            select(AuditRow).where(AuditRow.account_id.is_(None), AuditRow.action == "collector_check")
        ).all()
    assert [(e.actor, e.decision, e.details["collector_id"]) for e in lines] == [
        ("public", "confirmed", nrp)
    ] * 3
    said = {
        ((r.details or {}).get("collector_id"), (r.details or {}).get("agency"), r.rule) for r in unmatched
    }
    assert {
        (reported, "national-recovery", "collectors.no_open_visit"),
        (over, "national-recovery", "collectors.no_open_visit"),
        (nrp, None, "collectors.unknown_agency"),
        (None, "national-recovery", "collectors.malformed_id"),
    } <= said
    assert open_visit.collector_id == nrp


async def test_an_agency_whose_licence_has_expired_is_not_confirmed(
    settings: Settings, sessions_: sessionmaker[Session], tmp_path: Path
) -> None:
    yesterday = wall_today() - timedelta(days=1)
    book = re.sub(
        r'(id = "national-recovery"(?:.|\n)*?licence_expires = )\S+',
        rf"\g<1>{yesterday.isoformat()}",
        AGENCY_FILE.read_text(encoding="utf-8"),
    )
    (tmp_path / "agencies.toml").write_text(book, encoding="utf-8")
    assert load_agencies(tmp_path / "agencies.toml").get("national-recovery").licence_expires == yesterday  # type: ignore[union-attr]
    owner = new_account(sessions_, random_phone(42))
    collector = f"NRP-{uuid.uuid4().hex[:6].upper()}"
    visit_at(sessions_, owner.account_id, wall_today() + timedelta(days=2), collector=collector)

    expired = create_app(settings.model_copy(update={"agencies_file": tmp_path / "agencies.toml"}))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=expired), base_url=PUBLIC) as client:
        answer = await check(client, collector, NATIONAL)
    assert answer.status_code == 200 and 'data-answer="no"' in answer.text
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(settings)), base_url=PUBLIC
    ) as client:
        assert 'data-answer="yes"' in (await check(client, collector, NATIONAL)).text  # licensed: yes
    with sessions_.begin() as s:
        rules = s.scalars(
            select(AuditRow.rule).where(AuditRow.account_id.is_(None), AuditRow.action == "collector_check")
        ).all()
    assert "agencies.licence_expired" in rules


async def test_checks_are_rate_limited_per_address(settings: Settings) -> None:
    strict = create_app(settings.model_copy(update={"refusals_per_minute": 3}))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=strict), base_url=PUBLIC) as client:
        for _ in range(3):
            assert (await check(client, "NRP-99999", NATIONAL)).status_code == 200
        busy = await check(client, "NRP-99999", NATIONAL)
    assert busy.status_code == 429 and int(busy.headers["retry-after"]) >= 1
    assert "Too many checks from here" in busy.text and "data-answer" not in busy.text


async def test_the_form_speaks_english_and_chinese_and_lists_the_agencies(public: httpx.AsyncClient) -> None:
    english = await public.get("/verify")
    assert english.status_code == 200 and '<html lang="en">' in english.text
    assert "Check a collector" in english.text and f'<option value="{NATIONAL}">' in english.text
    chinese = await public.get("/verify", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert '<html lang="zh-CN">' in chinese.text and "核实催收员" in chinese.text
    assert '<option value="华东外访服务">' in chinese.text
    answered = await check(public, "NRP-99999", "华东外访服务", lang="zh-CN")
    assert "我们无法确认此人身份" in answered.text and "+15005550006" in answered.text
    assert english.headers["cache-control"] == "no-store"


async def test_the_agency_cannot_name_a_collector_once_the_window_has_ended(
    settings: Settings, sessions_: sessionmaker[Session]
) -> None:
    token = "collectors-agency-token-0123456789abcdef"
    app = create_app(settings.model_copy(update={"api_tokens": {token: "national-recovery:agency"}}))
    owner = new_account(sessions_, random_phone(42))
    ended = visit_at(sessions_, owner.account_id, wall_today() - timedelta(days=1))
    coming = visit_at(sessions_, owner.account_id, wall_today() + timedelta(days=1))
    collector = f"NRP-{uuid.uuid4().hex[:6].upper()}"
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC) as client:
        late = await client.put(
            f"/agency/visits/{ended.visit_id}/collector", json={"collector_id": collector}, headers=headers
        )
        assert late.status_code == 409 and "past its window" in late.text
        named = await client.put(
            f"/agency/visits/{coming.visit_id}/collector", json={"collector_id": collector}, headers=headers
        )
        assert named.status_code == 200 and named.json()["collector_id"] == collector
        assert 'data-answer="yes"' in (await check(client, collector, NATIONAL)).text
    with sessions_.begin() as s:
        assert agencies.visit(s, ended.visit_id).collector_id is None  # type: ignore[union-attr]
