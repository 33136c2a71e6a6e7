"""The event deliveries in Prometheus terms, for :class:`runtime.metrics.BusinessCollector`.

From the database at scrape time like the other business figures, so every replica says the same:
per subscription the backlog (deliveries not yet answered 2xx), the dead letters (each stops its
account's events to that subscription), the failed tries, and how long the oldest undelivered event has
waited; and the events not yet routed to any subscription (a deliverer that is not running shows here).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from sqlalchemy.orm import Session

from store.subscriptions import figures


def event_families(s: Session, now: datetime, prefix: str = "collect") -> Iterator[Metric]:
    found = figures(s, now)
    labels = ["subscription", "status"]
    backlog = GaugeMetricFamily(
        f"{prefix}_event_backlog",
        "Events not yet delivered (answered 2xx) to each subscription",
        labels=labels,
    )
    dead = GaugeMetricFamily(
        f"{prefix}_event_dead_letters",
        "Dead letters per subscription: each stops its account's events there until retried; alert above 0",
        labels=labels,
    )
    failures = CounterMetricFamily(
        f"{prefix}_event_delivery_failures",
        "Delivery tries that got no 2xx (an error status, a timeout, no connection) per subscription",
        labels=labels,
    )
    oldest = GaugeMetricFamily(
        f"{prefix}_event_oldest_undelivered_seconds",
        "Age of the oldest event not yet delivered to each subscription (0: none waiting)",
        labels=labels,
    )
    for sub_id, status, pending, n_dead, failed, first in found.per_subscription:
        key = [str(sub_id), status]
        backlog.add_metric(key, pending + n_dead)
        dead.add_metric(key, n_dead)
        failures.add_metric(key, failed)
        oldest.add_metric(key, max((now - first).total_seconds(), 0.0) if first is not None else 0.0)
    yield backlog
    yield dead
    yield failures
    yield oldest
    unrouted = GaugeMetricFamily(
        f"{prefix}_event_outbox_unrouted",
        "Events written but not yet handed to the subscriptions (no deliverer running, if it grows)",
    )
    unrouted.add_metric([], found.unrouted)
    yield unrouted
    age = GaugeMetricFamily(
        f"{prefix}_event_outbox_oldest_unrouted_seconds", "Age of the oldest event not yet routed (0: none)"
    )
    first = found.oldest_unrouted
    age.add_metric([], max((now - first).total_seconds(), 0.0) if first is not None else 0.0)
    yield age
