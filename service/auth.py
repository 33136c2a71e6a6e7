"""Who is calling: bearer tokens (API) or the same token in a cookie (console pages), and their role.

Roles nest: a supervisor can do what an agent can, and both can read; an auditor can only read.
Tokens come from settings (``COLLECT_API_TOKENS``), so rotating one is a configuration change, and
every write through the API is audited with the principal's name.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from fastapi import HTTPException, Request

from service.state import app_settings

COOKIE = "collect_token"


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


def parse_tokens(tokens: dict[str, str]) -> dict[str, Principal]:
    """``{"token": "name:role"}`` → principals; a bad role fails at start-up, naming the token's owner."""
    out: dict[str, Principal] = {}
    for token, grant in tokens.items():
        name, _, role = grant.rpartition(":")
        if not name or role not in Role.__members__.values():
            raise ValueError(
                f"api_tokens: grant {grant!r} must be 'name:role' with role one of "
                + ", ".join(r.value for r in Role)
            )
        out[token] = Principal(name=name, role=Role(role))
    return out


def presented_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(COOKIE) or None


def identify(request: Request) -> Principal | None:
    """The caller, or None; tokens are compared in constant time."""
    token = presented_token(request)
    if not token:
        return None
    for known, principal in parse_tokens(app_settings(request).api_tokens).items():
        if hmac.compare_digest(known.encode(), token.encode()):
            return principal
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
