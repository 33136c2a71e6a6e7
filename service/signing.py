"""Twilio webhook signatures: which URL Twilio signed, and the check itself.

Why this matters: a webhook changes what the workflows do (stop calls, record an outcome, pause
dunning). Anyone who can reach the service could forge one, so every request must carry a valid
``X-Twilio-Signature``: base64(HMAC(auth_token, signed URL + sorted POST parameters)). The catch is
the *URL*: Twilio signs the public URL it called (``https://collect.example.com/webhooks/...?...``),
which is not what the service sees behind a proxy or tunnel. So we rebuild it from the configured
``public_base_url`` + the request's path + its query string, byte for byte.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from twilio.request_validator import (
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)


def signed_url(request: Request, public_base_url: str | None) -> str:
    """The URL Twilio signed: the public base URL + path + raw query (the request's own URL if unset).

    Without a public base URL (local runs, the simulator calling us directly) the URL the request
    arrived on is the URL that was called, so it is what was signed.
    """
    query = request.url.query
    if public_base_url:
        base = public_base_url.rstrip("/")
        return f"{base}{request.url.path}" + (f"?{query}" if query else "")
    return str(request.url)


def is_valid(
    auth_token: str, url: str, params: Mapping[str, Any], signature: str | None, settings_header: str | None
) -> bool:
    """The SDK's own check (HMAC-SHA1, or SHA-256 when the settings header says so); no token, no pass."""
    if not auth_token or not signature:
        return False
    validator = RequestValidator(auth_token)
    return bool(
        validator.validate(url, params, signature, algorithm=get_signature_algorithm(settings_header))
    )


def request_is_valid(
    request: Request, params: Mapping[str, Any], auth_token: str, public_base_url: str | None
) -> bool:
    """Check one request: GET signs the URL alone (parameters are in its query), POST the URL + form."""
    url = signed_url(request, public_base_url)
    signed_params: Mapping[str, Any] = {} if request.method == "GET" else params
    return is_valid(
        auth_token,
        url,
        signed_params,
        request.headers.get(SIGNATURE_HEADER),
        request.headers.get(SIGNATURE_SETTINGS_HEADER),
    )


__all__ = ["is_valid", "request_is_valid", "signed_url"]
