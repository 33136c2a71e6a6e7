"""One trace from the API request to the carrier: API → Temporal client → workflow → activity → Twilio.

Off unless ``COLLECT_OTEL_ENDPOINT`` names an OTLP/HTTP collector (Jaeger, Tempo, Honeycomb, an
OpenTelemetry Collector): then each process exports its spans there under its own service name, and
the W3C ``traceparent`` travels with every hop, through Temporal's headers
(``temporalio.contrib.opentelemetry``) and on the HTTP request to Twilio. Spans carry account IDs,
never a name or a phone number (workflow and activity spans are named by type; HTTP spans by route
template, never by a path holding a self-service token).
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace

from runtime.settings import Settings

TRACER_NAME = "humane_collect"

_provider: Any = None  # the process's TracerProvider once set up; None: tracing off (no-op spans)


def setup_tracing(settings: Settings, service: str, *, exporter: Any = None, set_global: bool = True) -> bool:
    """Start exporting spans for this process; False (and nothing done) when no endpoint is set.

    ``exporter``: a span exporter to use instead of OTLP (tests: the in-memory one, exported at once).
    """
    global _provider
    if exporter is None and not settings.otel_endpoint:
        return False
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = str(settings.otel_endpoint).rstrip("/") + "/v1/traces"
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    if set_global:
        trace.set_tracer_provider(provider)
    _provider = provider
    return True


def stop_tracing() -> None:
    """Flush what is buffered and switch tracing off (a process on its way out; tests)."""
    global _provider
    if _provider is not None:
        _provider.shutdown()
    _provider = None


def enabled() -> bool:
    return _provider is not None


def tracer() -> trace.Tracer:
    return (_provider or trace.get_tracer_provider()).get_tracer(TRACER_NAME)


def temporal_interceptors() -> list[Any]:
    """What a Temporal client (and the workers built on it) needs to carry the trace; none when off."""
    if _provider is None:
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor(tracer())]


class TraceRequests:
    """ASGI middleware: one server span per HTTP request, continuing the caller's ``traceparent``.

    Named by the route template (``POST /api/accounts/{account_id}/plans``), set once routing has
    matched, so no token or identifier in a path becomes a span name.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or _provider is None:
            await self.app(scope, receive, send)
            return
        from opentelemetry.propagate import extract

        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        status: dict[str, int] = {}

        async def sending(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        method = scope.get("method", "GET")
        with tracer().start_as_current_span(
            f"{method} request", context=extract(carrier), kind=trace.SpanKind.SERVER
        ) as span:
            try:
                await self.app(scope, receive, sending)
            finally:
                route = scope.get("route")
                template = getattr(route, "path", None) or "unmatched route"
                span.update_name(f"{method} {template}")
                span.set_attribute("http.request.method", method)
                span.set_attribute("http.route", template)
                if "code" in status:
                    span.set_attribute("http.response.status_code", status["code"])
