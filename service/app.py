"""One FastAPI application; each concern lives in its own router module and is mounted here.

Run with ``python starter.py service`` (or ``uvicorn service.app:create_app --factory``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response
from temporalio.client import Client

from runtime import tracing
from runtime.settings import Settings, get_settings
from service import (
    access,
    agency,
    agreement,
    api_accounts,
    api_events,
    api_holds,
    api_numbers,
    api_payments,
    api_plans,
    auth,
    code_signin,
    codec,
    console,
    console_actions,
    console_cases,
    console_events,
    console_queues,
    console_signin,
    console_whatif,
    dashboard,
    debtor_number,
    debtor_payments,
    debtor_requests,
    debtor_signin,
    inbound_sms,
    metrics,
    nul_guard,
    selfservice,
    verify,
    webhooks,
)
from service.checkout import simulator as checkout_simulator
from service.checkout import webhook as checkout_webhook
from store.db import SchemaBehind, ensure_schema

log = logging.getLogger("humane_collect.service")


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Run as ``uvicorn --factory`` (compose), the app connects to Temporal itself at start-up.

    A Temporal outage at start must not take the webhooks down: they still record what Twilio
    tells us in the database, and the workflows catch up through the outcome poller.
    """
    settings = app.state.settings
    # the schema first: a fresh database must not answer 500 "no such table" (production: refuse)
    try:
        await asyncio.to_thread(ensure_schema, settings.database_url, migrate=settings.migrate_on_start)
    except SchemaBehind as exc:
        log.error("%s", exc)
        raise SystemExit(2) from None
    if getattr(app.state, "temporal_client", None) is None:
        from runtime.temporal import PlaintextRefused, connect, require_encryption

        try:
            require_encryption(settings)  # a configuration error: refuse to serve, unlike an outage
        except PlaintextRefused as exc:
            log.error("%s", exc)
            raise SystemExit(2) from None

        if not tracing.enabled():  # run by uvicorn --factory: nothing set it up before
            tracing.setup_tracing(settings, "collect-service")

        try:
            app.state.temporal_client = await connect(app.state.settings)
        except Exception as exc:
            log.warning("Temporal unreachable at start-up (%s): signals are skipped until restart", exc)
    yield


def create_app(settings: Settings | None = None, temporal_client: Client | None = None) -> FastAPI:
    settings = settings or get_settings()
    auth.parse_tokens(settings.api_tokens)  # a short token or a bad grant stops the start, naming its owner
    app = FastAPI(
        title="humane-collect",
        version="0.1.0",
        description="Negotiation API, Twilio webhooks and operator pages of the collection orchestrator.",
        lifespan=_lifespan,
        # every route is checked against one table before it runs (service/access.py)
        dependencies=[Depends(access.enforce)],
    )
    app.state.settings = settings
    if temporal_client is not None:
        app.state.temporal_client = temporal_client
    debtor_signin.install_log_redaction()  # the access log never holds a self-service link
    app.add_middleware(nul_guard.RefuseNul)  # PostgreSQL cannot store a NUL: 422 naming where it was
    app.add_middleware(tracing.TraceRequests)  # one span per request, continuing the caller's trace
    api = (
        api_accounts,
        api_plans,
        api_payments,
        api_holds,
        api_events,
        api_numbers,
    )  # the /api routers, one per concern
    for module in (
        webhooks,
        inbound_sms,
        *api,
        console,
        console_cases,
        console_actions,
        console_queues,
        console_events,
        console_whatif,
        console_signin,
        selfservice,
        debtor_number,  # before debtor_signin too: /me/number is no link
        debtor_payments,
        debtor_requests,
        checkout_webhook,
        checkout_simulator,
        agreement,  # /me/agreement.pdf, before debtor_signin's /me/{token} too
        code_signin,  # before debtor_signin too: /me/code is no link
        debtor_signin,  # after selfservice: its /me/{token} must not take /me/account
        verify,  # the public collector check
        codec,
        dashboard,
        agency,
        metrics,
    ):
        app.include_router(module.router)

    @app.exception_handler(access.ConsoleForbidden)
    async def console_forbidden(request: Request, exc: access.ConsoleForbidden) -> Response:
        principal = auth.identify(request)
        return console.error_page(request, 403, "Not allowed", str(exc), principal=principal)

    return app


class _CancelledAtStop(logging.Filter):
    """A request still open when the service stops is cancelled on purpose (``timeout_graceful_shutdown``):
    one warning line, not uvicorn's "Exception in ASGI application" and a traceback of the cancellation."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, asyncio.CancelledError) and "graceful shutdown" in str(exc):
            record.msg, record.args, record.exc_info = "a request still open at stop was cancelled", (), None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def make_server(settings: Settings, temporal_client: Client):  # type: ignore[no-untyped-def]
    """A uvicorn server for the app, to run on the caller's event loop (demo, ``starter.py service``)."""
    import uvicorn

    error_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _CancelledAtStop) for f in error_log.filters):
        error_log.addFilter(_CancelledAtStop())

    config = uvicorn.Config(
        create_app(settings, temporal_client),
        host=settings.service_host,
        port=settings.service_port,
        log_level="warning",
        log_config=None,  # uvicorn's lines go through the process's own logging (text or JSON)
        proxy_headers=True,
        timeout_graceful_shutdown=5,  # on stop, a request still open after 5 s is cancelled, not awaited
    )
    return uvicorn.Server(config)
