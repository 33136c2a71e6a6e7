"""The refund queue for operators: read by every reading role, resolved once by a supervisor, audited.

Real app over ASGI on the real database; the refunds are queued the way the workflow's ``record``
activity and the service queue them (``store.refunds.queue_refund``).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from runtime.settings import Settings
from service.app import create_app
from store.audit import audit_entries
from store.refunds import queue_refund
from tests.service.conftest import PUBLIC, new_account, random_phone

TOKENS = {
    "agent-token-xxxxxxxxxxxxxxxxxxxxx": "alice:agent",
    "super-token-xxxxxxxxxxxxxxxxxxxxx": "sam:supervisor",
    "audit-token-xxxxxxxxxxxxxxxxxxxxx": "ann:auditor",
}
AGENT = {"Authorization": "Bearer agent-token-xxxxxxxxxxxxxxxxxxxxx"}
SUPER = {"Authorization": "Bearer super-token-xxxxxxxxxxxxxxxxxxxxx"}
AUDITOR = {"Authorization": "Bearer audit-token-xxxxxxxxxxxxxxxxxxxxx"}


@pytest.fixture
async def http(
    service_settings: Settings, sessions: sessionmaker[Session]
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(service_settings.model_copy(update={"api_tokens": TOKENS}))
    app.state.sessions = sessions
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC) as client:
        yield client


def queued(sessions: sessionmaker[Session], amount: int = 700) -> tuple[str, int]:
    account = new_account(sessions, random_phone())
    with sessions.begin() as s:
        view = queue_refund(
            s,
            account_id=account.account_id,
            reference=f"ref-{uuid.uuid4().hex[:6]}",
            amount_minor=amount,
            currency="USD",
            reason="paid beyond the balance",
            now=datetime.now(UTC),
        )
    return account.account_id, view.id


async def test_the_queue_is_listed_and_a_supervisor_resolves_a_refund_once(
    http: httpx.AsyncClient, sessions: sessionmaker[Session]
) -> None:
    account_id, refund_id = queued(sessions)
    for headers in (AUDITOR, AGENT, SUPER):
        listed = await http.get("/api/refunds", headers=headers)
        assert listed.status_code == 200, listed.text
        mine = [r for r in listed.json() if r["id"] == refund_id]
        assert [(r["account_id"], r["amount"], r["currency"], r["status"]) for r in mine] == [
            (account_id, 700, "USD", "open")
        ]
    assert (await http.get("/api/refunds")).status_code == 401

    resolve = f"/api/refunds/{refund_id}/resolve"
    body = {"status": "refunded", "note": "sent back by wire 2026-11-24"}
    assert (await http.post(resolve, json=body, headers=AGENT)).status_code == 403
    assert (await http.post(resolve, json=body, headers=AUDITOR)).status_code == 403
    bad = await http.post(resolve, json={"status": "open"}, headers=SUPER)
    assert bad.status_code == 422 and "status" in str(bad.json()["detail"])

    done = await http.post(resolve, json=body, headers=SUPER)
    assert done.status_code == 200, done.text
    assert (done.json()["status"], done.json()["resolved_by"], done.json()["note"]) == (
        "refunded",
        "sam",
        body["note"],
    )
    twice = await http.post(resolve, json={"status": "applied"}, headers=SUPER)
    assert twice.status_code == 409 and "already refunded" in twice.json()["detail"]
    assert (await http.post("/api/refunds/999999999/resolve", json=body, headers=SUPER)).status_code == 404

    open_now = (await http.get("/api/refunds", headers=AUDITOR)).json()
    assert refund_id not in [r["id"] for r in open_now]
    refunded = (await http.get("/api/refunds", params={"status": "refunded"}, headers=AUDITOR)).json()
    assert refund_id in [r["id"] for r in refunded]
    assert (await http.get("/api/refunds", params={"status": "lost"}, headers=AUDITOR)).status_code == 422
    with sessions.begin() as s:
        lines = [e for e in audit_entries(s, account_id) if e.action == "refund_resolved"]
    assert [(e.actor, e.decision, e.details["refund_id"]) for e in lines] == [("sam", "refunded", refund_id)]
