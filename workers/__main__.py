"""``python -m workers``: run a worker until SIGTERM/SIGINT, finishing in-flight tasks first."""

from __future__ import annotations

import asyncio
import logging
import signal

from runtime.settings import get_settings
from runtime.temporal import connect
from workers.setup import build_workers

log = logging.getLogger("workers")


async def run() -> None:
    settings = get_settings()
    client = await connect(settings)
    workers, _deps, executor = build_workers(client, settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("worker up: task queues %s, %s", settings.task_queue, settings.contact_task_queue)
    tasks = [asyncio.create_task(w.run()) for w in workers]
    await stop.wait()
    log.info("shutting down gracefully")
    await asyncio.gather(*(w.shutdown() for w in workers))
    await asyncio.gather(*tasks, return_exceptions=True)
    executor.shutdown(wait=True)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asyncio.run(run())


if __name__ == "__main__":
    main()
