"""Ending an account and starting it again on purpose: ``close`` and ``reopen``.

Both name the operator who acts (``--as NAME`` or ``COLLECT_OPERATOR``) and are audited. A write-off
from the command line takes two different operators, as through the API (``service/write_offs.py``):
money off a debt is never one person's decision.
"""

from __future__ import annotations

import argparse

from runtime.cli_common import client_for, console, err, money, operator_name, sessions_for
from runtime.settings import Settings


async def cmd_close(args: argparse.Namespace, settings: Settings) -> int:
    """As the API closes: a write-off waits for a second, different operator (service/write_offs.py)."""
    from service.write_offs import close_for

    actor = operator_name(args)
    if actor is None:
        return 2
    done = await close_for(
        await client_for(settings), sessions_for(settings), args.account, args.reason, args.note, actor
    )
    if done["status"] == "awaiting_second_supervisor":
        console.print(
            f"write-off of {args.account} requested by {actor}: another operator confirms it within 7 days"
        )
    else:
        console.print(
            f"close ({args.reason}) sent to {args.account} by {actor}"
            + (f", requested by {done['requested_by']}" if "requested_by" in done else "")
        )
    return 0


async def cmd_reopen(args: argparse.Namespace, settings: Settings) -> int:
    """Restart collection of a closed account, on purpose and audited (intake never does)."""
    from runtime.operator_actions import Refused, reopen_account

    actor = operator_name(args)
    if actor is None:
        return 2
    client = await client_for(settings)
    try:
        done = await reopen_account(
            client,
            sessions_for(settings),
            args.account,
            reason=args.reason,
            actor=actor,
            task_queue=settings.task_queue,
            contact_queue=settings.contact_task_queue,
            day_seconds=args.day_seconds or settings.day_seconds,
        )
    except Refused as exc:
        err.print(f"[red]not reopened:[/] {exc}")
        return 1
    console.print(
        f"{done.account_id} reopened by {actor} (was closed: {done.close_reason or '-'}): dunning again from "
        f"{money(done.balance, done.currency)} under {done.rules.versions}",
        highlight=False,
    )
    return 0
