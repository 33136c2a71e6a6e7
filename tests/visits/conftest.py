"""Field visits and placement end to end: real time-skipping Temporal, real database, the real agency API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from service.app import create_app
from tests.workflows.conftest import Harness, harness, running_harness  # noqa: F401

TOKENS = {
    "tok-agency-xxxxxxxxxxxxxxxxxxxxxx": "national-recovery:agency",
    "tok-other-agency-xxxxxxxxxxxxxxxx": "northeast-field:agency",
    "tok-agent-xxxxxxxxxxxxxxxxxxxxxxx": "alice:agent",
    "tok-supervisor-xxxxxxxxxxxxxxxxxx": "sam:supervisor",
    "tok-supervisor-two-xxxxxxxxxxxxxx": "kim:supervisor",  # the second pair of eyes on a write-off
}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def api(harness: Harness) -> AsyncIterator[httpx.AsyncClient]:  # noqa: F811
    """The HTTP service (agency API included) on the harness's database and Temporal server."""
    app = create_app(harness.settings.model_copy(update={"api_tokens": TOKENS}))
    app.state.temporal_client = harness.client
    app.state.sessions = harness.sessions
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as client:
        yield client


async def eventually(check: Callable[[], Any], what: str, *, tries: int = 200) -> Any:
    """Poll (real time, 50 ms) until ``check()`` is truthy; the workflow works in real time between skips."""
    for _ in range(tries):
        value = check()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")
