"""The optional emergency contact in the intake CSV: checked like the debtor's number, stored apart
from it, and never handed to Temporal (the workflow gets a masked number and its zones only)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from domain.accounts import AccountTerms, Channel
from domain.gate import Audience
from domain.intake import parse_portfolio
from store.accounts import account_snapshot, upsert_account
from store.contacts import (
    live_gate_inputs,
    mark_attempt,
    reserve_attempt,
    set_emergency_status,
    third_party_gate_inputs,
)
from store.db import make_engine, session_factory

HEADER = "account_id,name,phone,currency,balance,due_date,profile,emergency_name,emergency_phone"
NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)


def row(account_id: str, emergency_name: str, emergency_phone: str, phone: str = "+12125550142") -> str:
    return f"{account_id},Jane Doe,{phone},USD,100.00,2026-10-01,US,{emergency_name},{emergency_phone}"


def test_a_good_emergency_contact_is_read_and_the_columns_stay_optional() -> None:
    text = "\n".join([HEADER, row("E-1", "Li Lei", "+86 138 0013 8000"), row("E-2", "", "")])
    report = parse_portfolio(text)
    assert report.errors == []
    (_, with_contact), (_, without) = report.accounts
    assert with_contact.emergency is not None
    assert (with_contact.emergency.name, with_contact.emergency.phone) == ("Li Lei", "+8613800138000")
    assert without.emergency is None
    # a file without the columns at all (every portfolio before this feature) still loads
    old = parse_portfolio(
        "account_id,name,phone,currency,balance,due_date\nE-3,Jane,+12125550142,USD,1.00,2026-10-01"
    )
    assert old.errors == [] and old.accounts[0][1].emergency is None


def test_bad_emergency_contacts_are_reported_with_line_field_and_reason() -> None:
    text = "\n".join(
        [
            HEADER,
            row("E-1", "Li Lei", "+8613800138000"),
            row("E-2", "Li Lei", "+1 (212) 555-0142"),  # the debtor's own number, written differently
            row("E-3", "", "+8613800138000"),
            row("E-4", "Li Lei", ""),
            row("E-5", "Li Lei", "013800138000"),
            row("E-6", "Li Lei", "+86138"),
        ]
    )
    report = parse_portfolio(text)
    assert [a.account_id for _, a in report.accounts] == ["E-1"]
    assert [(e.line, e.field, e.reason, e.account_id) for e in report.errors] == [
        (3, "emergency_phone", "emergency_phone must not be the debtor's own number", "E-2"),
        (4, "emergency_name", "emergency_name is required when emergency_phone is given", "E-3"),
        (5, "emergency_phone", "emergency_phone is required when emergency_name is given", "E-4"),
        (
            6,
            "emergency_phone",
            "emergency_phone must be in international format starting with + (E.164)",
            "E-5",
        ),
        (7, "emergency_phone", "emergency_phone has the wrong number of digits for its country", "E-6"),
    ]


def test_the_workflow_learns_only_a_masked_number_and_its_zones() -> None:
    account = parse_portfolio("\n".join([HEADER, row("E-1", "Li Lei", "+8613800138000")])).accounts[0][1]
    terms = AccountTerms.from_account(account)
    assert terms.emergency_masked == "+86 138****8000"
    assert terms.emergency_zones == ["Asia/Shanghai"]
    dumped = terms.model_dump_json()
    assert "8613800138000" not in dumped and "Li Lei" not in dumped


@pytest.fixture
def sessions(database_url: str):  # type: ignore[no-untyped-def]
    return session_factory(make_engine(database_url))


def test_stored_apart_from_the_debtors_numbers_and_read_by_the_gate(sessions) -> None:  # type: ignore[no-untyped-def]
    account_id = f"E-{uuid.uuid4().hex[:8]}"
    account = parse_portfolio("\n".join([HEADER, row(account_id, "Li Lei", "+8613800138000")])).accounts[0][1]
    with sessions.begin() as s:
        assert upsert_account(s, account, NOW)
        assert not upsert_account(s, account, NOW)  # re-running intake changes nothing
    with sessions.begin() as s:
        snap = account_snapshot(s, account_id)
        assert snap is not None
        assert (snap.phone, snap.emergency_name, snap.emergency_phone) == (
            "+12125550142",
            "Li Lei",
            "+8613800138000",
        )
        state, _ = third_party_gate_inputs(s, account_id, now=NOW)
        assert state.third_party_zones == ["Asia/Shanghai"] and state.third_party_status == "active"
    # a later file naming someone else is a correction for an operator, not a silent overwrite
    other = parse_portfolio("\n".join([HEADER, row(account_id, "Han Meimei", "+8613900139000")])).accounts[0][
        1
    ]
    with sessions.begin() as s, pytest.raises(ValueError, match="emergency_name, emergency_phone"):
        upsert_account(s, other, NOW)

    # a message to the emergency contact counts in their ledger, not in the debtor's caps
    with sessions.begin() as s:
        reserve_attempt(
            s,
            dedupe_key=f"{account_id}/locate/1",
            account_id=account_id,
            channel=Channel.SMS,
            purpose="dunning",
            template="third_party_locate",
            to_address="+8613800138000",
            now=NOW,
            audience=Audience.THIRD_PARTY,
        )
        mark_attempt(
            s, f"{account_id}/locate/1", state="accepted", provider_sid=f"SM{uuid.uuid4().hex}", now=NOW
        )
    with sessions.begin() as s:
        _, debtor_ledger = live_gate_inputs(s, account_id, since=datetime(2026, 1, 1, tzinfo=UTC), now=NOW)
        _, third_party_ledger = third_party_gate_inputs(s, account_id, now=NOW)
        assert debtor_ledger == [] and len(third_party_ledger) == 1
        assert set_emergency_status(s, account_id, "unreachable", NOW)
    with sessions.begin() as s:
        state, _ = third_party_gate_inputs(s, account_id, now=NOW)
        assert state.third_party_status == "unreachable"
        assert account_snapshot(s, account_id).unreachable == []  # type: ignore[union-attr]
