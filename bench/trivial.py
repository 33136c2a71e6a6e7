"""The raw-engine baseline: a workflow that does nothing but wait, with one trivial update.

Every figure is compared with this on the same server in the same run, so the ratio says what the
product adds on top of Temporal itself, whatever else the machine is doing.
"""

from __future__ import annotations

from temporalio import workflow


@workflow.defn(name="BenchTrivial")
class Trivial:
    def __init__(self) -> None:
        self.done = False
        self.pokes = 0

    @workflow.run
    async def run(self, _: str) -> int:
        await workflow.wait_condition(lambda: self.done)
        return self.pokes

    @workflow.update
    async def poke(self, _: str) -> int:
        self.pokes += 1
        return self.pokes

    @workflow.signal
    def finish(self) -> None:
        self.done = True
