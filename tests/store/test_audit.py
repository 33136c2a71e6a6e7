"""The audit log on SQLite and PostgreSQL: aware UTC times, order and details kept, a retried write
leaves one line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session, sessionmaker

from domain.accounts import Channel
from store.audit import audit, audit_entries
from tests.store.conftest import NOW, in_tx, stored


def test_datetimes_are_stored_as_utc_and_come_back_aware(sessions: sessionmaker[Session]) -> None:
    account = stored(sessions)
    shanghai = datetime(2026, 11, 23, 9, 30, tzinfo=timezone(timedelta(hours=8)))
    with sessions.begin() as s:
        audit(
            s, at=shanghai, clock="policy", account_id=account.account_id, actor="t", action="a", decision="d"
        )
    (entry,) = in_tx(sessions, lambda s: audit_entries(s, account.account_id))
    assert entry.at == shanghai and entry.at.utcoffset() == timedelta(0)
    with pytest.raises(StatementError, match="naive") as info, sessions.begin() as s:
        audit(
            s,
            at=datetime(2026, 11, 23, 9, 30),
            clock="policy",
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
        audit(
            s,
            at=NOW + timedelta(minutes=1),
            clock="policy",
            account_id=account.account_id,
            actor="wf",
            action="b",
            decision="b",
        )
        audit(
            s,
            at=NOW,
            clock="policy",
            account_id=account.account_id,
            actor="wf",
            action="a",
            decision="deferred",
            rule="quiet_hours",
            details={"until": NOW, "channel": Channel.SMS, "名": "王小明"},
        )
    entries = in_tx(sessions, lambda s: audit_entries(s, account.account_id))
    assert [e.action for e in entries] == ["a", "b"]
    assert entries[0].rule == "quiet_hours"
    assert entries[0].details == {"until": str(NOW), "channel": "sms", "名": "王小明"}


def test_a_retried_audit_write_leaves_one_line(sessions: sessionmaker[Session]) -> None:
    account = stored(sessions)
    line = {
        "at": NOW,
        "clock": "policy",
        "account_id": account.account_id,
        "actor": "send_contact",
        "action": "contact",
        "decision": "sent",
        "details": {"key": "k1", "attempt": "1"},
    }
    with sessions.begin() as s:
        assert audit(s, **line) is True  # type: ignore[arg-type]
    with sessions.begin() as s:
        assert audit(s, **line) is False  # type: ignore[arg-type]
        assert audit(s, **{**line, "details": {"key": "k1", "attempt": "2"}}) is True  # type: ignore[arg-type]
    assert len(in_tx(sessions, lambda s: audit_entries(s, account.account_id))) == 2


def test_a_rule_list_longer_than_its_column_is_written_whole_in_the_details(
    sessions: sessionmaker[Session],
) -> None:
    """A plan that breaks many rules at once was refused with a 500 (the fuzzer's 15-rule deferral): the
    joined names did not fit the rule column, and the refusal was never audited."""
    account = stored(sessions)
    rules = ",".join(f"plan.rule_number_{i}" for i in range(15))
    line = {
        "at": NOW,
        "clock": "policy",
        "account_id": account.account_id,
        "actor": "agent",
        "action": "plan_proposed",
        "decision": "rejected",
        "rule": rules,
        "details": {"kind": "deferral"},
    }
    with sessions.begin() as s:
        assert audit(s, **line) is True  # type: ignore[arg-type]
    with sessions.begin() as s:
        assert audit(s, **line) is False  # type: ignore[arg-type]  # a retry still writes it once
    (entry,) = in_tx(sessions, lambda s: audit_entries(s, account.account_id))
    assert entry.details == {"kind": "deferral", "rules": rules}
    assert entry.rule is not None and entry.rule.startswith("plan.rule_number_0,") and len(entry.rule) == 128


def test_one_clock_policy_time_first_and_the_wall_time_beside(sessions: sessionmaker[Session]) -> None:
    """An account on a scaled clock (two seconds a day) and one in real time, each written to from
    the wall clock (the API) and from policy time (a workflow's activity)."""
    from domain.clock import PolicyClock
    from store.audit import account_clock, store_clock

    scaled, real = stored(sessions), stored(sessions)
    epoch = datetime.now(UTC) - timedelta(seconds=10)
    with sessions.begin() as s:
        store_clock(s, scaled.account_id, PolicyClock(epoch=epoch, day_seconds=2))
        store_clock(s, real.account_id, PolicyClock(epoch=epoch))
    wall = epoch + timedelta(seconds=4)
    with sessions.begin() as s:
        assert account_clock(s, real.account_id) is None
        for account in (scaled, real):
            audit(
                s, at=wall, clock="wall", account_id=account.account_id, actor="api", action="a", decision="d"
            )
        audit(s, at=NOW, clock="policy", account_id=real.account_id, actor="wf", action="b", decision="d")
    [on_scaled] = in_tx(sessions, lambda s: audit_entries(s, scaled.account_id))
    assert (on_scaled.at, on_scaled.wall_at) == (epoch + timedelta(days=2), wall)  # 4 s = 2 policy days
    workflow, api = in_tx(sessions, lambda s: audit_entries(s, real.account_id))  # NOW is earlier
    assert (api.at, api.wall_at) == (wall, None)  # real time: one time, shown once
    assert workflow.at == NOW and workflow.wall_at is not None  # NOW is a fixed test date, not today
