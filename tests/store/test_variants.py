"""Each variant's results read from real rows (SQLite and PostgreSQL): the counts exact, the intervals
the Wilson ones, and the dashboard's table shows them; a promotion finds the old champion's open
accounts."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from sqlalchemy.orm import Session, sessionmaker

from domain.accounts import CloseReason, ContactOutcome, Hold, HoldKind, Mode
from domain.intervals import wilson
from domain.plans import AgreedPlan, Instalment, PlanKind
from service.dashboard import render_dashboard
from store.accounts import set_mode, update_progress, upsert_account
from store.audit import audit
from store.contacts import mark_attempt, reserve_attempt
from store.holds import add_hold
from store.ledger import save_plan, set_plan_status
from store.reporting import dashboard_data
from store.variants import open_accounts_in, variant_results
from tests.store.conftest import NOW, new_account


def seed_variant(
    s: Session,
    variant: str | None,
    *,
    accounts: int,
    paid: int,
    contacts_each: int,
    complaints: int,
    opt_outs: int,
    plans: int,
    broken: int,
) -> list[str]:
    """``accounts`` accounts of 1,000.00 USD in ``variant``; the first ``paid`` closed as paid in full."""
    ids = []
    for i in range(accounts):
        account = new_account(balance=100_000, fees=0)
        assert upsert_account(s, account, NOW - timedelta(days=60), variant=variant)
        aid = account.account_id
        ids.append(aid)
        for k in range(contacts_each):
            key = f"{aid}/{k}"
            reserve_attempt(
                s, dedupe_key=key, account_id=aid, channel="sms", purpose="dunning", template="seed",
                to_address=account.debtor.phone, now=NOW - timedelta(days=k + 1),
            )  # fmt: skip
            mark_attempt(s, key, state="accepted", outcome=ContactOutcome.DELIVERED, now=NOW)
        if i < paid:
            update_progress(s, aid, stage=None, dpd=None, balance_minor=0, paid_minor=100_000, now=NOW)
            set_mode(s, aid, Mode.CLOSED, close_reason=CloseReason.PAID, now=NOW)
        if accounts - complaints <= i:
            add_hold(s, aid, Hold(kind=HoldKind.COMPLAINT, reason="seed", since=NOW - timedelta(days=3)))
        if i < opt_outs:
            audit(s, at=NOW, clock="policy", account_id=aid, actor="workflow", action="reply",
                  decision="opted_out")  # fmt: skip
        if paid <= i < paid + plans:
            plan = AgreedPlan(
                plan_id=f"P-{aid}", kind=PlanKind.REINSTALMENT, currency="USD", total=100_000,
                instalments=[Instalment(seq=1, due_date=date(2026, 12, 1), amount=100_000)],
                agreed_at=NOW - timedelta(days=20), proposed_by="agent",
            )  # fmt: skip
            save_plan(s, aid, plan)
            if i < paid + broken:
                set_plan_status(s, plan.plan_id, "broken", now=NOW)
    return ids


def test_each_variants_results_and_their_intervals_come_from_its_own_accounts(
    sessions: sessionmaker[Session],
) -> None:
    run = uuid.uuid4().hex[:6]
    control, gentle = f"control-{run}", f"gentle-{run}"
    with sessions.begin() as s:
        control_ids = seed_variant(
            s, control, accounts=40, paid=10, contacts_each=3, complaints=2, opt_outs=1, plans=4, broken=1
        )
        seed_variant(
            s, gentle, accounts=20, paid=8, contacts_each=1, complaints=0, opt_outs=2, plans=2, broken=2
        )
        seed_variant(
            s, None, accounts=5, paid=5, contacts_each=9, complaints=5, opt_outs=5, plans=0, broken=0
        )

    with sessions.begin() as s:
        results = {r.variant: r for r in variant_results(s) if r.variant in (control, gentle)}
        moved = open_accounts_in(s, control)
    c, g = results[control], results[gentle]
    assert (c.currency, c.policies, c.accounts, c.open_accounts) == ("USD", ["default"], 40, 30)
    assert (c.recovered.count, c.recovered.of) == (10, 40)
    assert (c.recovered.low, c.recovered.high) == wilson(10, 40)
    assert (c.complained.count, c.opted_out.count, c.broke_plan.count, c.broke_plan.of) == (2, 1, 1, 4)
    assert (c.contacts, c.paid_minor, c.opening_minor) == (120, 1_000_000, 4_000_000)
    assert (g.recovered.count, g.complained.count, g.opted_out.count, g.broke_plan.count) == (8, 0, 2, 2)
    assert (g.complained.low, g.complained.high) == wilson(0, 20)
    # 120 contacts for 10,000.00 recovered: 1.2 per 100 USD; the gentle one 20 for 8,000.00: 0.25
    assert c.contacts_per_100 is not None and round(c.contacts_per_100[0], 6) == 1.2
    assert g.contacts_per_100 is not None and round(g.contacts_per_100[0], 6) == 0.25
    assert c.contacts_per_100[1] < 1.2 < c.contacts_per_100[2]
    # the accounts a promotion of the challenger moves: the old champion's open ones, in order
    assert moved == sorted(control_ids[10:])

    with sessions.begin() as s:
        page = render_dashboard(dashboard_data(s, NOW), NOW)
    assert "Champion and challengers" in page
    row = page[page.index(f"<th scope='row'>{control}</th>") :].split("</tr>", 1)[0]
    low, high = wilson(10, 40)
    assert f"25.0% <small>({low:.1%}–{high:.1%})</small>" in row
    assert "40 <small>(30 open)</small>" in row and "1.20 <small>(" in row
