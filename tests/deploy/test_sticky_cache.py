"""The worker's sticky cache is sized from its memory unless the operator sets it.

An account that is not cached is replayed from its history before a plan update runs; with 10,000 open
accounts and a fixed cache of 2,000 that replay made ``propose_settlement``'s p99 2.7 times the raw
update's. The default now follows what the worker may use.
"""

from __future__ import annotations

import pytest

import runtime.settings as settings_module
from runtime.settings import CACHED_ACCOUNT_BYTES, MAX_STICKY_CACHE, MIN_STICKY_CACHE, Settings

GiB = 1 << 30


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_an_operators_value_is_used_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings_module, "memory_limit_bytes", lambda: 64 * GiB)
    assert settings(max_cached_workflows=500).sticky_cache == 500
    assert settings(max_cached_workflows=0).sticky_cache == 0  # no cache at all is a valid choice


@pytest.mark.parametrize(
    ("memory", "expected"),
    [
        (24 * GiB, 24 * GiB // 4 // CACHED_ACCOUNT_BYTES),  # the CI machine: 24,576 accounts
        (1 * GiB, MIN_STICKY_CACHE),  # a small container still caches the old default
        (1024 * GiB, MAX_STICKY_CACHE),
        (None, MIN_STICKY_CACHE),  # memory unknown
    ],
)
def test_the_default_is_a_quarter_of_the_memory(
    monkeypatch: pytest.MonkeyPatch, memory: int | None, expected: int
) -> None:
    monkeypatch.setattr(settings_module, "memory_limit_bytes", lambda: memory)
    assert settings().sticky_cache == expected


def test_the_environment_sets_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLLECT_MAX_CACHED_WORKFLOWS", "1234")
    assert settings().sticky_cache == 1234


def test_this_machines_memory_is_read() -> None:
    memory = settings_module.memory_limit_bytes()
    assert memory is None or memory > 64 * 1024 * 1024


async def test_the_worker_takes_only_as_many_workflow_tasks_as_its_setting() -> None:
    """Python runs workflow tasks one at a time; the SDK's 100 slots let a burst of cold accounts wait
    inside the worker past their 10 s timeout (the settlement race failed so on a slow machine)."""
    from temporalio.testing import WorkflowEnvironment

    from runtime.devserver import test_server_binary
    from workers.setup import build_workers

    assert settings().workflow_task_slots == 16
    async with await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=test_server_binary()
    ) as env:
        workers, _deps, executor = build_workers(
            env.client, settings(workflow_task_slots=5, database_url="sqlite://")
        )
        main, paced = workers
        async with main, paced:  # they start and stop cleanly with it
            assert main.config()["max_concurrent_workflow_tasks"] == 5
            assert paced.config().get("max_concurrent_workflow_tasks") is None  # sends only
        executor.shutdown(wait=False)
