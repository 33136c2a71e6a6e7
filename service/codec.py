"""The Temporal remote codec endpoint: the Temporal UI (and ``temporal --codec-endpoint``) decrypt here.

Protocol (Temporal's remote codec server): ``POST /codec/decode`` and ``POST /codec/encode`` with a
JSON body ``{"payloads": [...]}``, each payload in protobuf JSON form (base64 ``metadata`` values and
``data``), answered in the same form. The UI sends an ``X-Namespace`` header and, when configured,
the operator's ``Authorization: Bearer`` token or the console's cookie.

Only an authorised operator may decode (any role with ``read``); encoding (the UI sealing a signal
or start input) needs ``write``. Without a valid token: 401; with a role that may not: 403. The
browser only lets the UI read the answer when it comes from ``COLLECT_UI_ORIGIN`` (CORS), so
other web pages cannot use an operator's cookie to read histories.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from runtime.codec import ENCODING, CodecError, EncryptionCodec, codec_from_spec
from runtime.settings import Settings, get_settings
from service.api import audit_read
from service.auth import identify
from service.state import app_settings

ALLOWED_HEADERS = "authorization, authorization-extras, content-type, x-namespace"


@asynccontextmanager
async def _keys_checked_at_start(app: FastAPI) -> AsyncIterator[None]:
    """A bad ``COLLECT_CODEC_KEYS`` stops the service at start-up, naming the setting, not at first use."""
    _codec(getattr(app.state, "settings", None) or get_settings())
    yield


router = APIRouter(prefix="/codec", tags=["codec"], lifespan=_keys_checked_at_start)


def _codec(settings: Settings) -> EncryptionCodec | None:
    """The codec for these settings, built once per key string (a bad string raises, naming the setting)."""
    spec = settings.codec_keys.get_secret_value() if settings.codec_keys else None
    cached = _CACHE.get(spec or "")
    if cached is None and spec:
        cached = _CACHE[spec] = codec_from_spec(spec)
    return cached


_CACHE: dict[str, EncryptionCodec | None] = {}


def cors_headers(request: Request) -> dict[str, str]:
    """CORS for the Temporal UI's origin only; credentials allowed so the console cookie can be sent."""
    origin = request.headers.get("origin")
    if not origin or origin.rstrip("/") != app_settings(request).ui_origin.rstrip("/"):
        return {}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Credentials": "true",
        "Access-Control-Allow-Methods": "POST, OPTIONS",
        "Access-Control-Allow-Headers": ALLOWED_HEADERS,
        "Access-Control-Max-Age": "600",
        "Vary": "Origin",
    }


def _error(status: int, detail: str, headers: dict[str, str]) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


async def _apply(
    request: Request,
    action: str,
    transform: Callable[[EncryptionCodec, Sequence[Payload]], Awaitable[list[Payload]]],
) -> Response:
    """Authorise, parse, transform, answer; every answer (errors too) carries the CORS headers."""
    headers = cors_headers(request)
    principal = identify(request)
    if principal is None:
        return _error(401, "a valid bearer token is required", {**headers, "WWW-Authenticate": "Bearer"})
    if not principal.may(action):
        return _error(403, f"role {principal.role.value} may not {action}", headers)
    settings = app_settings(request)
    namespace = request.headers.get("x-namespace")
    if namespace and namespace != settings.temporal_namespace:
        return _error(
            400,
            f"X-Namespace: {namespace!r} is not this service's namespace {settings.temporal_namespace!r}",
            headers,
        )
    codec = _codec(settings)
    if codec is None:
        return _error(503, "payload encryption is off: codec_keys (COLLECT_CODEC_KEYS) is not set", headers)
    try:
        body: Any = await request.json()
        if not isinstance(body, dict) or not isinstance(body.get("payloads"), list):
            raise ValueError("expected a JSON object with a 'payloads' list")
        payloads = json_format.ParseDict(body, Payloads())
    except (ValueError, json_format.ParseError) as exc:
        return _error(400, f"payloads: {exc}", headers)
    try:
        out = await transform(codec, list(payloads.payloads))
    except CodecError as exc:
        return _error(422, f"payloads: {exc}", headers)
    if action == "read":  # a decryption shows what a history holds: audited like a page
        await asyncio.to_thread(audit_read, request, principal.name, "codec_decode", payloads=len(out))
    return JSONResponse(json_format.MessageToDict(Payloads(payloads=out)), headers=headers)


@router.options("/decode", include_in_schema=False)
@router.options("/encode", include_in_schema=False)
async def preflight(request: Request) -> Response:
    """The browser's CORS preflight: no credentials are sent with it, so it is answered without any."""
    return Response(status_code=204, headers=cors_headers(request))


async def _decode(request: Request, codec: EncryptionCodec, payloads: Sequence[Payload]) -> list[Payload]:
    if app_settings(request).env == "production":
        plain = [i for i, p in enumerate(payloads) if p.metadata.get("encoding") != ENCODING]
        if plain:  # in production nothing reaches Temporal unencrypted: such a payload was planted
            raise CodecError(f"payload {plain[0]} is not encrypted, refused in production")
    return await codec.decode(payloads)


@router.post("/decode")
async def decode(request: Request) -> Response:
    """Decrypt payloads for an operator with ``read``; unencrypted payloads come back unchanged in
    development (histories from before encryption) and are refused in production."""
    return await _apply(request, "read", lambda codec, payloads: _decode(request, codec, payloads))


@router.post("/encode")
async def encode(request: Request) -> Response:
    """Encrypt payloads for an operator with ``write`` (the UI sending a signal or starting a workflow)."""
    return await _apply(request, "write", lambda codec, payloads: codec.encode(payloads))
