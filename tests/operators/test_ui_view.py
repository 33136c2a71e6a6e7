"""What an operator sees in the Temporal UI with encryption on, against a real dev server and worker.

Two accounts go in through the real intake; the test then does what the UI does: lists by search
attribute, reads the raw history (ciphertext only), and decrypts through the codec endpoint over
HTTP with an operator's token, exactly as the browser would with ``--ui-codec-endpoint``.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from pydantic import SecretStr
from temporalio.api.common.v1 import Payload, Payloads, WorkflowExecution
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.query.v1 import WorkflowQuery
from temporalio.api.workflowservice.v1 import QueryWorkflowRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from domain.intake import parse_portfolio
from domain.timeline import AccountStatus
from runtime.codec import ENCODING, generate_key_entry
from runtime.devserver import start_dev_server, temporal_cli
from runtime.intake import intake_accounts
from runtime.settings import Settings
from runtime.temporal import connect
from service.app import create_app
from service.auth import COOKIE
from store.db import make_engine, session_factory
from tests.conftest import free_port
from workers.setup import build_workers
from workflows.state import AccountInput

TOKEN = "ops-token-xxxxxxxxxxxxxxxxxxxxxxx"
PLAIN = pydantic_data_converter.payload_converter


@dataclass
class Debtor:
    account_id: str
    name: str
    phone: str
    masked: str


@dataclass
class Ops:
    client: Client
    settings: Settings
    codec_url: str
    ui_url: str
    service_url: str
    debtors: list[Debtor]
    prefix: str


def _csv(debtors: list[Debtor], due: date) -> str:
    rows = [
        "account_id,name,phone,timezone,language,region,product,currency,balance,fees,due_date,profile,policy"
    ]
    for d in debtors:
        rows.append(f"{d.account_id},{d.name},{d.phone},,en,,credit_line,USD,1250.00,35.00,{due},US,default")
    return "\n".join(rows) + "\n"


@pytest.fixture(scope="module")
async def ops(settings: Settings) -> AsyncIterator[Ops]:
    port, ui_port, svc_port = free_port(), free_port(), free_port()
    prefix = f"OPS{uuid.uuid4().hex[:6].upper()}"
    codec_url = f"http://127.0.0.1:{svc_port}/codec"
    local = settings.model_copy(
        update={
            "temporal_address": f"127.0.0.1:{port}",
            "codec_keys": SecretStr(generate_key_entry("k1")),
            "api_tokens": {TOKEN: "olive:auditor"},
            "ui_origin": f"http://127.0.0.1:{ui_port}",
            "task_queue": f"ops-{prefix}",
            "contact_task_queue": f"ops-c-{prefix}",
        }
    )
    proc = start_dev_server(None, port, ui_port, codec_endpoint=codec_url)
    server: uvicorn.Server | None = None
    workers: list[Worker] = []
    tasks: list[asyncio.Task[Any]] = []
    executor = ThreadPoolExecutor(max_workers=32, thread_name_prefix="ops-activity")
    try:
        client = await _connect(local)
        workers, _, _ = build_workers(client, local, executor=executor, max_cached_workflows=20)
        tasks = [asyncio.create_task(w.run()) for w in workers]
        app = create_app(local)
        app.state.temporal_client = client
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=svc_port, log_level="warning", lifespan="off")
        )
        tasks.append(asyncio.create_task(server.serve()))
        debtors = [
            Debtor(f"{prefix}-1", "Jane Doe", "+12125550142", "+1 212***0142"),
            Debtor(f"{prefix}-2", "Jon Smith", "+13125550177", "+1 312***0177"),
        ]
        report = parse_portfolio(_csv(debtors, date.today() - timedelta(days=5)))
        assert not report.errors, report.errors
        result = await intake_accounts(
            client,
            session_factory(make_engine(local.database_url)),
            [a for _, a in report.accounts],
            task_queue=local.task_queue,
            contact_queue=local.contact_task_queue,
            day_seconds=local.day_seconds,
        )
        assert sorted(result.started) == [d.account_id for d in debtors], result.failed
        yield Ops(
            client,
            local,
            codec_url,
            f"http://127.0.0.1:{ui_port}",
            f"http://127.0.0.1:{svc_port}",
            debtors,
            prefix,
        )
    finally:
        await asyncio.gather(*(w.shutdown() for w in workers), return_exceptions=True)
        if server is not None:
            server.should_exit = True
        await asyncio.gather(*tasks, return_exceptions=True)
        executor.shutdown(wait=False)
        proc.terminate()
        proc.wait(timeout=20)


async def _connect(settings: Settings) -> Client:
    for _ in range(50):
        try:
            return await connect(settings)
        except RuntimeError:
            await asyncio.sleep(0.2)
    return await connect(settings)


async def _listed(client: Client, query: str, expected: int) -> list[Any]:
    """Visibility is eventually consistent: poll until the listing shows what it should."""
    found: list[Any] = []
    for _ in range(150):
        found = [w async for w in client.list_workflows(query)]
        if len(found) >= expected:
            return found
        await asyncio.sleep(0.1)
    return found


def payloads_in(message: Message, skip: frozenset[str] = frozenset()) -> Iterator[Payload]:
    """Every Payload anywhere in a protobuf message (fields named in ``skip`` left out)."""
    for field, value in message.ListFields():
        if field.type != FieldDescriptor.TYPE_MESSAGE or field.name in skip:
            continue
        if field.message_type.GetOptions().map_entry:
            if field.message_type.fields_by_name["value"].type != FieldDescriptor.TYPE_MESSAGE:
                continue
            items = list(value.values())
        elif field.is_repeated:
            items = list(value)
        else:
            items = [value]
        for item in items:
            if isinstance(item, Payload):
                yield item
            else:
                yield from payloads_in(item, skip)


async def decode_over_http(ops: Ops, payloads: list[Payload], token: str | None = TOKEN) -> httpx.Response:
    headers = {"X-Namespace": ops.settings.temporal_namespace}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    async with httpx.AsyncClient() as http:
        return await http.post(
            f"{ops.codec_url}/decode",
            json=json_format.MessageToDict(Payloads(payloads=payloads)),
            headers=headers,
        )


async def opened(ops: Ops, payloads: list[Payload]) -> list[Payload]:
    response = await decode_over_http(ops, payloads)
    assert response.status_code == 200, response.text
    return list(json_format.ParseDict(response.json(), Payloads()).payloads)


async def raw_query(ops: Ops, workflow_id: str, query_type: str) -> list[Payload]:
    """A query as the UI server makes it: the answer comes back as the worker encoded it."""
    response = await ops.client.workflow_service.query_workflow(
        QueryWorkflowRequest(
            namespace=ops.settings.temporal_namespace,
            execution=WorkflowExecution(workflow_id=workflow_id),
            query=WorkflowQuery(query_type=query_type),
        )
    )
    return list(response.query_result.payloads)


async def test_operators_filter_by_search_attribute_and_read_them_in_plain(ops: Ops) -> None:
    mine = f"WorkflowId STARTS_WITH 'account-{ops.prefix}'"
    early = await _listed(
        ops.client, f"{mine} AND CollectionStage = 'early' AND CollectionMode = 'dunning'", 2
    )
    assert sorted(w.id for w in early) == [f"account-{d.account_id}" for d in ops.debtors]
    listed = early[0].typed_search_attributes
    assert {p.key.name: p.value for p in listed if p.key.name in ("CollectionHold", "Jurisdiction")} == {
        "CollectionHold": "none",
        "Jurisdiction": "US",
    }
    async with httpx.AsyncClient() as http:
        ui = (await http.get(f"{ops.ui_url}/api/v1/settings")).json()
    assert ui["Codec"]["Endpoint"] == ops.codec_url  # the UI decodes through our endpoint


async def test_history_payloads_are_ciphertext_that_only_the_codec_endpoint_opens(ops: Ops) -> None:
    debtor = ops.debtors[0]
    handle = ops.client.get_workflow_handle(f"account-{debtor.account_id}")
    history = await handle.fetch_history()
    # The SDK's core writes the marker of a ``workflow.patched`` call itself, past the codec: it
    # holds the patch's name and nothing of the debtor, which the check below on raw bytes proves.
    sealed: list[Payload] = []
    plain: list[Payload] = []
    for e in history.events:
        into = plain if e.marker_recorded_event_attributes.marker_name == "core_patch" else sealed
        into.extend(payloads_in(e, skip=frozenset({"search_attributes"})))
    assert len(sealed) >= 3  # input, summary, details at least
    assert {p.metadata["encoding"] for p in sealed} == {ENCODING}
    raw = b"".join(p.SerializeToString() for p in sealed + plain)
    for readable in (debtor.account_id, debtor.masked, debtor.phone, debtor.name, "1250", "default"):
        assert readable.encode() not in raw, readable

    started = history.events[0].workflow_execution_started_event_attributes
    refused = await decode_over_http(ops, list(started.input.payloads), token=None)
    assert refused.status_code == 401
    assert debtor.account_id not in refused.text

    [opened_input] = await opened(ops, list(started.input.payloads))
    [workflow_input] = PLAIN.from_payloads([opened_input], [AccountInput])
    assert workflow_input.terms.account_id == debtor.account_id
    assert workflow_input.terms.masked_phone == debtor.masked


async def test_what_the_ui_shows_is_masked(ops: Ops) -> None:
    """Summaries, activity summaries and current details: readable through the codec, never identifying."""
    debtor = ops.debtors[1]
    workflow_id = f"account-{debtor.account_id}"
    handle = ops.client.get_workflow_handle(workflow_id)
    for _ in range(300):  # on a busy machine the first activity may not be scheduled yet
        history = await handle.fetch_history()
        if any(_is_activity(e) for e in history.events):
            break
        await asyncio.sleep(0.1)
    texts: list[str] = []
    for event in history.events:
        if event.HasField("user_metadata"):
            metadata = [p for p in (event.user_metadata.summary, event.user_metadata.details) if p.data]
            assert all(p.metadata["encoding"] == ENCODING for p in metadata)
            texts += [str(v) for v in PLAIN.from_payloads(await opened(ops, metadata))]
    summary = texts[0]
    assert debtor.account_id in summary and debtor.masked in summary
    assert any(_is_activity(e) and e.HasField("user_metadata") for e in history.events)

    [details] = await opened(ops, await raw_query(ops, workflow_id, "__temporal_workflow_metadata"))
    current = json.loads(details.data)["currentDetails"]
    assert "dunning" in current and debtor.masked in current
    texts.append(current)

    for text in texts:
        assert debtor.phone not in text and debtor.phone[1:] not in text
        assert debtor.name not in text and debtor.name.split()[1] not in text


async def test_an_operator_reads_the_status_through_the_codec_endpoint(ops: Ops) -> None:
    debtor = ops.debtors[0]
    sealed = await raw_query(ops, f"account-{debtor.account_id}", "status")
    assert [p.metadata["encoding"] for p in sealed] == [ENCODING]
    [status] = PLAIN.from_payloads(await opened(ops, sealed), [AccountStatus])
    assert (status.account_id, status.mode.value, status.stage.value, status.balance) == (
        debtor.account_id,
        "dunning",
        "early",
        125_000,
    )
    # and the application's own client, holding the key, reads it directly
    direct = await ops.client.get_workflow_handle(f"account-{debtor.account_id}").query(
        "status", result_type=AccountStatus
    )
    assert (direct.account_id, direct.stage) == (status.account_id, status.stage)


async def test_the_temporal_cli_decodes_through_the_same_endpoint(ops: Ops) -> None:
    """``temporal workflow show --codec-endpoint … --codec-auth "Bearer …"``: the operator's terminal."""
    debtor = ops.debtors[1]

    async def started_input(*codec: str) -> Payload:
        proc = await asyncio.create_subprocess_exec(
            temporal_cli(),
            "workflow",
            "show",
            "--address",
            ops.settings.temporal_address,
            "--workflow-id",
            f"account-{debtor.account_id}",
            "--output",
            "json",
            *codec,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        started = json.loads(out)["events"][0]["workflowExecutionStartedEventAttributes"]
        return json_format.ParseDict(started["input"]["payloads"][0], Payload())

    sealed = await started_input()
    assert sealed.metadata["encoding"] == ENCODING
    opened = await started_input("--codec-endpoint", ops.codec_url, "--codec-auth", f"Bearer {TOKEN}")
    [workflow_input] = PLAIN.from_payloads([opened], [AccountInput])
    assert workflow_input.terms.account_id == debtor.account_id


def _is_activity(event: HistoryEvent) -> bool:
    return event.HasField("activity_task_scheduled_event_attributes")


CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


async def test_the_temporal_ui_decrypts_only_for_a_signed_in_operator(ops: Ops) -> None:
    """The real UI in a real browser: CORS, the console cookie and the codec endpoint together."""
    from playwright.async_api import async_playwright

    debtor = ops.debtors[0]
    page_url = f"{ops.ui_url}/namespaces/default/workflows/account-{debtor.account_id}"

    def decode_call(response: Any) -> bool:
        return response.url.startswith(f"{ops.codec_url}/decode") and response.request.method == "POST"

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            operator = await browser.new_context()
            async with httpx.AsyncClient(base_url=ops.service_url) as console:  # the operator signs in
                signed_in = await console.post("/console/login", data={"token": TOKEN, "next": "/console"})
                assert signed_in.status_code == 303, signed_in.text
                session_id = console.cookies[COOKIE]
            await operator.add_cookies(
                [
                    {
                        "name": COOKIE,
                        "value": session_id,
                        "url": ops.service_url,
                        "httpOnly": True,
                        "sameSite": "Strict",
                    }
                ]
            )
            page = await operator.new_page()
            await page.goto(page_url)
            await _send_console_cookie_to_the_codec(page, ops.codec_url)
            async with page.expect_response(decode_call) as first:
                await page.reload()
            assert (await first.value).status == 200
            await page.get_by_text(f'"masked_phone": "{debtor.masked}"').wait_for(timeout=30_000)  # the input
            await page.get_by_text("User Metadata").click()
            shown = await _rendered_markdown(
                page, f"Account {debtor.account_id} · credit_line", f"debtor {debtor.masked}"
            )
            assert f"Account {debtor.account_id} · credit_line · USD 1,250.00 · US · {debtor.masked}" in shown
            assert f"debtor {debtor.masked}" in shown  # current details, from the query, decoded too
            for identifying in (debtor.phone, debtor.name):
                assert identifying not in shown

            # signed out of the console: the same browser and codec settings, a fresh page of the same view
            metadata_view = page.url
            await page.close()
            await operator.clear_cookies()
            page = await operator.new_page()
            async with page.expect_response(decode_call) as refused:
                await page.goto(metadata_view)
            assert (await refused.value).status == 401
            await (
                page.locator("#content")
                .get_by_text("Codec Server could not connect")
                .wait_for(timeout=30_000)
            )
            await page.get_by_text("No summary available").wait_for(timeout=30_000)
            assert debtor.masked not in await _all_text(page)
        finally:
            await browser.close()


async def _send_console_cookie_to_the_codec(page: Any, endpoint: str) -> None:
    """What the README tells an operator to do once per browser in the UI's "Codec Server" dialog."""
    await page.locator("[data-testid^=data-encoder-status]").click()  # configured, or in error after a 401
    await page.get_by_text("Use my browser setting and ignore Cluster-level setting.").click()
    await page.get_by_placeholder("Paste your endpoint here").fill(endpoint)
    await page.get_by_text("Include cross-origin credentials").click()
    await page.get_by_role("button", name="Apply").click()


async def _rendered_markdown(page: Any, *expected: str, within: float = 30.0) -> str:
    """The UI renders summaries and details as markdown in sandboxed iframes: read every frame's text
    once all of ``expected`` are there (the details come from a query of their own, after the summary)."""
    text = ""
    for _ in range(int(within * 10)):
        text = await _all_text(page)
        if all(e in text for e in expected):
            return text
        await page.wait_for_timeout(100)
    return text


async def _all_text(page: Any) -> str:
    """The page's text and every (markdown) iframe's, skipping a frame that goes away while being read."""
    texts = []
    for frame in page.frames:
        try:
            texts.append(await frame.content())
        except Exception:  # detached mid-read: it is no longer on the page
            continue
    return "\n".join(texts)
