"""The operator's command line: intake, look, pay, negotiate, pause, audit, and the demo.

./collect demo --day-seconds 2     # everything, embedded; watch weeks pass in minutes
./collect intake data/sample_portfolio.csv
./collect status ACC-00001
./collect timeline ACC-00001
./collect pay ACC-00001 120.50
./collect negotiate ACC-00001 --kind reinstalment --periods 3 --first-due 2026-12-01
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.table import Table

from runtime.cli_acting import CASE_COMMANDS, cmd_case, cmd_hold, cmd_negotiate, cmd_opt_out, cmd_pay
from runtime.cli_closing import cmd_close, cmd_reopen
from runtime.cli_common import account_handle, client_for, console, err, money, operator_name, sessions_for
from runtime.cli_parser import EXAMPLES, parser
from runtime.cli_processes import (
    cmd_doctor,
    cmd_events,
    cmd_link,
    cmd_migrate,
    cmd_server,
    cmd_service,
    cmd_worker,
    install_stop_signals,
    local_dev_server,
)
from runtime.cli_reporting import cmd_credit_file
from runtime.cli_strategy import cmd_strategy
from runtime.private import private_dir
from runtime.settings import ROOT, Settings, get_settings

__all__ = ["COMMANDS", "EXAMPLES", "demo_main", "main", "parser"]


# ---- intake ------------------------------------------------------------------------------------
async def cmd_intake(args: argparse.Namespace, settings: Settings, client: Any = None) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from domain.intake import parse_portfolio_file
    from domain.intake_files import FileRefused
    from domain.strategy import StrategyError, assign_accounts, load_strategy
    from runtime.intake import intake_accounts

    actor = operator_name(args)
    if actor is None:
        return 2
    path = Path(args.file)
    try:
        file, report = parse_portfolio_file(
            path.read_bytes(),
            name=path.name,
            encoding=getattr(args, "encoding", None),
            decimal_comma=getattr(args, "decimal_comma", False),
        )
    except (FileRefused, OSError) as exc:
        err.print(f"[red]{path}[/]: {exc}", highlight=False, soft_wrap=True)
        return 2
    console.print(f"{path}: read as {file.describe()}", highlight=False, soft_wrap=True)
    for error in report.errors:
        who = f" ({error.account_id})" if error.account_id else ""
        err.print(f"[yellow]{path}:{error.line}[/]{who}: [bold]{error.field}[/]: {error.reason}")
    try:  # a broken strategy file stops intake: half the file on the wrong policy is worse
        strategy = load_strategy(settings.strategy_file)
    except StrategyError as exc:
        err.print(f"[red]strategy refused:[/] {exc}", highlight=False, soft_wrap=True)
        return 2
    accounts, assignments = assign_accounts(
        strategy, [a for _, a in report.accounts], set(report.policy_given)
    )
    if strategy is not None:
        given = len(report.accounts) - len(assignments)
        console.print(
            f"strategy {strategy.name}: "
            + ", ".join(f"{v.name} {v.share_bp / 100:g}% ({v.policy})" for v in strategy.variants)
            + (f"; {given} rows name their policy and stay out of it" if given else ""),
            highlight=False,
        )
    client = client or await client_for(settings)
    sessions = sessions_for(settings)
    with Progress(
        TextColumn("intake"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task("intake", total=len(accounts))
        result = await intake_accounts(
            client,
            sessions,
            accounts,
            task_queue=settings.task_queue,
            contact_queue=settings.contact_task_queue,
            day_seconds=args.day_seconds or settings.day_seconds,
            progress=lambda _a, _s: bar.advance(task),
            assignments=assignments,
        )
    for account_id, reason in result.failed:
        err.print(f"[red]{account_id}[/]: {reason}")
    counts = {
        "started": len(result.started),
        "already": len(result.already),
        "closed": len(result.closed),
        "rejected": len(report.errors),
        "failed": len(result.failed),
    }
    if strategy is not None:  # how many of this run's accounts went to each variant
        new = set(result.started)
        for v in strategy.variants:
            counts[f"variant {v.name}"] = sum(
                1 for i, a in assignments.items() if a.variant == v.name and i in new
            )
    await asyncio.to_thread(_audit_intake, sessions, actor, path.name, counts)
    for account_id, reason in result.closed:
        console.print(
            f"[yellow]{account_id}[/] is closed ({reason}): not restarted; "
            f'`./collect reopen {account_id} --reason "…"` does it on purpose',
            highlight=False,
        )
    console.print(
        f"{len(result.started)} started, {len(result.already)} already known, "
        f"{len(result.closed)} closed (not restarted), "
        f"{len(report.errors)} rows rejected, {len(result.failed)} failed"
    )
    return 1 if result.failed else 0


def _audit_intake(sessions: Any, actor: str, file: str, counts: dict[str, int]) -> None:
    """Who took which file in, and what became of its rows: one line for the whole run."""
    from store.audit import audit

    with sessions.begin() as s:
        audit(s, at=datetime.now(UTC), clock="wall", account_id=None, actor=actor, action="intake",
              decision="taken_in", details={"file": file, **counts})  # fmt: skip


async def cmd_policy(args: argparse.Namespace, settings: Settings) -> int:
    """``policy list``: the versions and who runs them; ``policy upgrade``: move running accounts."""
    from runtime.operator_actions import rule_versions, upgrade_accounts

    if args.policy_command == "list":
        sessions = sessions_for(settings)
        table = Table(title="Policy and profile versions")
        for col in ("kind", "name", "version", "file now", "stored", "open accounts"):
            table.add_column(col)
        for v in rule_versions(sessions):
            if v.problem:
                table.add_row(v.kind, v.name, f"[red]{v.problem}[/]", "", "", "")
                continue
            table.add_row(
                v.kind,
                v.name,
                v.version or "(taken in before versions)",
                "yes" if v.in_file else "",
                "yes" if v.stored else "",
                str(v.open_accounts),
            )
        console.print(table)
        return 0
    actor = operator_name(args)
    if actor is None:
        return 2
    sessions = sessions_for(settings)
    client = await client_for(settings)
    try:
        result = await upgrade_accounts(
            client,
            sessions,
            actor=actor,
            policy_to=args.to,
            profile_to=args.profile_to,
            accounts=args.account or (),
            all_open=args.all,
            dry_run=args.dry_run,
        )
    except (ValueError, LookupError) as exc:
        err.print(f"[red]nothing sent:[/] {exc}")
        return 2
    for account_id, reason in result.failed:
        err.print(f"[red]{account_id}[/]: {reason}")
    target = ", ".join(v for v in (result.policy_to, result.profile_to) if v)
    verb = "would be signalled" if result.dry_run else "signalled"
    console.print(
        f"to {target}: {len(result.signalled)} {verb}, {len(result.skipped)} skipped (already there), "
        f"{len(result.not_running)} not running, {len(result.failed)} failed"
        + ("" if result.dry_run else "; each account moves at its next safe point (see `./collect audit`)"),
        highlight=False,
    )
    return 1 if result.failed else 0


# ---- looking -----------------------------------------------------------------------------------
async def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from domain.timeline import AccountStatus

    client = await client_for(settings)
    status = await account_handle(client, args.account).query("status", result_type=AccountStatus)
    if args.json:
        print(status.model_dump_json(indent=2))
        return 0
    table = Table(title=f"Account {status.account_id} ({status.masked_phone})", show_header=False)
    table.add_row("mode", status.mode.value)
    table.add_row("stage", f"{status.stage.value} ({status.dpd} days past due)")
    table.add_row("balance", money(status.balance, status.currency))
    table.add_row("paid", money(status.paid_total, status.currency))
    table.add_row("holds", ", ".join(status.holds) or "none")
    table.add_row("opted out", ", ".join(status.opted_out) or "none")
    table.add_row(
        "unreachable",
        (", ".join(status.unreachable) or "none") + (" · CONTACT LOST" if status.contact_lost else ""),
    )
    when = f"{status.next_action_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if status.next_action_at else "-"
    table.add_row("next", f"{status.next_action or '-'} at {when}")
    if (paused := voice_paused_line(status)) is not None:
        table.add_row("voice", paused)
    if status.plan:
        table.add_row(
            "plan",
            f"{status.plan.kind.value}: {money(status.plan_paid, status.currency)} of "
            f"{money(status.plan.total, status.currency)}, ends {status.plan.end_date}",
        )
    for c in status.last_contacts[-5:]:
        table.add_row("contact", f"{c.at:%Y-%m-%d %H:%M} {c.channel} {c.template}: {c.outcome}")
    console.print(table)
    return 0


def voice_paused_line(status: Any) -> str | None:
    """``paused by the call governor until …`` while the campaign's abandoned-call governor pauses voice."""
    until = status.voice_paused_until
    if until is None or until <= status.policy_now:
        return None
    return (
        f"paused by the call governor (campaign abandoned-call rate) until about "
        f"{until.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    )


async def cmd_timeline(args: argparse.Namespace, settings: Settings) -> int:
    from domain.timeline import Timeline

    client = await client_for(settings)
    tl = await account_handle(client, args.account).query("timeline", result_type=Timeline)
    if args.json:
        print(tl.model_dump_json(indent=2))
        return 0
    table = Table(title=f"What happens to {args.account} if nothing changes ({tl.mode.value})")
    for col in ("when", "DPD", "what"):
        table.add_column(col)
    for e in tl.entries:
        table.add_row(f"{e.at:%Y-%m-%d %H:%M %z}", str(e.dpd), e.description)
    console.print(table)
    if tl.chargeoff_date:
        console.print(f"charge-off date: {tl.chargeoff_date}")
    if tl.plan_end_date:
        console.print(f"plan ends: {tl.plan_end_date}")
    if tl.if_instalment_missed:
        console.print(f"if an instalment is missed: {tl.if_instalment_missed}")
    console.print("contact stops on: " + "; ".join(tl.contact_stops_when))
    return 0


async def cmd_purge_audit(args: argparse.Namespace, settings: Settings) -> int:
    """Apply each profile's retention (policies/profiles/*.toml ``retention_years``) to the audit log.

    Deleting audit lines is itself audited: one line naming the operator and the counts."""
    from domain.profiles import load_profile
    from store.audit import audit, purge_expired_audit

    actor = operator_name(args)
    if actor is None:
        return 2
    names = [p.stem.upper() for p in sorted((ROOT / "policies" / "profiles").glob("*.toml"))]
    years = {name: load_profile(name).retention_years for name in names}
    now = datetime.now(UTC)
    with sessions_for(settings).begin() as s:
        counts = purge_expired_audit(s, now, years, dry_run=args.dry_run)
        if not args.dry_run:
            details = {"deleted": counts, "retention_years": years}
            audit(s, at=now, clock="wall", account_id=None, actor=actor, action="audit_purged",
                  decision="deleted", details=details)  # fmt: skip
    verb = "would delete" if args.dry_run else "deleted"
    for name, n in counts.items():
        console.print(f"{name}: kept {years[name]} years; {verb} {n} older audit lines")
    return 0


async def cmd_audit(args: argparse.Namespace, settings: Settings) -> int:
    from store.audit import audit_entries

    sessions = sessions_for(settings)
    with sessions.begin() as s:
        entries = audit_entries(s, args.account)
    rows = [e.model_dump(mode="json") for e in entries]
    if args.csv:
        out = open(args.csv, "w", newline="", encoding="utf-8") if args.csv != "-" else sys.stdout
        writer = csv.DictWriter(out, fieldnames=list(rows[0].keys()) if rows else ["at"])
        writer.writeheader()
        for row in rows:
            writer.writerow({k: json.dumps(v) if isinstance(v, dict) else v for k, v in row.items()})
        if out is not sys.stdout:
            out.close()
        return 0
    table = Table(title=f"Audit of {args.account}")
    for col in ("at", "actor", "action", "decision", "rule", "details"):
        table.add_column(col)
    for row in rows:
        table.add_row(  # policy time, and the wall time beside it where they differ (day scaling)
            str(row.get("at")) + (f"\n(wall {row['wall_at']})" if row.get("wall_at") else ""),
            str(row.get("actor")),
            str(row.get("action")),
            str(row.get("decision")),
            str(row.get("rule") or ""),
            json.dumps(row.get("details") or {}, ensure_ascii=False),
        )
    console.print(table)
    return 0


# ---- the demo ----------------------------------------------------------------------------------
#: the demo's sender pacing against the carrier simulator (COLLECT_SENDER_MESSAGES_PER_SECOND wins)
DEMO_SENDS_PER_SECOND = 10.0


async def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    """Everything on one machine: dev server (file-backed), simulator, migrations, worker, intake.

    Ports and state come from the settings (``COLLECT_TEMPORAL_ADDRESS``, ``COLLECT_TEMPORAL_UI_PORT``,
    ``COLLECT_SERVICE_PORT``, ``COLLECT_SIMULATOR_PORT``, ``COLLECT_STATE_DIR``), so a second demo with
    other values runs beside the first. :func:`demo_main` is the same, as a process's entry point.
    """
    from runtime.local_secrets import with_demo_secrets
    from service.app import make_server
    from workers.setup import build_workers

    var = private_dir(settings.state_dir)
    install_stop_signals(asyncio.current_task())
    if args.day_seconds:
        settings = settings.model_copy(update={"day_seconds": args.day_seconds})
    if settings.using_simulator and "sender_messages_per_second" not in settings.model_fields_set:
        # the simulator is not a long code held to about one text a second: the demo's days are
        # scaled, and 240 debtors' first reminders at 1/s would take four minutes
        settings = settings.model_copy(update={"sender_messages_per_second": DEMO_SENDS_PER_SECOND})
    server = None
    simulator = None
    idp = None
    workers: list[Any] = []
    tasks: list[asyncio.Task[Any]] = []
    executor = None
    http = None
    acting: asyncio.Task[None] | None = None
    try:
        if settings.temporal_is_local:
            server = local_dev_server(settings, "the demo")
        if settings.using_simulator:
            from carrier import run_in_thread

            console.print(f"no Twilio credentials: carrier simulator on {settings.twilio_base}")
            simulator = run_in_thread(
                settings.simulator_host, settings.simulator_port, settings.twilio_sid, settings.twilio_token
            )
        settings, demo_tokens = with_demo_secrets(settings, var)
        sso_users: dict[str, str] = {}
        if args.sso:
            from runtime.local_secrets import local_identity_provider

            idp, settings, sso_users = local_identity_provider(settings, var)
        client = await client_for(settings)
        workers, _deps, executor = build_workers(client, settings)
        tasks = [asyncio.create_task(w.run()) for w in workers]
        from runtime.devserver import port_open

        if port_open(settings.service_host, settings.service_port):
            err.print(f"[yellow]port {settings.service_port} is taken: the HTTP service is not started[/]")
        else:
            http = make_server(settings, client)
            tasks.append(asyncio.create_task(http.serve()))
        if not settings.strategy_file.exists():  # the demo's own champion/challenger test
            settings = settings.model_copy(update={"strategy_file": ROOT / "data" / "demo_strategy.toml"})
            console.print(
                f"champion/challenger: {settings.strategy_file.relative_to(ROOT)} (20% on 'standard')"
            )
        intake_args = argparse.Namespace(file=args.file, day_seconds=settings.day_seconds, actor="demo")
        await cmd_intake(intake_args, settings, client)
        debtors = demo_debtors(args, settings, simulator, demo_tokens, http is not None)
        if debtors is not None:
            acting = asyncio.create_task(debtors.run())
        console.print()
        console.print("[bold green]Collection is running.[/]")
        ui = f"http://localhost:{settings.temporal_ui_port}"
        if not settings.temporal_is_local or server is None:
            ui = f"the UI of the Temporal server at {settings.temporal_address}"
        console.print(f"  Temporal UI:      {ui}  (filter: CollectionStage = 'late')")
        console.print("  an account:       ./collect status ACC-00001")
        console.print("  its timeline:     ./collect timeline ACC-00001")
        console.print(
            "  a plan:           ./collect negotiate ACC-00001 --kind reinstalment --periods 3 "
            "--first-due <date>"
        )
        if http is not None:
            base = f"http://localhost:{settings.service_port}"
            console.print(f"  agent console:    {base}/console   (API docs: {base}/docs)")
            console.print(f"  dashboard:        {base}/dashboard")
            for role, token in demo_tokens.items():
                console.print(f"    {role + ' token:':<18}{token}")
            if sso_users:
                console.print(
                    f"  console sign-in through the local identity provider {settings.oidc_issuer}:"
                )
                for user, password in sso_users.items():
                    console.print(f"    {user:<18}password {password}")
            if settings.codec_keys:
                console.print(
                    f"  payloads are encrypted: sign in at {base}/console/login, then in the Temporal UI's "
                    f"codec dialog use endpoint {base}/codec with 'Include cross-origin credentials'"
                )
        if settings.day_seconds != 86_400:
            console.print(f"  time: one policy day = {settings.day_seconds:g} s")
        console.print(f"Ctrl-C stops the worker and server; state is kept in {var}.")
        if args.exit_after is not None:
            await asyncio.sleep(args.exit_after)
        else:
            await asyncio.Event().wait()
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass
    finally:
        if acting is not None:  # the simulated debtors first: they would act on a stopping stack
            acting.cancel()
            await asyncio.gather(acting, return_exceptions=True)
        if http is not None:
            http.should_exit = True
        await asyncio.gather(*(w.shutdown() for w in workers), return_exceptions=True)
        await asyncio.gather(*tasks, return_exceptions=True)
        if executor is not None:
            executor.shutdown(wait=False)
        if simulator is not None:
            simulator.stop()
        if idp is not None:
            idp.stop()
        if server is not None:
            server.terminate()
            server.wait(timeout=20)
    return 0


def demo_debtors(
    args: argparse.Namespace, settings: Settings, simulator: Any, tokens: dict[str, str], serving: bool
) -> Any:
    """The simulated debtors (carrier/debtors.py) behind the carrier simulator, or None: not with
    Twilio (real people answer there), not without the HTTP service or the demo's own agent token
    (they act through the API), and not when asked to keep quiet."""
    if simulator is None or not serving or "agent" not in tokens or args.quiet_debtors:
        return None
    from carrier.debtors import DemoDebtors, debtors_from_accounts
    from domain.intake import parse_portfolio_file
    from lab.debtors import load_model
    from service.inbound_sms import INBOUND_SMS

    try:
        model = load_model(args.behaviour)
        _, report = parse_portfolio_file(Path(args.file).read_bytes(), name=Path(args.file).name)
    except (ValueError, OSError) as exc:
        err.print(f"[yellow]the simulated debtors stay quiet:[/] {exc}", highlight=False, soft_wrap=True)
        return None
    service = f"http://{settings.service_host}:{settings.service_port}"
    console.print(
        f"simulated debtors answer, pay, ask for plans and complain ({args.behaviour or 'lab/debtors.toml'}; "
        "--quiet-debtors for none)"
    )
    return DemoDebtors(
        store=simulator.store,
        model=model,
        service_url=service,
        token=tokens["agent"],
        auth_token=settings.twilio_token,
        inbound_url=(settings.public_base_url or service).rstrip("/") + INBOUND_SMS,
        debtors=debtors_from_accounts([a for _, a in report.accounts]),
        day_seconds=settings.day_seconds,
        our_number=settings.twilio_from_number,
    )


def demo_main(argv: list[str] | None = None) -> int:
    """``./collect demo`` as a function: settings from the environment (``COLLECT_*``), arguments as the
    command line's (``--day-seconds``, ``--file``). Tests start two of these in subprocesses."""
    return main(["demo", *(argv or [])])


COMMANDS = {
    "demo": cmd_demo,
    "server": cmd_server,
    "worker": cmd_worker,
    "events": cmd_events,
    "service": cmd_service,
    "link": cmd_link,
    "intake": cmd_intake,
    "migrate": cmd_migrate,
    "doctor": cmd_doctor,
    "status": cmd_status,
    "timeline": cmd_timeline,
    "pay": cmd_pay,
    "negotiate": cmd_negotiate,
    **dict.fromkeys(CASE_COMMANDS, cmd_case),
    "close": cmd_close,
    "pause": cmd_hold,
    "resume": cmd_hold,
    "opt-out": cmd_opt_out,
    "audit": cmd_audit,
    "reopen": cmd_reopen,
    "policy": cmd_policy,
    "strategy": cmd_strategy,
    "purge-audit": cmd_purge_audit,
    "credit-file": cmd_credit_file,
}


#: long-running processes that log (the other commands print their answer and exit)
LOGGING_COMMANDS = ("worker", "events", "service")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = get_settings()
    if args.command in LOGGING_COMMANDS:
        from runtime.logs import setup_logging

        setup_logging(args.log_format or settings.log_format)
        from runtime.tracing import setup_tracing

        setup_tracing(settings, f"collect-{args.command}")
    try:
        return asyncio.run(COMMANDS[args.command](args, settings))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
