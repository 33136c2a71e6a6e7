"""A lost debtor's new number on SQLite and PostgreSQL: recorded unverified (never on the contact
points), confirmed only by the code sent to it, with the sign-in codes' expiry and lock-out."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from domain.accounts import Channel
from domain.numbers import ConfirmedVia, NumberSource
from store import contact_changes as changes
from store import signin_codes as codes
from store.accounts import account_snapshot
from store.contacts import set_contact_status
from store.models import ContactChangeRow, SigninCodeRow
from tests.store.conftest import NOW, in_tx, stored

AGENT = NumberSource.AGENT


def fresh_phone() -> str:
    """A New York number no other test in the shared database uses."""
    return f"+1917555{uuid.uuid4().int % 10_000:04d}"


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def lost(sessions: sessionmaker[Session]) -> str:
    """A debtor whose texts bounce and who stopped calls: every channel gone."""
    account = stored(
        sessions,
        phone=fresh_phone(),
        emergency={"name": "Li Lei", "phone": f"+86138{uuid.uuid4().int % 10**8:08d}"},
    )
    with sessions.begin() as s:
        set_contact_status(s, account.account_id, Channel.SMS, "unreachable", NOW)
        set_contact_status(s, account.account_id, Channel.VOICE, "opted_out", NOW)
    return account.account_id


def record(
    sessions: sessionmaker[Session],
    account_id: str,
    phone: str,
    source: NumberSource = AGENT,
    case_id: int | None = None,
) -> changes.Change:
    by = "debtor" if source == NumberSource.DEBTOR else "ann"
    return in_tx(
        sessions,
        lambda s: changes.record(
            s, account_id, phone, source=source, recorded_by=by, now=NOW, case_id=case_id
        ),
    )


def code_for(sessions: sessionmaker[Session], account_id: str, change_id: int, at=NOW) -> str:  # type: ignore[no-untyped-def]
    return in_tx(sessions, lambda s: changes.issue_code(s, account_id, change_id, at)).code


def confirm(sessions: sessionmaker[Session], account_id: str, change_id: int, code: str, at=NOW, by="ann"):  # type: ignore[no-untyped-def]
    via = ConfirmedVia.AGENT if by != "debtor" else ConfirmedVia.PAGE
    return in_tx(sessions, lambda s: changes.confirm(s, account_id, change_id, code, by=by, via=via, now=at))


def on_file(sessions: sessionmaker[Session], account_id: str):  # type: ignore[no-untyped-def]
    return in_tx(sessions, lambda s: account_snapshot(s, account_id))


def test_a_recorded_number_is_used_only_once_its_code_comes_back(sessions: sessionmaker[Session]) -> None:
    account_id = lost(sessions)
    old = on_file(sessions, account_id).phone
    new = fresh_phone()
    change = record(sessions, account_id, new)
    assert change.status == "pending" and change.phone == new and change.codes_sent == 0
    code = code_for(sessions, account_id, change.id)
    pending = on_file(sessions, account_id)
    assert pending.phone == old and pending.unreachable == [Channel.SMS]  # nothing sends to it yet

    tried = confirm(sessions, account_id, change.id, wrong(code), NOW + timedelta(minutes=1))
    assert tried.outcome == "wrong" and tried.left == 4
    assert on_file(sessions, account_id).phone == old

    done = confirm(sessions, account_id, change.id, code, NOW + timedelta(minutes=2))
    assert done.outcome == "confirmed" and done.change.previous_phone == old
    assert (done.change.confirmed_by, done.change.confirmed_via) == ("ann", ConfirmedVia.AGENT)
    now = on_file(sessions, account_id)
    # on every channel: the unreachable one is active again, the opt-out follows the person and stays
    assert now.phone == new and now.unreachable == [] and now.opted_out == [Channel.VOICE]
    with sessions.begin() as s:
        rows = s.scalars(select(SigninCodeRow).where(SigninCodeRow.account_id == account_id)).all()
        values = [str(getattr(r, c.name)) for r in rows for c in SigninCodeRow.__table__.columns]
    assert rows and code not in values  # only its scrypt digest is kept
    assert not [v for v in values if new in v or new.lstrip("+") in v]  # the number only as a digest
    with pytest.raises(changes.NotPending):  # used: the same code again changes nothing
        confirm(sessions, account_id, change.id, code, NOW + timedelta(minutes=3))


def test_a_code_expires_after_five_minutes_and_only_the_newest_works(sessions: sessionmaker[Session]) -> None:
    account_id = lost(sessions)
    change = record(sessions, account_id, fresh_phone())
    first = code_for(sessions, account_id, change.id)
    assert confirm(sessions, account_id, change.id, first, NOW + timedelta(minutes=5)).outcome == "expired"
    second = code_for(sessions, account_id, change.id, NOW + timedelta(minutes=6))
    if second != first:  # one in a million they are equal
        late = confirm(sessions, account_id, change.id, first, NOW + timedelta(minutes=7))
        assert late.outcome == "wrong"
    assert confirm(sessions, account_id, change.id, second, NOW + timedelta(minutes=7)).outcome == "confirmed"


def test_five_wrong_codes_lock_the_number_out_for_sign_in_too(sessions: sessionmaker[Session]) -> None:
    account_id = lost(sessions)
    new = fresh_phone()
    change = record(sessions, account_id, new)
    code = code_for(sessions, account_id, change.id)
    outcomes = [
        confirm(sessions, account_id, change.id, wrong(code), NOW + timedelta(seconds=i)).outcome
        for i in range(5)
    ]
    assert outcomes == ["wrong"] * 4 + ["locked"]
    # the right code confirms nothing now, no new code goes out, and the sign-in counts the same lock
    assert confirm(sessions, account_id, change.id, code, NOW + timedelta(minutes=1)).outcome == "locked"
    with pytest.raises(codes.LockedOut):
        code_for(sessions, account_id, change.id, NOW + timedelta(minutes=2))
    with pytest.raises(codes.LockedOut):
        in_tx(sessions, lambda s: codes.issue(s, new, "sms", NOW + timedelta(minutes=2)))
    assert on_file(sessions, account_id).phone != new
    later = code_for(sessions, account_id, change.id, NOW + timedelta(minutes=16))
    assert confirm(sessions, account_id, change.id, later, NOW + timedelta(minutes=17)).outcome == "confirmed"


def test_a_confirmation_code_never_signs_in_and_a_sign_in_code_never_confirms(
    sessions: sessionmaker[Session],
) -> None:
    account_id = lost(sessions)
    new = fresh_phone()
    change = record(sessions, account_id, new)
    code = code_for(sessions, account_id, change.id)
    challenge = changes.challenge_of(change.id, 1)
    assert in_tx(sessions, lambda s: codes.check(s, challenge, code, NOW)).outcome == "expired"
    # a sign-in code for the new number (a decoy: the number is on no account yet) leaves it pending
    signin = in_tx(sessions, lambda s: codes.issue(s, new, "sms", NOW))
    assert signin.account_id is None and signin.code is None
    assert confirm(sessions, account_id, change.id, code, NOW + timedelta(seconds=1)).outcome == "confirmed"


def test_a_newer_number_supersedes_the_one_waiting(sessions: sessionmaker[Session]) -> None:
    account_id = lost(sessions)
    first = record(sessions, account_id, fresh_phone())
    code = code_for(sessions, account_id, first.id)
    second = record(sessions, account_id, fresh_phone())
    with pytest.raises(changes.NotPending):
        confirm(sessions, account_id, first.id, code)
    assert [c.status for c in in_tx(sessions, lambda s: changes.changes_of(s, account_id))] == [
        "pending",
        "superseded",
    ]
    assert in_tx(sessions, lambda s: changes.pending_of(s, account_id)).id == second.id  # type: ignore[union-attr]
    dropped = in_tx(sessions, lambda s: changes.cancel(s, account_id, second.id, NOW))
    assert (
        dropped.status == "cancelled" and in_tx(sessions, lambda s: changes.pending_of(s, account_id)) is None
    )


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("2125550143", "must be in international format starting with + (E.164)"),
        ("+1212555", "has the wrong number of digits for its country"),
        ("same", "is already the number on file"),
        ("emergency", "is the emergency contact's number, not the debtor's"),
    ],
)
def test_a_number_that_cannot_be_the_debtors_is_refused_naming_why(
    sessions: sessionmaker[Session], given: str, reason: str
) -> None:
    account_id = lost(sessions)
    snap = on_file(sessions, account_id)
    phone = {"same": snap.phone, "emergency": snap.emergency_phone}.get(given, given)
    with pytest.raises(changes.NumberProblem) as refused:
        record(sessions, account_id, phone)
    assert refused.value.field == "phone" and refused.value.reason == reason
    assert str(refused.value) == f"phone: {reason}"
    with sessions.begin() as s:
        assert not s.scalars(select(ContactChangeRow).where(ContactChangeRow.account_id == account_id)).all()


def test_the_status_says_how_the_number_on_file_was_found_and_confirmed(
    sessions: sessionmaker[Session],
) -> None:
    account_id = lost(sessions)
    before = in_tx(sessions, lambda s: changes.number_status(s, account_id))
    assert before.source == NumberSource.INTAKE and before.how == "as given at intake (not confirmed by code)"

    lead = record(sessions, account_id, fresh_phone(), source=NumberSource.EMERGENCY_CONTACT, case_id=12)
    waiting = in_tx(sessions, lambda s: changes.number_status(s, account_id))
    assert waiting.source == NumberSource.INTAKE and waiting.pending is not None
    assert waiting.pending.masked_phone == lead.masked and waiting.pending.case == "C-12"
    assert lead.phone not in waiting.model_dump_json()  # masked only
    code = code_for(sessions, account_id, lead.id)
    assert confirm(sessions, account_id, lead.id, code).outcome == "confirmed"
    found = in_tx(sessions, lambda s: changes.number_status(s, account_id))
    assert found.how == (
        f"confirmed by code on {NOW.date()} via agent ann; recorded by ann from the emergency contact's reply C-12"
    )
    assert found.pending is None and found.masked_phone == lead.masked

    own = record(sessions, account_id, fresh_phone(), source=NumberSource.DEBTOR)
    code = code_for(sessions, account_id, own.id)
    confirm(sessions, account_id, own.id, code, by="debtor")
    mine = in_tx(sessions, lambda s: changes.number_status(s, account_id))
    assert (
        mine.how
        == f"confirmed by code on {NOW.date()} by the debtor on the page; given by the debtor on the page"
    )
