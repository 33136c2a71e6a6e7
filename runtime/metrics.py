"""Prometheus metrics: the business figures, read from the application database at scrape time,
and the Temporal SDK's own worker metrics.

Why the business figures are computed from the database and not counted in memory: a worker counts
only what *it* did, forgets everything on restart, and with ``--scale worker=N`` every replica would
report a different slice. The database is the one record every replica writes, so a collector that
runs a few aggregate queries per scrape gives the same, complete answer on every replica and after
any restart. The price is a handful of ``GROUP BY`` queries per scrape (see :class:`BusinessCollector`);
scrape it every 30-60 s, not every second.

Served on:

* the HTTP service: ``GET /metrics`` (``service/metrics.py``), the business figures and the process;
* each worker: ``COLLECT_METRICS_PORT`` (``python -m workers``), the same business figures, the
  process, and the Temporal SDK's metrics (task slots, poll and schedule-to-start latencies, workflow
  cache, request failures). The SDK's Rust core serves its metrics on a loopback port of its own;
  the worker's endpoint appends that text to ours, so one scrape target per replica carries both.

Every figure sums over replicas *once* only if you deduplicate: all replicas report the same
business values, so use ``max without (instance) (...)`` in PromQL (or scrape the business figures
from the service alone, ``COLLECT_METRICS_BUSINESS=false`` on the workers).
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import Engine, and_, func, or_, select
from sqlalchemy.orm import Session

from domain.governor import ABANDONED, LIVE_ANSWERED, UK_WINDOW, US_WINDOW
from runtime.devserver import free_port
from runtime.event_metrics import event_families
from store.governor import ATTEMPT_TIME, LIVE_STATES, campaign_clocks
from store.models import AccountRow, AuditRow, ContactAttempt, HoldRow, PaymentRow, PlanRow
from store.refunds import open_totals

log = logging.getLogger(__name__)

PREFIX = "collect"
#: The governor's two regulatory windows (Ofcom 24 h, FCC 30 days): the rate is reported over both.
RATE_WINDOWS: dict[str, timedelta] = {"24h": UK_WINDOW, "30d": US_WINDOW}
#: Audit decisions that mean "the contact did not go out because of a rule".
GATE_DECISIONS = ("denied", "deferred")
#: Audit actions of the contact gate: planned by the workflow, or checked right before sending.
GATE_ACTIONS = {"contact_denied": "plan", "contact": "send"}
#: The API audits every proposal it put to a workflow under this action ("agreed", "rejected", "conflict").
PROPOSAL_ACTION = "plan_proposed"
#: The ``record`` activity's audit action when the database refuses a workflow's write for good.
ALERT_ACTION = "operator_alert"
#: Scrapes within this many seconds of the last one reuse its figures (measured: about 1.5 s of queries
#: for 20,000 accounts, 200,000 contact attempts and 800,000 audit lines on PostgreSQL, 2 cores).
DEFAULT_CACHE_SECONDS = 15.0


def _now() -> datetime:
    return datetime.now(UTC)


class BusinessCollector(Collector):
    """The collection business as Prometheus sees it, queried from the database at scrape time.

    Counters (``*_total``) only grow as long as rows are only added, which is how the store works:
    contact attempts, plans and payments are never deleted. The one exception is the audit log, which
    ``purge-audit`` trims after each profile's retention (3-6 years): the denied/deferred counters then
    drop, which Prometheus treats as a counter reset.

    A database that does not answer does not fail the scrape: ``collect_metrics_database_up`` says 0
    and the business families are left out (absent, not zero, so no alert sees a fake recovery).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Callable[[], datetime] = _now,
        cache_seconds: float = DEFAULT_CACHE_SECONDS,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._cached: tuple[float, list[Metric]] | None = None

    def describe(self) -> Iterable[Metric]:
        return []  # do not query the database when the collector is registered

    def collect(self) -> Iterator[Metric]:
        """The families, recomputed at most every ``cache_seconds`` (two Prometheus servers, or a scrape
        and a person's curl, cost one round of queries); scrapes never run the queries concurrently."""
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] >= self.cache_seconds:
                self._cached = (now, list(self._compute()))
            families = self._cached[1]
        yield from families

    def _compute(self) -> Iterator[Metric]:
        started = time.perf_counter()
        up = GaugeMetricFamily(
            f"{PREFIX}_metrics_database_up", "1 if the application database answered this scrape's queries"
        )
        try:
            with Session(self.engine) as s:
                families = list(self._families(s, self.clock()))
        except Exception as exc:
            log.warning("business metrics: the application database did not answer: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families
        took = GaugeMetricFamily(
            f"{PREFIX}_metrics_query_seconds", "How long this scrape's business queries took"
        )
        took.add_metric([], time.perf_counter() - started)
        yield took

    # ---- the families -----------------------------------------------------------------------------
    def _families(self, s: Session, now: datetime) -> Iterator[Metric]:
        yield self._contacts(s)
        yield self._gate_decisions(s)
        yield from self._abandoned_rate(s, now)
        yield from self._accounts(s, now)
        yield from self._settlements(s)
        yield from self._money(s)
        yield from self._refunds(s)
        yield self._alerts(s)
        yield from event_families(s, now, PREFIX)  # events to the lender's systems (runtime/event_metrics.py)

    @staticmethod
    def _contacts(s: Session) -> Metric:
        outcome = func.coalesce(ContactAttempt.outcome, ContactAttempt.state)
        rows = s.execute(
            select(ContactAttempt.channel, outcome, func.count())
            .group_by(ContactAttempt.channel, outcome)
            .order_by(ContactAttempt.channel, outcome)
        ).all()
        family = CounterMetricFamily(
            f"{PREFIX}_contacts",
            "Contact attempts by channel and outcome (delivered, conversation, silent, denied ...; "
            "an attempt without a known outcome yet is labelled with its state: reserved, retryable)",
            labels=["channel", "outcome"],
        )
        for channel, value, count in rows:
            family.add_metric([channel, value], count)
        return family

    @staticmethod
    def _gate_decisions(s: Session) -> Metric:
        rows = s.execute(
            select(AuditRow.action, AuditRow.decision, AuditRow.rule, func.count())
            .where(AuditRow.action.in_(list(GATE_ACTIONS)), AuditRow.decision.in_(GATE_DECISIONS))
            .group_by(AuditRow.action, AuditRow.decision, AuditRow.rule)
            .order_by(AuditRow.action, AuditRow.decision, AuditRow.rule)
        ).all()
        family = CounterMetricFamily(
            f"{PREFIX}_contact_decisions",
            "Contacts denied or deferred by a rule (quiet hours, caps, holds, the call governor ...), "
            "checked when the workflow planned the contact (plan) or right before sending (send)",
            labels=["decision", "rule", "checked"],
        )
        for action, decision, rule, count in rows:
            family.add_metric([decision, rule or "none", GATE_ACTIONS[action]], count)
        return family

    @staticmethod
    def _abandoned_rate(s: Session, now: datetime) -> Iterator[Metric]:
        """The campaign's abandoned (silent) calls over live-answered calls, counted as the governor does.

        Same calls as ``store.governor.campaign_calls``: voice attempts that went out or may have
        (accepted, indeterminate, reserved), timed by when they went out, in policy time. A *campaign*
        is the policy. Each window ends at the campaign's policy now (``store.governor.campaign_clocks``:
        the wall clock in production; under the demo's day scaling, the policy time of the campaign's
        newest attempt), so a 24-hour window is one policy day, not every call of the last real day.
        """
        rate = GaugeMetricFamily(
            f"{PREFIX}_abandoned_call_rate",
            "Abandoned (silent) calls / live-answered calls per campaign over the rolling window "
            "(the regulatory limit is 0.03); 0 while no call was answered",
            labels=["campaign", "window"],
        )
        live = GaugeMetricFamily(
            f"{PREFIX}_live_answered_calls",
            "Calls a person picked up (conversation or silent) per campaign over the rolling window",
            labels=["campaign", "window"],
        )
        abandoned = GaugeMetricFamily(
            f"{PREFIX}_abandoned_calls",
            "Abandoned (silent) calls per campaign over the rolling window",
            labels=["campaign", "window"],
        )
        silent_values = {o.value for o in ABANDONED}
        for campaign, campaign_now in sorted(campaign_clocks(s, now).items()):
            for window, span in RATE_WINDOWS.items():
                rows = s.execute(
                    select(ContactAttempt.outcome, func.count())
                    .join(AccountRow, AccountRow.account_id == ContactAttempt.account_id)
                    .where(
                        AccountRow.policy == campaign,
                        ContactAttempt.channel == "voice",
                        ContactAttempt.state.in_(LIVE_STATES),
                        ContactAttempt.outcome.in_([o.value for o in LIVE_ANSWERED]),
                        ATTEMPT_TIME > campaign_now - span,
                        ATTEMPT_TIME <= campaign_now,
                    )
                    .group_by(ContactAttempt.outcome)
                ).all()
                answered = sum(count for _, count in rows)
                silent = sum(count for outcome, count in rows if outcome in silent_values)
                live.add_metric([campaign, window], answered)
                abandoned.add_metric([campaign, window], silent)
                rate.add_metric([campaign, window], round(silent / answered, 6) if answered else 0.0)
        yield rate
        yield live
        yield abandoned

    @staticmethod
    def _accounts(s: Session, now: datetime) -> Iterator[Metric]:
        stage = func.coalesce(AccountRow.stage, "none")
        rows = s.execute(
            select(AccountRow.mode, stage, func.count())
            .group_by(AccountRow.mode, stage)
            .order_by(AccountRow.mode, stage)
        ).all()
        accounts = GaugeMetricFamily(
            f"{PREFIX}_accounts",
            "Accounts by mode (dunning, settlement, closed) and collection stage",
            labels=["mode", "stage"],
        )
        for mode, value, count in rows:
            accounts.add_metric([mode, value], count)
        yield accounts

        active = and_(HoldRow.lifted_at.is_(None), or_(HoldRow.until.is_(None), HoldRow.until > now))
        held = s.execute(
            select(HoldRow.kind, func.count(func.distinct(HoldRow.account_id)))
            .join(AccountRow, AccountRow.account_id == HoldRow.account_id)
            .where(active, AccountRow.mode != "closed")
            .group_by(HoldRow.kind)
            .order_by(HoldRow.kind)
        ).all()
        holds = GaugeMetricFamily(
            f"{PREFIX}_accounts_on_hold",
            "Open accounts with an active hold of each kind (pause, dispute, complaint, cease, negotiation ...)",
            labels=["hold"],
        )
        for kind, count in held:
            holds.add_metric([kind], count)
        yield holds

    @staticmethod
    def _settlements(s: Session) -> Iterator[Metric]:
        by_status = dict(s.execute(select(PlanRow.status, func.count()).group_by(PlanRow.status)).all())
        refused = (
            s.scalar(
                select(func.count()).where(AuditRow.action == PROPOSAL_ACTION, AuditRow.decision != "agreed")
            )
            or 0
        )
        accepted = sum(by_status.values())
        family = CounterMetricFamily(
            f"{PREFIX}_settlements",
            "Settlement plans: proposed (accepted + refused by policy or conflicting, as the API audited "
            "them), accepted (agreed and stored), broken (an instalment missed past grace), completed, "
            "cancelled (the account closed while the plan ran)",
            labels=["event"],
        )
        family.add_metric(["proposed"], accepted + refused)
        family.add_metric(["accepted"], accepted)
        for status in ("broken", "completed", "cancelled"):
            family.add_metric([status], by_status.get(status, 0))
        yield family
        running = GaugeMetricFamily(f"{PREFIX}_settlements_active", "Settlement plans running now")
        running.add_metric([], by_status.get("active", 0))
        yield running

    @staticmethod
    def _money(s: Session) -> Iterator[Metric]:
        recovered = CounterMetricFamily(
            f"{PREFIX}_recovered_minor_units",
            "Payments received, in minor units of the currency (cents, fen, pence)",
            labels=["currency"],
        )
        for currency, total in s.execute(
            select(PaymentRow.currency, func.sum(PaymentRow.amount_minor))
            .group_by(PaymentRow.currency)
            .order_by(PaymentRow.currency)
        ).all():
            recovered.add_metric([currency], int(total or 0))
        yield recovered
        outstanding = GaugeMetricFamily(
            f"{PREFIX}_outstanding_minor_units",
            "Balance still owed on open accounts, in minor units of the currency",
            labels=["currency"],
        )
        for currency, total in s.execute(
            select(AccountRow.currency, func.sum(AccountRow.balance_minor))
            .where(AccountRow.mode != "closed")
            .group_by(AccountRow.currency)
            .order_by(AccountRow.currency)
        ).all():
            outstanding.add_metric([currency], int(total or 0))
        yield outstanding

    @staticmethod
    def _refunds(s: Session) -> Iterator[Metric]:
        """Money waiting for an operator to send back or apply (``store.refunds``)."""
        count = GaugeMetricFamily(
            f"{PREFIX}_refunds_open",
            "Refunds waiting for an operator: payments beyond the balance, while closing, or after closing",
            labels=["currency"],
        )
        amount = GaugeMetricFamily(
            f"{PREFIX}_refunds_open_minor_units",
            "Money in the open refunds, in minor units of the currency",
            labels=["currency"],
        )
        for currency, (n, total) in sorted(open_totals(s).items()):
            count.add_metric([currency], n)
            amount.add_metric([currency], total)
        yield count
        yield amount

    @staticmethod
    def _alerts(s: Session) -> Metric:
        alerts = CounterMetricFamily(
            f"{PREFIX}_operator_alerts",
            "Writes the database refused for good (the record activity's operator_alert audit lines): "
            "each needs a person, the change is kept in the audit line",
        )
        alerts.add_metric([], s.scalar(select(func.count()).where(AuditRow.action == ALERT_ACTION)) or 0)
        return alerts


# ---- registries and endpoints ------------------------------------------------------------------------
def business_registry(
    engine: Engine,
    *,
    business: bool = True,
    process: bool = True,
    cache_seconds: float = DEFAULT_CACHE_SECONDS,
) -> CollectorRegistry:
    """A registry of its own (not the global one), so two apps or workers in one process never clash."""
    registry = CollectorRegistry(auto_describe=False)
    if business:
        registry.register(BusinessCollector(engine, cache_seconds=cache_seconds))
    if process:
        ProcessCollector(registry=registry)
    return registry


def exposition(registry: CollectorRegistry, sdk_url: str | None = None) -> bytes:
    """Our families in the text format, followed by the SDK's own text (fetched from its loopback port).

    The text format allows families in any order, and the SDK's names (``temporal_*``) never meet
    ours (``collect_*``, ``process_*``), so concatenating is a valid exposition.
    """
    body = generate_latest(registry)
    if sdk_url:
        try:
            # sdk_url is http://127.0.0.1:<port>, bound by this very process (MetricsServer)
            with urllib.request.urlopen(sdk_url, timeout=5) as response:  # nosec B310
                sdk = response.read()
        except OSError as exc:
            log.warning("SDK metrics unavailable at %s: %s", sdk_url, exc)
        else:
            if sdk and not sdk.endswith(b"\n"):
                sdk += b"\n"
            body += sdk
    return body


def install_sdk_metrics(bind_address: str) -> None:
    """Make the Temporal SDK export its metrics in Prometheus format on ``bind_address``.

    Sets the process's default :class:`temporalio.runtime.Runtime`, so it must run before the first
    ``Client.connect`` of the process (the runtime is fixed when a client is created).
    """
    from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

    runtime = Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=bind_address)))
    Runtime.set_default(runtime, error_if_already_set=True)


class MetricsServer:
    """A worker's ``/metrics`` endpoint: business figures, the process and the SDK, on one port."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int, sdk_url: str | None) -> None:
        self.registry, self.sdk_url = registry, sdk_url
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/healthz":  # the container healthcheck: cheap, no database round
                    body, content_type = b"ok\n", "text/plain; charset=utf-8"
                elif path in ("/metrics", "/"):
                    body, content_type = exposition(outer.registry, outer.sdk_url), CONTENT_TYPE_LATEST
                else:
                    self.send_error(404, "only /metrics and /healthz are served here")
                    return
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # scrapes are not news
                pass

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="metrics", daemon=True)

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def start(self) -> MetricsServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def start_worker_metrics(
    engine: Engine,
    port: int,
    *,
    host: str = "0.0.0.0",  # in a worker's container, for Prometheus on its network # nosec B104
    business: bool = True,
    sdk: bool = True,
) -> MetricsServer:
    """Serve a worker's metrics on ``host:port`` (0 picks a free port) and route the SDK's there too.

    With ``sdk`` this installs the process's Temporal runtime (see :func:`install_sdk_metrics`): call
    it before connecting to Temporal.
    """
    sdk_url = None
    if sdk:
        sdk_port = free_port()
        try:
            install_sdk_metrics(f"127.0.0.1:{sdk_port}")
        except RuntimeError as exc:  # a client was created earlier in this process: its runtime stays
            log.warning("Temporal SDK metrics not served: %s", exc)
        else:
            sdk_url = f"http://127.0.0.1:{sdk_port}/metrics"
    registry = business_registry(engine, business=business)
    return MetricsServer(registry, host, port, sdk_url).start()


__all__ = [
    "BusinessCollector",
    "MetricsServer",
    "business_registry",
    "exposition",
    "install_sdk_metrics",
    "start_worker_metrics",
]
