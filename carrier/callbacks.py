"""Signed webhook delivery, exactly as Twilio signs it.

Why: the application must reject unsigned or forged callbacks, so the simulator has to sign like
Twilio or those checks go untested. Twilio's signature (``X-Twilio-Signature``) is
base64(HMAC-SHA1(auth_token, url + every POST parameter name and value, sorted by name)); for GET
the parameters are in the URL's query and only the URL is signed. We compute it with the SDK's own
``RequestValidator.compute_signature`` so that simulator and validator cannot drift apart.

Every request is recorded (``/_sim/callbacks``) with the answer it got. Twilio does not retry a
failed status callback (it logs error 11200), and neither does the simulator.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx
from twilio.request_validator import RequestValidator

from carrier.store import CallbackRecord, SimStore, rfc2822, utcnow

USER_AGENT = "TwilioProxy/1.1"


def signed_request(
    auth_token: str, url: str, params: dict[str, str], method: str = "POST"
) -> tuple[str, str]:
    """(final URL, X-Twilio-Signature) for a webhook of ``method`` carrying ``params``."""
    validator = RequestValidator(auth_token)
    if method.upper() == "GET":
        parts = urlsplit(url)
        query = "&".join(q for q in (parts.query, urlencode(params)) if q)
        full = urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
        return full, validator.compute_signature(full, {})
    return url, validator.compute_signature(url, params)


class CallbackDispatcher:
    """Sends the simulator's webhooks (status, AMD, TwiML fetches) and records each one."""

    def __init__(self, auth_token: str, store: SimStore, timeout: float = 5.0) -> None:
        self.auth_token = auth_token
        self.store = store
        self.timeout = timeout
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=self.timeout, follow_redirects=False)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def deliver(
        self, kind: str, sid: str, url: str, params: dict[str, str], method: str = "POST"
    ) -> CallbackRecord:
        """Send one signed webhook; never raises (a broken receiver is recorded, not fatal)."""
        method = (method or "POST").upper()
        final_url, signature = signed_request(self.auth_token, url, params, method)
        record = CallbackRecord(
            kind=kind,
            sid=sid,
            url=final_url,
            method=method,
            params=dict(params),
            signature=signature,
            at=rfc2822(utcnow()) or "",
        )
        headers = {
            "X-Twilio-Signature": signature,
            "User-Agent": USER_AGENT,
            "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
        }
        if self._client is None:
            await self.start()
        assert self._client is not None
        try:
            if method == "GET":
                response = await self._client.get(final_url, headers=headers)
            else:
                response = await self._client.post(final_url, data=params, headers=headers)
            record.status_code = response.status_code
            record.response_text = response.text
        except httpx.HTTPError as exc:
            record.error = f"{type(exc).__name__}: {exc}"
        self.store.add_callback(record)
        return record
