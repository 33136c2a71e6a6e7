"""The operator's command line: intake, look, pay, negotiate, pause, audit, and the demo.

python starter.py demo --day-seconds 2     # everything, embedded; watch weeks pass in minutes
python starter.py intake data/sample_portfolio.csv
python starter.py status ACC-00001
python starter.py timeline ACC-00001
python starter.py pay ACC-00001 120.50
python starter.py negotiate ACC-00001 --kind reinstalment --periods 3 --first-due 2026-12-01
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
err = Console(stderr=True)


# ---- helpers -----------------------------------------------------------------------------------
def _sessions(settings: Settings):  # type: ignore[no-untyped-def]
    from sqlalchemy.orm import sessionmaker

    from store.db import make_engine, upgrade

    upgrade(settings.database_url)
    return sessionmaker(make_engine(settings.database_url), expire_on_commit=False)


async def _client(settings: Settings):  # type: ignore[no-untyped-def]
    from runtime.temporal import connect

    try:
        return await connect(settings)
    except Exception as exc:
        err.print(f"[red]cannot reach Temporal at {settings.temporal_address}:[/] {exc}")
        err.print("start it with: python starter.py demo   (or: python starter.py server)")
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

    from domain.intake import parse_portfolio
    from runtime.intake import intake_accounts

    path = Path(args.file)
    report = parse_portfolio(path.read_text(encoding="utf-8-sig"))
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
    console.print(
        f"{len(result.started)} started, {len(result.already)} already known, "
        f"{len(report.errors)} rows rejected, {len(result.failed)} failed"
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
    from store import repo

    names = [p.stem.upper() for p in sorted((ROOT / "policies" / "profiles").glob("*.toml"))]
    years = {name: load_profile(name).retention_years for name in names}
    with _sessions(settings).begin() as s:
        counts = repo.purge_expired_audit(s, datetime.now(UTC), years, dry_run=args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
    for name, n in counts.items():
        console.print(f"{name}: kept {years[name]} years; {verb} {n} older audit lines")
    return 0


async def cmd_audit(args: argparse.Namespace, settings: Settings) -> int:
    from store import repo

    sessions = _sessions(settings)
    with sessions.begin() as s:
        entries = repo.audit_entries(s, args.account)
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


async def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    """Everything on one machine: dev server (file-backed), simulator, migrations, worker, intake."""
    from runtime.devserver import port_open, start_dev_server
    from runtime.local_secrets import with_demo_secrets
    from service.app import make_server
    from workers.setup import build_workers

    var = ROOT / "var"
    var.mkdir(exist_ok=True)
    if args.day_seconds:
        settings = settings.model_copy(update={"day_seconds": args.day_seconds})
    server = None
    if not port_open("127.0.0.1", 7233):
        console.print("starting Temporal dev server (state in var/temporal.db) …")
        codec = f"http://localhost:{settings.service_port}/codec" if settings.codec_keys else None
        server = start_dev_server(var / "temporal.db", log_file=var / "temporal.log", codec_endpoint=codec)
    simulator = None
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
    http = None
    if port_open(settings.service_host, settings.service_port):
        err.print(f"[yellow]port {settings.service_port} is taken: the HTTP service is not started[/]")
    else:
        http = make_server(settings, client)
        tasks.append(asyncio.create_task(http.serve()))
    try:
        intake_args = argparse.Namespace(file=args.file, day_seconds=settings.day_seconds)
        await cmd_intake(intake_args, settings, client)
        console.print()
        console.print("[bold green]Collection is running.[/]")
        console.print("  Temporal UI:      http://localhost:8233  (filter: CollectionStage = 'late')")
        console.print("  an account:       python starter.py status ACC-00001")
        console.print("  its timeline:     python starter.py timeline ACC-00001")
        console.print(
            "  a plan:           python starter.py negotiate ACC-00001 --kind reinstalment --periods 3 "
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
        console.print("Ctrl-C stops the worker and server; state is kept in var/.")
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
        executor.shutdown(wait=False)
        if simulator is not None:
            simulator.stop()
        if server is not None:
            server.terminate()
            server.wait(timeout=20)
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

        settings, _ = with_demo_secrets(settings, ROOT / "var")
    console.print(self_service_link(settings, args.account))
    return 0


async def cmd_server(args: argparse.Namespace, settings: Settings) -> int:
    from runtime.devserver import start_dev_server

    var = ROOT / "var"
    var.mkdir(exist_ok=True)
    codec = f"http://localhost:{settings.service_port}/codec" if settings.codec_keys else None
    proc = start_dev_server(var / "temporal.db", log_file=var / "temporal.log", codec_endpoint=codec)
    console.print("Temporal dev server on localhost:7233, UI http://localhost:8233 (Ctrl-C stops)")
    try:
        await asyncio.to_thread(proc.wait)
    finally:
        proc.terminate()
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="starter.py", description="Operate the collection orchestrator.")
    sub = p.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run everything embedded and load the sample portfolio")
    demo.add_argument("--file", default=str(ROOT / "data" / "sample_portfolio.csv"))
    demo.add_argument(
        "--day-seconds", type=float, default=None, help="real seconds per policy day (2 = fast demo)"
    )
    demo.add_argument("--exit-after", type=float, default=None, help=argparse.SUPPRESS)
    sub.add_parser("server", help="run only the Temporal dev server (file-backed)")
    sub.add_parser("worker", help="run a worker (same as python -m workers)")
    sub.add_parser("service", help="run the HTTP service: API, consoles, webhooks, codec endpoint")
    sub.add_parser("link", help="print a debtor's signed self-service link").add_argument("account")
    intake = sub.add_parser("intake", help="validate a CSV and start a workflow per good row")
    intake.add_argument("file")
    intake.add_argument("--day-seconds", type=float, default=None)
    for name in ("status", "timeline"):
        q = sub.add_parser(name)
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
    for name in ("pause", "resume"):
        h = sub.add_parser(name)
        h.add_argument("account")
        h.add_argument("--reason", required=True)
    oo = sub.add_parser("opt-out")
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
    purge = sub.add_parser("purge-audit", help="delete audit lines past their profile's retention")
    purge.add_argument("--dry-run", action="store_true")
    audit = sub.add_parser("audit", help="every decision about an account")
    audit.add_argument("account")
    audit.add_argument("--csv", help="write CSV to this file ('-' for stdout)")
    return p


COMMANDS = {
    "demo": cmd_demo,
    "server": cmd_server,
    "worker": cmd_worker,
    "service": cmd_service,
    "link": cmd_link,
    "intake": cmd_intake,
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
    "purge-audit": cmd_purge_audit,
}


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = get_settings()
    try:
        return asyncio.run(COMMANDS[args.command](args, settings))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
