"""Operators sign in to the console through OpenID Connect (issue 16): our own small provider
(``idp/``) on a real port, the service on another, real HTTP between them, and a real browser.

What must hold: the role comes from the provider's signed ID token; every check of the answer
(state, PKCE, the code redeemed once, signature, audience, nonce, a known role) refuses what fails
it; API tokens no longer open the console once a provider is configured; signing out ends the session.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import uvicorn
from pydantic import SecretStr

from idp import Client, IdpHandle, Provider, User, free_socket, run_in_thread
from runtime.settings import Settings
from service.app import create_app
from service.auth import COOKIE
from tests.conftest import free_port

SECRET = "collect-client-secret-0123456789abcdef"
PASSWORDS = {"alice": "alice-password", "sam": "sam-password", "eve": "eve-password"}
LANDING = "/console/refunds"  # a console page that needs only the database
CHROMIUM = Path("/usr/bin/chromium")
MACHINE_TOKEN = "machine-token-for-the-api-0123456789ab"


@dataclass
class Stack:
    base: str
    idp: IdpHandle


@pytest.fixture
async def stack(settings: Settings) -> AsyncIterator[Stack]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    sock = free_socket("127.0.0.1", 0)
    issuer = f"http://127.0.0.1:{sock.getsockname()[1]}"
    provider = Provider(
        issuer=issuer,
        users={
            "alice": User(password=PASSWORDS["alice"], role="agent", name="Alice Chan"),
            "sam": User(password=PASSWORDS["sam"], role="supervisor", name="Sam Okafor"),
            "eve": User(password=PASSWORDS["eve"], role="customer", name="Eve"),  # no role of ours
        },
        clients={"collect": Client(secret=SECRET, redirect_uris=(f"{base}/console/oidc/callback",))},
    )
    idp = run_in_thread(provider, sock)
    app_settings = settings.model_copy(
        update={
            "api_tokens": {MACHINE_TOKEN: "robot:auditor"},
            "oidc_issuer": issuer,
            "oidc_client_id": "collect",
            "oidc_client_secret": SecretStr(SECRET),
        }
    )
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(app_settings), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
        )
    )
    task = asyncio.create_task(server.serve())
    for _ in range(1000):
        if server.started:
            break
        await asyncio.sleep(0.01)
    try:
        yield Stack(base=base, idp=idp)
    finally:
        server.should_exit = True
        await task
        idp.stop()


async def sign_in(http: httpx.AsyncClient, user: str, password: str | None = None) -> httpx.Response:
    """What a browser does: start, the provider's form, back to the callback (cookies kept by ``http``)."""
    started = await http.get(f"/console/oidc/start?next={LANDING}")
    assert started.status_code == 303, started.text
    form_page = await http.get(started.headers["location"])
    assert form_page.status_code == 200 and 'name="password"' in form_page.text
    fields = dict(parse_qs(urlsplit(started.headers["location"]).query, keep_blank_values=True))
    posted = {k: v[0] for k, v in fields.items() if k != "response_type"}
    answer = await http.post(
        urlsplit(started.headers["location"])._replace(query="").geturl(),
        data={**posted, "username": user, "password": password or PASSWORDS[user]},
    )
    if answer.status_code != 303:
        return answer
    return await http.get(answer.headers["location"])


async def test_an_operator_signs_in_with_the_role_the_provider_states_and_signs_out(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.base) as http:
        login = await http.get("/console/login")
        assert 'id="sso"' in login.text and 'name="token"' not in login.text
        back = await sign_in(http, "alice")
        assert back.status_code == 200 and f"url={LANDING}" in back.text
        assert "samesite=strict" in back.headers["set-cookie"].lower()
        page = await http.get(LANDING)
        assert page.status_code == 200 and "Alice Chan (agent)" in page.text
        # an agent may not approve: the role is the provider's, not a guess
        assert (await http.get("/console/approvals")).status_code == 403
        csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
        assert (await http.post("/console/logout", data={"csrf": csrf})).status_code == 303
        assert (await http.get(LANDING)).status_code == 303  # refused after sign-out

    async with httpx.AsyncClient(base_url=stack.base) as http:
        await sign_in(http, "sam")
        assert "Sam Okafor (supervisor)" in (await http.get("/console/approvals")).text


async def test_api_tokens_are_for_machines_once_a_provider_is_configured(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.base) as http:
        refused = await http.post("/console/login", data={"token": MACHINE_TOKEN, "next": LANDING})
        assert refused.status_code == 403 and COOKIE not in http.cookies
        api = await http.get("/ops/governor", headers={"Authorization": f"Bearer {MACHINE_TOKEN}"})
        assert api.status_code == 200  # the API takes the token as before


async def test_every_check_of_the_providers_answer_refuses_what_fails_it(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.base) as http:
        # a role the provider states that is none of ours
        eve = await sign_in(http, "eve")
        assert eve.status_code == 401 and "no role here" in eve.text and COOKIE not in http.cookies
        # a wrong password never reaches us
        wrong = await sign_in(http, "alice", "guess")
        assert wrong.status_code == 401
        # a callback this browser did not start (no pending cookie), or with another state
        http.cookies.clear()
        assert (await http.get("/console/oidc/callback?code=x&state=y")).status_code == 401
        started = await http.get(f"/console/oidc/start?next={LANDING}")
        forged = await http.get("/console/oidc/callback?code=x&state=not-the-one")
        assert forged.status_code == 401 and "state does not match" in forged.text
        assert started.status_code == 303


async def test_a_code_redeems_once(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.base) as http:
        started = await http.get(f"/console/oidc/start?next={LANDING}")
        location = started.headers["location"]
        fields = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items() if k != "response_type"}
        answer = await http.post(
            urlsplit(location)._replace(query="").geturl(),
            data={**fields, "username": "alice", "password": PASSWORDS["alice"]},
        )
        callback = answer.headers["location"]
        pending = http.cookies.get("collect_oidc")
        assert (await http.get(callback)).status_code == 200
        http.cookies.clear()
        http.cookies.set("collect_oidc", pending or "", path="/console/oidc/callback")
        replayed = await http.get(callback)
        assert replayed.status_code == 401 and "did not redeem" in replayed.text


@pytest.fixture
def chromium() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium")
    yield CHROMIUM


async def test_in_a_real_browser_sign_in_through_the_provider_and_out_again(
    stack: Stack, chromium: Path
) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(chromium), args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        try:
            page = await (await browser.new_context()).new_page()
            page.set_default_timeout(20_000)
            await page.goto(f"{stack.base}{LANDING}")
            assert "/console/login" in page.url
            await page.click("#sso")
            await page.fill("input[name=username]", "sam")
            await page.fill("input[name=password]", PASSWORDS["sam"])
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{stack.base}{LANDING}")
            assert "Sam Okafor (supervisor)" in await page.content()
            await page.click("form[action='/console/logout'] button")
            await page.wait_for_url(f"{stack.base}/console/login")
            await page.goto(f"{stack.base}{LANDING}")
            assert "/console/login" in page.url  # refused after sign-out
        finally:
            await browser.close()


async def test_an_id_token_signed_by_another_key_or_for_another_client_is_refused(
    stack: Stack, settings: Settings
) -> None:
    import time

    from joserfc import jwt
    from joserfc.jwk import RSAKey

    from service import oidc

    provider = stack.idp.provider
    config = {"issuer": provider.issuer, "jwks_uri": f"{provider.issuer}/jwks"}
    app_settings = settings.model_copy(update={"oidc_issuer": provider.issuer, "oidc_client_id": "collect"})
    now = int(time.time())
    claims = {
        "iss": provider.issuer,
        "sub": "alice",
        "aud": "collect",
        "iat": now,
        "exp": now + 60,
        "nonce": "n1",
    }
    assert (
        await oidc._verified_claims(provider.id_token("collect", "alice", "n1"), config, app_settings, "n1")
    )["sub"] == "alice"
    cases = {
        "another key": jwt.encode({"alg": "RS256", "kid": "idp-1"}, claims, RSAKey.generate_key(2048)),
        "another client": provider.id_token("someone-else", "alice", "n1"),
        "another nonce": provider.id_token("collect", "alice", "n2"),
        "expired": jwt.encode(
            {"alg": "RS256", "kid": provider.key.kid}, {**claims, "exp": now - 10}, provider.key
        ),
    }
    for why, token in cases.items():
        with pytest.raises(oidc.SignInFailed, match="not accepted"):
            await oidc._verified_claims(token, config, app_settings, "n1")
            pytest.fail(why)
