"""Placement at charge-off: the agency gets the account through the API, works it under the same gate
and ledger, and the payments it collects flow back into the account's workflow."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import httpx

from domain.accounts import Account, Debtor, Hold, HoldKind
from store import agencies
from store.accounts import account_snapshot, upsert_account
from store.contacts import live_gate_inputs
from store.holds import add_hold
from tests.conftest import unplaced_phone
from tests.visits.conftest import bearer, eventually
from tests.workflows.conftest import Harness, at_local

#: Every test here also runs with continue-as-new forced at every wake-up (tests/conftest.py).
HAND_OVER_EVERY_WAKE_TOO = True

BALANCE = 200_000


async def test_placed_account_agency_collects_a_payment_that_closes_it(
    harness: Harness, api: httpx.AsyncClient
) -> None:
    account = await harness.open_account(due_in_days=-178, phone="+12125550175", balance=BALANCE, fees=0)
    await harness.skip_to(at_local(account.due_date + timedelta(days=180), 12))

    def placement() -> agencies.PlacementView | None:
        with harness.sessions.begin() as s:
            return agencies.active_placement(s, account.account_id)

    placed = await eventually(placement, "the account is placed at charge-off")
    assert placed.agency_id == "national-recovery" and placed.placed_balance_minor == BALANCE
    with harness.sessions.begin() as s:
        snap = account_snapshot(s, account.account_id)
    assert snap is not None and snap.mode == "closed" and snap.close_reason == "placed"
    notices = [c for c in harness.sent(account) if c.get("template") == "agency_placement"]
    assert len(notices) == 1  # the debtor's final message names the agency

    # the agency sees its account (with the number it needs); nobody else's
    r = await api.get("/agency/placements", headers=bearer("tok-agency-xxxxxxxxxxxxxxxxxxxxxx"))
    assert r.status_code == 200
    mine = [p for p in r.json() if p["account_id"] == account.account_id]
    assert len(mine) == 1 and mine[0]["phone"] == account.debtor.phone
    r = await api.get("/agency/placements", headers=bearer("tok-other-agency-xxxxxxxxxxxxxxxx"))
    assert all(p["account_id"] != account.account_id for p in r.json())
    r = await api.post(
        f"/agency/placements/{account.account_id}/payments",
        json={"amount": 1000, "currency": "USD", "reference": "x"},
        headers=bearer("tok-other-agency-xxxxxxxxxxxxxxxx"),
    )
    assert r.status_code == 404

    # the agency collects the whole balance: the payment flows into the workflow, which closes paid
    for _ in range(2):  # a re-sent report counts once
        r = await api.post(
            f"/agency/placements/{account.account_id}/payments",
            json={"amount": BALANCE, "currency": "USD", "reference": "nr-778"},
            headers=bearer("tok-agency-xxxxxxxxxxxxxxxxxxxxxx"),
        )
        assert r.status_code == 202, r.text
    result = await harness.handle(account).result()
    assert result.state == "closed_paid" and result.paid_total == BALANCE
    with harness.sessions.begin() as s:
        ended = agencies.placement(s, f"{account.account_id}/placement-1")
        snap = account_snapshot(s, account.account_id)
    assert ended is not None and ended.status == "completed" and ended.collected_minor == BALANCE
    assert snap is not None and snap.close_reason == "paid"
    assert [c["template"] for c in harness.sent(account)][-1] == "payment_receipt"


def _zone_at_midday() -> str:
    """A fixed-offset zone where it is now early afternoon, so quiet hours do not decide this test."""
    offset = (13 - datetime.now(UTC).hour + 12) % 24 - 12  # hours ahead of UTC, -12..11
    return "Etc/GMT" + (f"-{offset}" if offset > 0 else f"+{-offset}")


async def test_agency_calls_go_through_the_same_gate_and_count_toward_the_same_caps(
    harness: Harness, api: httpx.AsyncClient
) -> None:
    account = Account(
        account_id=f"P-{uuid.uuid4().hex[:10]}",
        debtor=Debtor(name="Jane Doe", phone=unplaced_phone(), timezone=_zone_at_midday()),
        currency="USD",
        balance=BALANCE,
        due_date=date(2026, 5, 1),
    )
    now = datetime.now(UTC)
    with harness.sessions.begin() as s:
        upsert_account(s, account, now)
        agencies.create_placement(
            s,
            placement_id=f"{account.account_id}/placement-1",
            account_id=account.account_id,
            agency_id="national-recovery",
            currency="USD",
            balance_minor=BALANCE,
            now=now,
        )
    url = f"/agency/placements/{account.account_id}/calls"
    r = await api.post(
        url,
        json={"reference": "c1", "outcome": "conversation"},
        headers=bearer("tok-agency-xxxxxxxxxxxxxxxxxxxxxx"),
    )
    assert r.status_code == 201, r.text
    # Reg F: no call within 7 days after a conversation, whoever made it
    r = await api.post(url, json={"reference": "c2"}, headers=bearer("tok-agency-xxxxxxxxxxxxxxxxxxxxxx"))
    assert r.status_code == 409 and r.json()["detail"]["rule"] == "cap.call_after_conversation"
    # the lender's own send-time gate sees the agency's conversation in the same ledger
    with harness.sessions.begin() as s:
        _, ledger = live_gate_inputs(s, account.account_id, since=now - timedelta(days=1))
    assert [e.outcome.value for e in ledger] == ["conversation"]
    # a complaint hold stops the agency too
    with harness.sessions.begin() as s:
        add_hold(s, account.account_id, Hold(kind=HoldKind.COMPLAINT, reason="visit", since=now))
    r = await api.post(
        url, json={"reference": "c3", "channel": "sms"}, headers=bearer("tok-agency-xxxxxxxxxxxxxxxxxxxxxx")
    )
    assert r.status_code == 409 and r.json()["detail"]["rule"] == "hold.complaint"
