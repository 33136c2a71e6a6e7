"""The commands that act on one account: pay, negotiate, pause and resume, opt-out, complaints and
disputes and their decisions, cease, recall (closing and reopening are in :mod:`runtime.cli_closing`).

Why they are built this way:

* **A person acts, never "cli".** Each names the operator (``--as NAME``, else ``COLLECT_OPERATOR``)
  and refuses without one (exit 2) before it connects to anything, so nothing is done anonymously.
* **The API's functions, not a second implementation.** Each calls what the API and the console call
  (:mod:`service.holds`, :mod:`service.payments`, :mod:`service.plans`) with that name: the same
  checks (an account that cannot take it, a complaint that is not open) and the same audit lines.
  A fee waiver therefore goes to the supervisors' queue like any other: nobody approves their own.
* **A refusal is one line** on stderr a script can grep, exit 1 (3 for a plan that breaks policy,
  each broken rule named).
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Any

from runtime.cli_common import client_for, console, err, money, operator_name, sessions_for
from runtime.settings import Settings

#: what an action does once the operator is known: (client, sessions, actor) → the line to print
Action = Callable[[Any, Any, str], Awaitable[str]]


async def _acting(args: argparse.Namespace, settings: Settings, action: Action) -> int:
    """Run ``action`` as the named operator; the account's refusal is one line and exit 1."""
    from domain.plans import PlanRejected
    from service import operations as ops

    actor = operator_name(args)
    if actor is None:
        return 2
    client = await client_for(settings)
    try:
        said = await action(client, sessions_for(settings), actor)
    except PlanRejected as exc:
        for v in exc.violations:
            err.print(f"[red]plan rejected:[/] {v.rule}: {v.message}", highlight=False)
        return 3
    except (
        ops.AccountNotFound,
        ops.AccountClosed,
        ops.NothingToDecide,
        ops.NotPlaced,
        ops.InvalidRequest,
        ops.PlanConflict,
    ) as exc:
        err.print(f"[red]not done:[/] {exc}", highlight=False)
        return 1
    console.print(said, highlight=False)
    return 0


def _currency(sessions: Any, account_id: str) -> str:
    from service.operations import AccountNotFound
    from store.accounts import account_snapshot

    with sessions.begin() as s:
        snap = account_snapshot(s, account_id)
    if snap is None:
        raise AccountNotFound(account_id)
    return snap.currency


def _amount(text: str, currency: str, field: str) -> int:
    from domain.money import parse_major
    from service.operations import InvalidRequest

    try:
        return parse_major(text, currency)
    except ValueError as exc:
        raise InvalidRequest(field, str(exc)) from None


async def cmd_pay(args: argparse.Namespace, settings: Settings) -> int:
    """A payment under the operator's name; the same reference counts once (service/payments.py)."""
    from service.payments import record_payment

    async def pay(client: Any, sessions: Any, actor: str) -> str:
        currency = _currency(sessions, args.account)
        amount = _amount(args.amount, currency, "amount")
        reference = args.reference or f"cli-{args.account}-{datetime.now(UTC):%Y%m%dT%H%M%S%f}"
        taken = await record_payment(
            client, args.account, amount, currency, reference, actor, sessions=sessions
        )
        note = f"; {taken.note}" if taken.note else ""
        return f"payment of {money(amount, currency)} sent to {args.account} by {actor} (reference {reference}){note}"

    return await _acting(args, settings, pay)


async def cmd_negotiate(args: argparse.Namespace, settings: Settings) -> int:
    """A plan proposed by the operator; a fee waiver waits in the supervisors' queue (four eyes)."""
    from pydantic import ValidationError

    from domain.plans import PlanKind, PlanProposal
    from service import plans
    from service.operations import InvalidRequest

    async def negotiate(client: Any, sessions: Any, actor: str) -> str:
        currency = _currency(sessions, args.account)
        try:
            first_due = date.fromisoformat(args.first_due)
        except ValueError:
            raise InvalidRequest("--first-due", f"{args.first_due!r} is not a date (YYYY-MM-DD)") from None
        try:
            proposal = PlanProposal(
                kind=args.kind,
                first_due=first_due,
                periods=args.periods,
                period_days=args.period_days,
                amount=_amount(args.amount, currency, "amount") if args.amount else None,
                waiver=_amount(args.waiver, currency, "waiver") if args.waiver else 0,
                hardship_evidence=args.evidence,
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            raise InvalidRequest("--" + "-".join(str(p) for p in first["loc"]), first["msg"]) from None
        if proposal.kind == PlanKind.FEE_WAIVER:
            queued = await plans.request_waiver(client, sessions, args.account, proposal, actor)
            return (
                f"fee waiver for {args.account} queued by {actor} as request #{queued.id}: a different "
                f"supervisor approves it (/console/approvals, or POST /api/waivers/{queued.id}/approve)"
            )
        plan = await plans.propose_settlement(client, args.account, proposal, actor, sessions=sessions)
        rows = "".join(
            f"\n  {i.seq}. {i.due_date}  {money(i.amount, plan.currency)}" for i in plan.instalments
        )
        return f"plan {plan.plan_id} agreed by {actor}; dunning has stopped. Instalments:{rows}"

    return await _acting(args, settings, negotiate)


async def cmd_hold(args: argparse.Namespace, settings: Settings) -> int:
    """``pause`` / ``resume``: an operator hold, with its reason."""
    from service import holds

    async def hold(client: Any, sessions: Any, actor: str) -> str:
        do = holds.pause if args.command == "pause" else holds.resume
        await do(client, args.account, args.reason, actor, sessions=sessions)
        return f"{args.command} sent to {args.account} by {actor}"

    return await _acting(args, settings, hold)


async def cmd_opt_out(args: argparse.Namespace, settings: Settings) -> int:
    """The debtor refused a channel by other means than a reply (a call, a letter)."""
    from domain.accounts import Channel
    from service import holds

    async def opt_out(client: Any, sessions: Any, actor: str) -> str:
        await holds.opt_out(client, args.account, Channel(args.channel), actor, sessions=sessions)
        return f"{args.channel} opt-out sent to {args.account} by {actor}"

    return await _acting(args, settings, opt_out)


async def cmd_case(args: argparse.Namespace, settings: Settings) -> int:
    """Complaints, disputes, their decisions, cease and recall: each the function the API calls."""
    from domain.accounts import Channel
    from service import holds

    async def case(client: Any, sessions: Any, actor: str) -> str:
        account, command = args.account, args.command
        if command == "complaint":
            await holds.file_complaint(
                client, account, args.reason, actor, source=args.source, sessions=sessions,
                settings=settings, channel="cli",
            )  # fmt: skip
        elif command == "resolve-complaint":
            await holds.resolve_complaint(
                client, account, args.decision, args.reason, actor, sessions=sessions
            )
        elif command == "answer-plan":
            told = await holds.answer_plan_request(
                client, account, args.decision, actor, reason=args.reason, days=args.days, sessions=sessions
            )
            return f"plan request of {account} {told} (by {actor})"
        elif command == "dispute":
            await holds.file_dispute(
                client, account, args.reason, actor, sessions=sessions, settings=settings, channel="cli"
            )
        elif command == "verify-dispute":
            await holds.verify_dispute(client, account, args.reason, actor, sessions=sessions)
        elif command == "cease":
            channel = None if args.channel == "all" else Channel(args.channel)
            await holds.cease(client, account, channel, actor, sessions=sessions)
        elif command == "recall":
            agency = await holds.recall(client, account, args.reason, actor, sessions=sessions)
            return f"{account} recalled from {agency} by {actor}"
        else:
            raise ValueError(f"not a case command: {command}")
        return f"{command} sent to {account} by {actor}"

    return await _acting(args, settings, case)


CASE_COMMANDS = (
    "complaint",
    "resolve-complaint",
    "answer-plan",
    "dispute",
    "verify-dispute",
    "cease",
    "recall",
)
