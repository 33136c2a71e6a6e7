"""Who may call what (issue 16): one access table covering every route, console sessions kept on the
server, cookies refused by the API, sign-in rate-limited.

No Temporal here: every check happens before a route would need it (the refusals), or the route
reads only the database (``/ops/governor``, ``/metrics``, the console's sign-in and sign-out).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from runtime.settings import Settings
from service import ratelimit
from service.access import ACCESS
from service.app import create_app
from service.auth import COOKIE
from store.db import make_engine, session_factory
from store.models import ConsoleSessionRow

AGENT = "access-agent-token-0123456789abcdef0123"
AUDITOR = "access-auditor-token-0123456789abcdef01"
SUPERVISOR = "access-supervisor-token-0123456789abcd"
TOKENS = {AGENT: "alice:agent", AUDITOR: "ann:auditor", SUPERVISOR: "sam:supervisor"}


def app_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every route the application serves (HEAD goes with GET)."""
    found: set[tuple[str, str]] = set()
    for route in app.routes:
        for sub in getattr(getattr(route, "original_router", None), "routes", None) or [route]:
            for method in getattr(sub, "methods", None) or ():
                if method != "HEAD":
                    found.add((method, sub.path))
    return found


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    ratelimit.reset()
    return create_app(settings.model_copy(update={"api_tokens": TOKENS}))


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://collect.test") as c:
        yield c


async def sign_in(http: httpx.AsyncClient, token: str) -> httpx.Response:
    return await http.post("/console/login", data={"token": token, "next": "/console"})


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def test_every_route_is_in_the_access_table_and_the_table_names_no_other(app: FastAPI) -> None:
    served = app_routes(app)
    assert served - ACCESS.keys() == set(), "routes nobody decided who may call"
    assert ACCESS.keys() - served == set(), "rules for routes that do not exist"
    for key, rule in ACCESS.items():
        assert rule.grant is not None or rule.why, f"{key}: a public route must say what protects it"


async def test_every_protected_route_refuses_a_caller_without_credentials(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"api_tokens": TOKENS, "refusals_per_minute": 1000}))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://collect.test"
    ) as http:
        for (method, path), rule in sorted(ACCESS.items()):
            if rule.grant is None:
                continue
            url = re.sub(r"\{[^}]+\}", "x1", path)
            response = await http.request(method, url)
            if rule.page:
                assert response.status_code == 303, (method, path, response.status_code)
                assert response.headers["location"].startswith("/console/login"), (method, path)
            else:
                assert response.status_code == 401, (method, path, response.status_code, response.text)


async def test_operations_endpoints_need_a_token(http: httpx.AsyncClient) -> None:
    """Found: /ops/governor and /metrics ran database queries for anyone on the public port."""
    for path in ("/ops/governor", "/metrics"):
        assert (await http.get(path)).status_code == 401, path
        answered = await http.get(path, headers={"Authorization": f"Bearer {AUDITOR}"})
        assert answered.status_code == 200, (path, answered.text)
    assert (await http.get("/healthz")).status_code == 200  # the container's liveness stays open


async def test_the_console_session_is_an_opaque_id_the_api_does_not_accept(http: httpx.AsyncClient) -> None:
    """Found: the cookie was the raw API token and /api, /agency accepted it."""
    signed_in = await sign_in(http, AUDITOR)
    assert signed_in.status_code == 303
    cookie = signed_in.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    session_id = http.cookies[COOKIE]
    assert AUDITOR not in session_id and len(session_id) >= 40
    assert (await http.get("/console")).status_code == 200
    for path in ("/ops/governor", "/metrics", "/api/accounts", "/agency/visits"):
        refused = await http.get(path)  # the browser sends its session cookie; the API ignores it
        assert refused.status_code == 401, (path, refused.status_code)
    # nor is the token itself a cookie any more
    http.cookies.clear()
    http.cookies.set(COOKIE, AUDITOR)
    assert (await http.get("/console")).status_code == 303


async def test_sign_out_ends_the_session_and_everywhere_ends_every_one(app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://collect.test") as laptop,
        httpx.AsyncClient(transport=transport, base_url="http://collect.test") as phone,
        httpx.AsyncClient(transport=transport, base_url="http://collect.test") as other,
    ):
        for browser, token in ((laptop, AGENT), (phone, AGENT), (other, AUDITOR)):
            assert (await sign_in(browser, token)).status_code == 303
        stolen = laptop.cookies[COOKIE]
        page = await laptop.get("/console")
        out = await laptop.post("/console/logout", data={"csrf": csrf_of(page.text)})
        assert out.status_code == 303
        # the old id is dead even if someone kept a copy
        laptop.cookies.set(COOKIE, stolen)
        assert (await laptop.get("/console")).status_code == 303
        assert (await phone.get("/console")).status_code == 200  # another session of alice's lives

        laptop.cookies.clear()
        assert (await sign_in(laptop, AGENT)).status_code == 303
        page = await laptop.get("/console")
        everywhere = await laptop.post(
            "/console/logout", data={"csrf": csrf_of(page.text), "everywhere": "1"}
        )
        assert everywhere.status_code == 303
        assert (await phone.get("/console")).status_code == 303  # alice is out everywhere
        assert (await other.get("/console")).status_code == 200  # ann is not alice


async def test_an_idle_or_old_session_is_over(
    app: FastAPI, http: httpx.AsyncClient, settings: Settings
) -> None:
    sessions = session_factory(make_engine(settings.database_url))
    assert (await sign_in(http, AUDITOR)).status_code == 303
    assert (await http.get("/console")).status_code == 200
    with sessions.begin() as s:  # 31 minutes without a request (the default idle limit is 30)
        s.execute(update(ConsoleSessionRow).values(seen_at=datetime.now(UTC) - timedelta(minutes=31)))
    assert (await http.get("/console")).status_code == 303

    assert (await sign_in(http, AUDITOR)).status_code == 303
    with sessions.begin() as s:  # used a minute ago, but signed in 13 hours ago (the limit is 12)
        s.execute(
            update(ConsoleSessionRow).values(
                created_at=datetime.now(UTC) - timedelta(hours=13), seen_at=datetime.now(UTC)
            )
        )
    assert (await http.get("/console")).status_code == 303


async def test_a_token_removed_from_the_settings_ends_its_sessions(
    app: FastAPI, http: httpx.AsyncClient
) -> None:
    assert (await sign_in(http, AGENT)).status_code == 303
    assert (await http.get("/console")).status_code == 200
    app.state.settings = app.state.settings.model_copy(update={"api_tokens": {AUDITOR: "ann:auditor"}})
    assert (await http.get("/console")).status_code == 303


async def test_the_cookie_is_secure_behind_the_https_proxy(settings: Settings) -> None:
    """Found: ``Secure`` only when the request scheme was https, which behind a TLS proxy it is not."""
    ratelimit.reset()
    app = create_app(
        settings.model_copy(update={"api_tokens": TOKENS, "public_base_url": "https://collect.example.test"})
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://collect.test"
    ) as http:
        signed_in = await sign_in(http, AUDITOR)
    assert "secure" in signed_in.headers["set-cookie"].lower()


async def test_sign_in_is_rate_limited_per_address(http: httpx.AsyncClient, settings: Settings) -> None:
    """Found: no limit on guessing tokens at the console's sign-in."""
    limit = settings.login_attempts_per_minute
    for i in range(limit):
        wrong = await sign_in(http, f"guess-{i}")
        assert wrong.status_code == 401
    blocked = await sign_in(http, "guess-again")
    assert blocked.status_code == 429
    assert 1 <= int(blocked.headers["retry-after"]) <= 60
    # past the limit even the right token waits: a guesser cannot tell a hit from a miss
    assert (await sign_in(http, AUDITOR)).status_code == 429
    assert COOKIE not in http.cookies


async def test_console_pages_are_read_audited(http: httpx.AsyncClient, settings: Settings) -> None:
    """Found: the API's reads were audited, the console's pages (the same data) were not."""
    from sqlalchemy import select

    from store.models import AuditRow

    since = datetime.now(UTC)  # no slack: a test just before may have read as sam too
    assert (await sign_in(http, SUPERVISOR)).status_code == 303
    assert (await http.get("/console/approvals")).status_code == 200
    assert (await http.get("/console/refunds")).status_code == 200
    with session_factory(make_engine(settings.database_url)).begin() as s:
        rows = s.scalars(
            select(AuditRow).where(
                AuditRow.action == "console_read", AuditRow.actor == "sam", AuditRow.at >= since
            )
        ).all()
        seen = sorted((r.details or {}).get("path") for r in rows)
    assert seen == ["/console/approvals", "/console/refunds"]


async def test_a_client_guessing_tokens_is_slowed_down(http: httpx.AsyncClient, settings: Settings) -> None:
    """Found: no limit anywhere; now the API, the agency API and the codec count refusals per address."""
    limit = settings.refusals_per_minute
    for i in range(limit):
        guess = await http.get("/api/accounts", headers={"Authorization": f"Bearer guess-{i}"})
        assert guess.status_code == 401
    blocked = await http.get("/ops/governor", headers={"Authorization": f"Bearer {AUDITOR}"})
    assert blocked.status_code == 429 and 1 <= int(blocked.headers["retry-after"]) <= 60
    assert (await http.post("/codec/decode", json={"payloads": []})).status_code == 429
    assert (await http.get("/healthz")).status_code == 200  # public routes are not held up


async def test_forged_self_service_links_and_webhooks_are_slowed_down(
    http: httpx.AsyncClient, settings: Settings, app: FastAPI
) -> None:
    from pydantic import SecretStr

    app.state.settings = app.state.settings.model_copy(update={"link_secret": SecretStr("k" * 32)})
    limit = settings.refusals_per_minute
    for i in range(limit):
        assert (await http.get(f"/me/forged-{i}")).status_code == 403
    busy = await http.get("/me/forged-again")
    assert busy.status_code == 429 and "Retry-After" in busy.headers
    ratelimit.reset()
    for _ in range(limit):
        assert (await http.post("/webhooks/twilio/sms", data={"From": "+12125550100"})).status_code == 403
    assert (await http.post("/webhooks/twilio/sms", data={"From": "+12125550100"})).status_code == 429


def test_a_short_token_stops_the_start_naming_its_owner_not_the_token(settings: Settings) -> None:
    """Found: short API tokens were accepted."""
    with pytest.raises(ValueError, match=r"'bob:agent' has 11 characters; at least 32") as refused:
        create_app(settings.model_copy(update={"api_tokens": {"guessable-1": "bob:agent"}}))
    assert "guessable-1" not in str(refused.value)


async def test_a_token_configured_as_its_digest_signs_in_and_calls_the_api(settings: Settings) -> None:
    """The settings can hold ``sha256:<hex>`` instead of the token: a leaked .env gives no access."""
    import hashlib

    token = "machine-token-" + "z" * 30
    configured = {f"sha256:{hashlib.sha256(token.encode()).hexdigest()}": "robot:auditor"}
    app = create_app(settings.model_copy(update={"api_tokens": configured}))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://collect.test"
    ) as http:
        assert (
            await http.get("/ops/governor", headers={"Authorization": f"Bearer {token}"})
        ).status_code == 200
        digest_itself = next(iter(configured))
        assert (
            await http.get("/ops/governor", headers={"Authorization": f"Bearer {digest_itself}"})
        ).status_code == 401
        assert (await sign_in(http, token)).status_code == 303
        assert "robot (auditor)" in (await http.get("/console")).text


def _redis_url() -> str | None:
    """The machine's Redis (a throwaway database number), or None where there is none."""
    import socket

    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        return None
    return "redis://127.0.0.1:6379/13"


async def test_replicas_sharing_redis_count_failed_sign_ins_together(settings: Settings) -> None:
    """With COLLECT_RATE_LIMIT_STORAGE on Redis, a guesser spreading tries over replicas is not faster."""
    url = _redis_url()
    if url is None:
        pytest.skip("no Redis on 127.0.0.1:6379")
    shared = settings.model_copy(update={"api_tokens": TOKENS, "rate_limit_storage": url})
    ratelimit.limiter(url)  # made now, so the reset below clears what earlier runs left in Redis
    ratelimit.reset()
    replicas = [create_app(shared), create_app(shared)]
    clients = [
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://collect.test")
        for app in replicas
    ]
    try:
        limit = settings.login_attempts_per_minute
        for i in range(limit):  # the tries alternate between the two replicas
            assert (await sign_in(clients[i % 2], f"guess-{i}")).status_code == 401
        for client in clients:
            assert (await sign_in(client, "guess-again")).status_code == 429
    finally:
        for client in clients:
            await client.aclose()
        ratelimit.reset()
