"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from store.db import downgrade, make_engine, migration_engine, upgrade
from store.models import Base

ROOT = Path(__file__).resolve().parents[2]
TABLES = {
    "accounts",
    "audit_log",
    "contact_attempts",
    "contact_points",
    "debtors",
    "holds",
    "instalments",
    "payments",
    "plans",
    "waiver_requests",  # 0002 (negotiation API: fee-waiver approval queue)
    "placements",  # 0003 (field visits, placement)
    "visits",  # 0003
    "emergency_contacts",  # 0004 (emergency contact of an unreachable debtor)
    "sender_pacing",  # 0005 (send slots of each sender number, shared by every worker)
    "sender_sends",  # 0005 (its provider requests still inside the rate window)
    "refunds",  # 0006 (money beyond what was owed, or after the account closed)
    "rule_versions",  # 0006 (the policy and profile text each account runs)
    "console_sessions",  # 0008 (console sign-ins: the cookie holds an opaque id, not a token)
    "debtor_sessions",  # 0009 (a debtor's visit opened by a link; nothing shown until verified)
    "link_revocations",  # 0009 (links of an account issued before this moment are void)
    "checkouts",  # 0012 (payments the debtor started from their page, and the provider's payment ID)
    "cases",  # 0013 (every request with an owner, a deadline and a history)
    "case_events",  # 0013 (a case's history)
    "signin_codes",  # 0011 (one-time sign-in codes, stored as digests; decoys for numbers on no account)
    "sms_opt_outs",  # 0011 (numbers our sender may not text: STOP without START since)
    "event_outbox",  # 0016 (events for the lender, written with the state change they tell)
    "event_streams",  # 0016 (each account's last event number and whether its line is frozen)
    "event_subscriptions",  # 0016 (the lender's endpoints and their signing secrets)
    "event_deliveries",  # 0016 (each event for each endpoint: pending, delivered, dead)
    "event_attempts",  # 0016 (every try to deliver, with the endpoint's answer)
    "contact_changes",  # 0017 (a new number for a lost debtor, pending until confirmed by code)
}


def schema_diff(url: str) -> list[object]:
    engine = migration_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def tables(url: str) -> set[str]:
    engine = migration_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_migrating_an_empty_database_gives_exactly_the_models_schema(empty_url: str) -> None:
    assert tables(empty_url) == set()
    upgrade(empty_url)
    assert tables(empty_url) == TABLES
    assert schema_diff(empty_url) == []


def test_upgrade_is_repeatable_and_downgrade_reverses_it(empty_url: str) -> None:
    upgrade(empty_url)
    upgrade(empty_url)  # every process migrates at start-up: the second time is a no-op
    downgrade(empty_url, "base")
    assert tables(empty_url) == set()
    upgrade(empty_url)
    assert schema_diff(empty_url) == []


def test_sqlite_engine_enforces_foreign_keys_in_wal_mode(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nested' / 'dir' / 'app.db'}"  # parent directories are created
    upgrade(url)
    engine = make_engine(url)
    assert make_engine(url) is engine  # one pool per database per process
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO holds (account_id, kind, reason, since) "
                "VALUES ('no-such-account', 'pause', '', '2026-11-22 00:00:00')"
            )
        )


@pytest.mark.parametrize("how", ["-x", "DATABASE_URL", "COLLECT_DATABASE_URL"])
def test_operators_can_run_alembic_from_the_repository_root(tmp_path: Path, how: str) -> None:
    url = f"sqlite:///{tmp_path / 'ops.db'}"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "COLLECT_DATABASE_URL")}
    args = [sys.executable, "-m", "alembic"]
    if how == "-x":
        args += ["-x", f"url={url}"]
    else:
        env[how] = url
    done = subprocess.run(
        [*args, "upgrade", "head"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert tables(url) == TABLES


# ---- upgrading a database of the previous release ------------------------------------------------------
#: The revision the last release shipped. Bump it when a release ships with a newer head.
PREVIOUS_RELEASE = "0001"


def _fill_previous_release(url: str) -> None:
    """Rows written the way the previous release wrote them: plain SQL against *its* schema (reflected),
    never the current models, which may describe columns that release did not have."""
    from sqlalchemy import MetaData

    engine = migration_engine(url)
    try:
        meta = MetaData()
        meta.reflect(engine)
        sqlite = engine.dialect.name == "sqlite"

        def at(day: int, hour: int = 12) -> datetime:
            value = datetime(2026, 11, day, hour, tzinfo=UTC)
            return value.replace(tzinfo=None) if sqlite else value  # SQLite: naive UTC, as the store wrote it

        t = meta.tables
        with engine.begin() as conn:
            debtor_id = conn.execute(
                t["debtors"].insert().values(name="Jane Doe", language="en", timezone="America/New_York")
            ).inserted_primary_key[0]
            conn.execute(
                t["contact_points"].insert(),
                [
                    {"debtor_id": debtor_id, "channel": "sms", "address": "+12125550142",
                     "status": "opted_out", "updated_at": at(20)},
                    {"debtor_id": debtor_id, "channel": "voice", "address": "+12125550142",
                     "status": "active", "updated_at": at(20)},
                ],
            )  # fmt: skip
            conn.execute(
                t["accounts"].insert().values(
                    account_id="OLD-1", debtor_id=debtor_id, product="credit_line", currency="USD",
                    opening_balance_minor=125_000, balance_minor=100_000, fees_minor=3_500,
                    paid_minor=25_000, due_date=date(2026, 10, 1), profile="US", policy="default",
                    mode="settlement", stage="middle", dpd=50, created_at=at(1), updated_at=at(21),
                )
            )  # fmt: skip
            conn.execute(
                t["holds"].insert().values(
                    account_id="OLD-1", kind="dispute", reason="not mine", since=at(19), until=None,
                    lifted_at=None,
                )
            )  # fmt: skip
            conn.execute(
                t["contact_attempts"].insert().values(
                    dedupe_key="OLD-1/sms-1", account_id="OLD-1", channel="sms", purpose="dunning",
                    template="early_reminder", to_address="+12125550142", state="accepted",
                    provider_sid="SM-old-1", provider_status="delivered", outcome="delivered",
                    created_at=at(10), updated_at=at(10, 13), sent_at=at(10),
                )
            )  # fmt: skip
            conn.execute(
                t["plans"].insert().values(
                    plan_id="OLD-1-plan-1", account_id="OLD-1", kind="reinstalment", currency="USD",
                    total_minor=100_000, waived_minor=0, status="active", agreed_at=at(21),
                    proposed_by="sam", details={"end_date": "2027-01-15", "periods": 2}, updated_at=at(21),
                )
            )  # fmt: skip
            conn.execute(
                t["instalments"].insert(),
                [
                    {"plan_id": "OLD-1-plan-1", "seq": 1, "due_date": date(2026, 12, 15),
                     "amount_minor": 50_000, "paid_minor": 0, "status": "due"},
                    {"plan_id": "OLD-1-plan-1", "seq": 2, "due_date": date(2027, 1, 15),
                     "amount_minor": 50_000, "paid_minor": 0, "status": "due"},
                ],
            )  # fmt: skip
            conn.execute(
                t["payments"].insert().values(
                    account_id="OLD-1", amount_minor=25_000, currency="USD", reference="PAY-old-1",
                    received_at=at(15), source="lender",
                )
            )  # fmt: skip
            conn.execute(
                t["audit_log"].insert().values(
                    at=at(21), account_id="OLD-1", actor="sam", action="plan_agreed",
                    decision="plan_agreed", rule=None, details={"detail": "reinstalment"},
                )
            )  # fmt: skip
    finally:
        engine.dispose()


def test_a_database_of_the_previous_release_upgrades_to_head_keeping_its_data(empty_url: str) -> None:
    """What an operator's production database goes through: the last release's schema with live data,
    then ``alembic upgrade head``. Everything stored stays readable through the repository, the schema
    ends exactly as the models describe it, and the application can carry on writing."""
    from store.accounts import account_snapshot
    from store.audit import audit_entries
    from store.contacts import contact_attempts
    from store.db import session_factory
    from store.holds import lift_hold
    from store.ledger import active_plan_id, mark_instalment, plan_instalments, record_payment

    upgrade(empty_url, PREVIOUS_RELEASE)
    _fill_previous_release(empty_url)
    upgrade(empty_url)
    assert schema_diff(empty_url) == []

    sessions = session_factory(make_engine(empty_url))
    with sessions.begin() as s:
        snap = account_snapshot(s, "OLD-1")
        assert snap is not None
        assert (snap.name, snap.phone, snap.balance_minor, snap.paid_minor) == (
            "Jane Doe", "+12125550142", 100_000, 25_000,
        )  # fmt: skip
        assert (snap.mode.value, snap.stage.value if snap.stage else None, snap.dpd) == (
            "settlement",
            "middle",
            50,
        )
        assert [h.kind.value for h in snap.holds] == ["dispute"]
        assert [c.value for c in snap.opted_out] == ["sms"]
        assert snap.created_at == datetime(2026, 11, 1, 12, tzinfo=UTC)  # times come back aware, unchanged
        [attempt] = contact_attempts(s, "OLD-1")
        assert (attempt.state.value, attempt.outcome, attempt.provider_sid) == (
            "accepted",
            "delivered",
            "SM-old-1",
        )
        plan_id = active_plan_id(s, "OLD-1")
        assert plan_id == "OLD-1-plan-1"
        assert [(i.seq, i.amount, status.value) for i, _, status in plan_instalments(s, plan_id)] == [
            (1, 50_000, "due"),
            (2, 50_000, "due"),
        ]
        assert [e.action for e in audit_entries(s, "OLD-1")] == ["plan_agreed"]
        # the same payment delivered again after the upgrade still counts once
        assert not record_payment(
            s, account_id="OLD-1", amount_minor=25_000, currency="USD", reference="PAY-old-1",
            received_at=datetime(2026, 11, 24, tzinfo=UTC), source="lender",
        )  # fmt: skip

    # and the upgraded database takes new writes of every kind the old rows had
    now = datetime(2026, 11, 24, 12, tzinfo=UTC)
    with sessions.begin() as s:
        mark_instalment(s, "OLD-1-plan-1", 1, paid_minor=50_000, status="paid")
        assert record_payment(
            s, account_id="OLD-1", amount_minor=50_000, currency="USD", reference="PAY-new-1",
            received_at=now, source="lender",
        )  # fmt: skip
        lift_hold(s, "OLD-1", "dispute", now)
    with sessions.begin() as s:
        snap = account_snapshot(s, "OLD-1")
        assert snap is not None and snap.holds == []
        assert [status.value for _, _, status in plan_instalments(s, "OLD-1-plan-1")] == ["paid", "due"]
