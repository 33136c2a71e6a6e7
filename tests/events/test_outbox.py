"""The transactional outbox: every state change the workflows record writes the lender's events in the
same transaction, numbered per account, once, and nothing when the change is refused.

The real ``record`` activity's object on the real database (SQLite and PostgreSQL), called the way the
worker calls it: one transaction per call, retried by calling it again with the same change.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from temporalio.exceptions import ApplicationError

from activities.records import RecordActivities
from domain.accounts import Channel, CloseReason, Hold, HoldKind, Mode, Stage
from domain.effects import ChangeBatch, PaymentRecord
from domain.plans import AgreedPlan, Instalment, PlanKind
from store.accounts import account_snapshot
from store.agencies import create_placement
from store.audit import audit_entries
from store.models import EventOutboxRow, EventStreamRow
from store.outbox import account_events
from tests.events.conftest import NOW, change
from tests.store.conftest import run_threads, stored


def events(sessions: sessionmaker[Session], account_id: str) -> list[tuple[int, str, dict[str, Any]]]:
    with sessions.begin() as s:
        return [(e.seq, e.type, e.data) for e in account_events(s, account_id)]


def types(sessions: sessionmaker[Session], account_id: str) -> list[str]:
    return [t for _, t, _ in events(sessions, account_id)]


def stage(account_id: str, minutes: int, value: Stage, dpd: int) -> Any:
    return change(account_id, minutes, stage=value, dpd=dpd, balance=125_000, decision="stage")


def payment(account_id: str, minutes: int, amount: int, ref: str, balance: int, currency: str = "USD") -> Any:
    return change(
        account_id,
        minutes,
        payment=PaymentRecord(
            amount=amount, currency=currency, reference=ref, received_at=NOW + timedelta(minutes=minutes)
        ),
        balance=balance,
        paid_total=125_000 - balance,
        decision="payment",
    )


def plan(account_id: str, n: int = 1) -> AgreedPlan:
    return AgreedPlan(
        plan_id=f"{account_id}-plan-{n}",
        kind=PlanKind.REINSTALMENT,
        currency="USD",
        total=125_000,
        instalments=[
            Instalment(seq=1, due_date=date(2026, 12, 15), amount=62_500),
            Instalment(seq=2, due_date=date(2027, 1, 15), amount=62_500),
        ],
        agreed_at=NOW,
        proposed_by="sam",
    )


def test_a_life_of_state_changes_tells_the_lender_each_in_order(
    records: RecordActivities, sessions: sessionmaker[Session]
) -> None:
    account = stored(sessions, name="Jane Doe", phone="+12125550142")
    acct = account.account_id
    records.record(stage(acct, 0, Stage.PRE_DUE, -3))  # before the due date: nothing to tell
    assert types(sessions, acct) == []
    records.record(stage(acct, 10, Stage.EARLY, 1))
    records.record(stage(acct, 20, Stage.MIDDLE, 31))  # frozen already: nothing new
    hold = Hold(kind=HoldKind.COMPLAINT, reason="complaint #1 (debtor): called at work, Jane Doe", since=NOW)
    records.record(change(acct, 30, hold_added=hold, decision="complaint_filed", actor="kim"))
    records.record(change(acct, 40, hold_lifted=HoldKind.COMPLAINT, decision="complaint_resume"))
    records.record(payment(acct, 50, 25_000, "bank-1", 100_000))
    records.record(
        change(
            acct, 60, mode=Mode.CLOSED, close_reason=CloseReason.PAID.value, balance=0, decision="closed_paid"
        )
    )
    got = events(sessions, acct)
    assert [(seq, kind) for seq, kind, _ in got] == [
        (1, "line_frozen"),
        (2, "complaint_filed"),
        (3, "hold_added"),
        (4, "hold_lifted"),
        (5, "payment_applied"),
        (6, "closed"),
        (7, "line_restored"),
    ]
    data = {kind: d for _, kind, d in got}
    assert data["line_frozen"] == {"reason": "dunning_stage", "stage": "early", "dpd": 1}
    assert data["hold_added"] == {"kind": "complaint", "channel": None, "until": None}
    assert data["payment_applied"] == {
        "reference": "bank-1",
        "amount": {"amount": 25_000, "currency": "USD"},
        "applied": {"amount": 25_000, "currency": "USD"},
        "refund": {"amount": 0, "currency": "USD"},
        "balance": {"amount": 100_000, "currency": "USD"},
    }
    assert data["closed"] == {"reason": "paid", "balance": {"amount": 0, "currency": "USD"}}
    assert data["line_restored"] == {"reason": "paid"}
    # nothing personal: not the name, not the number, not what was typed about the complaint, not who
    text = json.dumps([d for _, _, d in got])
    for personal in ("Jane", "Doe", "2125550142", "called at work", "kim"):
        assert personal not in text
    with sessions.begin() as s:
        rows = s.scalars(select(EventOutboxRow).where(EventOutboxRow.account_id == acct)).all()
        assert len({r.event_id for r in rows}) == 7 and all(len(r.event_id) == 36 for r in rows)
        assert next(r.occurred_at for r in sorted(rows, key=lambda r: r.seq)) == NOW + timedelta(minutes=10)


def test_a_refused_state_write_leaves_no_event(
    records: RecordActivities, sessions: sessionmaker[Session]
) -> None:
    """A payment in another currency is refused by the store: the hold in the same change is not written,
    and neither is any event; a batch is all or nothing, its events included."""
    acct = stored(sessions).account_id
    records.record(stage(acct, 0, Stage.EARLY, 1))
    bad = payment(acct, 10, 500, "eur-1", 124_500, currency="EUR")
    pause = Hold(kind=HoldKind.PAUSE, reason="travel", since=NOW)
    with pytest.raises(ApplicationError, match="currency"):
        records.record(bad.model_copy(update={"hold_added": pause}))
    with pytest.raises(ApplicationError):
        records.record_batch(ChangeBatch(changes=[change(acct, 5, hold_added=pause, decision="paused"), bad]))
    assert types(sessions, acct) == ["line_frozen"]
    with sessions.begin() as s:
        assert account_snapshot(s, acct).holds == []  # type: ignore[union-attr]
        assert s.get(EventStreamRow, acct).last_seq == 1  # type: ignore[union-attr]
        alerts = [e for e in audit_entries(s, acct) if e.action == "operator_alert"]
    assert len(alerts) == 2  # the refused change is kept for a person, as before
    # the next change numbers on from the last committed event
    records.record(change(acct, 20, hold_added=pause, decision="paused"))
    assert [(seq, kind) for seq, kind, _ in events(sessions, acct)] == [(1, "line_frozen"), (2, "hold_added")]


def test_a_retried_write_writes_its_events_once(
    records: RecordActivities, sessions: sessionmaker[Session]
) -> None:
    """An activity retried after its commit (the worker died before telling Temporal) applies the same
    change again: every part of it is idempotent, the events too."""
    acct = stored(sessions).account_id
    first = ChangeBatch(
        changes=[
            stage(acct, 0, Stage.EARLY, 1),
            change(acct, 0, plan=plan(acct), mode=Mode.SETTLEMENT, decision="plan_agreed"),
        ]
    )
    records.record_batch(first)
    records.record_batch(first)
    complaint = change(
        acct, 5, hold_added=Hold(kind=HoldKind.COMPLAINT, reason="#1", since=NOW), decision="complaint_filed"
    )
    records.record(complaint)
    records.record(complaint)
    again = change(  # a second complaint while the first is open: its own event, no second hold
        acct, 6, hold_added=Hold(kind=HoldKind.COMPLAINT, reason="#2", since=NOW), decision="complaint_filed"
    )
    records.record(again)
    assert types(sessions, acct) == [
        "line_frozen",
        "plan_agreed",
        "complaint_filed",
        "hold_added",
        "complaint_filed",
    ]
    [agreed] = [d for _, kind, d in events(sessions, acct) if kind == "plan_agreed"]
    assert agreed["total"] == {"amount": 125_000, "currency": "USD"}
    assert [i["due_date"] for i in agreed["instalments"]] == ["2026-12-15", "2027-01-15"]
    with sessions.begin() as s:
        assert s.get(EventStreamRow, acct).last_seq == 5  # type: ignore[union-attr]


def test_plans_completed_broken_and_the_line_after_them(
    records: RecordActivities, sessions: sessionmaker[Session]
) -> None:
    acct = stored(sessions).account_id
    records.record(stage(acct, 0, Stage.EARLY, 1))
    records.record(change(acct, 1, plan=plan(acct, 1), mode=Mode.SETTLEMENT, decision="plan_agreed"))
    # a promise kept for part of the balance: the plan completes, the line comes back, dunning goes on
    records.record(change(acct, 2, mode=Mode.DUNNING, plan_status="completed", decision="promise_kept"))
    records.record(stage(acct, 3, Stage.MIDDLE, 31))  # still delinquent: frozen again at the next stage
    records.record(change(acct, 4, plan=plan(acct, 2), mode=Mode.SETTLEMENT, decision="plan_agreed"))
    records.record(
        change(acct, 5, mode=Mode.DUNNING, plan_status="broken", instalment_missed=1, decision="plan_broken")
    )
    got = events(sessions, acct)
    assert [kind for _, kind, _ in got] == [
        "line_frozen",
        "plan_agreed",
        "plan_completed",
        "line_restored",
        "line_frozen",
        "plan_agreed",
        "plan_broken",
    ]
    assert got[2][2] == {"plan_id": f"{acct}-plan-1", "account_closed": False}
    assert got[3][2] == {"reason": "plan_completed"}
    assert got[6][2] == {"plan_id": f"{acct}-plan-2", "missed_instalment": 1}


def test_a_charge_off_with_placement_and_an_opt_out_said_once(
    records: RecordActivities, sessions: sessionmaker[Session]
) -> None:
    acct = stored(sessions).account_id
    records.record(change(acct, 0, channel_status=(Channel.SMS, "opted_out"), decision="opted_out"))
    records.record(
        change(acct, 1, channel_status=(Channel.SMS, "opted_out"), decision="opted_out")
    )  # STOP, then 21610
    with sessions.begin() as s:
        create_placement(
            s, placement_id=f"{acct}-placement-1", account_id=acct, agency_id="national-recovery",
            currency="USD", balance_minor=125_000, now=NOW,
        )  # fmt: skip
    records.record_batch(  # the stage noted on the wake and the charge-off: one write, as the workflow does
        ChangeBatch(
            changes=[
                stage(acct, 2, Stage.CHARGED_OFF, 180),
                change(
                    acct,
                    2,
                    mode=Mode.CLOSED,
                    close_reason="placed",
                    stage=Stage.CHARGED_OFF,
                    dpd=180,
                    balance=125_000,
                    decision="charged_off_placed",
                ),
            ]
        )
    )
    got = events(sessions, acct)
    assert [kind for _, kind, _ in got] == ["opted_out", "line_frozen", "charged_off", "placed", "closed"]
    data = {kind: d for _, kind, d in got}
    assert data["opted_out"] == {"channel": "sms"}
    assert data["charged_off"] == {"dpd": 180, "balance": {"amount": 125_000, "currency": "USD"}}
    assert data["placed"] == {"agency_id": "national-recovery", "placement_id": f"{acct}-placement-1"}
    assert data["closed"]["reason"] == "placed"


def test_concurrent_writes_of_one_account_are_numbered_without_gaps(
    records: RecordActivities, sessions: sessionmaker[Session]
) -> None:
    """A signal handler's write and the main loop's can run at once: they queue on the account's row."""
    acct = stored(sessions, balance=10_000_000).account_id
    refs = iter(range(1000))
    import threading

    lock = threading.Lock()

    def pay() -> None:
        for _ in range(4):
            with lock:
                n = next(refs)
            records.record(payment(acct, n, 100, f"p-{n}", 10_000_000 - 100 * (n + 1)))

    results = run_threads(6, pay)
    assert [r for r in results if isinstance(r, BaseException)] == []
    got = events(sessions, acct)
    assert [seq for seq, _, _ in got] == list(range(1, 25))
    assert sorted(d["reference"] for _, _, d in got) == sorted(f"p-{n}" for n in range(24))
