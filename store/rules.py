"""The versions of policy and profile files accounts run, by ``name@digest`` (see ``domain.rules``).

Intake stores the text of each version it pins on an account, so everything outside the workflow
(the send activity's live gate, the API's plan preview, ``./collect policy``) reads the same rules
the account's workflow carries, whatever the files on disk say today.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import lru_cache
from typing import NamedTuple

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from domain.policy import Policy
from domain.profiles import Profile
from domain.rules import Rules, RuleSource, parse
from store.models import AccountRow, RuleVersionRow
from store.rows import _account_row


def save_sources(s: Session, sources: Iterable[RuleSource], now: datetime) -> None:
    """Store each version's text once (a version is immutable: its name is its content's digest)."""
    rows = [
        {"version": src.version, "kind": src.kind, "name": src.name, "text": src.text, "created_at": now}
        for src in sources
    ]
    if not rows:
        return
    insert = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
    s.execute(insert(RuleVersionRow).values(rows).on_conflict_do_nothing(index_elements=["version"]))


#: Versions already read, by version: a version's text never changes (its name is its digest), so
#: the send activity reads it from the database once per process, not once per send (1.3 of the 36
#: statements a send made)
_KNOWN: dict[str, RuleSource] = {}
_KNOWN_MAX = 256


def source(s: Session, version: str) -> RuleSource | None:
    if (known := _KNOWN.get(version)) is not None:
        return known
    row = s.get(RuleVersionRow, version)
    if row is None:
        return None
    found = RuleSource(kind=row.kind, name=row.name, version=row.version, text=row.text)
    if len(_KNOWN) >= _KNOWN_MAX:
        _KNOWN.clear()
    _KNOWN[version] = found
    return found


def sources(s: Session, kind: str | None = None) -> list[RuleSource]:
    query = select(RuleVersionRow).order_by(RuleVersionRow.name, RuleVersionRow.created_at)
    if kind is not None:
        query = query.where(RuleVersionRow.kind == kind)
    return [RuleSource(kind=r.kind, name=r.name, version=r.version, text=r.text) for r in s.scalars(query)]


@lru_cache(maxsize=64)
def _parsed(kind: str, version: str, text: str) -> Policy | Profile:
    return parse(kind, text, source=version)


def profile(s: Session, version: str | None, name: str) -> Profile:
    """The profile of that version; the file's current one for accounts taken in before versions."""
    from domain.profiles import load_profile

    src = source(s, version) if version else None
    if src is None:
        return load_profile(name)
    parsed = _parsed(src.kind, src.version, src.text)
    assert isinstance(parsed, Profile)
    return parsed


def policy(s: Session, version: str | None, name: str) -> Policy:
    from domain.policy import load_policy

    src = source(s, version) if version else None
    if src is None:
        return load_policy(name)
    parsed = _parsed(src.kind, src.version, src.text)
    assert isinstance(parsed, Policy)
    return parsed


def set_account_rules(s: Session, account_id: str, rules: tuple[str, str], now: datetime) -> None:
    """Which versions an account runs now (at intake, and after an operator's upgrade)."""
    row = _account_row(s, account_id)
    policy_version, profile_version = rules
    row.policy_version, row.profile_version = policy_version, profile_version
    row.policy = policy_version.split("@", 1)[0]
    row.profile = profile_version.split("@", 1)[0]
    row.updated_at = now


def rules_for(s: Session, policy_version: str, profile_version: str) -> Rules:
    """Both versions as the workflow carries them; ``LookupError`` naming a version not stored."""
    found = {v: source(s, v) for v in (policy_version, profile_version)}
    missing = [v for v, src in found.items() if src is None]
    if missing:
        raise LookupError(f"no stored version {', '.join(missing)}")
    pol, prof = found[policy_version], found[profile_version]
    assert pol is not None and prof is not None
    if pol.kind != "policy" or prof.kind != "profile":
        raise LookupError(f"{policy_version} must be a policy and {profile_version} a profile")
    parsed_policy, parsed_profile = (
        _parsed("policy", pol.version, pol.text),
        _parsed("profile", prof.version, prof.text),
    )
    assert isinstance(parsed_policy, Policy) and isinstance(parsed_profile, Profile)
    return Rules(
        policy=parsed_policy,
        profile=parsed_profile,
        policy_version=policy_version,
        profile_version=profile_version,
    )


def accounts_by_version(s: Session) -> dict[tuple[str, str | None, str | None], int]:
    """Open accounts per (policy, policy version, profile version): what ``./collect policy`` lists."""
    rows = s.execute(
        select(AccountRow.policy, AccountRow.policy_version, AccountRow.profile_version, func.count())
        .where(AccountRow.mode != "closed")
        .group_by(AccountRow.policy, AccountRow.policy_version, AccountRow.profile_version)
    )
    return {(p, pv, fv): int(n) for p, pv, fv, n in rows}


def open_accounts_by_rules(s: Session) -> dict[tuple[str, str | None, str, str | None], int]:
    """Open accounts per (policy, policy version, profile, profile version); a version is None for
    accounts taken in before versions were pinned."""
    rows = s.execute(
        select(
            AccountRow.policy,
            AccountRow.policy_version,
            AccountRow.profile,
            AccountRow.profile_version,
            func.count(),
        )
        .where(AccountRow.mode != "closed")
        .group_by(
            AccountRow.policy, AccountRow.policy_version, AccountRow.profile, AccountRow.profile_version
        )
    )
    return {(p, pv, f, fv): int(n) for p, pv, f, fv, n in rows}


def pin_accounts(s: Session, account_ids: Sequence[str], rules: tuple[str, str], now: datetime) -> None:
    """:func:`set_account_rules` for many accounts at once (intake: the accounts a batch just stored)."""
    if not account_ids:
        return
    policy_version, profile_version = rules
    s.execute(
        update(AccountRow)
        .where(AccountRow.account_id.in_(list(account_ids)))
        .values(
            policy_version=policy_version,
            profile_version=profile_version,
            policy=policy_version.split("@", 1)[0],
            profile=profile_version.split("@", 1)[0],
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )


class PinnedAccount(NamedTuple):
    account_id: str
    mode: str
    policy: str
    policy_version: str | None
    profile: str
    profile_version: str | None


def pinned_accounts(
    s: Session,
    account_ids: Sequence[str] | None = None,
    *,
    policy: str | None = None,
    profile: str | None = None,
) -> list[PinnedAccount]:
    """These accounts (any mode), or every open account running that policy and/or profile name,
    with the versions they run: what ``./collect policy upgrade`` selects from."""
    query = select(
        AccountRow.account_id,
        AccountRow.mode,
        AccountRow.policy,
        AccountRow.policy_version,
        AccountRow.profile,
        AccountRow.profile_version,
    ).order_by(AccountRow.account_id)
    if account_ids is not None:
        query = query.where(AccountRow.account_id.in_(list(account_ids)))
    else:
        query = query.where(AccountRow.mode != "closed")
        if policy is not None:
            query = query.where(AccountRow.policy == policy)
        if profile is not None:
            query = query.where(AccountRow.profile == profile)
    return [PinnedAccount(*row) for row in s.execute(query)]
