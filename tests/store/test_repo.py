"""Repository behaviour on SQLite and PostgreSQL: idempotent writes, live state, exactly-once contacts."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from typing import TypeVar

import pytest
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session, sessionmaker

from domain.accounts import Account, Channel, CloseReason, ContactOutcome, Hold, HoldKind, Mode, Stage
from domain.gate import Allow, Deny, PlannedContact, Purpose, decide
from domain.plans import AgreedPlan, Instalment, PlanKind
from domain.profiles import load_profile
from store import repo
from store.repo import AttemptState, UnknownAccount

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # 10:00 in New York: inside contact hours
T = TypeVar("T")


DEBTOR_FIELDS = ("name", "phone", "timezone", "region")


def new_account(**changes: object) -> Account:
    """A valid account with a fresh id (tests share one database per backend)."""
    debtor: dict[str, object] = {
        "name": "Jane Doe",
        "phone": "+12125550142",
        "timezone": "America/New_York",
        "region": "US-NY",
    }
    account: dict[str, object] = {
        "account_id": f"T-{uuid.uuid4().hex[:12]}",
        "currency": "USD",
        "balance": 125_000,
        "fees": 3_500,
        "due_date": date(2026, 10, 1),
    }
    for key, value in changes.items():
        (debtor if key in DEBTOR_FIELDS else account)[key] = value
    return Account.model_validate({**account, "debtor": debtor})


def stored(sessions: sessionmaker[Session], **changes: object) -> Account:
    account = new_account(**changes)
    with sessions.begin() as s:
        assert repo.upsert_account(s, account, NOW)
    return account


def in_tx(sessions: sessionmaker[Session], fn: Callable[[Session], T]) -> T:
    with sessions.begin() as s:
        return fn(s)


def reserve(
    s: Session, account: Account, key: str, channel: Channel = Channel.SMS, now: datetime = NOW
) -> tuple[repo.AttemptView, bool]:
    return repo.reserve_attempt(
        s,
        dedupe_key=key,
        account_id=account.account_id,
        channel=channel,
        purpose="dunning",
        template="early_reminder",
        to_address=account.debtor.phone,
        now=now,
    )


def run_threads(count: int, target: Callable[[], T]) -> list[T | BaseException]:
    """Run ``target`` in ``count`` threads released at the same instant; results or exceptions."""
    barrier = threading.Barrier(count)
    results: list[T | BaseException] = []
    lock = threading.Lock()

    def body() -> None:
        barrier.wait()
        try:
            value: T | BaseException = target()
        except BaseException as exc:
            value = exc
        with lock:
            results.append(value)

    threads = [threading.Thread(target=body) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


# ---- accounts -------------------------------------------------------------------------------------
def test_upsert_creates_once_and_a_rerun_changes_nothing(sessions: sessionmaker[Session]) -> None:
    account = new_account()
    with sessions.begin() as s:
        assert repo.upsert_account(s, account, NOW) is True
    before = in_tx(sessions, lambda s: repo.account_snapshot(s, account.account_id))
    with sessions.begin() as s:
        assert repo.upsert_account(s, account, NOW + timedelta(hours=1)) is False
    after = in_tx(sessions, lambda s: repo.account_snapshot(s, account.account_id))
    assert before == after
    assert after is not None
    assert (after.mode, after.balance_minor, after.fees_minor, after.paid_minor) == (
        Mode.DUNNING,
        125_000,
        3_500,
        0,
    )
    assert (after.name, after.phone, after.zones) == ("Jane Doe", "+12125550142", ["America/New_York"])


def test_upsert_with_different_data_names_the_fields_and_writes_nothing(
    sessions: sessionmaker[Session],
) -> None:
    account = stored(sessions)
    before = in_tx(sessions, lambda s: repo.account_snapshot(s, account.account_id))
    changed = account.model_copy(
        update={"balance": 99_999, "debtor": account.debtor.model_copy(update={"phone": "+12125550143"})}
    )
    with pytest.raises(ValueError, match=r"with different phone, balance;") as info, sessions.begin() as s:
        repo.upsert_account(s, changed, NOW)
    assert "due_date" not in str(info.value)
    assert in_tx(sessions, lambda s: repo.account_snapshot(s, account.account_id)) == before


def test_rerunning_intake_after_payments_is_still_a_no_op(sessions: sessionmaker[Session]) -> None:
    account = stored(sessions)
    with sessions.begin() as s:
        repo.update_progress(
            s,
            account.account_id,
            stage=Stage.MIDDLE,
            dpd=40,
            balance_minor=25_000,
            paid_minor=100_000,
            now=NOW,
        )
    with sessions.begin() as s:
        assert repo.upsert_account(s, account, NOW) is False
    snap = in_tx(sessions, lambda s: repo.account_snapshot(s, account.account_id))
    assert snap is not None and (snap.balance_minor, snap.paid_minor, snap.opening_balance_minor) == (
        25_000,
        100_000,
        125_000,
    )


def test_concurrent_intake_of_one_account_creates_it_once(sessions: sessionmaker[Session]) -> None:
    account = new_account()

    def upsert() -> bool:
        with sessions.begin() as s:
            return repo.upsert_account(s, account, NOW)

    results = run_threads(8, upsert)
    assert sorted(results, key=str) == [False] * 7 + [True], results


def test_a_failed_transaction_leaves_no_trace(sessions: sessionmaker[Session]) -> None:
    account = new_account()
    with pytest.raises(RuntimeError), sessions.begin() as s:
        repo.upsert_account(s, account, NOW)
        repo.audit(s, at=NOW, account_id=account.account_id, actor="t", action="x", decision="x")
        raise RuntimeError("activity crashed before commit")
    assert in_tx(sessions, lambda s: repo.account_snapshot(s, account.account_id)) is None
    assert in_tx(sessions, lambda s: repo.audit_entries(s, account.account_id)) == []


def test_unknown_account(sessions: sessionmaker[Session]) -> None:
    assert in_tx(sessions, lambda s: repo.account_snapshot(s, "nope")) is None
    with pytest.raises(UnknownAccount), sessions.begin() as s:
        repo.set_mode(s, "nope", Mode.SETTLEMENT, now=NOW)


def test_mode_and_progress(sessions: sessionmaker[Session]) -> None:
    account = stored(sessions)
    acct = account.account_id
    with sessions.begin() as s:
        repo.set_mode(s, acct, Mode.CLOSED, close_reason=CloseReason.PAID, now=NOW)
    snap = in_tx(sessions, lambda s: repo.account_snapshot(s, acct))
    assert snap is not None and (snap.mode, snap.close_reason) == (Mode.CLOSED, "paid")
    with sessions.begin() as s:
        repo.set_mode(s, acct, "dunning", close_reason="paid", now=NOW)  # reopened: no close reason
        repo.update_progress(s, acct, stage="early", dpd=3, balance_minor=None, paid_minor=None, now=NOW)
    snap = in_tx(sessions, lambda s: repo.account_snapshot(s, acct))
    assert snap is not None
    assert (snap.mode, snap.close_reason, snap.stage, snap.dpd, snap.balance_minor) == (
        Mode.DUNNING,
        None,
        Stage.EARLY,
        3,
        125_000,
    )
    with pytest.raises(ValueError, match="mode"), sessions.begin() as s:
        repo.set_mode(s, acct, "paused", now=NOW)


def test_datetimes_are_stored_as_utc_and_come_back_aware(sessions: sessionmaker[Session]) -> None:
    account = stored(sessions)
    shanghai = datetime(2026, 11, 23, 9, 30, tzinfo=timezone(timedelta(hours=8)))
    with sessions.begin() as s:
        repo.audit(s, at=shanghai, account_id=account.account_id, actor="t", action="a", decision="d")
    (entry,) = in_tx(sessions, lambda s: repo.audit_entries(s, account.account_id))
    assert entry.at == shanghai and entry.at.utcoffset() == timedelta(0)
    with pytest.raises(StatementError, match="naive") as info, sessions.begin() as s:
        repo.audit(
            s,
            at=datetime(2026, 11, 23, 9, 30),
            account_id=account.account_id,
            actor="t",
            action="a",
            decision="d",
        )
        s.flush()
    assert isinstance(info.value.orig, ValueError)


def test_audit_entries_keep_order_and_details(sessions: sessionmaker[Session]) -> None:
    account = stored(sessions)
    with sessions.begin() as s:
        repo.audit(
            s,
            at=NOW + timedelta(minutes=1),
            account_id=account.account_id,
            actor="wf",
            action="b",
            decision="b",
        )
        repo.audit(
            s,
            at=NOW,
            account_id=account.account_id,
            actor="wf",
            action="a",
            decision="deferred",
            rule="quiet_hours",
            details={"until": NOW, "channel": Channel.SMS, "名": "王小明"},
        )
    entries = in_tx(sessions, lambda s: repo.audit_entries(s, account.account_id))
    assert [e.action for e in entries] == ["a", "b"]
    assert entries[0].rule == "quiet_hours"
    assert entries[0].details == {"until": str(NOW), "channel": "sms", "名": "王小明"}


# ---- live gate state ------------------------------------------------------------------------------
def test_live_gate_inputs_reflect_holds_contact_status_and_counted_attempts(
    sessions: sessionmaker[Session],
) -> None:
    account = stored(sessions, phone="+19075550101", timezone=None, region="US-AK")
    acct = account.account_id
    with sessions.begin() as s:
        repo.add_hold(s, acct, Hold(kind=HoldKind.DISPUTE, reason="letter", since=NOW - timedelta(days=2)))
        repo.add_hold(s, acct, Hold(kind=HoldKind.PAUSE, reason="ops", since=NOW - timedelta(days=2)))
        repo.lift_hold(s, acct, HoldKind.PAUSE, NOW - timedelta(days=1))
        repo.set_contact_status(s, acct, Channel.SMS, "opted_out", NOW)
        repo.set_contact_status(s, acct, Channel.VOICE, "unreachable", NOW)
        for i, (state, outcome) in enumerate(
            [
                ("accepted", ContactOutcome.DELIVERED),
                ("accepted", None),
                ("indeterminate", None),
                ("denied", ContactOutcome.DENIED),
                ("rejected", ContactOutcome.UNDELIVERABLE),
                ("retryable", None),
                ("reserved", None),
            ]
        ):
            reserve(s, account, f"{acct}-{i}", now=NOW - timedelta(hours=i + 1))
            repo.mark_attempt(
                s, f"{acct}-{i}", state=state, outcome=outcome, now=NOW - timedelta(hours=i + 1)
            )
        reserve(s, account, f"{acct}-old", channel=Channel.VOICE, now=NOW - timedelta(days=9))
        repo.mark_attempt(
            s,
            f"{acct}-old",
            state="accepted",
            outcome=ContactOutcome.CONVERSATION,
            now=NOW - timedelta(days=9),
        )

    state, ledger = in_tx(sessions, lambda s: repo.live_gate_inputs(s, acct, since=NOW - timedelta(days=8)))
    assert state.mode == Mode.DUNNING
    assert [h.kind for h in state.holds] == [HoldKind.DISPUTE]
    assert (state.opted_out, state.unreachable) == ([Channel.SMS], [Channel.VOICE])
    assert sorted(state.zones) == [
        "America/Adak",
        "America/Anchorage",
    ]  # no time zone: every zone of the number
    assert state.region == "US-AK"
    assert [(e.channel, e.outcome) for e in ledger] == [
        (Channel.SMS, ContactOutcome.INDETERMINATE),
        (Channel.SMS, ContactOutcome.SENT),
        (Channel.SMS, ContactOutcome.DELIVERED),
    ]
    assert all(e.at.tzinfo is not None for e in ledger)


def test_a_settlement_recorded_a_moment_ago_stops_a_planned_dunning_text(
    sessions: sessionmaker[Session],
) -> None:
    """The reason the gate runs against live state: the workflow planned, then the plan was agreed."""
    account = stored(sessions)
    profile = load_profile("US")
    contact = PlannedContact(channel=Channel.SMS, purpose=Purpose.DUNNING, template="early_reminder", at=NOW)
    state, ledger = in_tx(
        sessions, lambda s: repo.live_gate_inputs(s, account.account_id, since=NOW - timedelta(days=8))
    )
    assert isinstance(decide(contact, state, ledger, NOW, profile), Allow)
    with sessions.begin() as s:
        repo.set_mode(s, account.account_id, Mode.SETTLEMENT, now=NOW)
    state, ledger = in_tx(
        sessions, lambda s: repo.live_gate_inputs(s, account.account_id, since=NOW - timedelta(days=8))
    )
    verdict = decide(contact, state, ledger, NOW, profile)
    assert isinstance(verdict, Deny) and verdict.rule == "settlement.no_dunning"


def test_caps_count_an_attempt_when_it_went_out_not_when_it_was_first_planned(
    sessions: sessionmaker[Session],
) -> None:
    account = stored(sessions)
    acct = account.account_id
    planned = NOW - timedelta(days=2)
    with sessions.begin() as s:
        reserve(s, account, f"{acct}-deferred", now=planned)
        repo.mark_attempt(s, f"{acct}-deferred", state="retryable", now=planned)  # the gate deferred it
    with sessions.begin() as s:
        assert reserve(s, account, f"{acct}-deferred", now=NOW)[1]
        repo.mark_attempt(s, f"{acct}-deferred", state="accepted", provider_sid=f"SM{acct}", now=NOW)
        reserve(s, account, f"{acct}-crashed", now=NOW - timedelta(hours=3))  # the try died mid-call
    with sessions.begin() as s:
        repo.mark_attempt(s, f"{acct}-crashed", state="indeterminate", now=NOW)  # the retry finds out
    _, ledger = in_tx(sessions, lambda s: repo.live_gate_inputs(s, acct, since=NOW - timedelta(days=1)))
    assert [(e.at, e.outcome) for e in ledger] == [
        (NOW - timedelta(hours=3), ContactOutcome.INDETERMINATE),
        (NOW, ContactOutcome.SENT),
    ]


def test_expired_holds_are_not_active_when_now_is_given(sessions: sessionmaker[Session]) -> None:
    account = stored(sessions)
    with sessions.begin() as s:
        repo.add_hold(
            s, account.account_id, Hold(kind=HoldKind.PAUSE, since=NOW - timedelta(days=3), until=NOW)
        )
    state, _ = in_tx(sessions, lambda s: repo.live_gate_inputs(s, account.account_id, NOW, now=NOW))
    assert state.holds == []
    state, _ = in_tx(sessions, lambda s: repo.live_gate_inputs(s, account.account_id, NOW))
    assert [h.kind for h in state.holds] == [HoldKind.PAUSE]


def test_holds_do_not_stack_and_lifting_keeps_history(sessions: sessionmaker[Session]) -> None:
    account = stored(sessions)
    acct = account.account_id
    pause = Hold(kind=HoldKind.PAUSE, reason="debtor asked", since=NOW)
    with sessions.begin() as s:
        assert repo.add_hold(s, acct, pause) is True
        assert repo.add_hold(s, acct, pause) is False  # a retried write
        assert repo.add_hold(s, acct, Hold(kind=HoldKind.CEASE, since=NOW, channel=Channel.VOICE)) is True
    snap = in_tx(sessions, lambda s: repo.account_snapshot(s, acct))
    assert snap is not None and [(h.kind, h.channel) for h in snap.holds] == [
        (HoldKind.PAUSE, None),
        (HoldKind.CEASE, Channel.VOICE),
    ]
    with sessions.begin() as s:
        assert repo.lift_hold(s, acct, HoldKind.PAUSE, NOW) is True
        assert repo.lift_hold(s, acct, "pause", NOW) is False
    with sessions.begin() as s:
        assert repo.add_hold(s, acct, pause) is True  # a new pause after the lift
    snap = in_tx(sessions, lambda s: repo.account_snapshot(s, acct))
    assert snap is not None and sorted(h.kind for h in snap.holds) == [HoldKind.CEASE, HoldKind.PAUSE]


def test_opt_out_is_permanent(sessions: sessionmaker[Session]) -> None:
    account = stored(sessions)
    acct = account.account_id
    with sessions.begin() as s:
        assert repo.set_contact_status(s, acct, Channel.SMS, "opted_out", NOW) is True
        assert repo.set_contact_status(s, acct, Channel.SMS, "active", NOW) is False
        assert repo.set_contact_status(s, acct, "sms", "unreachable", NOW) is False
    snap = in_tx(sessions, lambda s: repo.account_snapshot(s, acct))
    assert snap is not None and (snap.opted_out, snap.unreachable) == ([Channel.SMS], [])


def test_a_new_number_clears_unreachable_but_not_an_opt_out(sessions: sessionmaker[Session]) -> None:
    account = stored(sessions)
    acct = account.account_id
    with sessions.begin() as s:
        repo.set_contact_status(s, acct, Channel.SMS, "opted_out", NOW)
        repo.set_contact_status(s, acct, Channel.VOICE, "unreachable", NOW)
    with sessions.begin() as s:
        assert repo.update_phone(s, acct, "+1 (312) 555-0150", NOW) is True
        assert repo.update_phone(s, acct, "+13125550150", NOW) is False
    snap = in_tx(sessions, lambda s: repo.account_snapshot(s, acct))
    assert snap is not None
    assert (snap.phone, snap.opted_out, snap.unreachable) == ("+13125550150", [Channel.SMS], [])
    assert snap.zones == ["America/New_York"]  # the stored time zone still wins over the new area code
    with pytest.raises(ValueError, match=r"E\.164"), sessions.begin() as s:
        repo.update_phone(s, acct, "3125550150", NOW)


# ---- contact attempts -----------------------------------------------------------------------------
def test_reserving_twice_returns_the_same_attempt_and_claims_it_once(sessions: sessionmaker[Session]) -> None:
    account = stored(sessions)
    key = f"{account.account_id}:dpd1:sms"
    first, claimed = in_tx(sessions, lambda s: reserve(s, account, key))
    again, claimed_again = in_tx(sessions, lambda s: reserve(s, account, key, now=NOW + timedelta(minutes=5)))
    assert (claimed, claimed_again) == (True, False)
    assert first.state == again.state == AttemptState.RESERVED and again.created_at == NOW
    assert len(in_tx(sessions, lambda s: repo.contact_attempts(s, account.account_id))) == 1


def test_concurrent_reservations_yield_one_row_and_one_owner(sessions: sessionmaker[Session]) -> None:
    account = stored(sessions)
    key = f"{account.account_id}:race"

    def attempt() -> bool:
        with sessions.begin() as s:
            return reserve(s, account, key)[1]

    results = run_threads(12, attempt)
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert sorted(results, key=str) == [False] * 11 + [True]
    attempts = in_tx(sessions, lambda s: repo.contact_attempts(s, account.account_id))
    assert [a.dedupe_key for a in attempts] == [key]


def test_a_retryable_attempt_is_rearmed_by_exactly_one_retry(sessions: sessionmaker[Session]) -> None:
    account = stored(sessions)
    key = f"{account.account_id}:503"
    with sessions.begin() as s:
        reserve(s, account, key)
        repo.mark_attempt(s, key, state="retryable", error_code=20503, now=NOW)
    view, claimed = in_tx(sessions, lambda s: reserve(s, account, key))
    assert claimed and view.state == AttemptState.RESERVED
    # that retry now dies mid-call: the next one must see "reserved", not be allowed to send again
    view, claimed = in_tx(sessions, lambda s: reserve(s, account, key))
    assert not claimed and view.state == AttemptState.RESERVED


def test_a_final_attempt_is_never_reopened(sessions: sessionmaker[Session]) -> None:
    account = stored(sessions)
    key = f"{account.account_id}:final"
    with sessions.begin() as s:
        reserve(s, account, key)
        repo.mark_attempt(
            s,
            key,
            state="accepted",
            provider_sid="SM" + "a" * 32,
            provider_status="queued",
            outcome="sent",
            now=NOW,
        )
    with sessions.begin() as s:
        view = repo.mark_attempt(s, key, state=AttemptState.RETRYABLE, now=NOW)  # a stale try reporting late
    assert view.state == AttemptState.ACCEPTED and view.provider_sid == "SM" + "a" * 32
    view, claimed = in_tx(sessions, lambda s: reserve(s, account, key))
    assert not claimed and view.state == AttemptState.ACCEPTED
    with pytest.raises(LookupError), sessions.begin() as s:
        repo.mark_attempt(s, "no-such-key", state="denied", now=NOW)


def test_provider_status_updates_ignore_out_of_order_webhooks(sessions: sessionmaker[Session]) -> None:
    account = stored(sessions)
    key, sid = f"{account.account_id}:hook", "SM" + uuid.uuid4().hex
    with sessions.begin() as s:
        reserve(s, account, key)
        repo.mark_attempt(
            s, key, state="accepted", provider_sid=sid, provider_status="queued", outcome="sent", now=NOW
        )

    def status(name: str, outcome: ContactOutcome | None, code: int | None = None) -> repo.AttemptView | None:
        with sessions.begin() as s:
            return repo.update_attempt_status_by_sid(s, sid, name, outcome, code, NOW)

    assert status("sent", ContactOutcome.SENT).provider_status == "sent"  # type: ignore[union-attr]
    assert status("delivered", ContactOutcome.DELIVERED).outcome == ContactOutcome.DELIVERED  # type: ignore[union-attr]
    late = status("sent", ContactOutcome.SENT)  # arrives after "delivered"
    assert late is not None and (late.provider_status, late.outcome) == (
        "delivered",
        ContactOutcome.DELIVERED,
    )
    conflicting = status("undelivered", ContactOutcome.UNDELIVERABLE, 30003)
    assert conflicting is not None and conflicting.outcome == ContactOutcome.DELIVERED
    assert status("read", ContactOutcome.DELIVERED).provider_status == "read"  # type: ignore[union-attr]
    assert in_tx(sessions, lambda s: repo.attempt_by_sid(s, sid)).outcome == ContactOutcome.DELIVERED  # type: ignore[union-attr]
    assert (
        in_tx(sessions, lambda s: repo.update_attempt_status_by_sid(s, "SMunknown", "sent", None, None, NOW))
        is None
    )
    assert in_tx(sessions, lambda s: repo.attempt_by_sid(s, "SMunknown")) is None


def test_call_outcome_is_refined_but_never_reverts_to_sent(sessions: sessionmaker[Session]) -> None:
    account = stored(sessions)
    key, sid = f"{account.account_id}:call", "CA" + uuid.uuid4().hex
    with sessions.begin() as s:
        reserve(s, account, key, channel=Channel.VOICE)
        repo.mark_attempt(
            s, key, state="accepted", provider_sid=sid, provider_status="queued", outcome="sent", now=NOW
        )
        repo.update_attempt_status_by_sid(s, sid, "completed", ContactOutcome.CONVERSATION, None, NOW)
        # answering-machine detection reports after the call ended: same status, better outcome
        view = repo.update_attempt_status_by_sid(s, sid, "completed", ContactOutcome.VOICEMAIL, None, NOW)
        assert view is not None and view.outcome == ContactOutcome.VOICEMAIL
        view = repo.update_attempt_status_by_sid(s, sid, "completed", ContactOutcome.SENT, None, NOW)
        assert view is not None and view.outcome == ContactOutcome.VOICEMAIL


# ---- plans and payments ---------------------------------------------------------------------------
def a_plan(account: Account) -> AgreedPlan:
    return AgreedPlan(
        plan_id=f"P-{uuid.uuid4().hex[:10]}",
        kind=PlanKind.REINSTALMENT,
        currency="USD",
        total=125_000,
        instalments=[
            Instalment(seq=1, due_date=date(2026, 12, 1), amount=41_667),
            Instalment(seq=2, due_date=date(2026, 12, 31), amount=41_667),
            Instalment(seq=3, due_date=date(2027, 1, 30), amount=41_666),
        ],
        agreed_at=NOW,
        proposed_by="agent",
    )


def test_plans_are_saved_once_and_track_their_instalments(sessions: sessionmaker[Session]) -> None:
    account = stored(sessions)
    acct = account.account_id
    plan = a_plan(account)
    with sessions.begin() as s:
        assert repo.save_plan(s, acct, plan) is True
        assert repo.save_plan(s, acct, plan) is False
    assert in_tx(sessions, lambda s: repo.active_plan_id(s, acct)) == plan.plan_id
    with sessions.begin() as s:
        repo.mark_instalment(s, plan.plan_id, 1, paid_minor=41_667, status="paid")
        repo.mark_instalment(
            s, plan.plan_id, 1, paid_minor=0, status="missed"
        )  # stale: cannot undo a payment
        repo.mark_instalment(s, plan.plan_id, 2, paid_minor=0, status="missed")
        repo.mark_instalment(s, plan.plan_id, 2, paid_minor=41_667, status="paid")  # paid late
    schedule = in_tx(sessions, lambda s: repo.plan_instalments(s, plan.plan_id))
    assert [(i.seq, i.amount, paid, str(st)) for i, paid, st in schedule] == [
        (1, 41_667, 41_667, "paid"),
        (2, 41_667, 41_667, "paid"),
        (3, 41_666, 0, "due"),
    ]
    with sessions.begin() as s:
        repo.set_plan_status(s, plan.plan_id, "broken", NOW)
    assert in_tx(sessions, lambda s: repo.active_plan_id(s, acct)) is None
    other = stored(sessions)
    with pytest.raises(ValueError, match="belongs to account"), sessions.begin() as s:
        repo.save_plan(s, other.account_id, plan)
    with pytest.raises(ValueError, match="currency"), sessions.begin() as s:
        repo.save_plan(s, acct, a_plan(account).model_copy(update={"currency": "CNY"}))


def test_a_payment_reference_counts_once(sessions: sessionmaker[Session]) -> None:
    account = stored(sessions)
    ref = f"PAY-{uuid.uuid4().hex[:8]}"

    def pay(amount: int = 12_050, currency: str = "USD", reference: str = ref) -> bool:
        with sessions.begin() as s:
            return repo.record_payment(
                s,
                account_id=account.account_id,
                amount_minor=amount,
                currency=currency,
                reference=reference,
                received_at=NOW,
                source="lender",
            )

    assert pay() is True
    assert pay() is False
    with pytest.raises(ValueError, match="different payment"):
        pay(amount=99)
    with pytest.raises(ValueError, match="currency"):
        pay(currency="CNY", reference=ref + "-2")
    with pytest.raises(ValueError, match="positive"):
        pay(amount=0, reference=ref + "-3")


def test_concurrent_deliveries_of_one_payment_store_it_once(sessions: sessionmaker[Session]) -> None:
    account = stored(sessions)
    ref = f"PAY-{uuid.uuid4().hex[:8]}"

    def pay() -> bool:
        with sessions.begin() as s:
            return repo.record_payment(
                s,
                account_id=account.account_id,
                amount_minor=500,
                currency="usd",
                reference=ref,
                received_at=NOW,
                source="webhook",
            )

    results = run_threads(6, pay)
    assert sorted(results, key=str) == [False] * 5 + [True], results


def test_a_retried_audit_write_leaves_one_line(sessions: sessionmaker[Session]) -> None:
    account = stored(sessions)
    line = {
        "at": NOW,
        "account_id": account.account_id,
        "actor": "send_contact",
        "action": "contact",
        "decision": "sent",
        "details": {"key": "k1", "attempt": "1"},
    }
    with sessions.begin() as s:
        assert repo.audit(s, **line) is True  # type: ignore[arg-type]
    with sessions.begin() as s:
        assert repo.audit(s, **line) is False  # type: ignore[arg-type]
        assert repo.audit(s, **{**line, "details": {"key": "k1", "attempt": "2"}}) is True  # type: ignore[arg-type]
    assert len(in_tx(sessions, lambda s: repo.audit_entries(s, account.account_id))) == 2


def test_a_batch_stored_at_once_is_the_same_as_account_by_account(sessions: sessionmaker[Session]) -> None:
    """The intake's fast path writes exactly what the one-at-a-time path writes (and the live gate reads)."""
    from domain.accounts import EmergencyContact

    now = datetime(2026, 11, 2, 12, tzinfo=UTC)
    batch = [new_account(), new_account(), new_account()]
    batch[1] = batch[1].model_copy(
        update={"emergency": EmergencyContact(name="Kim Doe", phone="+12125550199")}
    )
    twins = [a.model_copy(update={"account_id": f"{a.account_id}-twin"}) for a in batch]
    assert in_tx(sessions, lambda s: repo.store_accounts(s, batch, now)) == 3
    for account in twins:
        in_tx(sessions, lambda s, a=account: repo.upsert_account(s, a, now))

    def same(a: Account, b: Account) -> None:
        fast = in_tx(sessions, lambda s: repo.account_snapshot(s, a.account_id))
        slow = in_tx(sessions, lambda s: repo.account_snapshot(s, b.account_id))
        assert fast is not None and slow is not None
        assert fast.model_dump(exclude={"account_id"}) == slow.model_dump(exclude={"account_id"})

    for a, b in zip(batch, twins, strict=True):
        same(a, b)
    assert (
        in_tx(sessions, lambda s: repo.account_snapshot(s, batch[1].account_id)).emergency_name == "Kim Doe"
    )

    # the same file again: nothing new; one row that differs: refused by name, nothing written
    assert in_tx(sessions, lambda s: repo.store_accounts(s, batch, now)) == 0
    changed = batch[2].model_copy(update={"balance": batch[2].balance + 1})
    fresh = new_account()
    with pytest.raises(ValueError, match="balance"):
        in_tx(sessions, lambda s: repo.store_accounts(s, [fresh, changed], now))
    assert in_tx(sessions, lambda s: repo.account_snapshot(s, fresh.account_id)) is None
    with pytest.raises(ValueError, match="twice"):
        in_tx(sessions, lambda s: repo.store_accounts(s, [fresh, fresh], now))
