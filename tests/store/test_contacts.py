"""The send-time gate's live inputs, contact-point statuses and exactly-once contact attempts on
SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from domain.accounts import Channel, ContactOutcome, Hold, HoldKind, Mode
from domain.gate import Allow, Deny, PlannedContact, Purpose, decide
from domain.profiles import load_profile
from store.accounts import account_snapshot, set_mode
from store.contacts import (
    AttemptState,
    AttemptView,
    attempt_by_sid,
    contact_attempts,
    live_gate_inputs,
    mark_attempt,
    set_contact_status,
    update_attempt_status_by_sid,
)
from store.holds import add_hold, lift_hold
from tests.store.conftest import NOW, in_tx, reserve, run_threads, stored


# ---- live gate state ------------------------------------------------------------------------------
def test_live_gate_inputs_reflect_holds_contact_status_and_counted_attempts(
    sessions: sessionmaker[Session],
) -> None:
    account = stored(sessions, phone="+19075550101", timezone=None, region="US-AK")
    acct = account.account_id
    with sessions.begin() as s:
        add_hold(s, acct, Hold(kind=HoldKind.DISPUTE, reason="letter", since=NOW - timedelta(days=2)))
        add_hold(s, acct, Hold(kind=HoldKind.PAUSE, reason="ops", since=NOW - timedelta(days=2)))
        lift_hold(s, acct, HoldKind.PAUSE, NOW - timedelta(days=1))
        set_contact_status(s, acct, Channel.SMS, "opted_out", NOW)
        set_contact_status(s, acct, Channel.VOICE, "unreachable", NOW)
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
            mark_attempt(s, f"{acct}-{i}", state=state, outcome=outcome, now=NOW - timedelta(hours=i + 1))
        reserve(s, account, f"{acct}-old", channel=Channel.VOICE, now=NOW - timedelta(days=9))
        mark_attempt(
            s,
            f"{acct}-old",
            state="accepted",
            outcome=ContactOutcome.CONVERSATION,
            now=NOW - timedelta(days=9),
        )

    state, ledger = in_tx(sessions, lambda s: live_gate_inputs(s, acct, since=NOW - timedelta(days=8)))
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
        sessions, lambda s: live_gate_inputs(s, account.account_id, since=NOW - timedelta(days=8))
    )
    assert isinstance(decide(contact, state, ledger, NOW, profile), Allow)
    with sessions.begin() as s:
        set_mode(s, account.account_id, Mode.SETTLEMENT, now=NOW)
    state, ledger = in_tx(
        sessions, lambda s: live_gate_inputs(s, account.account_id, since=NOW - timedelta(days=8))
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
        mark_attempt(s, f"{acct}-deferred", state="retryable", now=planned)  # the gate deferred it
    with sessions.begin() as s:
        assert reserve(s, account, f"{acct}-deferred", now=NOW)[1]
        mark_attempt(s, f"{acct}-deferred", state="accepted", provider_sid=f"SM{acct}", now=NOW)
        reserve(s, account, f"{acct}-crashed", now=NOW - timedelta(hours=3))  # the try died mid-call
    with sessions.begin() as s:
        mark_attempt(s, f"{acct}-crashed", state="indeterminate", now=NOW)  # the retry finds out
    _, ledger = in_tx(sessions, lambda s: live_gate_inputs(s, acct, since=NOW - timedelta(days=1)))
    assert [(e.at, e.outcome) for e in ledger] == [
        (NOW - timedelta(hours=3), ContactOutcome.INDETERMINATE),
        (NOW, ContactOutcome.SENT),
    ]


def test_opt_out_is_permanent(sessions: sessionmaker[Session]) -> None:
    account = stored(sessions)
    acct = account.account_id
    with sessions.begin() as s:
        assert set_contact_status(s, acct, Channel.SMS, "opted_out", NOW) is True
        assert set_contact_status(s, acct, Channel.SMS, "active", NOW) is False
        assert set_contact_status(s, acct, "sms", "unreachable", NOW) is False
    snap = in_tx(sessions, lambda s: account_snapshot(s, acct))
    assert snap is not None and (snap.opted_out, snap.unreachable) == ([Channel.SMS], [])


# ---- contact attempts -----------------------------------------------------------------------------
def test_reserving_twice_returns_the_same_attempt_and_claims_it_once(sessions: sessionmaker[Session]) -> None:
    account = stored(sessions)
    key = f"{account.account_id}:dpd1:sms"
    first, claimed = in_tx(sessions, lambda s: reserve(s, account, key))
    again, claimed_again = in_tx(sessions, lambda s: reserve(s, account, key, now=NOW + timedelta(minutes=5)))
    assert (claimed, claimed_again) == (True, False)
    assert first.state == again.state == AttemptState.RESERVED and again.created_at == NOW
    assert len(in_tx(sessions, lambda s: contact_attempts(s, account.account_id))) == 1


def test_concurrent_reservations_yield_one_row_and_one_owner(sessions: sessionmaker[Session]) -> None:
    account = stored(sessions)
    key = f"{account.account_id}:race"

    def attempt() -> bool:
        with sessions.begin() as s:
            return reserve(s, account, key)[1]

    results = run_threads(12, attempt)
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert sorted(results, key=str) == [False] * 11 + [True]
    attempts = in_tx(sessions, lambda s: contact_attempts(s, account.account_id))
    assert [a.dedupe_key for a in attempts] == [key]


def test_a_retryable_attempt_is_rearmed_by_exactly_one_retry(sessions: sessionmaker[Session]) -> None:
    account = stored(sessions)
    key = f"{account.account_id}:503"
    with sessions.begin() as s:
        reserve(s, account, key)
        mark_attempt(s, key, state="retryable", error_code=20503, now=NOW)
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
        mark_attempt(
            s,
            key,
            state="accepted",
            provider_sid="SM" + "a" * 32,
            provider_status="queued",
            outcome="sent",
            now=NOW,
        )
    with sessions.begin() as s:
        view = mark_attempt(s, key, state=AttemptState.RETRYABLE, now=NOW)  # a stale try reporting late
    assert view.state == AttemptState.ACCEPTED and view.provider_sid == "SM" + "a" * 32
    view, claimed = in_tx(sessions, lambda s: reserve(s, account, key))
    assert not claimed and view.state == AttemptState.ACCEPTED
    with pytest.raises(LookupError), sessions.begin() as s:
        mark_attempt(s, "no-such-key", state="denied", now=NOW)


def test_provider_status_updates_ignore_out_of_order_webhooks(sessions: sessionmaker[Session]) -> None:
    account = stored(sessions)
    key, sid = f"{account.account_id}:hook", "SM" + uuid.uuid4().hex
    with sessions.begin() as s:
        reserve(s, account, key)
        mark_attempt(
            s, key, state="accepted", provider_sid=sid, provider_status="queued", outcome="sent", now=NOW
        )

    def status(name: str, outcome: ContactOutcome | None, code: int | None = None) -> AttemptView | None:
        with sessions.begin() as s:
            return update_attempt_status_by_sid(s, sid, name, outcome, code, NOW)

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
    assert in_tx(sessions, lambda s: attempt_by_sid(s, sid)).outcome == ContactOutcome.DELIVERED  # type: ignore[union-attr]
    assert (
        in_tx(sessions, lambda s: update_attempt_status_by_sid(s, "SMunknown", "sent", None, None, NOW))
        is None
    )
    assert in_tx(sessions, lambda s: attempt_by_sid(s, "SMunknown")) is None


def test_call_outcome_is_refined_but_never_reverts_to_sent(sessions: sessionmaker[Session]) -> None:
    account = stored(sessions)
    key, sid = f"{account.account_id}:call", "CA" + uuid.uuid4().hex
    with sessions.begin() as s:
        reserve(s, account, key, channel=Channel.VOICE)
        mark_attempt(
            s, key, state="accepted", provider_sid=sid, provider_status="queued", outcome="sent", now=NOW
        )
        update_attempt_status_by_sid(s, sid, "completed", ContactOutcome.CONVERSATION, None, NOW)
        # answering-machine detection reports after the call ended: same status, better outcome
        view = update_attempt_status_by_sid(s, sid, "completed", ContactOutcome.VOICEMAIL, None, NOW)
        assert view is not None and view.outcome == ContactOutcome.VOICEMAIL
        view = update_attempt_status_by_sid(s, sid, "completed", ContactOutcome.SENT, None, NOW)
        assert view is not None and view.outcome == ContactOutcome.VOICEMAIL
