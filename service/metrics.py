"""``GET /metrics``: the HTTP service's Prometheus endpoint (and ``GET /healthz`` for the container).

The business figures (contacts by channel and outcome, denials by rule, the abandoned-call rate,
accounts by stage and hold, settlements, amounts recovered, open refunds, operator alerts) are computed from the application database
at scrape time by :class:`runtime.metrics.BusinessCollector`, so this endpoint is correct however many
workers run and whenever they restarted. It carries aggregates only, never a name or a number; keep it
on the internal network all the same (amounts recovered are business figures).
"""

from __future__ import annotations

import threading

from fastapi import APIRouter, Request, Response
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from runtime.metrics import business_registry, exposition
from runtime.settings import Settings, get_settings
from store.db import make_engine

router = APIRouter(tags=["operations"])
_lock = threading.Lock()


def _registry(request: Request) -> CollectorRegistry:
    """One registry per application, built on the first scrape (the app's settings name the database)."""
    state = request.app.state
    registry = getattr(state, "metrics_registry", None)
    if registry is None:
        with _lock:
            registry = getattr(state, "metrics_registry", None)
            if registry is None:
                settings: Settings = getattr(state, "settings", None) or get_settings()
                registry = state.metrics_registry = business_registry(make_engine(settings.database_url))
    return registry


@router.get(
    "/metrics",
    response_class=Response,
    summary="Prometheus metrics (text exposition format)",
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
def metrics(request: Request) -> Response:
    """A plain ``def``: the database queries run in FastAPI's thread pool, not on the event loop."""
    return Response(exposition(_registry(request)), media_type=CONTENT_TYPE_LATEST)


@router.get("/healthz", summary="Liveness: the service answers (the container healthcheck)")
def healthz() -> dict[str, str]:
    """Cheap on purpose: no database, no Temporal. Readiness shows in ``collect_metrics_database_up``."""
    return {"status": "ok"}
