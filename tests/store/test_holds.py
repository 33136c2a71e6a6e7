"""Holds on SQLite and PostgreSQL: they expire, do not stack, and lifting keeps their history."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from domain.accounts import Channel, Hold, HoldKind
from store.accounts import account_snapshot
from store.contacts import live_gate_inputs
from store.holds import add_hold, lift_hold
from tests.store.conftest import NOW, in_tx, stored


def test_expired_holds_are_not_active_when_now_is_given(sessions: sessionmaker[Session]) -> None:
    account = stored(sessions)
    with sessions.begin() as s:
        add_hold(s, account.account_id, Hold(kind=HoldKind.PAUSE, since=NOW - timedelta(days=3), until=NOW))
    state, _ = in_tx(sessions, lambda s: live_gate_inputs(s, account.account_id, NOW, now=NOW))
    assert state.holds == []
    state, _ = in_tx(sessions, lambda s: live_gate_inputs(s, account.account_id, NOW))
    assert [h.kind for h in state.holds] == [HoldKind.PAUSE]


def test_holds_do_not_stack_and_lifting_keeps_history(sessions: sessionmaker[Session]) -> None:
    account = stored(sessions)
    acct = account.account_id
    pause = Hold(kind=HoldKind.PAUSE, reason="debtor asked", since=NOW)
    with sessions.begin() as s:
        assert add_hold(s, acct, pause) is True
        assert add_hold(s, acct, pause) is False  # a retried write
        assert add_hold(s, acct, Hold(kind=HoldKind.CEASE, since=NOW, channel=Channel.VOICE)) is True
    snap = in_tx(sessions, lambda s: account_snapshot(s, acct))
    assert snap is not None and [(h.kind, h.channel) for h in snap.holds] == [
        (HoldKind.PAUSE, None),
        (HoldKind.CEASE, Channel.VOICE),
    ]
    with sessions.begin() as s:
        assert lift_hold(s, acct, HoldKind.PAUSE, NOW) is True
        assert lift_hold(s, acct, "pause", NOW) is False
    with sessions.begin() as s:
        assert add_hold(s, acct, pause) is True  # a new pause after the lift
    snap = in_tx(sessions, lambda s: account_snapshot(s, acct))
    assert snap is not None and sorted(h.kind for h in snap.holds) == [HoldKind.CEASE, HoldKind.PAUSE]
