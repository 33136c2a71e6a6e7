"""The real twilio SDK client, optionally pointed at another base URL (the simulator, Prism).

Why a custom HTTP client rather than ``client.api.base_url``: every SDK request, whatever the
product domain (``api``, ``messaging``, ``voice``, ...) and whatever edge/region rewriting the
client applies (``TWILIO_EDGE`` / ``TWILIO_REGION``), ends in ``HttpClient.request(method, url)``
with the final absolute URL (twilio 9.x: ``ClientBase.request`` → ``get_hostname`` →
``http_client.request``). Rewriting there covers all of them; ``client.api.base_url`` would only
move ``api.twilio.com`` and is easy to bypass with a new domain.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

#: seconds before an SDK request gives up; an activity must not hang forever on a dead carrier
REQUEST_TIMEOUT = (
    10.0  # well inside the send activity's 20 s heartbeat timeout: a retry never overlaps a live call
)


def _is_twilio_host(host: str) -> bool:
    host = host.lower().rstrip(".")
    return host == "twilio.com" or host.endswith(".twilio.com")


class TracingHttpClient(TwilioHttpClient):
    """Every SDK request as a client span of the activity's trace, with ``traceparent`` on the wire.

    The span is named by method and path only: a list query's ``To=+1…`` never reaches a trace.
    Without tracing configured the span is a no-op."""

    def reroute(self, url: str) -> str:
        """Where a request for ``url`` really goes (here: Twilio itself)."""
        return url

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        from opentelemetry.propagate import inject
        from opentelemetry.trace import SpanKind

        from runtime.tracing import tracer

        url = self.reroute(url)
        path = urlsplit(url).path
        with tracer().start_as_current_span(f"twilio {method.upper()} {path}", kind=SpanKind.CLIENT) as span:
            headers = dict(headers or {})
            inject(headers)
            response = super().request(
                method,
                url,
                params=params,
                data=data,
                headers=headers,
                auth=auth,
                timeout=timeout,
                allow_redirects=allow_redirects,
            )
            span.set_attribute("http.response.status_code", response.status_code)
            return response


class RedirectingHttpClient(TracingHttpClient):
    """A ``TwilioHttpClient`` that sends requests for ``*.twilio.com`` to ``base_url`` instead.

    The path and query are kept (``/2010-04-01/Accounts/AC.../Messages.json``) and appended to any
    path prefix of ``base_url``; requests to other hosts go out unchanged.
    """

    def __init__(self, base_url: str, timeout: float | None = REQUEST_TIMEOUT) -> None:
        super().__init__(timeout=timeout)
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"api_base_url must be an absolute http(s) URL, got {base_url!r}")
        self.base_url = base_url
        self._base = parts

    def reroute(self, url: str) -> str:
        """``url`` with a Twilio host replaced by the configured base URL."""
        parts = urlsplit(url)
        if not _is_twilio_host(parts.hostname or ""):
            return url
        path = self._base.path.rstrip("/") + (parts.path or "/")
        return urlunsplit((self._base.scheme, self._base.netloc, path, parts.query, parts.fragment))


def make_twilio_client(account_sid: str, auth_token: str, api_base_url: str | None) -> Client:
    """A real ``twilio.rest.Client``; with ``api_base_url`` every request to Twilio goes there instead.

    ``api_base_url`` is e.g. ``http://127.0.0.1:8099`` (the carrier simulator) or a Prism mock; None
    talks to Twilio itself. Either way requests time out after ``REQUEST_TIMEOUT`` seconds.
    """
    http_client = (
        RedirectingHttpClient(api_base_url) if api_base_url else TracingHttpClient(timeout=REQUEST_TIMEOUT)
    )
    return Client(account_sid, auth_token, http_client=http_client)
