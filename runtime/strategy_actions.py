"""Promoting a challenger: the strategy file rewritten, the promotion audited, running accounts moved
if asked (``./collect strategy promote``).

Why a file and not a table: the strategy sits beside the policies it names (``policies/``), is
reviewed like them, and intake reads it the way it reads them. The promotion rewrites it so every new
account gets the winner, and writes the audit line in the same transaction's reach: the line is
committed only once the file is written, so the log never claims a promotion the file does not show.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker
from temporalio.client import Client

from domain.strategy import Strategy, StrategyError, load_strategy, promoted, render_strategy
from runtime.operator_actions import UpgradeResult, upgrade_accounts
from store.audit import audit
from store.variants import open_accounts_in


@dataclass(frozen=True)
class Promotion:
    before: Strategy
    after: Strategy
    #: the old champion's open accounts moved to the winner's policy (``--upgrade-running``), or None
    upgrade: UpgradeResult | None = None


def split(strategy: Strategy) -> str:
    """``control 90% (default), gentle 10% (gentle)``: the split as one line for people and logs."""
    return ", ".join(f"{v.name} {v.share_bp / 100:g}% ({v.policy})" for v in strategy.variants)


def _write(path: Path, text: str) -> None:
    """Replace the file in one step: intake never reads half a strategy."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


async def promote_strategy(
    path: Path,
    variant: str,
    *,
    actor: str,
    sessions: sessionmaker[Session],
    client: Client | None = None,
    upgrade_running: bool = False,
    now: datetime | None = None,
) -> Promotion:
    """Make ``variant`` the champion with 100% of new accounts, audited under ``actor``.

    Accounts already taken in keep their variant and their rules; with ``upgrade_running`` the old
    champion's open accounts are moved to the winner's policy through the policy upgrade
    (:func:`runtime.operator_actions.upgrade_accounts`: each at its next safe point, each audited).
    ``StrategyError`` (nothing changed) for no strategy file, an unknown variant or no actor."""
    actor = (actor or "").strip()
    if not actor:
        raise StrategyError("who promotes it? name yourself with --as NAME (or COLLECT_OPERATOR)")
    if upgrade_running and client is None:
        raise StrategyError("moving running accounts needs Temporal")
    before = load_strategy(path)
    if before is None:
        raise StrategyError(f"no strategy at {path}: nothing to promote")
    after = promoted(before, variant)
    at = now or datetime.now(UTC)
    note = (
        f"Strategy {before.name}: {variant} promoted to champion by {actor} on {at:%Y-%m-%d %H:%M} UTC.\n"
        f"Before: {split(before)}.\nEvery new account now gets {after.champion.policy}; "
        "`./collect strategy promote` wrote this file (see the audit log)."
    )
    with sessions.begin() as s:
        audit(
            s,
            at=at,
            clock="wall",
            account_id=None,
            actor=actor,
            action="strategy_promote",
            decision="challenger_promoted",
            rule=f"strategy {before.name}",
            details={
                "variant": variant,
                "policy": after.champion.policy,
                "before": split(before),
                "after": split(after),
                "file": str(path),
                "upgrade_running": upgrade_running,
            },
        )
        _write(path, render_strategy(after, note=note))  # a failure here rolls the audit line back
    if not upgrade_running or before.champion.name == variant:
        return Promotion(before=before, after=after)
    assert client is not None
    with sessions.begin() as s:
        running = open_accounts_in(s, before.champion.name)
    if not running:
        return Promotion(before=before, after=after, upgrade=UpgradeResult(policy_to=None, profile_to=None))
    result = await upgrade_accounts(
        client, sessions, actor=actor, policy_to=after.champion.policy, accounts=running, now=at
    )
    return Promotion(before=before, after=after, upgrade=result)
