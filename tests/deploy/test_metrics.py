"""The metrics an operator scrapes: right after real activity, the same on every replica, after a restart.

The activity goes through the ``store`` modules (what the activities and the API call) into a database of
this module's own; the values are read back the way Prometheus reads them: ``GET /metrics`` on the
HTTP service (ASGI) and on a real ``python -m workers`` process's metrics port.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, delete

from domain.governor import UK_WINDOW, GovernorRules
from runtime.metrics import business_registry, exposition
from runtime.settings import Settings
from service.app import create_app
from store.audit import audit
from store.contacts import mark_attempt, reserve_attempt, update_attempt_status_by_sid
from store.db import make_engine, session_factory
from store.governor import campaign_report
from store.models import AuditRow, ContactAttempt, RefundRow
from store.refunds import queue_refund, resolve_refund
from tests.conftest import free_port
from tests.deploy.conftest import Seeded

ROOT = Path(__file__).resolve().parents[2]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of an exposition, keyed by (sample name, labels)."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def assert_business_figures(samples: Samples, seeded: Seeded) -> None:
    """What an operator must read after :func:`tests.deploy.conftest.seed`."""
    assert value(samples, "collect_metrics_database_up") == 1
    contacts = "collect_contacts_total"
    assert value(samples, contacts, channel="sms", outcome="delivered") == seeded.sms_delivered
    assert value(samples, contacts, channel="sms", outcome="denied") == 1
    assert value(samples, contacts, channel="voice", outcome="silent") == seeded.voice_silent
    assert value(samples, contacts, channel="voice", outcome="conversation") == seeded.voice_conversation
    assert value(samples, contacts, channel="voice", outcome="no_answer") == seeded.voice_no_answer

    decisions = "collect_contact_decisions_total"
    assert value(samples, decisions, decision="denied", rule="gate.quiet_hours", checked="send") == 1
    assert value(samples, decisions, decision="deferred", rule="gate.sms_cap", checked="send") == 2
    assert value(samples, decisions, decision="denied", rule="hold.pause", checked="plan") == 1

    # last 24 h: 1 silent of 3 answered (the no-answer call is not live-answered); 30 days: 2 of 4
    rate_24h = value(samples, "collect_abandoned_call_rate", campaign="default", window="24h")
    assert rate_24h == pytest.approx(1 / 3, abs=1e-6)
    assert value(samples, "collect_abandoned_call_rate", campaign="default", window="30d") == 0.5
    assert value(samples, "collect_live_answered_calls", campaign="default", window="30d") == 4

    assert value(samples, "collect_accounts", mode="dunning", stage="early") == 1
    assert value(samples, "collect_accounts", mode="settlement", stage="middle") == 1
    assert value(samples, "collect_accounts", mode="closed", stage="early") == 1
    assert value(samples, "collect_accounts_on_hold", hold="pause") == 1
    assert value(samples, "collect_accounts_on_hold", hold="dispute") is None  # lifted

    settlements = "collect_settlements_total"
    assert value(samples, settlements, event="proposed") == 4  # 3 agreed + 1 refused by policy
    assert value(samples, settlements, event="accepted") == 3
    assert value(samples, settlements, event="broken") == 1
    assert value(samples, settlements, event="completed") == 1
    assert value(samples, "collect_settlements_active") == 1

    assert value(samples, "collect_recovered_minor_units_total", currency="USD") == seeded.usd_recovered
    assert value(samples, "collect_recovered_minor_units_total", currency="CNY") == seeded.cny_recovered
    # nothing waits for an operator in the seeded data: no refund family sample, the alert count at 0
    assert value(samples, "collect_refunds_open", currency="USD") is None
    assert value(samples, "collect_operator_alerts_total") == 0


#: the token Prometheus scrapes with (its bearer_token_file in deploy/prometheus.yml)
SCRAPE = "prometheus-scrape-token-0123456789abcdef"


def service_app(database_url: str) -> Any:
    return create_app(
        Settings(database_url=database_url, api_tokens={SCRAPE: "prometheus:auditor"}, _env_file=None)
    )  # type: ignore[call-arg]


async def test_the_service_reports_contacts_denials_silent_calls_settlements_and_money(
    metrics_db: str, seeded: Seeded
) -> None:
    transport = httpx.ASGITransport(app=service_app(metrics_db))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        response = await http.get("/metrics", headers={"Authorization": f"Bearer {SCRAPE}"})
        health = await http.get("/healthz")
    assert health.status_code == 200
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = parse(response.text)
    assert_business_figures(samples, seeded)
    assert value(samples, "process_open_fds") is not None or sys.platform != "linux"


def test_the_rate_is_the_one_the_governor_enforces(metrics_db: str, seeded: Seeded) -> None:
    samples = parse(exposition(business_registry(make_engine(metrics_db), process=False)).decode())
    with session_factory(make_engine(metrics_db)).begin() as s:
        now = datetime.now(UTC)
        month = campaign_report(s, "default", now)
        day = campaign_report(s, "default", now, GovernorRules(window=UK_WINDOW))
    assert value(samples, "collect_abandoned_call_rate", campaign="default", window="30d") == month.rate
    assert value(samples, "collect_abandoned_call_rate", campaign="default", window="24h") == day.rate
    assert value(samples, "collect_abandoned_calls", campaign="default", window="24h") == day.abandoned


def test_every_replica_and_a_restarted_one_report_the_same_totals(metrics_db: str, seeded: Seeded) -> None:
    """Counted in the database, not in memory: replicas agree, and a restart loses nothing."""
    engine = make_engine(metrics_db)
    first, second = (business_registry(engine, process=False, cache_seconds=0) for _ in range(2))
    cached = business_registry(engine, process=False)  # the default: figures reused for 15 s
    delivered = ("collect_contacts_total", frozenset({("channel", "sms"), ("outcome", "delivered")}))
    assert parse(exposition(first).decode())[delivered] == seeded.sms_delivered
    assert parse(exposition(cached).decode())[delivered] == seeded.sms_delivered

    # one more SMS delivered, written by "another replica" (any process writing the database)
    now = datetime.now(UTC)
    with session_factory(engine).begin() as s:
        reserve_attempt(
            s, dedupe_key="M-4/sms-9", account_id="M-4", channel="sms", purpose="dunning",
            template="early_reminder", to_address="+12125550142", now=now,
        )  # fmt: skip
        mark_attempt(s, "M-4/sms-9", state="accepted", provider_sid="SID-M-4-9", outcome="sent", now=now)
        update_attempt_status_by_sid(s, "SID-M-4-9", "delivered", "delivered", None, now)
    try:
        restarted = business_registry(engine, process=False, cache_seconds=0)
        for registry in (first, second, restarted):
            assert parse(exposition(registry).decode())[delivered] == seeded.sms_delivered + 1
        # a scrape right after the last one costs no queries: it shows that scrape's figures
        assert parse(exposition(cached).decode())[delivered] == seeded.sms_delivered
    finally:
        with session_factory(engine).begin() as s:  # keep the module's figures as seeded
            s.execute(delete(ContactAttempt).where(ContactAttempt.dedupe_key == "M-4/sms-9"))


def test_open_refunds_and_operator_alerts_are_reported_as_queued(metrics_db: str, seeded: Seeded) -> None:
    """A refund queued (and one resolved), an operator alert written: the numbers an alert reads."""
    engine = make_engine(metrics_db)
    now = datetime.now(UTC)
    with session_factory(engine).begin() as s:
        for reference, amount in (("R-1", 1_500), ("R-2", 250), ("R-3", 9_000)):
            queued = queue_refund(
                s, account_id="M-4", reference=reference, amount_minor=amount, currency="USD",
                reason="received after the account closed (paid)", now=now,
            )  # fmt: skip
        resolve_refund(s, queued.id, status="applied", by="sam", note=None, now=now)  # not open
        audit(
            s, at=now, clock="policy", account_id="M-4", actor="record", action="operator_alert",
            decision="record_refused", rule="payment", details={"reason": "IntegrityError"},
        )  # fmt: skip
    try:
        samples = parse(exposition(business_registry(engine, process=False, cache_seconds=0)).decode())
        assert value(samples, "collect_refunds_open", currency="USD") == 2
        assert value(samples, "collect_refunds_open_minor_units", currency="USD") == 1_750
        assert value(samples, "collect_refunds_open", currency="CNY") is None
        assert value(samples, "collect_operator_alerts_total") == 1
    finally:
        with session_factory(engine).begin() as s:  # keep the module's figures as seeded
            s.execute(delete(RefundRow).where(RefundRow.account_id == "M-4"))
            s.execute(delete(AuditRow).where(AuditRow.action == "operator_alert"))


def test_a_database_that_does_not_answer_does_not_fail_the_scrape(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'no-such-dir' / 'collect.db'}")
    samples = parse(exposition(business_registry(engine, process=False)).decode())
    assert value(samples, "collect_metrics_database_up") == 0
    assert not any(name.startswith("collect_contacts") for name, _ in samples)


# ---- a real worker process ---------------------------------------------------------------------------
@pytest.fixture
def worker_process(
    metrics_db: str, own_env: Any, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[str], int, str]]:
    """``python -m workers`` as compose runs it, against a Temporal server and the seeded database.

    Settings only from the environment: it runs outside the repository, so no developer's ``.env`` leaks in.
    """
    port = free_port()
    queue = f"metrics-{uuid.uuid4().hex[:8]}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("COLLECT_")},
        "COLLECT_TEMPORAL_ADDRESS": own_env.client.service_client.config.target_host,
        "COLLECT_DATABASE_URL": metrics_db,
        "COLLECT_TASK_QUEUE": queue,
        "COLLECT_CONTACT_TASK_QUEUE": f"{queue}-contact",
        "COLLECT_METRICS_PORT": str(port),
        "PYTHONPATH": str(ROOT),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "workers"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield proc, port, queue
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def sdk_metrics(samples: Samples, queue: str) -> set[str]:
    """Names of the Temporal SDK's metrics about this worker's task queue."""
    return {
        name for name, labels in samples if name.startswith("temporal_") and ("task_queue", queue) in labels
    }


def scrape_until(port: int, queue: str, within: float = 30.0) -> Samples:
    """The worker's metrics once the SDK reports its task slots (it does once the pollers run)."""
    deadline = time.monotonic() + within
    text = ""
    while time.monotonic() < deadline:
        try:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        except httpx.TransportError:
            pass
        else:
            samples = parse(text)
            if any("task_slots" in name for name in sdk_metrics(samples, queue)):
                return samples
        time.sleep(0.3)
    raise AssertionError(f"no SDK task-slot metric for {queue} after {within} s:\n{text[-2000:]}")


def test_a_worker_serves_business_and_sdk_metrics_on_its_port_and_stops_on_sigterm(
    worker_process: tuple[subprocess.Popen[str], int, str], seeded: Seeded
) -> None:
    proc, port, queue = worker_process
    samples = scrape_until(port, queue)
    assert_business_figures(samples, seeded)
    # the Temporal SDK's own worker metrics, for this worker's task queue, through the same endpoint
    assert {"temporal_worker_task_slots_available", "temporal_num_pollers"} <= sdk_metrics(samples, queue)

    assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).text == "ok\n"  # compose's healthcheck

    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "shutting down gracefully" in out and "worker stopped" in out
