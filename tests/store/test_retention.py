"""Audit retention per profile: lines older than the profile's years go, everything younger stays."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from domain.profiles import load_profile
from store.audit import audit, audit_entries, purge_expired_audit
from tests.store.conftest import NOW, stored


def test_purge_respects_each_profiles_retention(sessions: sessionmaker[Session]) -> None:
    us = stored(sessions, profile="US")
    cn = stored(sessions, profile="CN", phone="+8613800138000", currency="CNY")
    years = {"US": load_profile("US").retention_years, "CN": load_profile("CN").retention_years}
    assert years == {"US": 3, "CN": 5}
    ages = [1, 4, 6]  # years ago
    with sessions.begin() as s:
        for account in (us, cn):
            for age in ages:
                audit(
                    s,
                    at=NOW - timedelta(days=365 * age + 2),
                    clock="policy",
                    account_id=account.account_id,
                    actor="test",
                    action="contact",
                    decision="sent",
                    rule=None,
                    details={"age": str(age)},
                )
    with sessions.begin() as s:
        dry = purge_expired_audit(s, NOW, years, dry_run=True)
    assert dry["US"] >= 2 and dry["CN"] >= 1
    with sessions.begin() as s:
        purge_expired_audit(s, NOW, years)
    with sessions.begin() as s:
        left_us = [e.details["age"] for e in audit_entries(s, us.account_id) if e.actor == "test"]
        left_cn = [e.details["age"] for e in audit_entries(s, cn.account_id) if e.actor == "test"]
    assert left_us == ["1"]  # 4 and 6 years are past the US 3 years
    assert left_cn == ["4", "1"] or sorted(left_cn) == ["1", "4"]  # only 6 years is past the CN 5
