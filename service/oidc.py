"""Operators sign in to the console through an OpenID Connect provider (the authorization code flow
with PKCE): who they are and their role come from the provider's signed ID token, and API tokens stay
with machines.

What is checked, in order: the ``state`` the browser brings back against the one this browser was
given (a signed, short-lived cookie, so any replica can finish the sign-in), the code redeemed with
the PKCE verifier and the client secret, the ID token's RS256 signature against the provider's JWKS,
its issuer, audience, expiry and ``nonce``, and the role claim against the roles we know. Anything
else fails the sign-in with the reason, and nothing is opened.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from fastapi import Request
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from runtime.settings import Settings
from service.auth import Principal, Role

PENDING_COOKIE = "collect_oidc"
PENDING_SECONDS = 600
CALLBACK = "/console/oidc/callback"


class SignInFailed(Exception):
    """The identity provider's answer was not accepted (the reason says which check failed)."""


@dataclass(frozen=True)
class Verified:
    principal: Principal
    subject: str  # issuer and subject: who the provider vouched for
    next: str


def enabled(settings: Settings) -> bool:
    return bool(settings.oidc_issuer and settings.oidc_client_id)


def _secret(settings: Settings) -> bytes:
    value = settings.oidc_client_secret.get_secret_value() if settings.oidc_client_secret else ""
    return hashlib.sha256(b"humane-collect/oidc-pending/" + value.encode()).digest()


def _sign(settings: Settings, data: dict[str, Any]) -> str:
    body = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode()
    mac = hmac.new(_secret(settings), body.encode(), hashlib.sha256).hexdigest()
    return f"{body}.{mac}"


def _unsign(settings: Settings, value: str) -> dict[str, Any]:
    body, _, mac = value.rpartition(".")
    expected = hmac.new(_secret(settings), body.encode(), hashlib.sha256).hexdigest()
    if not body or not hmac.compare_digest(mac.encode(), expected.encode()):
        raise SignInFailed("the sign-in was not started from this browser")
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body.encode()))
    if data.get("exp", 0) < time.time():
        raise SignInFailed("the sign-in took too long; start again")
    return data


def redirect_uri(request: Request, settings: Settings) -> str:
    base = (settings.public_base_url or str(request.base_url)).rstrip("/")
    return f"{base}{CALLBACK}"


_discovered: dict[str, dict[str, Any]] = {}
_keys: dict[str, KeySet] = {}


async def _discovery(settings: Settings) -> dict[str, Any]:
    issuer = settings.oidc_issuer.rstrip("/")
    if issuer not in _discovered:
        async with httpx.AsyncClient(timeout=10) as http:
            answer = await http.get(f"{issuer}/.well-known/openid-configuration")
            answer.raise_for_status()
            _discovered[issuer] = answer.json()
    return _discovered[issuer]


async def _key_set(jwks_uri: str, *, fresh: bool = False) -> KeySet:
    if fresh or jwks_uri not in _keys:
        async with httpx.AsyncClient(timeout=10) as http:
            answer = await http.get(jwks_uri)
            answer.raise_for_status()
            _keys[jwks_uri] = KeySet.import_key_set(answer.json())
    return _keys[jwks_uri]


def _challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


async def start(request: Request, settings: Settings, next_path: str) -> tuple[str, str]:
    """(the provider's sign-in URL, the signed cookie that remembers this attempt)."""
    config = await _discovery(settings)
    state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
    pending = _sign(
        settings,
        {
            "state": state,
            "nonce": nonce,
            "verifier": verifier,
            "next": next_path,
            "exp": time.time() + PENDING_SECONDS,
        },
    )
    query = urlencode(
        {
            "response_type": "code",
            "client_id": settings.oidc_client_id,
            "redirect_uri": redirect_uri(request, settings),
            "scope": "openid profile",
            "state": state,
            "nonce": nonce,
            "code_challenge": _challenge(verifier),
            "code_challenge_method": "S256",
        }
    )
    return f"{config['authorization_endpoint']}?{query}", pending


async def finish(request: Request, settings: Settings) -> Verified:
    """The provider sent the browser back: check everything, return who signed in."""
    if error := request.query_params.get("error"):
        raise SignInFailed(f"the identity provider refused: {error}")
    pending = _unsign(settings, request.cookies.get(PENDING_COOKIE, ""))
    if not hmac.compare_digest(
        request.query_params.get("state", "").encode(), str(pending["state"]).encode()
    ):
        raise SignInFailed("the sign-in's state does not match: start again")
    config = await _discovery(settings)
    secret = settings.oidc_client_secret.get_secret_value() if settings.oidc_client_secret else ""
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.post(
            config["token_endpoint"],
            data={
                "grant_type": "authorization_code",
                "code": request.query_params.get("code", ""),
                "redirect_uri": redirect_uri(request, settings),
                "code_verifier": pending["verifier"],
                "client_id": settings.oidc_client_id,
                "client_secret": secret,
            },
        )
    if answer.status_code != 200 or "id_token" not in answer.json():
        raise SignInFailed(f"the identity provider did not redeem the code ({answer.status_code})")
    claims = await _verified_claims(answer.json()["id_token"], config, settings, str(pending["nonce"]))
    role = claims.get(settings.oidc_role_claim)
    if role not in {r.value for r in Role}:
        raise SignInFailed(f"your account has no role here (claim {settings.oidc_role_claim!r})")
    name = str(claims.get(settings.oidc_name_claim) or claims["sub"])
    return Verified(
        principal=Principal(name=name, role=Role(role)),
        subject=f"{claims['iss']}#{claims['sub']}",
        next=str(pending.get("next") or "/console"),
    )


async def _verified_claims(
    id_token: str, config: dict[str, Any], settings: Settings, nonce: str
) -> dict[str, Any]:
    try:
        try:
            token = jwt.decode(id_token, await _key_set(config["jwks_uri"]), algorithms=["RS256"])
        except (JoseError, ValueError):  # a rotated key: fetch the set once more
            token = jwt.decode(id_token, await _key_set(config["jwks_uri"], fresh=True), algorithms=["RS256"])
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": config["issuer"]},
            aud={"essential": True, "value": settings.oidc_client_id},
            nonce={"essential": True, "value": nonce},
            sub={"essential": True},
            exp={"essential": True},
        ).validate(token.claims)
    except (JoseError, ValueError) as exc:
        raise SignInFailed(f"the ID token was not accepted: {exc}") from None
    return dict(token.claims)
