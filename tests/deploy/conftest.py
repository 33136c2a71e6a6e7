"""A database of its own for the metrics tests, filled with known account activity.

The metrics are aggregates over the *whole* database, so the tests cannot share the session database
that other tests keep writing to: each module gets a fresh, migrated one (PostgreSQL where the machine
has it, SQLite otherwise), and :func:`seed` writes a known history through the ``store``
modules, the same functions the activities and the API use.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from domain.accounts import Account, Debtor, Hold, HoldKind
from domain.plans import AgreedPlan, Instalment, PlanKind
from store.accounts import set_mode, update_progress, upsert_account
from store.audit import audit
from store.contacts import mark_attempt, reserve_attempt, update_attempt_status_by_sid
from store.db import dispose_engine, make_engine, session_factory, upgrade
from store.holds import add_hold, lift_hold
from store.ledger import record_payment, save_plan, set_plan_status
from tests.conftest import PG_ADMIN_URL, _postgres_available


@pytest.fixture(scope="module")
def metrics_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if os.environ.get("COLLECT_TEST_DB", "auto") != "sqlite" and _postgres_available():
        name = f"collect_metrics_{uuid.uuid4().hex[:10]}"
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
        try:
            upgrade(url)
            yield url
        finally:
            dispose_engine(url)
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    else:
        url = f"sqlite:///{Path(tmp_path_factory.mktemp('metrics')) / 'collect.db'}"
        upgrade(url)
        yield url
        dispose_engine(url)


@dataclass(frozen=True)
class Seeded:
    """What :func:`seed` wrote, as the metrics must report it."""

    sms_delivered: int = 2
    voice_silent: int = 2
    voice_conversation: int = 2
    voice_no_answer: int = 1
    usd_recovered: int = 12_050 + 5_000
    cny_recovered: int = 30_000


def account(account_id: str, *, currency: str = "USD", profile: str = "US", balance: int = 50_000) -> Account:
    return Account(
        account_id=account_id,
        debtor=Debtor(name="Jane Doe", phone="+12125550142", timezone="America/New_York"),
        currency=currency,
        balance=balance,
        due_date=date(2026, 10, 1),
        profile=profile,
    )


def seed(url: str, now: datetime) -> Seeded:
    """Known activity, timed an hour or less before ``now`` (inside both governor windows)."""
    sessions = session_factory(make_engine(url))
    t = now - timedelta(hours=1)
    with sessions.begin() as s:
        upsert_account(s, account("M-1"), t)
        upsert_account(s, account("M-2"), t)
        upsert_account(s, account("M-3", currency="CNY", profile="CN", balance=90_000), t)
        upsert_account(s, account("M-4"), t)
        update_progress(s, "M-1", stage="early", dpd=20, balance_minor=None, paid_minor=None, now=t)
        update_progress(s, "M-2", stage="early", dpd=25, balance_minor=None, paid_minor=None, now=t)
        update_progress(s, "M-3", stage="middle", dpd=40, balance_minor=None, paid_minor=None, now=t)

        def contact(key: str, channel: str, outcome: str, status: str, at: datetime = t) -> None:
            reserve_attempt(
                s, dedupe_key=key, account_id="M-1", channel=channel, purpose="dunning",
                template="early_reminder", to_address="+12125550142", now=at,
            )  # fmt: skip
            mark_attempt(s, key, state="accepted", provider_sid=f"SID-{key}", outcome="sent", now=at)
            update_attempt_status_by_sid(s, f"SID-{key}", status, outcome, None, at + timedelta(minutes=1))

        # two SMS delivered; calls: one silent (abandoned), two conversations, one not answered
        contact("M-1/sms-1", "sms", "delivered", "delivered")
        contact("M-1/sms-2", "sms", "delivered", "delivered")
        contact("M-1/call-1", "voice", "silent", "completed")
        contact("M-1/call-2", "voice", "conversation", "completed")
        contact("M-1/call-3", "voice", "conversation", "completed")
        contact("M-1/call-4", "voice", "no_answer", "no-answer")
        # two days ago: inside the 30-day window of the rate, outside the 24-hour one
        contact("M-1/call-0", "voice", "silent", "completed", at=now - timedelta(days=2))

        # denied at send time by quiet hours; deferred at send time by the SMS cap; denied when planned
        reserve_attempt(
            s, dedupe_key="M-2/sms-1", account_id="M-2", channel="sms", purpose="dunning",
            template="early_reminder", to_address="+12125550142", now=t,
        )  # fmt: skip
        mark_attempt(s, "M-2/sms-1", state="denied", outcome="denied", now=t)
        for when, action, decision, rule in (
            (t, "contact", "denied", "gate.quiet_hours"),
            (t, "contact", "deferred", "gate.sms_cap"),
            (t + timedelta(minutes=5), "contact", "deferred", "gate.sms_cap"),
            (t, "contact_denied", "denied", "hold.pause"),
            (t, "plan_proposed", "rejected", "plan.max_periods"),
        ):
            audit(
                s,
                at=when,
                clock="policy",
                account_id="M-2",
                actor="test",
                action=action,
                decision=decision,
                rule=rule,
            )

        # holds: M-2 paused (active), M-4 disputed then verified (lifted: not counted)
        add_hold(s, "M-2", Hold(kind=HoldKind.PAUSE, reason="agent asked", since=t))
        add_hold(s, "M-4", Hold(kind=HoldKind.DISPUTE, reason="not mine", since=t))
        lift_hold(s, "M-4", HoldKind.DISPUTE, now=t + timedelta(minutes=10))

        # plans: M-1's broken, then a second one completed (account closed settled); M-3's running
        for plan_id, account_id, currency, status in (
            ("M-1-plan-1", "M-1", "USD", "broken"),
            ("M-1-plan-2", "M-1", "USD", "completed"),
            ("M-3-plan-1", "M-3", "CNY", "active"),
        ):
            save_plan(
                s,
                account_id,
                AgreedPlan(
                    plan_id=plan_id, kind=PlanKind.REINSTALMENT, currency=currency, total=20_000,
                    instalments=[Instalment(seq=1, due_date=date(2026, 12, 15), amount=20_000)],
                    agreed_at=t, proposed_by="sam",
                ),
            )  # fmt: skip
            if status != "active":
                set_plan_status(s, plan_id, status, now=t)
        set_mode(s, "M-1", "closed", close_reason="settled", now=t)
        set_mode(s, "M-3", "settlement", now=t)

        for account_id, amount, currency, ref in (
            ("M-1", 12_050, "USD", "P-1"),
            ("M-4", 5_000, "USD", "P-2"),
            ("M-3", 30_000, "CNY", "P-3"),
        ):
            record_payment(
                s, account_id=account_id, amount_minor=amount, currency=currency, reference=ref,
                received_at=t, source="lender",
            )  # fmt: skip
    return Seeded()


@pytest.fixture(scope="module")
def seeded(metrics_db: str) -> Seeded:
    return seed(metrics_db, datetime.now(UTC))
