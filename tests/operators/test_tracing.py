"""Traces hop by hop: API request → Temporal signal (one trace, the workflow's handler linked to it), and
account start → workflow → activity → the Twilio request (one trace, ``traceparent`` on the wire).

Real parts: a Temporal dev server, the worker and the app of the product, the twilio SDK over HTTP to the
session's carrier simulator; spans go to OpenTelemetry's in-memory exporter instead of a collector.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from domain.accounts import Account, AccountTerms, Debtor
from runtime.devserver import temporal_cli
from runtime.intake import start_account
from runtime.settings import Settings
from runtime.temporal import data_converter
from runtime.tracing import setup_tracing, stop_tracing, temporal_interceptors
from service.app import create_app
from store.accounts import upsert_account
from store.db import make_engine, session_factory
from tests.conftest import unplaced_phone
from workers.setup import build_workers
from workflows import search
from workflows.messages import RunResult

#: one of them is always between 10:00 and 19:00, where a receipt may go out at once
ZONES = ["America/New_York", "Europe/London", "Asia/Shanghai", "Pacific/Auckland", "America/Los_Angeles"]


def daytime_zone() -> str:
    now = datetime.now(UTC)
    return next(z for z in ZONES if 10 <= now.astimezone(ZoneInfo(z)).hour < 19)


async def test_api_to_workflow_and_workflow_to_twilio_are_traced_hop_by_hop(settings: Settings) -> None:
    exporter = InMemorySpanExporter()
    setup_tracing(settings, "collect-test", exporter=exporter, set_global=False)
    try:
        async with await WorkflowEnvironment.start_local(
            dev_server_existing_path=temporal_cli(),
            data_converter=data_converter(),
            search_attributes=search.ALL,
            dev_server_log_level="error",
        ) as env:
            client = Client(**{**env.client.config(), "interceptors": temporal_interceptors()})
            suffix = uuid.uuid4().hex[:8]
            local = settings.model_copy(
                update={
                    "task_queue": f"trace-{suffix}",
                    "contact_task_queue": f"trace-c-{suffix}",
                    "api_tokens": {"trace-agent-xxxxxxxxxxxxxxxxxxxxx": "alice:agent"},
                }
            )
            workers, _, executor = build_workers(client, local, max_cached_workflows=10)
            tasks = [asyncio.create_task(w.run()) for w in workers]
            try:
                zone = daytime_zone()
                phone = unplaced_phone(77)
                account = Account(
                    account_id=f"TR-{suffix}",
                    debtor=Debtor(name="Jane Doe", phone=phone, timezone=zone),
                    currency="USD",
                    balance=20_000,
                    fees=0,
                    due_date=datetime.now(ZoneInfo(zone)).date() - timedelta(days=20),
                )
                with session_factory(make_engine(local.database_url)).begin() as s:
                    upsert_account(s, account, datetime.now(UTC))
                await start_account(
                    client,
                    AccountTerms.from_account(account),
                    task_queue=local.task_queue,
                    day_seconds=86_400,
                    contact_queue=local.contact_task_queue,
                )
                app = create_app(local, temporal_client=client)
                async with httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://api.test", timeout=30
                ) as http:
                    paid = await http.post(
                        f"/api/accounts/{account.account_id}/payments",
                        headers={"Authorization": "Bearer trace-agent-xxxxxxxxxxxxxxxxxxxxx"},
                        json={"amount": 20_000, "currency": "USD", "reference": f"{suffix}-full"},
                    )
                assert paid.status_code == 202, paid.text
                result = await client.get_workflow_handle(account.workflow_id, result_type=RunResult).result()
                assert result.state == "closed_paid"  # and the receipt went out, through the SDK
            finally:
                await asyncio.gather(*(w.shutdown() for w in workers), return_exceptions=True)
                await asyncio.gather(*tasks, return_exceptions=True)
                executor.shutdown(wait=False)
    finally:
        spans = list(exporter.get_finished_spans())
        stop_tracing()

    by_id = {s.context.span_id: s for s in spans}

    def parent(span):  # type: ignore[no-untyped-def]
        return by_id.get(span.parent.span_id) if span.parent else None

    def chain(span) -> list[str]:  # type: ignore[no-untyped-def]
        names = []
        while span is not None:
            names.append(span.name)
            span = parent(span)
        return names

    # API -> Temporal signal, one trace; the workflow's handler span sits in the workflow's own trace and
    # links back to the signal that caused it (Temporal's convention for signals)
    [api] = [s for s in spans if s.name == "POST /api/accounts/{account_id}/payments"]
    [signal] = [s for s in spans if s.name == "SignalWorkflow:payment_received"]
    [handled] = [s for s in spans if s.name == "HandleSignal:payment_received"]
    assert parent(signal) is api and api.parent is None
    assert [link.context.span_id for link in handled.links] == [signal.context.span_id]
    assert chain(handled)[-1] == "StartWorkflow:DelinquencyWorkflow"
    assert api.attributes["http.response.status_code"] == 202

    # account start -> workflow -> send activity -> the HTTP request to the carrier, one trace
    [twilio] = [s for s in spans if s.name.startswith("twilio POST") and s.name.endswith("/Messages.json")]
    assert chain(twilio)[1:] == [
        "RunActivity:send_contact",
        "StartActivity:send_contact",
        "StartWorkflow:DelinquencyWorkflow",
    ]
    assert twilio.attributes["http.response.status_code"] == 201

    # spans name account IDs at most: never the debtor
    for span in spans:
        shown = span.name + " " + " ".join(str(v) for v in (span.attributes or {}).values())
        assert phone not in shown and "Jane Doe" not in shown, span.name
