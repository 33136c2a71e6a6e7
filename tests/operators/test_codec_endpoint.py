"""The codec endpoint's protocol, authorisation and CORS, through the real FastAPI app (ASGI)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from google.protobuf import json_format
from pydantic import SecretStr
from sqlalchemy import select
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.contrib.pydantic import pydantic_data_converter

from runtime.codec import generate_key_entry
from runtime.settings import Settings
from runtime.temporal import data_converter
from service.app import create_app
from service.auth import COOKIE
from store.db import make_engine, session_factory
from store.models import AuditRow

KEYS = generate_key_entry("k1")
UI = "http://localhost:8233"
AUDITOR = {"Authorization": "Bearer audit-token-xxxxxxxxxxxxxxxxxxxxx"}
AGENT = {"Authorization": "Bearer agent-token-xxxxxxxxxxxxxxxxxxxxx"}


def app_settings(settings: Settings, **changes: Any) -> Settings:
    return settings.model_copy(
        update={
            "codec_keys": SecretStr(KEYS),
            "ui_origin": UI,
            "api_tokens": {
                "audit-token-xxxxxxxxxxxxxxxxxxxxx": "ada:auditor",
                "agent-token-xxxxxxxxxxxxxxxxxxxxx": "sam:agent",
            },
            **changes,
        }
    )


@pytest.fixture
async def codec_http(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(app_settings(settings))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as client:
        yield client


def body(payloads: list[Payload]) -> dict[str, Any]:
    return json_format.MessageToDict(Payloads(payloads=payloads))


def payloads_of(response: httpx.Response) -> list[Payload]:
    return list(json_format.ParseDict(response.json(), Payloads()).payloads)


async def sealed(value: object) -> Payload:
    return (await data_converter(KEYS).encode([value]))[0]


async def test_an_operator_with_read_access_decodes(
    codec_http: httpx.AsyncClient, settings: Settings
) -> None:
    payload = await sealed({"account_id": "ACC-1", "stage": "early"})
    response = await codec_http.post(
        "/codec/decode", json=body([payload]), headers={**AUDITOR, "X-Namespace": "default"}
    )
    assert response.status_code == 200, response.text
    [opened] = payloads_of(response)
    assert pydantic_data_converter.payload_converter.from_payloads([opened]) == [
        {"account_id": "ACC-1", "stage": "early"}
    ]
    # a decryption shows what a history holds: it is audited like a console page
    with session_factory(make_engine(settings.database_url)).begin() as s:
        lines = s.scalars(
            select(AuditRow).where(AuditRow.action == "codec_decode", AuditRow.actor == "ada")
        ).all()
    assert lines and (lines[-1].details or {}).get("payloads") == 1


async def test_the_console_cookie_is_accepted_like_the_bearer_token(codec_http: httpx.AsyncClient) -> None:
    payload = await sealed("masked")
    signed_in = await codec_http.post(
        "/console/login", data={"token": "audit-token-xxxxxxxxxxxxxxxxxxxxx", "next": "/console"}
    )
    assert signed_in.status_code == 303 and COOKIE in codec_http.cookies
    try:
        response = await codec_http.post("/codec/decode", json=body([payload]))
    finally:
        codec_http.cookies.clear()
    assert response.status_code == 200


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer guessed"}, {"Authorization": "Basic eDp5"}]
)
async def test_decode_without_a_valid_token_is_refused(
    codec_http: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    payload = await sealed({"account_id": "ACC-1"})
    response = await codec_http.post("/codec/decode", json=body([payload]), headers=headers)
    assert response.status_code == 401
    assert "ACC-1" not in response.text


async def test_encode_needs_write_access(codec_http: httpx.AsyncClient) -> None:
    value = pydantic_data_converter.payload_converter.to_payloads(["signal input"])
    assert (await codec_http.post("/codec/encode", json=body(value), headers=AUDITOR)).status_code == 403
    response = await codec_http.post("/codec/encode", json=body(value), headers=AGENT)
    assert response.status_code == 200
    [encoded] = payloads_of(response)
    assert encoded.metadata["encoding"] == b"binary/encrypted"
    assert b"signal input" not in encoded.data


async def test_cors_lets_only_the_temporal_ui_read_answers(codec_http: httpx.AsyncClient) -> None:
    preflight = await codec_http.options(
        "/codec/decode",
        headers={
            "Origin": UI,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == UI
    assert preflight.headers["access-control-allow-credentials"] == "true"
    assert "authorization" in preflight.headers["access-control-allow-headers"]
    refused = await codec_http.post("/codec/decode", json=body([]), headers={"Origin": UI})
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == UI  # so the UI can tell the operator why
    elsewhere = await codec_http.options("/codec/decode", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in elsewhere.headers


async def test_bad_requests_say_what_is_wrong(codec_http: httpx.AsyncClient) -> None:
    not_payloads = await codec_http.post("/codec/decode", json={"items": []}, headers=AUDITOR)
    assert not_payloads.status_code == 400
    assert "payloads" in not_payloads.json()["detail"]
    other_ns = await codec_http.post(
        "/codec/decode", json=body([]), headers={**AUDITOR, "X-Namespace": "billing"}
    )
    assert other_ns.status_code == 400
    assert "X-Namespace" in other_ns.json()["detail"]
    payload = await sealed("x")
    forged = Payload(metadata=dict(payload.metadata), data=payload.data[:-1] + bytes([payload.data[-1] ^ 1]))
    tampered = await codec_http.post("/codec/decode", json=body([forged]), headers=AUDITOR)
    assert tampered.status_code == 422
    assert "failed authentication" in tampered.json()["detail"]


async def test_without_keys_the_endpoint_says_encryption_is_off(settings: Settings) -> None:
    app = create_app(app_settings(settings, codec_keys=None))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as client:
        response = await client.post("/codec/decode", json=body([]), headers=AUDITOR)
    assert response.status_code == 503
    assert "COLLECT_CODEC_KEYS" in response.json()["detail"]


async def test_a_bad_key_stops_the_service_at_start_naming_the_setting(settings: Settings) -> None:
    app = create_app(app_settings(settings, codec_keys=SecretStr("k1:c2hvcnQ=")))
    with pytest.raises(ValueError, match=r"codec_keys \(COLLECT_CODEC_KEYS\): key 'k1' decodes to 5 bytes"):
        async with app.router.lifespan_context(app):
            pass


async def test_production_refuses_to_pass_an_unencrypted_payload(settings: Settings) -> None:
    """In development a history from before encryption still shows; in production nothing reaches
    Temporal unencrypted, so a plain payload was planted and is refused, never shown."""
    plain = pydantic_data_converter.payload_converter.to_payloads([{"note": "typed in by hand"}])[0]
    for env, expected in (("development", 200), ("production", 422)):
        app = create_app(app_settings(settings, env=env))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as http:
            response = await http.post("/codec/decode", json=body([plain]), headers=AUDITOR)
        assert response.status_code == expected, (env, response.text)
    assert "not encrypted" in response.json()["detail"]
