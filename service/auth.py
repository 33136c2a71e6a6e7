"""Who is calling: bearer tokens (API, machines) or a console session (browsers), and their role.

Roles nest: a supervisor can do what an agent can, and both can read; an auditor can only read.
Tokens come from settings (``COLLECT_API_TOKENS``), so rotating one is a configuration change, and
every write through the API is audited with the principal's name. Signing in to the console with a
token opens a session kept on the server (``store/console_sessions.py``): the cookie carries a random
id, never the token, and is accepted only by the routes :mod:`service.access` lets browsers use.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from fastapi import HTTPException, Request

from service.access import rule_for
from service.state import app_sessions, app_settings
from store.console_sessions import digest, live_session

COOKIE = "collect_session"


class Role(StrEnum):
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    AUDITOR = "auditor"
    AGENCY = "agency"  # a collection agency: reports its visits and works its placed accounts, nothing else


#: what each role may do: read everything, write (agent actions), approve (supervisor-only actions)
GRANTS: dict[Role, frozenset[str]] = {
    Role.AUDITOR: frozenset({"read"}),
    Role.AGENT: frozenset({"read", "write"}),
    Role.SUPERVISOR: frozenset({"read", "write", "approve"}),
    Role.AGENCY: frozenset({"agency_report"}),
}


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role

    def may(self, action: str) -> bool:
        return action in GRANTS[self.role]


#: the shortest API token accepted (characters): a guessable token is refused at start-up
MIN_TOKEN_LENGTH = 32
#: a configured key written as ``sha256:<hex>`` is the digest of the token, so the settings need not
#: hold a usable token (``python -m service.auth`` prints a new token and its digest)
DIGEST_PREFIX = "sha256:"


def parse_tokens(tokens: dict[str, str]) -> dict[str, Principal]:
    """``{"token" or "sha256:<hex>": "name:role"}`` → principals, keyed by the token's SHA-256.

    A bad role, a token shorter than :data:`MIN_TOKEN_LENGTH` or a malformed digest fails at start-up
    (``create_app``), naming the token's owner and never the token."""
    out: dict[str, Principal] = {}
    for token, grant in tokens.items():
        name, _, role = grant.rpartition(":")
        if not name or role not in Role.__members__.values():
            raise ValueError(
                f"api_tokens: grant {grant!r} must be 'name:role' with role one of "
                + ", ".join(r.value for r in Role)
            )
        if token.startswith(DIGEST_PREFIX):
            key = token[len(DIGEST_PREFIX) :].lower()
            if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
                raise ValueError(f"api_tokens: the digest for {grant!r} must be sha256: and 64 hex digits")
        elif len(token) < MIN_TOKEN_LENGTH:
            raise ValueError(
                f"api_tokens: the token for {grant!r} has {len(token)} characters; at least "
                f"{MIN_TOKEN_LENGTH} are required (make one with `python -m service.auth`)"
            )
        else:
            key = digest(token)
        out[key] = Principal(name=name, role=Role(role))
    return out


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def principal_for_token(request: Request, token: str) -> Principal | None:
    """The principal of a configured token (plain or as its digest); compared in constant time."""
    presented = digest(token).encode()
    found = None
    for known, principal in parse_tokens(app_settings(request).api_tokens).items():
        if hmac.compare_digest(known.encode(), presented):
            found = principal
    return found


def session_principal(request: Request) -> Principal | None:
    """The principal behind the request's console session cookie, while the session lives and its
    token is still configured (removing a token from the settings ends its sessions)."""
    session_id = request.cookies.get(COOKIE)
    if not session_id:
        return None
    settings = app_settings(request)
    with app_sessions(request).begin() as s:
        live = live_session(
            s,
            session_id,
            now=datetime.now(UTC),
            idle=timedelta(minutes=settings.console_idle_minutes),
            absolute=timedelta(hours=settings.console_session_hours),
        )
    if live is None:
        return None
    if live.role is not None:  # an identity provider's sign-in: its role, while the session lives
        return Principal(name=live.principal, role=Role(live.role))
    for known, principal in parse_tokens(settings.api_tokens).items():
        if hmac.compare_digest(known.encode(), live.token_digest.encode()):
            return principal
    return None


def identify(request: Request) -> Principal | None:
    """The caller, or None: a bearer token where the route takes one, the console session where the
    route takes that (:data:`service.access.ACCESS`)."""
    rule = rule_for(request)
    if rule is None:
        return None
    token = bearer_token(request)
    if token is not None and rule.bearer:
        return principal_for_token(request, token)
    if rule.cookie:
        return session_principal(request)
    return None


def require(action: str) -> Callable[[Request], Principal]:
    """A FastAPI dependency: 401 without a known token, 403 when the role may not ``action``."""

    def dependency(request: Request) -> Principal:
        principal = identify(request)
        if principal is None:
            raise HTTPException(
                status_code=401,
                detail="a valid bearer token is required",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not principal.may(action):
            raise HTTPException(status_code=403, detail=f"role {principal.role.value} may not {action}")
        return principal

    return dependency


if __name__ == "__main__":  # a new API token, and the digest to configure instead of it
    import secrets

    new = secrets.token_urlsafe(32)
    print(f"token:  {new}\nconfig: {DIGEST_PREFIX}{digest(new)}")
