"""One-time sign-in codes on SQLite and PostgreSQL: issue, check, expiry, single use, lock-out, the
decoy of a number on no account, and which numbers our sender may not text."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from domain.accounts import Channel, Language, Mode
from store import signin_codes as codes
from store import sms_opt_outs
from store.accounts import set_mode, upsert_account
from store.contacts import set_contact_status
from store.debtor_sessions import revoke_everything
from store.models import SigninCodeRow
from tests.store.conftest import NOW, in_tx, new_account, run_threads


def fresh_phone() -> str:
    """A number no other test in the shared database uses."""
    return f"+1646555{uuid.uuid4().int % 10_000:04d}"


def account_on(
    sessions: sessionmaker[Session],
    phone: str | None = None,
    language: str = "en",
    at: datetime = NOW,
    **changes: object,
) -> str:
    account = new_account(phone=phone or fresh_phone(), **changes)
    debtor = account.debtor.model_copy(update={"language": Language(language)})
    with sessions.begin() as s:
        upsert_account(s, account.model_copy(update={"debtor": debtor}), at)
    return account.account_id


def issue(sessions: sessionmaker[Session], phone: str, at=NOW, channel: str = "sms") -> codes.Issued:  # type: ignore[no-untyped-def]
    return in_tx(sessions, lambda s: codes.issue(s, phone, channel, at))


def check(sessions: sessionmaker[Session], challenge: str, code: str, at=NOW) -> codes.Checked:  # type: ignore[no-untyped-def]
    return in_tx(sessions, lambda s: codes.check(s, challenge, code, at))


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def test_a_code_opens_its_account_once_and_only_its_digest_is_kept(sessions: sessionmaker[Session]) -> None:
    phone = fresh_phone()
    account_id = account_on(sessions, phone)
    issued = issue(sessions, phone)
    assert issued.account_id == account_id and issued.code is not None
    assert re.fullmatch(r"\d{6}", issued.code)
    assert issued.expires_at == NOW + timedelta(minutes=5)
    with sessions.begin() as s:
        row = s.scalars(select(SigninCodeRow).where(SigninCodeRow.account_id == account_id)).one()
        stored_text = " ".join(str(getattr(row, c.name)) for c in SigninCodeRow.__table__.columns)
    for secret in (issued.code, issued.challenge, phone, phone.lstrip("+")):
        assert secret not in stored_text

    opened = check(sessions, issued.challenge, issued.code, NOW + timedelta(minutes=4, seconds=59))
    assert opened.outcome == "opened" and opened.account_id == account_id and opened.channel == "sms"
    again = check(sessions, issued.challenge, issued.code, NOW + timedelta(minutes=4, seconds=59))
    assert again.outcome == "expired" and again.account_id is None  # single use


def test_a_code_expires_after_five_minutes(sessions: sessionmaker[Session]) -> None:
    phone = fresh_phone()
    account_on(sessions, phone)
    issued = issue(sessions, phone)
    assert issued.code is not None
    assert check(sessions, issued.challenge, issued.code, NOW + timedelta(minutes=5)).outcome == "expired"


def test_a_code_works_only_with_the_challenge_of_the_browser_that_asked(
    sessions: sessionmaker[Session],
) -> None:
    phone = fresh_phone()
    account_on(sessions, phone)
    issued = issue(sessions, phone)
    assert issued.code is not None
    assert check(sessions, "another-browser", issued.code).outcome == "expired"
    assert check(sessions, issued.challenge, issued.code).outcome == "opened"


def test_five_wrong_tries_lock_the_number_out_for_fifteen_minutes(sessions: sessionmaker[Session]) -> None:
    phone = fresh_phone()
    account_on(sessions, phone)
    issued = issue(sessions, phone)
    assert issued.code is not None
    for left in (4, 3, 2, 1):
        tried = check(sessions, issued.challenge, wrong(issued.code))
        assert (tried.outcome, tried.left) == ("wrong", left)
    locked = check(sessions, issued.challenge, wrong(issued.code), NOW + timedelta(seconds=30))
    assert locked.outcome == "locked" and locked.locked_until == NOW + timedelta(minutes=15, seconds=30)
    # the right code opens nothing now, and no new code is issued until the lock-out ends
    assert check(sessions, issued.challenge, issued.code, NOW + timedelta(minutes=1)).outcome == "locked"
    with pytest.raises(codes.LockedOut) as refused:
        issue(sessions, phone, NOW + timedelta(minutes=15))
    assert refused.value.until == NOW + timedelta(minutes=15, seconds=30)
    later = issue(sessions, phone, NOW + timedelta(minutes=16))
    assert later.code is not None
    assert check(sessions, later.challenge, later.code, NOW + timedelta(minutes=16)).outcome == "opened"


def test_a_new_code_voids_the_old_one_and_does_not_buy_new_tries(sessions: sessionmaker[Session]) -> None:
    phone = fresh_phone()
    account_on(sessions, phone)
    first = issue(sessions, phone)
    assert first.code is not None
    for _ in range(3):
        assert check(sessions, first.challenge, wrong(first.code)).outcome == "wrong"
    second = issue(sessions, phone, NOW + timedelta(minutes=1))
    assert second.code is not None
    assert check(sessions, first.challenge, first.code, NOW + timedelta(minutes=1)).outcome == "expired"
    tried = check(sessions, second.challenge, wrong(second.code), NOW + timedelta(minutes=1))
    assert (tried.outcome, tried.left) == ("wrong", 1)
    assert (
        check(sessions, second.challenge, wrong(second.code), NOW + timedelta(minutes=1)).outcome == "locked"
    )


def test_a_number_on_no_account_answers_exactly_like_one_on_file(sessions: sessionmaker[Session]) -> None:
    """The decoy: stored, checked, counted and locked like a real code; it never opens anything."""
    known, unknown = fresh_phone(), fresh_phone()
    account_on(sessions, known)
    real, decoy = issue(sessions, known), issue(sessions, unknown)
    assert real.code is not None and decoy.code is None and decoy.account_id is None
    assert real.expires_at == decoy.expires_at
    with sessions.begin() as s:
        assert s.scalar(
            select(SigninCodeRow.id).where(SigninCodeRow.phone_digest == codes.phone_digest(unknown))
        )
    answers = {}
    for name, issued in (("known", real), ("unknown", decoy)):
        answers[name] = [
            (c.outcome, c.left, c.locked_until)
            for c in (
                check(sessions, issued.challenge, "000000" if real.code != "000000" else "111111")
                for _ in range(6)
            )
        ]
    assert answers["known"] == answers["unknown"]
    assert [a[0] for a in answers["unknown"]] == ["wrong"] * 4 + ["locked"] * 2
    with pytest.raises(codes.LockedOut):
        issue(sessions, unknown, NOW + timedelta(minutes=1))


def test_every_guess_at_a_decoy_fails(sessions: sessionmaker[Session]) -> None:
    """Even the decoy's own (never sent) code: a row without an account opens nothing."""
    phone = fresh_phone()
    decoy = issue(sessions, phone)
    with sessions.begin() as s:
        row = s.scalars(
            select(SigninCodeRow).where(SigninCodeRow.phone_digest == codes.phone_digest(phone))
        ).one()
        code = "424242"
        row.code_digest = codes.code_digest(code, row.salt)  # as if a guesser had hit it
    assert check(sessions, decoy.challenge, code).outcome == "wrong"


def test_parallel_guesses_get_five_tries_between_them(sessions: sessionmaker[Session]) -> None:
    phone = fresh_phone()
    account_on(sessions, phone)
    issued = issue(sessions, phone)
    assert issued.code is not None
    outcomes = run_threads(8, lambda: check(sessions, issued.challenge, wrong(issued.code or "0")).outcome)
    assert sorted(str(o) for o in outcomes) == ["locked"] * 4 + ["wrong"] * 4
    with sessions.begin() as s:
        failures = s.scalar(
            select(SigninCodeRow.failures).where(SigninCodeRow.phone_digest == codes.phone_digest(phone))
        )
    assert failures == 5


def test_the_code_opens_the_open_account_of_the_number_and_never_an_emergency_contacts(
    sessions: sessionmaker[Session],
) -> None:
    phone = fresh_phone()
    still_open = account_on(sessions, phone, language="zh-CN")
    closed = account_on(sessions, phone, at=NOW + timedelta(days=1))  # newer, but closed
    with sessions.begin() as s:
        set_mode(s, closed, Mode.CLOSED, now=NOW)
    assert in_tx(sessions, lambda s: codes.account_for_phone(s, phone)) == (still_open, Language.ZH_CN)

    friend = fresh_phone()
    account_on(sessions, emergency={"name": "Li Lei", "phone": friend})
    assert in_tx(sessions, lambda s: codes.account_for_phone(s, friend)) is None
    assert issue(sessions, friend).code is None


def test_signing_out_everywhere_voids_a_code_issued_before(sessions: sessionmaker[Session]) -> None:
    phone = fresh_phone()
    account_id = account_on(sessions, phone)
    issued = issue(sessions, phone)
    assert issued.code is not None
    with sessions.begin() as s:
        revoke_everything(s, account_id, NOW + timedelta(seconds=10))
    assert check(sessions, issued.challenge, issued.code, NOW + timedelta(seconds=20)).outcome == "expired"


def test_a_number_that_replied_stop_gets_no_text_until_it_replies_start(
    sessions: sessionmaker[Session],
) -> None:
    phone = fresh_phone()
    account_id = account_on(sessions, phone)
    blocked = lambda: in_tx(sessions, lambda s: sms_opt_outs.texts_blocked(s, phone))  # noqa: E731
    assert not blocked()
    with sessions.begin() as s:  # stopped before the number table existed: the contact point says so
        set_contact_status(s, account_id, Channel.SMS, "opted_out", NOW)
    assert blocked()
    with sessions.begin() as s:
        assert sms_opt_outs.record(s, phone, opted_out=False, source="START", now=NOW)
    assert not blocked()  # START lifts the sender's block (the debtor's collection opt-out stays)
    with sessions.begin() as s:
        assert sms_opt_outs.record(s, phone, opted_out=True, source="STOP", now=NOW)
        assert not sms_opt_outs.record(s, phone, opted_out=True, source="STOP", now=NOW)
    assert blocked()
    stranger = fresh_phone()  # a number on no account is blocked by its own STOP too
    with sessions.begin() as s:
        sms_opt_outs.record(s, stranger, opted_out=True, source="STOP", now=NOW)
    assert in_tx(sessions, lambda s: sms_opt_outs.texts_blocked(s, stranger))
