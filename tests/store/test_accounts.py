"""Accounts and intake on SQLite and PostgreSQL: idempotent, concurrency-safe intake (one by one and
in batches), the live snapshot, mode and progress, a new number."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from domain.accounts import Account, Channel, CloseReason, Mode, Stage
from store.accounts import (
    account_snapshot,
    set_mode,
    store_accounts,
    update_phone,
    update_progress,
    upsert_account,
)
from store.audit import audit, audit_entries
from store.contacts import set_contact_status
from store.rows import UnknownAccount
from tests.store.conftest import NOW, in_tx, new_account, run_threads, stored


def test_upsert_creates_once_and_a_rerun_changes_nothing(sessions: sessionmaker[Session]) -> None:
    account = new_account()
    with sessions.begin() as s:
        assert upsert_account(s, account, NOW) is True
    before = in_tx(sessions, lambda s: account_snapshot(s, account.account_id))
    with sessions.begin() as s:
        assert upsert_account(s, account, NOW + timedelta(hours=1)) is False
    after = in_tx(sessions, lambda s: account_snapshot(s, account.account_id))
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
    before = in_tx(sessions, lambda s: account_snapshot(s, account.account_id))
    changed = account.model_copy(
        update={"balance": 99_999, "debtor": account.debtor.model_copy(update={"phone": "+12125550143"})}
    )
    with pytest.raises(ValueError, match=r"with different phone, balance;") as info, sessions.begin() as s:
        upsert_account(s, changed, NOW)
    assert "due_date" not in str(info.value)
    assert in_tx(sessions, lambda s: account_snapshot(s, account.account_id)) == before


def test_rerunning_intake_after_payments_is_still_a_no_op(sessions: sessionmaker[Session]) -> None:
    account = stored(sessions)
    with sessions.begin() as s:
        update_progress(
            s,
            account.account_id,
            stage=Stage.MIDDLE,
            dpd=40,
            balance_minor=25_000,
            paid_minor=100_000,
            now=NOW,
        )
    with sessions.begin() as s:
        assert upsert_account(s, account, NOW) is False
    snap = in_tx(sessions, lambda s: account_snapshot(s, account.account_id))
    assert snap is not None and (snap.balance_minor, snap.paid_minor, snap.opening_balance_minor) == (
        25_000,
        100_000,
        125_000,
    )


def test_concurrent_intake_of_one_account_creates_it_once(sessions: sessionmaker[Session]) -> None:
    account = new_account()

    def upsert() -> bool:
        with sessions.begin() as s:
            return upsert_account(s, account, NOW)

    results = run_threads(8, upsert)
    assert sorted(results, key=str) == [False] * 7 + [True], results


def test_a_failed_transaction_leaves_no_trace(sessions: sessionmaker[Session]) -> None:
    account = new_account()
    with pytest.raises(RuntimeError), sessions.begin() as s:
        upsert_account(s, account, NOW)
        audit(s, at=NOW, clock="policy", account_id=account.account_id, actor="t", action="x", decision="x")
        raise RuntimeError("activity crashed before commit")
    assert in_tx(sessions, lambda s: account_snapshot(s, account.account_id)) is None
    assert in_tx(sessions, lambda s: audit_entries(s, account.account_id)) == []


def test_unknown_account(sessions: sessionmaker[Session]) -> None:
    assert in_tx(sessions, lambda s: account_snapshot(s, "nope")) is None
    with pytest.raises(UnknownAccount), sessions.begin() as s:
        set_mode(s, "nope", Mode.SETTLEMENT, now=NOW)


def test_mode_and_progress(sessions: sessionmaker[Session]) -> None:
    account = stored(sessions)
    acct = account.account_id
    with sessions.begin() as s:
        set_mode(s, acct, Mode.CLOSED, close_reason=CloseReason.PAID, now=NOW)
    snap = in_tx(sessions, lambda s: account_snapshot(s, acct))
    assert snap is not None and (snap.mode, snap.close_reason) == (Mode.CLOSED, "paid")
    with sessions.begin() as s:
        set_mode(s, acct, "dunning", close_reason="paid", now=NOW)  # reopened: no close reason
        update_progress(s, acct, stage="early", dpd=3, balance_minor=None, paid_minor=None, now=NOW)
    snap = in_tx(sessions, lambda s: account_snapshot(s, acct))
    assert snap is not None
    assert (snap.mode, snap.close_reason, snap.stage, snap.dpd, snap.balance_minor) == (
        Mode.DUNNING,
        None,
        Stage.EARLY,
        3,
        125_000,
    )
    with pytest.raises(ValueError, match="mode"), sessions.begin() as s:
        set_mode(s, acct, "paused", now=NOW)


def test_a_new_number_clears_unreachable_but_not_an_opt_out(sessions: sessionmaker[Session]) -> None:
    account = stored(sessions)
    acct = account.account_id
    with sessions.begin() as s:
        set_contact_status(s, acct, Channel.SMS, "opted_out", NOW)
        set_contact_status(s, acct, Channel.VOICE, "unreachable", NOW)
    with sessions.begin() as s:
        assert update_phone(s, acct, "+1 (312) 555-0150", NOW) is True
        assert update_phone(s, acct, "+13125550150", NOW) is False
    snap = in_tx(sessions, lambda s: account_snapshot(s, acct))
    assert snap is not None
    assert (snap.phone, snap.opted_out, snap.unreachable) == ("+13125550150", [Channel.SMS], [])
    # the stored zone and the new number's region disagree: both count (Reg F, conflicting location)
    assert snap.zones == ["America/New_York", "America/Chicago"]
    with pytest.raises(ValueError, match=r"E\.164"), sessions.begin() as s:
        update_phone(s, acct, "3125550150", NOW)


def test_a_new_number_with_no_region_needs_a_zone_on_file(sessions: sessionmaker[Session]) -> None:
    """A debtor placed only by their area code cannot move to a toll-free number: nothing would say
    where they are, and contact hours are local hours."""
    account = stored(sessions, phone="+13125550151", timezone=None)
    with pytest.raises(ValueError, match="timezone is required"), sessions.begin() as s:
        update_phone(s, account.account_id, "+18005550151", NOW)
    snap = in_tx(sessions, lambda s: account_snapshot(s, account.account_id))
    assert snap is not None and (snap.phone, snap.zones) == ("+13125550151", ["America/Chicago"])


def test_a_batch_stored_at_once_is_the_same_as_account_by_account(sessions: sessionmaker[Session]) -> None:
    """The intake's fast path writes exactly what the one-at-a-time path writes (and the live gate reads)."""
    from domain.accounts import EmergencyContact

    now = datetime(2026, 11, 2, 12, tzinfo=UTC)
    batch = [new_account(), new_account(), new_account()]
    batch[1] = batch[1].model_copy(
        update={"emergency": EmergencyContact(name="Kim Doe", phone="+12125550199")}
    )
    twins = [a.model_copy(update={"account_id": f"{a.account_id}-twin"}) for a in batch]
    assert in_tx(sessions, lambda s: store_accounts(s, batch, now)) == 3
    for account in twins:
        in_tx(sessions, lambda s, a=account: upsert_account(s, a, now))

    def same(a: Account, b: Account) -> None:
        fast = in_tx(sessions, lambda s: account_snapshot(s, a.account_id))
        slow = in_tx(sessions, lambda s: account_snapshot(s, b.account_id))
        assert fast is not None and slow is not None
        assert fast.model_dump(exclude={"account_id"}) == slow.model_dump(exclude={"account_id"})

    for a, b in zip(batch, twins, strict=True):
        same(a, b)
    assert in_tx(sessions, lambda s: account_snapshot(s, batch[1].account_id)).emergency_name == "Kim Doe"

    # the same file again: nothing new; one row that differs: refused by name, nothing written
    assert in_tx(sessions, lambda s: store_accounts(s, batch, now)) == 0
    changed = batch[2].model_copy(update={"balance": batch[2].balance + 1})
    fresh = new_account()
    with pytest.raises(ValueError, match="balance"):
        in_tx(sessions, lambda s: store_accounts(s, [fresh, changed], now))
    assert in_tx(sessions, lambda s: account_snapshot(s, fresh.account_id)) is None
    with pytest.raises(ValueError, match="twice"):
        in_tx(sessions, lambda s: store_accounts(s, [fresh, fresh], now))
