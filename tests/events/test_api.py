"""Operators and the lender's subscriptions: the API's roles and errors, the deliveries view, a dead letter
sent again, the metrics and the console's page.

The real app (ASGI) on this module's database (SQLite and PostgreSQL), a real deliverer and a real
subscriber: the dead letter is one the deliverer made, the figures what ``/metrics`` says.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import Session, sessionmaker

from activities.records import RecordActivities
from runtime.metrics import business_registry
from service.app import create_app
from store.audit import audit_entries
from store.db import make_engine
from tests.events.conftest import Subscriber, settings_for
from tests.events.test_deliverer import FAST, run_until, write_events
from tests.service.test_console import browser, csrf_of
from workers.events import Deliverer

PUBLIC = "https://collect.example.test"
AGENT, SUPERVISOR, AUDITOR = (
    "events-agent-token-xxxxxxxxxxxxxxx",
    "events-super-token-xxxxxxxxxxxxxxx",
    "events-audit-token-xxxxxxxxxxxxxxx",
)
TOKENS = {AGENT: "alice:agent", SUPERVISOR: "sam:supervisor", AUDITOR: "ann:auditor"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def app(db_url: str, sessions: sessionmaker[Session]) -> FastAPI:
    application = create_app(settings_for(db_url, api_tokens=TOKENS))
    application.state.sessions = sessions
    # every scrape reads the database (the service reuses a scrape's figures for 15 s)
    application.state.metrics_registry = business_registry(make_engine(db_url), cache_seconds=0)
    return application


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC) as client:
        yield client


async def test_supervisors_manage_subscriptions_and_every_reading_role_looks(http: httpx.AsyncClient) -> None:
    body = {"url": "https://lender.example.com/hooks", "event_types": ["line_frozen", "line_restored"]}
    assert (await http.post("/api/events/subscriptions", json=body)).status_code == 401
    for token in (AGENT, AUDITOR):
        refused = await http.post("/api/events/subscriptions", json=body, headers=bearer(token))
        assert refused.status_code == 403, refused.text
    made = await http.post("/api/events/subscriptions", json=body, headers=bearer(SUPERVISOR))
    assert made.status_code == 201, made.text
    sub = made.json()
    assert sub["secret"].startswith("whsec_") and sub["secret_hint"] == sub["secret"][:10] + "…"
    assert (sub["event_types"], sub["status"], sub["created_by"]) == (
        ["line_frozen", "line_restored"],
        "active",
        "sam",
    )
    for token in (AUDITOR, AGENT, SUPERVISOR):
        listed = await http.get("/api/events/subscriptions", headers=bearer(token))
        assert listed.status_code == 200
        [mine] = [s for s in listed.json() if s["id"] == sub["id"]]
        assert "secret" not in mine and sub["secret"] not in listed.text  # shown once, at creation
    path = f"/api/events/subscriptions/{sub['id']}"
    assert (await http.post(f"{path}/rotate", headers=bearer(AGENT))).status_code == 403
    rotated = await http.post(f"{path}/rotate", headers=bearer(SUPERVISOR))
    assert rotated.status_code == 200
    assert rotated.json()["secret"] != sub["secret"] and rotated.json()["previous_secret_until"] is not None
    assert (await http.post(f"{path}/disable", headers=bearer(AUDITOR))).status_code == 403
    disabled = await http.post(f"{path}/disable", headers=bearer(SUPERVISOR))
    assert (disabled.json()["status"], disabled.json()["disabled_by"]) == ("disabled", "sam")
    assert (await http.post(f"{path}/disable", headers=bearer(SUPERVISOR))).json()["status"] == "disabled"
    assert (await http.get("/api/events/subscriptions/999999", headers=bearer(AUDITOR))).status_code == 404
    assert (
        await http.post("/api/events/deliveries/999999/retry", headers=bearer(SUPERVISOR))
    ).status_code == 404


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"url": "ftp://lender.example.com/x"}, "url", "http"),
        ({"url": "/relative"}, "url", "absolute"),
        ({"url": "http://[::1/x"}, "url", "valid"),
        ({"url": "https://lender.example.com:port/x"}, "url", "valid"),
        ({"url": "https://lender.example.com/a b"}, "url", "spaces"),
        ({"url": "https://lender.example.com/x", "description": "nul\x00"}, "description", "control"),
        ({"url": "https://lender.example.com/x", "event_types": ["line_melted"]}, "event_types", ""),
        ({"url": "https://lender.example.com/x", "event_types": []}, "event_types", ""),
        ({"url": "https://lender.example.com/x", "secret": "mine"}, "secret", ""),
    ],
)
async def test_a_bad_subscription_is_refused_naming_the_field(
    http: httpx.AsyncClient, body: dict[str, Any], field: str, reason: str
) -> None:
    refused = await http.post("/api/events/subscriptions", json=body, headers=bearer(SUPERVISOR))
    assert refused.status_code == 422, refused.text
    [error] = refused.json()["detail"]
    assert error["loc"][:2] == ["body", field] and reason in error["msg"]


async def test_production_takes_only_https(db_url: str, sessions: sessionmaker[Session]) -> None:
    app = create_app(settings_for(db_url, api_tokens=TOKENS, env="production", codec_keys=None))
    app.state.sessions = sessions
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC) as client:
        refused = await client.post(
            "/api/events/subscriptions",
            json={"url": "http://lender.example.com/x"},
            headers=bearer(SUPERVISOR),
        )
    assert refused.status_code == 422 and "https" in refused.text


async def test_a_dead_letter_shows_in_the_view_the_metrics_and_the_console_and_is_sent_again(
    db_url: str,
    app: FastAPI,
    http: httpx.AsyncClient,
    records: RecordActivities,
    sessions: sessionmaker[Session],
) -> None:
    subscriber = Subscriber().start()
    try:
        made = await http.post(
            "/api/events/subscriptions", json={"url": subscriber.url}, headers=bearer(SUPERVISOR)
        )
        sub_id, subscriber.secret = made.json()["id"], made.json()["secret"]
        [acct] = write_events(records, sessions, accounts=1, payments=1)
        subscriber.answer = lambda _body: 503
        deliverer = Deliverer(sessions, settings_for(db_url, events_max_attempts=2, **FAST))
        views = f"/api/events/subscriptions/{sub_id}/deliveries"
        try:
            run_until(deliverer, lambda: _dead(sessions, sub_id))
            dead = (await http.get(views, params={"which": "dead"}, headers=bearer(AUDITOR))).json()
            assert [
                (d["account_id"], d["seq"], d["type"], d["attempts"], d["last_status"]) for d in dead
            ] == [(acct, 1, "line_frozen", 2, 503)]
            assert [(a["attempt"], a["status_code"], a["ok"]) for a in dead[0]["recent"]] == [
                (2, 503, False),
                (1, 503, False),
            ]
            waiting = (await http.get(views, params={"which": "pending"}, headers=bearer(AUDITOR))).json()
            assert [(d["seq"], d["attempts"]) for d in waiting] == [(2, 0)]  # behind the dead letter, untried

            figures = await metrics(http, sub_id)
            assert figures["collect_event_dead_letters"] == 1
            assert figures["collect_event_backlog"] == 2
            assert figures["collect_event_delivery_failures_total"] == 2
            assert figures["collect_event_oldest_undelivered_seconds"] > 0

            async with browser(app, AUDITOR) as web:
                page = await web.get("/console/events")
                assert page.status_code == 200 and subscriber.url in page.text and acct in page.text
                assert "Send again" not in page.text  # an auditor looks only
            async with browser(app, SUPERVISOR) as web:
                page = await web.get("/console/events")
                assert "Dead letters" in page.text and "Send again" in page.text
                retry_path = f"/console/events/deliveries/{dead[0]['id']}/retry"
                posted = await web.post(retry_path, data={"csrf": csrf_of(page.text)})
                assert posted.status_code == 303 and "notice=" in posted.headers["location"]
            again = await http.post(
                f"/api/events/deliveries/{dead[0]['id']}/retry", headers=bearer(SUPERVISOR)
            )
            assert again.status_code == 409  # pending again already: not a dead letter

            subscriber.answer = lambda _body: 200
            run_until(deliverer, lambda: subscriber.by_account().get(acct) == [1, 2])
        finally:
            deliverer.close()
        figures = await metrics(http, sub_id)
        assert (figures["collect_event_dead_letters"], figures["collect_event_backlog"]) == (0, 0)
        with sessions.begin() as s:
            retried = [e for e in audit_entries(s, acct) if e.action == "event_delivery"]
        assert [(e.actor, e.decision) for e in retried] == [("sam", "retried")]
        told = await http.get(f"/api/accounts/{acct}/events", headers=bearer(AUDITOR))
        assert [(e["sequence"], e["type"]) for e in told.json()] == [
            (1, "line_frozen"),
            (2, "payment_applied"),
        ]
        assert (await http.get("/api/accounts/NO-SUCH-1/events", headers=bearer(AUDITOR))).status_code == 404
    finally:
        subscriber.stop()


def _dead(sessions: sessionmaker[Session], sub_id: int) -> bool:
    from store.subscriptions import deliveries

    with sessions.begin() as s:
        return bool(deliveries(s, sub_id, which="dead"))


async def metrics(http: httpx.AsyncClient, sub_id: int) -> dict[str, float]:
    """This subscription's event figures as Prometheus reads them."""
    text = (await http.get("/metrics", headers=bearer(AUDITOR))).text
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("collect_event_") and sample.labels.get("subscription") == str(sub_id):
                out[sample.name] = sample.value
    return out
