"""The governor's windows under day scaling are policy windows: a hand count of each window, read four ways.

Under ``--day-seconds 2`` policy time runs 43,200 times faster than the wall clock, and every contact
attempt is stamped with policy time. A window that ends at the *wall clock* then holds every call of
the campaign's policy future, so "24 h" and "30 d" were the same cumulative figure (issue 20). Here a
campaign's calls sit at known policy times around its policy now ``P`` (60 policy days ahead of the
wall clock: one real minute of a 2-second-day demo), and the store (``governor_report``), the service
(``GET /ops/governor``), the metrics (``collect_abandoned_call_rate{window}``) and the dashboard's
abandoned-call figure must each find exactly the hand count of each window ending at ``P``.

A database of the module's own: the metrics and the dashboard read the whole database, and the
session's one holds other tests' calls at other policy times.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from domain.accounts import Account, Debtor
from domain.clock import PolicyClock
from runtime.metrics import business_registry, exposition
from runtime.settings import Settings
from service.app import create_app
from service.dashboard import render_dashboard
from store.accounts import upsert_account
from store.audit import audit
from store.contacts import mark_attempt, reserve_attempt
from store.db import dispose_engine, make_engine, session_factory, upgrade
from store.governor import governor_report
from store.reporting import dashboard_data

H, D = timedelta(hours=1), timedelta(days=1)
#: (policy time before P, channel, outcome; None = went out, outcome not known yet)
CALLS: list[tuple[timedelta, str, str | None]] = [
    (0 * H, "sms", "delivered"),  # the campaign's newest attempt: its clock reads P
    (1 * H, "voice", "conversation"),
    (2 * H, "voice", "voicemail"),  # not live-answered
    (3 * H, "sms", "delivered"),
    (4 * H, "voice", None),  # pending: in both windows, counted apart
    (5 * H, "voice", "silent"),
    (20 * H, "voice", "conversation"),
    (30 * H, "voice", "silent"),  # ---- 24 h ends here
    (3 * D, "voice", "conversation"),
    (10 * D, "voice", "conversation"),
    (10 * D + H, "voice", "conversation"),
    (29 * D, "voice", "silent"),
    (31 * D, "voice", "conversation"),  # ---- 30 d ends here
    (40 * D, "voice", "silent"),
]
#: The hand count of each window ending at P: (live-answered, abandoned, pending, rate)
HAND = {"24h": (3, 1, 1, round(1 / 3, 6)), "30d": (8, 3, 1, 3 / 8)}

AUDIT_TOKEN = "governor-policy-time-auditor-token-01"


@dataclass(frozen=True)
class Seeded:
    url: str
    campaign: str
    policy_now: datetime


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    url = f"sqlite:///{Path(tmp_path_factory.mktemp('scaled')) / 'collect.db'}"
    upgrade(url)
    wall = datetime.now(UTC)
    # a demo at two real seconds per policy day, started two real minutes ago: 60 policy days ahead
    clock = PolicyClock(epoch=wall - timedelta(seconds=120), day_seconds=2)
    p = clock.policy_now(wall).replace(microsecond=0)
    assert p - wall > timedelta(days=59)
    campaign = f"scaled-{uuid.uuid4().hex[:8]}"
    sessions = session_factory(make_engine(url))
    with sessions.begin() as s:
        account = Account(
            account_id="SC-1",
            debtor=Debtor(name="Jane Doe", phone="+12125550142", timezone="America/New_York"),
            currency="USD",
            balance=50_000,
            due_date=date(2026, 10, 1),
            policy=campaign,
        )
        upsert_account(s, account, wall)
        for i, (before, channel, outcome) in enumerate(CALLS):
            at = p - before
            key = f"SC-1/{i}"
            reserve_attempt(
                s, dedupe_key=key, account_id="SC-1", channel=channel, purpose="dunning",
                template="early_voice", to_address="+12125550142", now=at,
            )  # fmt: skip
            mark_attempt(s, key, state="accepted", provider_sid=f"CA{i}", outcome=outcome or "sent", now=at)
            # as the send activity does: its audit line at the same policy instant
            audit(
                s,
                at=at,
                clock="policy",
                account_id="SC-1",
                actor="send_contact",
                action="contact",
                decision="sent",
            )
    yield Seeded(url=url, campaign=campaign, policy_now=p)
    dispose_engine(url)


def figures(report: dict) -> dict[str, tuple[int, int, int, float]]:
    return {
        w["window"]: (w["live_answered"], w["abandoned"], w["pending"], w["rate"]) for w in report["windows"]
    }


def test_the_store_counts_each_window_ending_at_the_campaigns_policy_now(seeded: Seeded) -> None:
    with session_factory(make_engine(seeded.url)).begin() as s:
        report = governor_report(s, seeded.campaign, datetime.now(UTC))
    assert report.as_of == seeded.policy_now  # the campaign's clock, not the wall clock
    assert figures(report.model_dump()) == HAND
    # the top line is the campaign's window (US accounts: 30 days), as before
    assert (report.live_answered, report.abandoned, report.pending, report.window_hours) == (8, 3, 1, 720)
    # 3 abandoned (and one pending) of 8 answered: paused, until calls age out
    assert report.paused and report.paused_until is not None and report.paused_until > seeded.policy_now


async def test_operators_see_the_policy_windows(seeded: Seeded) -> None:
    settings = Settings(database_url=seeded.url, api_tokens={AUDIT_TOKEN: "ann:auditor"}, _env_file=None)  # type: ignore[call-arg]
    app = create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as http:
        answer = await http.get(
            "/ops/governor",
            params={"campaign": seeded.campaign},
            headers={"Authorization": f"Bearer {AUDIT_TOKEN}"},
        )
        body = answer.json()
    assert datetime.fromisoformat(body["as_of"]) == seeded.policy_now
    assert figures(body) == HAND
    assert (body["live_answered"], body["abandoned"], body["paused"]) == (8, 3, True)
    assert datetime.fromisoformat(body["paused_until"]) > seeded.policy_now


def test_the_metrics_report_each_policy_window(seeded: Seeded) -> None:
    text = exposition(business_registry(make_engine(seeded.url), process=False)).decode()
    samples = {
        (sample.name, sample.labels.get("campaign"), sample.labels.get("window")): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    for window, (live, abandoned, _, rate) in HAND.items():
        key = (seeded.campaign, window)
        assert samples[("collect_live_answered_calls", *key)] == live, window
        assert samples[("collect_abandoned_calls", *key)] == abandoned, window
        assert samples[("collect_abandoned_call_rate", *key)] == pytest.approx(rate, abs=1e-6), window


def test_the_dashboard_shows_the_30_day_policy_window(seeded: Seeded) -> None:
    live, abandoned, _, _ = HAND["30d"]
    with session_factory(make_engine(seeded.url)).begin() as s:
        now = seeded.policy_now  # what GET /dashboard takes: the newest audit line or attempt
        data = dashboard_data(s, now)
    assert sum(a for _, _, a in data.silent) == live
    assert sum(x for _, x, _ in data.silent) == abandoned
    assert f"{abandoned} of {live} answered calls" in render_dashboard(data, now)


async def test_the_dashboard_page_reads_the_policy_clock(seeded: Seeded) -> None:
    settings = Settings(database_url=seeded.url, api_tokens={AUDIT_TOKEN: "ann:auditor"}, _env_file=None)  # type: ignore[call-arg]
    app = create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as http:
        page = await http.get("/dashboard", headers={"Authorization": f"Bearer {AUDIT_TOKEN}"})
    assert page.status_code == 200
    live, abandoned, _, _ = HAND["30d"]
    assert f"{abandoned} of {live} answered calls" in page.text
