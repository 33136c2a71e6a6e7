"""The identity provider's endpoints: discovery, a sign-in form, the code exchange, the signing keys.

OpenID Connect Core's authorization code flow with PKCE (S256), no more: the console needs to learn
who signed in and their role, nothing else. Codes live 60 s and redeem once; ID tokens are RS256
with the key this process generated at start.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from html import escape
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

CODE_SECONDS = 60
TOKEN_SECONDS = 300


@dataclass(frozen=True)
class User:
    password: str
    role: str
    name: str = ""


@dataclass(frozen=True)
class Client:
    secret: str
    redirect_uris: tuple[str, ...]


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    username: str
    nonce: str
    challenge: str
    expires: float


@dataclass
class Provider:
    issuer: str
    users: dict[str, User]
    clients: dict[str, Client]
    role_claim: str = "collect_role"
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "idp-1"}))
    grants: dict[str, Grant] = field(default_factory=dict)

    def id_token(self, client_id: str, username: str, nonce: str) -> str:
        user = self.users[username]
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": username,
            "aud": client_id,
            "iat": now,
            "exp": now + TOKEN_SECONDS,
            "nonce": nonce,
            "preferred_username": user.name or username,
            self.role_claim: user.role,
        }
        return jwt.encode({"alg": "RS256", "kid": self.key.kid}, claims, self.key)


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _form(params: dict[str, str], error: str = "") -> HTMLResponse:
    hidden = "".join(
        f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in params.items()
    )
    note = f'<p role="alert">{escape(error)}</p>' if error else ""
    return HTMLResponse(
        "<!doctype html><title>Sign in</title><h1>Sign in</h1>"
        f'{note}<form method="post" action="/authorize">{hidden}'
        '<label>User <input name="username" autocomplete="username"></label> '
        '<label>Password <input name="password" type="password" autocomplete="current-password"></label> '
        '<button type="submit">Sign in</button></form>',
        status_code=401 if error else 200,
    )


def create_app(provider: Provider) -> FastAPI:
    app = FastAPI(title="humane-collect local identity provider", docs_url=None, redoc_url=None)
    app.state.provider = provider
    keep = ("client_id", "redirect_uri", "state", "nonce", "code_challenge", "code_challenge_method", "scope")

    @app.get("/.well-known/openid-configuration")
    def discovery() -> dict[str, Any]:
        base = provider.issuer.rstrip("/")
        return {
            "issuer": provider.issuer,
            "authorization_endpoint": f"{base}/authorize",
            "token_endpoint": f"{base}/token",
            "jwks_uri": f"{base}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "scopes_supported": ["openid", "profile"],
            "claims_supported": ["sub", "preferred_username", provider.role_claim],
        }

    @app.get("/jwks")
    def jwks() -> dict[str, Any]:
        return KeySet([provider.key]).as_dict(private=False)

    def _checked(params: dict[str, str]) -> str | None:
        client = provider.clients.get(params.get("client_id", ""))
        if client is None or params.get("redirect_uri") not in client.redirect_uris:
            return "unknown client or redirect_uri"
        if params.get("response_type", "code") != "code" or "openid" not in params.get("scope", "").split():
            return "only response_type=code with scope openid"
        if params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
            return "PKCE with S256 is required"
        return None

    @app.get("/authorize", response_class=HTMLResponse)
    def authorize(request: Request) -> Response:
        params = {k: v for k, v in request.query_params.items() if k in (*keep, "response_type")}
        if problem := _checked(params):
            return JSONResponse({"error": "invalid_request", "error_description": problem}, status_code=400)
        return _form({k: v for k, v in params.items() if k in keep})

    @app.post("/authorize")
    async def sign_in(request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        params = {k: form.get(k, "") for k in keep}
        if problem := _checked({**params, "response_type": "code"}):
            return JSONResponse({"error": "invalid_request", "error_description": problem}, status_code=400)
        user = provider.users.get(form.get("username", ""))
        if user is None or not hmac.compare_digest(user.password.encode(), form.get("password", "").encode()):
            return _form(params, "Unknown user or wrong password.")
        code = secrets.token_urlsafe(32)
        provider.grants[code] = Grant(
            client_id=params["client_id"],
            redirect_uri=params["redirect_uri"],
            username=form["username"],
            nonce=params["nonce"],
            challenge=params["code_challenge"],
            expires=time.monotonic() + CODE_SECONDS,
        )
        query = urlencode({"code": code, "state": params["state"]})
        return RedirectResponse(f"{params['redirect_uri']}?{query}", status_code=303)

    @app.post("/token")
    def token(
        request: Request,
        grant_type: str = Form(""),
        code: str = Form(""),
        redirect_uri: str = Form(""),
        code_verifier: str = Form(""),
        client_id: str = Form(""),
        client_secret: str = Form(""),
    ) -> Response:
        basic = request.headers.get("authorization", "")
        if basic.lower().startswith("basic "):
            client_id, _, client_secret = base64.b64decode(basic[6:]).decode().partition(":")
        client = provider.clients.get(client_id)
        if client is None or not hmac.compare_digest(client.secret.encode(), client_secret.encode()):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        grant = provider.grants.pop(code, None)  # a code redeems once
        if (
            grant_type != "authorization_code"
            or grant is None
            or grant.expires < time.monotonic()
            or grant.client_id != client_id
            or grant.redirect_uri != redirect_uri
            or not hmac.compare_digest(_s256(code_verifier).encode(), grant.challenge.encode())
        ):
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        return JSONResponse(
            {
                "access_token": secrets.token_urlsafe(32),
                "token_type": "Bearer",
                "expires_in": TOKEN_SECONDS,
                "id_token": provider.id_token(client_id, grant.username, grant.nonce),
            },
            headers={"Cache-Control": "no-store"},
        )

    return app
