"""The debtor page's "What this means for your credit" section (issue 15, item 5), from the database.

The rules are :func:`domain.consequences.consequences`; this module only gathers its facts: the
account's pinned policy and profile, the last line event the lender was sent, and the account as the
monthly furnishing file would see it today (``store/credit_facts.py``, the file's own query).
"""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from domain.charge_view import ChargesSummary
from domain.consequences import Line, LineEvent, consequences
from store import rules as rule_store
from store.accounts import account_snapshot
from store.credit_facts import furnishing_facts
from store.outbox import account_events

LINE_EVENTS = ("line_frozen", "line_restored")


def credit_lines(
    sessions: sessionmaker[Session],
    account_id: str,
    *,
    today: date,
    language: str,
    charges: ChargesSummary | None,
    open_account: bool = True,
) -> list[Line]:
    with sessions.begin() as s:
        snap = account_snapshot(s, account_id)
        if snap is None:
            return []
        policy = rule_store.policy(s, snap.policy_version, snap.policy)
        profile = rule_store.profile(s, snap.profile_version, snap.profile)
        events = [e for e in account_events(s, account_id) if e.type in LINE_EVENTS]
        law = profile.credit_reporting
        facts = None
        if law is not None and policy.credit_reporting is not None:
            found = furnishing_facts(
                s,
                profile=snap.profile,
                cycle_date=today,
                notice_template=law.notice_template,
                account_id=account_id,
            )
            facts = found[0].facts if found else None
    last = events[-1] if events else None
    zone = ZoneInfo(snap.zones[0])
    line = LineEvent(kind=last.type, on=last.occurred_at.astimezone(zone).date()) if last else None
    return consequences(
        policy=policy,
        profile=profile,
        product=snap.product,
        due_date=snap.due_date,
        today=today,
        language=language,
        charges=charges,
        line=line,
        facts=facts,
        open_account=open_account,
    )
