"""``python -m workers``: run a worker until SIGTERM/SIGINT, finishing in-flight tasks first.

With ``COLLECT_METRICS_PORT`` set, the worker serves Prometheus metrics there (``/metrics``): the
business figures read from the database, the process, and the Temporal SDK's worker metrics.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import timedelta

from runtime.settings import get_settings
from runtime.temporal import connect
from store.db import make_engine
from workers.setup import build_workers

log = logging.getLogger("workers")


async def run() -> None:
    settings = get_settings()
    # first: a SIGTERM while starting up must also end in an orderly stop, not a kill mid-connect
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
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
        max_cached_workflows=settings.max_cached_workflows,
        graceful_shutdown=timedelta(seconds=30),
    )
    log.info("worker up: task queues %s, %s", settings.task_queue, settings.contact_task_queue)
    tasks = [asyncio.create_task(w.run()) for w in workers]
    stopping = asyncio.create_task(stop.wait())
    # A worker that dies (e.g. the server refused it) ends the process, so the orchestrator restarts it.
    await asyncio.wait([stopping, *tasks], return_when=asyncio.FIRST_COMPLETED)
    log.info("shutting down gracefully")
    await asyncio.gather(*(w.shutdown() for w in workers), return_exceptions=True)
    results = await asyncio.gather(*tasks, return_exceptions=True)
    stopping.cancel()
    executor.shutdown(wait=True)
    if metrics is not None:
        metrics.stop()
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed and not stop.is_set():
        raise failed[0]
    log.info("worker stopped")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asyncio.run(run())


if __name__ == "__main__":
    main()
