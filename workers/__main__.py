"""``python -m workers``: run a worker until SIGTERM/SIGINT, finishing in-flight tasks first.

With ``COLLECT_METRICS_PORT`` set, the worker serves Prometheus metrics there (``/metrics``): the
business figures read from the database, the process, and the Temporal SDK's worker metrics.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from datetime import timedelta

from runtime.logs import FORMATS, setup_logging
from runtime.settings import get_settings
from runtime.temporal import PlaintextRefused, connect, require_encryption
from runtime.tracing import setup_tracing, stop_tracing
from store.db import SchemaBehind, ensure_schema, make_engine
from workers.setup import build_workers

log = logging.getLogger("workers")


async def run() -> None:
    settings = get_settings()
    # first: a SIGTERM while starting up must also end in an orderly stop, not a kill mid-connect
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        head = ensure_schema(settings.database_url, migrate=settings.migrate_on_start)
    except SchemaBehind as exc:
        log.error("%s", exc)
        raise SystemExit(2) from None
    try:
        require_encryption(settings)
    except PlaintextRefused as exc:
        log.error("%s", exc)
        raise SystemExit(2) from None
    log.info("database schema at %s", head)
    metrics = None
    if settings.metrics_port is not None:
        from runtime.metrics import start_worker_metrics

        # before connecting: the SDK's metrics are part of the Temporal runtime the client is built on
        metrics = start_worker_metrics(
            make_engine(settings.database_url),
            settings.metrics_port,
            host=settings.metrics_host,
            business=settings.metrics_business,
        )
        log.info("metrics on http://%s:%d/metrics", settings.metrics_host, metrics.port)
    client = await connect(settings)
    workers, _deps, executor = build_workers(
        client,
        settings,
        max_cached_workflows=settings.sticky_cache,
        graceful_shutdown=timedelta(seconds=30),
    )
    log.info("worker up: task queues %s, %s", settings.task_queue, settings.contact_task_queue)
    events = None
    if settings.events_in_worker:  # the event deliverer on a thread of this process (workers/events.py)
        from workers.events import start_in_thread

        events = start_in_thread(settings)
    tasks = [asyncio.create_task(w.run()) for w in workers]
    stopping = asyncio.create_task(stop.wait())
    # A worker that dies (e.g. the server refused it) ends the process, so the orchestrator restarts it.
    await asyncio.wait([stopping, *tasks], return_when=asyncio.FIRST_COMPLETED)
    log.info("shutting down gracefully")
    await asyncio.gather(*(w.shutdown() for w in workers), return_exceptions=True)
    results = await asyncio.gather(*tasks, return_exceptions=True)
    stopping.cancel()
    executor.shutdown(wait=True)
    if events is not None:
        events[1].set()
        events[0].join(timeout=2 * settings.events_timeout_seconds + 5)
    if metrics is not None:
        metrics.stop()
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed and not stop.is_set():
        raise failed[0]
    log.info("worker stopped")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m workers",
        description="Run a worker until SIGTERM/SIGINT (settings: COLLECT_* variables or .env).",
    )
    parser.add_argument(
        "--log-format", choices=FORMATS, default=None, help="default: COLLECT_LOG_FORMAT (text)"
    )
    args = parser.parse_args(argv)
    setup_logging(args.log_format or get_settings().log_format)
    setup_tracing(get_settings(), "collect-worker")
    try:
        asyncio.run(run())
    finally:
        stop_tracing()


if __name__ == "__main__":
    main()
