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
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from runtime.settings import ROOT, Settings, get_settings

console = Console()
err = Console(stderr=True, soft_wrap=True)  # an error is one line a script can grep, never cut mid-phrase


# ---- helpers -----------------------------------------------------------------------------------
def _sessions(settings: Settings):  # type: ignore[no-untyped-def]
    from sqlalchemy.orm import sessionmaker

    from store.db import SchemaBehind, ensure_schema, make_engine

    try:
        ensure_schema(settings.database_url, migrate=settings.migrate_on_start)
    except SchemaBehind as exc:
        err.print(str(exc), highlight=False, soft_wrap=True)
        raise SystemExit(2) from None
    return sessionmaker(make_engine(settings.database_url), expire_on_commit=False)


async def _client(settings: Settings):  # type: ignore[no-untyped-def]
    from runtime.temporal import connect

    try:
        return await connect(settings)
    except Exception as exc:
        err.print(f"[red]cannot reach Temporal at {settings.temporal_address}:[/] {exc}")
        err.print("start it with: ./collect demo   (or: ./collect server)")
        raise SystemExit(2) from None


def _handle(client, account_id: str):  # type: ignore[no-untyped-def]
    from domain.accounts import workflow_id_for

    return client.get_workflow_handle(workflow_id_for(account_id))


def _money(amount: int, currency: str) -> str:
    from domain.money import format_minor

    return format_minor(amount, currency)


# ---- intake ------------------------------------------------------------------------------------
async def cmd_intake(args: argparse.Namespace, settings: Settings, client: Any = None) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from domain.intake import parse_portfolio_file
    from domain.intake_files import FileRefused
    from runtime.intake import intake_accounts

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
    accounts = [a for _, a in report.accounts]
    client = client or await _client(settings)
    sessions = _sessions(settings)
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
        )
    for account_id, reason in result.failed:
        err.print(f"[red]{account_id}[/]: {reason}")
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


def _operator(args: argparse.Namespace) -> str | None:
    """Who is acting: ``--as NAME``, else ``COLLECT_OPERATOR``; None (and a message) when neither is set."""
    import os

    name = (args.actor or os.environ.get("COLLECT_OPERATOR") or "").strip()
    if not name:
        err.print("[red]who is acting?[/] name yourself with --as NAME (or set COLLECT_OPERATOR)")
        return None
    return name


async def cmd_reopen(args: argparse.Namespace, settings: Settings) -> int:
    """Restart collection of a closed account, on purpose and audited (intake never does)."""
    from runtime.operator_actions import Refused, reopen_account

    actor = _operator(args)
    if actor is None:
        return 2
    client = await _client(settings)
    try:
        done = await reopen_account(
            client,
            _sessions(settings),
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
        f"{_money(done.balance, done.currency)} under {done.rules.versions}",
        highlight=False,
    )
    return 0


async def cmd_policy(args: argparse.Namespace, settings: Settings) -> int:
    """``policy list``: the versions and who runs them; ``policy upgrade``: move running accounts."""
    from runtime.operator_actions import rule_versions, upgrade_accounts

    sessions = _sessions(settings)
    if args.policy_command == "list":
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
    actor = _operator(args)
    if actor is None:
        return 2
    client = await _client(settings)
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

    client = await _client(settings)
    status = await _handle(client, args.account).query("status", result_type=AccountStatus)
    if args.json:
        print(status.model_dump_json(indent=2))
        return 0
    table = Table(title=f"Account {status.account_id} ({status.masked_phone})", show_header=False)
    table.add_row("mode", status.mode.value)
    table.add_row("stage", f"{status.stage.value} ({status.dpd} days past due)")
    table.add_row("balance", _money(status.balance, status.currency))
    table.add_row("paid", _money(status.paid_total, status.currency))
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
            f"{status.plan.kind.value}: {_money(status.plan_paid, status.currency)} of "
            f"{_money(status.plan.total, status.currency)}, ends {status.plan.end_date}",
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

    client = await _client(settings)
    tl = await _handle(client, args.account).query("timeline", result_type=Timeline)
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


# ---- acting ------------------------------------------------------------------------------------
async def cmd_pay(args: argparse.Namespace, settings: Settings) -> int:
    from domain.money import parse_major
    from domain.timeline import AccountStatus
    from workflows.messages import PaymentIn

    client = await _client(settings)
    handle = _handle(client, args.account)
    status = await handle.query("status", result_type=AccountStatus)
    amount = parse_major(args.amount, status.currency)
    reference = args.reference or f"cli-{args.account}-{datetime.now(UTC):%Y%m%dT%H%M%S%f}"
    await handle.signal(
        "payment_received",
        PaymentIn(amount=amount, currency=status.currency, reference=reference, source="cli"),
    )
    console.print(
        f"payment of {_money(amount, status.currency)} sent to {args.account} (reference {reference})"
    )
    return 0


async def cmd_negotiate(args: argparse.Namespace, settings: Settings) -> int:
    from temporalio.client import WorkflowUpdateFailedError

    from domain.money import parse_major
    from domain.plans import AgreedPlan, PlanProposal
    from domain.timeline import AccountStatus

    client = await _client(settings)
    handle = _handle(client, args.account)
    status = await handle.query("status", result_type=AccountStatus)
    proposal = PlanProposal(
        kind=args.kind,
        first_due=date.fromisoformat(args.first_due),
        periods=args.periods,
        period_days=args.period_days,
        amount=parse_major(args.amount, status.currency) if args.amount else None,
        waiver=parse_major(args.waiver, status.currency) if args.waiver else 0,
        hardship_evidence=args.evidence,
        approver=args.approver,
        proposed_by="cli",
    )
    try:
        plan = await handle.execute_update("propose_settlement", proposal, result_type=AgreedPlan)
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        err.print(f"[red]plan rejected:[/] {getattr(cause, 'message', cause)}")
        return 3
    console.print(f"plan {plan.plan_id} agreed; dunning has stopped. Instalments:")
    for inst in plan.instalments:
        console.print(f"  {inst.seq}. {inst.due_date}  {_money(inst.amount, plan.currency)}")
    return 0


async def cmd_hold(args: argparse.Namespace, settings: Settings) -> int:
    from workflows.messages import HoldRequest

    client = await _client(settings)
    await _handle(client, args.account).signal(args.command, HoldRequest(reason=args.reason, actor="cli"))
    console.print(f"{args.command} sent to {args.account}")
    return 0


async def cmd_opt_out(args: argparse.Namespace, settings: Settings) -> int:
    from domain.accounts import Channel
    from workflows.messages import OptOut

    client = await _client(settings)
    await _handle(client, args.account).signal("opt_out", OptOut(channel=Channel(args.channel), source="cli"))
    console.print(f"{args.channel} opt-out sent to {args.account}")
    return 0


async def cmd_case(args: argparse.Namespace, settings: Settings) -> int:
    """Complaints, disputes and cease requests: each is a hold the contact gate honours at once."""
    from domain.accounts import Channel
    from workflows import messages as m

    payloads = {
        "complaint": lambda: (
            "complaint_filed",
            m.ComplaintIn(reason=args.reason, source=args.source, actor="cli"),
        ),
        "resolve-complaint": lambda: (
            "complaint_resolved",
            m.ComplaintDecision(decision=args.decision, note=args.reason or "", actor="cli"),
        ),
        "dispute": lambda: ("dispute_filed", m.DisputeIn(reason=args.reason, actor="cli")),
        "verify-dispute": lambda: (
            "dispute_verified",
            m.DisputeVerified(note=args.reason or "", actor="cli"),
        ),
        "cease": lambda: (
            "cease_requested",
            m.CeaseRequest(channel=None if args.channel == "all" else Channel(args.channel), actor="cli"),
        ),
    }
    from domain.agencies import CloseRequest, RecallRequest

    payloads["recall"] = lambda: ("recall", RecallRequest(reason=args.reason, actor="cli"))
    payloads["close"] = lambda: ("close", CloseRequest(reason=args.reason, note=args.note, actor="cli"))
    signal, payload = payloads[args.command]()
    client = await _client(settings)
    await _handle(client, args.account).signal(signal, payload)
    console.print(f"{signal} sent to {args.account}")
    return 0


async def cmd_purge_audit(args: argparse.Namespace, settings: Settings) -> int:
    """Apply each profile's retention (policies/profiles/*.toml ``retention_years``) to the audit log."""
    from datetime import UTC, datetime

    from domain.profiles import load_profile
    from store.audit import purge_expired_audit

    names = [p.stem.upper() for p in sorted((ROOT / "policies" / "profiles").glob("*.toml"))]
    years = {name: load_profile(name).retention_years for name in names}
    with _sessions(settings).begin() as s:
        counts = purge_expired_audit(s, datetime.now(UTC), years, dry_run=args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
    for name, n in counts.items():
        console.print(f"{name}: kept {years[name]} years; {verb} {n} older audit lines")
    return 0


async def cmd_audit(args: argparse.Namespace, settings: Settings) -> int:
    from store.audit import audit_entries

    sessions = _sessions(settings)
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
        table.add_row(
            str(row.get("at")),
            str(row.get("actor")),
            str(row.get("action")),
            str(row.get("decision")),
            str(row.get("rule") or ""),
            json.dumps(row.get("details") or {}, ensure_ascii=False),
        )
    console.print(table)
    return 0


# ---- processes ---------------------------------------------------------------------------------
async def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from workers.__main__ import run

    await run()
    return 0


def _install_sigterm(task: asyncio.Task[Any] | None) -> None:
    """SIGTERM stops like Ctrl-C: the current task is cancelled and its ``finally`` stops what it started
    (the default SIGTERM would end the process at once and leave the dev server running)."""
    import signal

    if task is None:
        return
    try:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    except (NotImplementedError, RuntimeError):  # not on this platform or not the main thread
        pass


def _local_dev_server(settings: Settings, what: str) -> Any:
    """Start the dev server on the settings' Temporal port and UI port, state in the state directory;
    None if something already answers there (it is used as it is)."""
    from runtime.devserver import port_open, start_dev_server

    var = settings.state_dir
    if port_open("127.0.0.1", settings.temporal_port):
        err.print(f"[yellow]port {settings.temporal_port} already answers: using that Temporal server[/]")
        return None
    console.print(f"starting Temporal dev server for {what} (state in {var / 'temporal.db'}) …")
    codec = f"http://localhost:{settings.service_port}/codec" if settings.codec_keys else None
    return start_dev_server(
        var / "temporal.db",
        port=settings.temporal_port,
        ui_port=settings.temporal_ui_port,
        log_file=var / "temporal.log",
        codec_endpoint=codec,
    )


async def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    """Everything on one machine: dev server (file-backed), simulator, migrations, worker, intake.

    Ports and state come from the settings (``COLLECT_TEMPORAL_ADDRESS``, ``COLLECT_TEMPORAL_UI_PORT``,
    ``COLLECT_SERVICE_PORT``, ``COLLECT_SIMULATOR_PORT``, ``COLLECT_STATE_DIR``), so a second demo with
    other values runs beside the first. :func:`demo_main` is the same, as a process's entry point.
    """
    from runtime.local_secrets import with_demo_secrets
    from service.app import make_server
    from workers.setup import build_workers

    var = settings.state_dir
    var.mkdir(parents=True, exist_ok=True)
    _install_sigterm(asyncio.current_task())
    if args.day_seconds:
        settings = settings.model_copy(update={"day_seconds": args.day_seconds})
    server = None
    simulator = None
    workers: list[Any] = []
    tasks: list[asyncio.Task[Any]] = []
    executor = None
    http = None
    try:
        if settings.temporal_is_local:
            server = _local_dev_server(settings, "the demo")
        if settings.using_simulator:
            from carrier import run_in_thread

            console.print(f"no Twilio credentials: carrier simulator on {settings.twilio_base}")
            simulator = run_in_thread(
                settings.simulator_host, settings.simulator_port, settings.twilio_sid, settings.twilio_token
            )
        settings, demo_tokens = with_demo_secrets(settings, var)
        client = await _client(settings)
        workers, _deps, executor = build_workers(client, settings)
        tasks = [asyncio.create_task(w.run()) for w in workers]
        from runtime.devserver import port_open

        if port_open(settings.service_host, settings.service_port):
            err.print(f"[yellow]port {settings.service_port} is taken: the HTTP service is not started[/]")
        else:
            http = make_server(settings, client)
            tasks.append(asyncio.create_task(http.serve()))
        intake_args = argparse.Namespace(file=args.file, day_seconds=settings.day_seconds)
        await cmd_intake(intake_args, settings, client)
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
        if http is not None:
            http.should_exit = True
        await asyncio.gather(*(w.shutdown() for w in workers), return_exceptions=True)
        await asyncio.gather(*tasks, return_exceptions=True)
        if executor is not None:
            executor.shutdown(wait=False)
        if simulator is not None:
            simulator.stop()
        if server is not None:
            server.terminate()
            server.wait(timeout=20)
    return 0


def demo_main(argv: list[str] | None = None) -> int:
    """``./collect demo`` as a function: settings from the environment (``COLLECT_*``), arguments as the
    command line's (``--day-seconds``, ``--file``). Tests start two of these in subprocesses."""
    return main(["demo", *(argv or [])])


async def cmd_doctor(args: argparse.Namespace, settings: Settings) -> int:
    """Check database, Temporal, search attributes, carrier and clock; say what to fix. Exit 1 if any fails."""
    from runtime.doctor import run_checks

    checks = await run_checks(settings)
    width = max(len(c.name) for c in checks)
    for check in checks:
        mark = "[green]ok  [/]" if check.ok else "[red]FAIL[/]"
        console.print(f"{mark} {check.name:<{width}}  {check.found}", highlight=False, soft_wrap=True)
        if not check.ok:
            console.print(f"     {'':<{width}}  fix: {check.fix}", highlight=False, soft_wrap=True)
    failed = [c.name for c in checks if not c.ok]
    console.print(f"{len(checks) - len(failed)} of {len(checks)} checks passed", highlight=False)
    return 1 if failed else 0


async def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    """Bring the application database to this release's schema (production's deliberate step)."""
    from store.db import schema_revisions, upgrade

    before, head = schema_revisions(settings.database_url)
    if before == head:
        console.print(f"database already at {head}: nothing to do")
        return 0
    await asyncio.to_thread(upgrade, settings.database_url)
    console.print(f"database migrated from {before or '(empty)'} to {head}")
    return 0


async def cmd_service(args: argparse.Namespace, settings: Settings) -> int:
    """The HTTP service alone: negotiation API, consoles, Twilio webhooks, codec endpoint."""
    from service.app import make_server

    client = await _client(settings)
    server = make_server(settings, client)
    console.print(
        f"HTTP service on http://{settings.service_host}:{settings.service_port} "
        "(console /console, API docs /docs, webhooks /webhooks/twilio/…)"
    )
    await server.serve()
    return 0


async def cmd_link(args: argparse.Namespace, settings: Settings) -> int:
    """The debtor's signed self-service link, exactly what the SMS carries (for support and demos)."""
    from service.links import self_service_link

    if settings.link_secret is None:
        from runtime.local_secrets import with_demo_secrets

        settings, _ = with_demo_secrets(settings, settings.state_dir)
    console.print(self_service_link(settings, args.account))
    return 0


async def cmd_server(args: argparse.Namespace, settings: Settings) -> int:
    """Only the dev server: on the port of ``COLLECT_TEMPORAL_ADDRESS``, UI on ``COLLECT_TEMPORAL_UI_PORT``,
    state in ``COLLECT_STATE_DIR``."""
    if not settings.temporal_is_local:
        err.print(
            f"[red]COLLECT_TEMPORAL_ADDRESS is {settings.temporal_address}:[/] `server` starts a local dev "
            "server only (use localhost:<port>)"
        )
        return 2
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    _install_sigterm(asyncio.current_task())
    proc = _local_dev_server(settings, "`server`")
    if proc is None:
        return 1
    console.print(
        f"Temporal dev server on localhost:{settings.temporal_port}, UI http://localhost:{settings.temporal_ui_port}"
        " (Ctrl-C stops)"
    )
    try:
        await asyncio.to_thread(proc.wait)
    except asyncio.CancelledError:
        pass
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    return 0


#: one example per command: shown by ``./collect --help`` and each ``./collect COMMAND --help``
EXAMPLES: dict[str, str] = {
    "demo": "demo --day-seconds 2",
    "server": "server",
    "worker": "worker --log-format json",
    "service": "service",
    "migrate": "migrate",
    "doctor": "doctor",
    "link": "link ACC-00001",
    "intake": "intake lender.csv --encoding cp1252 --decimal-comma",
    "status": "status ACC-00001",
    "timeline": "timeline ACC-00001 --json",
    "pay": "pay ACC-00001 120.50 --reference bank-7731",
    "negotiate": "negotiate ACC-00001 --kind reinstalment --periods 3 --first-due 2026-12-15",
    "pause": 'pause ACC-00001 --reason "debtor in hospital"',
    "resume": 'resume ACC-00001 --reason "back home"',
    "opt-out": "opt-out ACC-00001 sms",
    "complaint": 'complaint ACC-00001 --reason "called at work" --source regulator',
    "resolve-complaint": 'resolve-complaint ACC-00001 resume --reason "not upheld"',
    "dispute": 'dispute ACC-00001 --reason "not my loan"',
    "verify-dispute": "verify-dispute ACC-00001",
    "cease": "cease ACC-00001 voice",
    "recall": 'recall ACC-00001 --reason "agency complaint"',
    "close": 'close ACC-00001 written_off --note "small balance"',
    "reopen": 'reopen ACC-00001 --reason "closed by mistake" --as alice',
    "policy": "policy upgrade --to default --all --as alice --dry-run",
    "purge-audit": "purge-audit --dry-run",
    "audit": "audit ACC-00001 --csv audit.csv",
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="./collect",
        description="Operate the collection orchestrator (./collect COMMAND = python starter.py COMMAND; "
        "./collect test and ./collect bench run the suite and the benchmarks).",
        epilog="examples:\n"
        + "\n".join(f"  ./collect {line}" for line in EXAMPLES.values())
        + "\n\n./collect COMMAND --help: that command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--log-format",
        choices=("text", "json"),
        default=None,
        help="logs of worker and service: text, or one JSON object per line (default: COLLECT_LOG_FORMAT)",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = sub.add_parser("demo", help="run everything embedded and load the sample portfolio")
    demo.add_argument("--file", default=str(ROOT / "data" / "sample_portfolio.csv"))
    demo.add_argument(
        "--day-seconds", type=float, default=None, help="real seconds per policy day (2 = fast demo)"
    )
    demo.add_argument("--exit-after", type=float, default=None, help=argparse.SUPPRESS)
    sub.add_parser("server", help="run only the Temporal dev server (file-backed)")
    for name, what in (
        ("worker", "run a worker (same as python -m workers)"),
        ("service", "run the HTTP service: API, consoles, webhooks, codec endpoint"),
    ):
        sub.add_parser(name, help=what).add_argument(
            "--log-format",
            choices=("text", "json"),
            default=argparse.SUPPRESS,  # not given here: the one before the command, or the setting
            help="text, or one JSON object per line (default: COLLECT_LOG_FORMAT)",
        )
    sub.add_parser("migrate", help="bring the application database to this release's schema")
    sub.add_parser(
        "doctor", help="check database, Temporal, search attributes, carrier and clock; say what to fix"
    )
    sub.add_parser("link", help="print a debtor's signed self-service link").add_argument("account")
    intake = sub.add_parser(
        "intake",
        help="validate a portfolio file (CSV or .xlsx) and start a workflow per good row",
        description="Read a portfolio (CSV in UTF-8, UTF-16 or GB18030, detected; or an .xlsx workbook), "
        "report every bad row with its line, column and reason, and start collection for the good ones. "
        "Example: ./collect intake data/sample_portfolio.csv",
    )
    intake.add_argument("file", help="a .csv (',', ';' or tab separated) or an .xlsx (first sheet)")
    intake.add_argument(
        "--encoding",
        default=None,
        help="the CSV's encoding when it is not UTF-8, UTF-16 or Chinese GB18030 (e.g. cp1252, shift_jis)",
    )
    intake.add_argument(
        "--decimal-comma",
        action="store_true",
        help="amounts are written 1.234,50 (European files); without it 12,50 is refused as ambiguous",
    )
    intake.add_argument("--day-seconds", type=float, default=None)
    for name, what in (
        ("status", "where an account stands: mode, stage, balance, holds, next action and when"),
        ("timeline", "everything that will happen if nothing changes, down to charge-off or the plan's end"),
    ):
        q = sub.add_parser(name, help=what)
        q.add_argument("account")
        q.add_argument("--json", action="store_true")
    pay = sub.add_parser("pay", help="record a payment (major units, e.g. 120.50)")
    pay.add_argument("account")
    pay.add_argument("amount")
    pay.add_argument("--reference", help="idempotency key; the same reference counts once")
    neg = sub.add_parser("negotiate", help="propose a settlement plan; answers after dunning has stopped")
    neg.add_argument("account")
    neg.add_argument(
        "--kind", required=True, choices=["deferral", "reinstalment", "fee_waiver", "promise_to_pay"]
    )
    neg.add_argument("--first-due", required=True, help="YYYY-MM-DD")
    neg.add_argument("--periods", type=int, default=1)
    neg.add_argument("--period-days", type=int, default=30)
    neg.add_argument("--amount", help="total to pay (major units); default: the balance less any waiver")
    neg.add_argument("--waiver", help="fees waived (major units), fee_waiver only")
    neg.add_argument("--evidence", help="hardship evidence reference, fee_waiver only")
    neg.add_argument("--approver", help="approving supervisor, fee_waiver only")
    for name, what in (
        ("pause", "an operator hold: no contact until resumed"),
        ("resume", "lift an operator hold"),
    ):
        h = sub.add_parser(name, help=what)
        h.add_argument("account")
        h.add_argument("--reason", required=True)
    oo = sub.add_parser("opt-out", help="stop a channel for good (one confirmation text for SMS)")
    oo.add_argument("account")
    oo.add_argument("channel", choices=["sms", "voice"])
    c = sub.add_parser("complaint", help="file a complaint: contact stops until an investigator decides")
    c.add_argument("account")
    c.add_argument("--reason", required=True)
    c.add_argument("--source", default="debtor", help="debtor, agent, regulator, agency")
    c = sub.add_parser("resolve-complaint", help="the investigator's decision: resume or close")
    c.add_argument("account")
    c.add_argument("decision", choices=["resume", "close"])
    c.add_argument("--reason", default="")
    c = sub.add_parser("dispute", help="the debt is disputed: no collection until verified")
    c.add_argument("account")
    c.add_argument("--reason", required=True)
    c = sub.add_parser("verify-dispute", help="verification sent to the debtor: collection may resume")
    c.add_argument("account")
    c.add_argument("--reason", default="")
    c = sub.add_parser("cease", help="stop communication on one channel or all of them, for good")
    c.add_argument("account")
    c.add_argument("channel", choices=["sms", "voice", "all"])
    c = sub.add_parser("recall", help="take a placed account back from its agency")
    c.add_argument("account")
    c.add_argument("--reason", required=True)
    c = sub.add_parser(
        "close", help="close for a reason the workflow cannot see: written off, deceased, bankrupt"
    )
    c.add_argument("account")
    c.add_argument("reason", choices=["written_off", "deceased", "bankrupt"])
    c.add_argument("--note", default="")
    c = sub.add_parser("reopen", help="restart collection of a closed account, on purpose (audited)")
    c.add_argument("account")
    c.add_argument("--reason", required=True)
    c.add_argument("--as", dest="actor", help="who reopens it (default: $COLLECT_OPERATOR)")
    c.add_argument("--day-seconds", type=float, default=None)
    pol = sub.add_parser("policy", help="policy and profile versions: list them, move running accounts")
    pol_sub = pol.add_subparsers(dest="policy_command", required=True)
    pol_sub.add_parser("list", help="each version, in the file now or stored, and the open accounts on it")
    up = pol_sub.add_parser(
        "upgrade", help="move running accounts to another version at their next safe point"
    )
    up.add_argument(
        "--to", help="policy version: a stored name@digest, or a file's name (its current version)"
    )
    up.add_argument("--profile-to", help="profile version: a stored name@digest, or a profile's name")
    who = up.add_mutually_exclusive_group(required=True)
    who.add_argument("--account", nargs="+", help="these accounts")
    who.add_argument("--all", action="store_true", help="every open account running that policy (profile)")
    up.add_argument("--as", dest="actor", help="who moves them (default: $COLLECT_OPERATOR)")
    up.add_argument("--dry-run", action="store_true", help="count, send nothing")
    purge = sub.add_parser("purge-audit", help="delete audit lines past their profile's retention")
    purge.add_argument("--dry-run", action="store_true")
    audit = sub.add_parser("audit", help="every decision about an account")
    audit.add_argument("account")
    audit.add_argument("--csv", help="write CSV to this file ('-' for stdout)")
    for name, command in sub.choices.items():
        command.prog = f"./collect {name}"
        command.epilog = f"example:\n  ./collect {EXAMPLES[name]}"
        command.formatter_class = argparse.RawDescriptionHelpFormatter
    return p


COMMANDS = {
    "demo": cmd_demo,
    "server": cmd_server,
    "worker": cmd_worker,
    "service": cmd_service,
    "link": cmd_link,
    "intake": cmd_intake,
    "migrate": cmd_migrate,
    "doctor": cmd_doctor,
    "status": cmd_status,
    "timeline": cmd_timeline,
    "pay": cmd_pay,
    "negotiate": cmd_negotiate,
    "complaint": cmd_case,
    "resolve-complaint": cmd_case,
    "dispute": cmd_case,
    "verify-dispute": cmd_case,
    "cease": cmd_case,
    "recall": cmd_case,
    "close": cmd_case,
    "pause": cmd_hold,
    "resume": cmd_hold,
    "opt-out": cmd_opt_out,
    "audit": cmd_audit,
    "reopen": cmd_reopen,
    "policy": cmd_policy,
    "purge-audit": cmd_purge_audit,
}


#: long-running processes that log (the other commands print their answer and exit)
LOGGING_COMMANDS = ("worker", "service")


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
