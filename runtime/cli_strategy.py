"""``./collect strategy show`` and ``./collect strategy promote``: the champion/challenger split, and
promoting a challenger (audited, under the operator's name)."""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from runtime.cli_common import client_for, console, err, operator_name, sessions_for
from runtime.settings import Settings


async def cmd_strategy(args: argparse.Namespace, settings: Settings) -> int:
    from domain.strategy import StrategyError, load_strategy

    if args.strategy_command == "promote":
        return await _promote(args, settings)
    try:
        strategy = load_strategy(settings.strategy_file)
    except StrategyError as exc:
        err.print(f"[red]strategy refused:[/] {exc}", highlight=False, soft_wrap=True)
        return 2
    if strategy is None:
        console.print(
            f"no strategy at {settings.strategy_file}: every account gets its row's policy "
            "(copy policies/strategies/example.toml to start a test)",
            highlight=False,
        )
        return 0
    table = Table(title=f"Strategy {strategy.name} ({settings.strategy_file})")
    for col in ("variant", "role", "policy", "share of new accounts"):
        table.add_column(col)
    for i, v in enumerate(strategy.variants):
        table.add_row(v.name, "champion" if i == 0 else "challenger", v.policy, f"{v.share_bp / 100:g}%")
    console.print(table)
    return 0


async def _promote(args: argparse.Namespace, settings: Settings) -> int:
    from domain.strategy import StrategyError
    from runtime.strategy_actions import promote_strategy, split

    actor = operator_name(args)
    if actor is None:
        return 2
    client: Any = await client_for(settings) if args.upgrade_running else None
    try:
        done = await promote_strategy(
            settings.strategy_file,
            args.variant,
            actor=actor,
            sessions=sessions_for(settings),
            client=client,
            upgrade_running=args.upgrade_running,
        )
    except StrategyError as exc:
        err.print(f"[red]not promoted:[/] {exc}", highlight=False, soft_wrap=True)
        return 2
    console.print(
        f"{args.variant} promoted by {actor}: new accounts get {done.after.champion.policy} "
        f"(was {split(done.before)})",
        highlight=False,
    )
    if done.upgrade is None:
        return 0
    up = done.upgrade
    for account_id, reason in up.failed:
        err.print(f"[red]{account_id}[/]: {reason}")
    console.print(
        f"{done.before.champion.name}'s open accounts to {up.policy_to or done.after.champion.policy}: "
        f"{len(up.signalled)} signalled, {len(up.skipped)} already there, {len(up.not_running)} not running, "
        f"{len(up.failed)} failed; each moves at its next safe point",
        highlight=False,
    )
    return 1 if up.failed else 0
