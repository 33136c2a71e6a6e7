"""The long-running commands: worker, HTTP service, dev server, the embedded demo, and the two an
operator runs before them (migrate, doctor).

Each stops like Ctrl-C on SIGTERM, so a process manager's stop leaves no dev server behind.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from runtime.cli_common import client_for, console, err
from runtime.private import private_dir
from runtime.settings import Settings


async def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from workers.__main__ import run

    await run()
    return 0


async def cmd_events(args: argparse.Namespace, settings: Settings) -> int:
    """The event deliverer in the foreground (its own process: SIGTERM or Ctrl-C stops it, once the sends
    under way are answered); it blocks this command's loop, which has nothing else to do."""
    from workers.events import run

    return run(settings)


def install_stop_signals(task: asyncio.Task[Any] | None) -> None:
    """Ctrl-C (SIGINT) and a process manager's SIGTERM both cancel the current task at once, and its
    ``finally`` stops what it started (the default SIGTERM would end the process at once and leave the
    dev server running).

    Both through the event loop, because the HTTP service's uvicorn takes the two signals over while it
    serves and hands them on only after its own graceful shutdown, which waits for every open request
    to end: a demo given Ctrl-C while a webhook waited on a busy database went on sending for 40 s.
    A signal the loop handles reaches this task whatever uvicorn does with it.
    """
    import signal

    if task is None:
        return
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, task.cancel)
        except (NotImplementedError, RuntimeError):  # not on this platform or not the main thread
            return


def local_dev_server(settings: Settings, what: str) -> Any:
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

    client = await client_for(settings)
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
    private_dir(settings.state_dir)
    install_stop_signals(asyncio.current_task())
    proc = local_dev_server(settings, "`server`")
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
