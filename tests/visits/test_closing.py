"""Closing for a reason, with the debtor's final message, and none where the law forbids one."""

from __future__ import annotations

import httpx

from domain.accounts import HoldKind
from store.accounts import account_snapshot
from store.audit import audit_entries
from tests.visits.conftest import bearer
from tests.workflows.conftest import Harness

#: Every test here also runs with continue-as-new forced at every wake-up (tests/conftest.py).
HAND_OVER_EVERY_WAKE_TOO = True


async def test_written_off_account_closes_with_one_final_message(
    harness: Harness, api: httpx.AsyncClient
) -> None:
    account = await harness.open_account(due_in_days=-10, phone="+12125550143")
    url = f"/accounts/{account.account_id}/closure"
    r = await api.post(
        url,
        json={"reason": "written_off", "note": "uneconomic"},
        headers=bearer("tok-agent-xxxxxxxxxxxxxxxxxxxxxxx"),
    )
    assert r.status_code == 403  # closing is a supervisor's decision
    r = await api.post(url, json={"reason": "forgiven"}, headers=bearer("tok-supervisor-xxxxxxxxxxxxxxxxxx"))
    assert r.status_code == 422 and "reason" in r.text
    # a write-off takes two supervisors (four eyes): the first request changes nothing, nor does the
    # same supervisor asking again
    for _ in range(2):
        r = await api.post(
            url,
            json={"reason": "written_off", "note": "uneconomic"},
            headers=bearer("tok-supervisor-xxxxxxxxxxxxxxxxxx"),
        )
        assert r.status_code == 202 and r.json()["status"] == "awaiting_second_supervisor", r.text
    with harness.sessions.begin() as s:
        still = account_snapshot(s, account.account_id)
    assert still is not None and still.mode != "closed"
    r = await api.post(
        url, json={"reason": "written_off"}, headers=bearer("tok-supervisor-two-xxxxxxxxxxxxxx")
    )
    assert r.status_code == 202 and (r.json()["status"], r.json()["requested_by"]) == ("closing", "sam"), (
        r.text
    )

    result = await harness.handle(account).result()
    assert result.state == "closed_written_off"
    with harness.sessions.begin() as s:
        lines = [
            (e.decision, e.actor) for e in audit_entries(s, account.account_id) if e.action == "write_off"
        ]
    assert lines == [("requested", "sam"), ("requested", "sam"), ("confirmed", "kim")]
    with harness.sessions.begin() as s:
        snap = account_snapshot(s, account.account_id)
    assert snap is not None and snap.mode == "closed" and snap.close_reason == "written_off"
    finals = [c for c in harness.sent(account) if c.get("template") == "written_off"]
    assert len(finals) == 1


async def test_bankrupt_debtor_gets_no_final_message(harness: Harness, api: httpx.AsyncClient) -> None:
    account = await harness.open_account(due_in_days=-10, phone="+12125550144")
    before = len(harness.sent(account))
    r = await api.post(
        f"/accounts/{account.account_id}/closure",
        json={"reason": "bankrupt", "note": "chapter 7 notice received"},
        headers=bearer("tok-supervisor-xxxxxxxxxxxxxxxxxx"),
    )
    assert r.status_code == 202, r.text
    result = await harness.handle(account).result()
    assert result.state == "closed_bankrupt"
    assert len(harness.sent(account)) == before  # the automatic stay: not even a goodbye
    with harness.sessions.begin() as s:
        snap = account_snapshot(s, account.account_id)
        entries = audit_entries(s, account.account_id)
    assert snap is not None and snap.close_reason == "bankrupt"
    assert any(e.decision == HoldKind.BANKRUPTCY.value for e in entries)
