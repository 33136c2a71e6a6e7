"""``python -m bench.trivial_worker ADDRESS TASK_QUEUE``: the baseline's worker, in its own process like ours."""

from __future__ import annotations

import asyncio
import signal
import sys

from temporalio.client import Client
from temporalio.worker import Worker

from bench.trivial import Trivial


async def main(address: str, task_queue: str) -> None:
    client = await Client.connect(address)
    worker = Worker(client, task_queue=task_queue, workflows=[Trivial], max_cached_workflows=2000)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    task = asyncio.create_task(worker.run())
    print("worker up", flush=True)
    await stop.wait()
    await worker.shutdown()
    await task


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
