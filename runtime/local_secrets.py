"""Secrets for the embedded demo, made once and kept in ``var/`` so links and tokens survive a restart.

Production sets ``COLLECT_API_TOKENS`` and ``COLLECT_LINK_SECRET`` itself; the demo must still be
usable with nothing configured, so it fills only the settings that are empty and says so.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from runtime.private import private_dir, write_private
from runtime.settings import Settings

DEMO_ROLES = ("agent", "supervisor", "auditor")


def demo_sso(var: Path) -> tuple[dict[str, str], str]:
    """The local identity provider's demo users (role -> password) and client secret, made once and
    kept in ``var/secrets.json`` beside the tokens."""
    path = var / "secrets.json"
    stored: dict[str, object] = json.loads(path.read_text()) if path.exists() else {}
    if "sso" not in stored:
        stored["sso"] = {
            "passwords": {role: secrets.token_urlsafe(12) for role in DEMO_ROLES},
            "client_secret": secrets.token_urlsafe(32),
        }
        private_dir(var)
        write_private(path, json.dumps(stored, indent=2))
    sso: dict[str, object] = stored["sso"]  # type: ignore[assignment]
    return dict(sso["passwords"]), str(sso["client_secret"])  # type: ignore[call-overload]


def with_demo_secrets(settings: Settings, var: Path) -> tuple[Settings, dict[str, str]]:
    """Fill missing API tokens and the link secret from ``var/secrets.json`` (created on first use).

    Returns the settings and the tokens made for the demo (role -> token), empty when the operator
    configured their own.
    """
    path = var / "secrets.json"
    stored: dict[str, object] = json.loads(path.read_text()) if path.exists() else {}
    if "link_secret" not in stored:
        stored["link_secret"] = secrets.token_urlsafe(32)
    tokens_ok = isinstance(stored.get("tokens"), dict) and all(
        len(str(t)) >= 32
        for t in stored["tokens"].values()  # type: ignore[union-attr]
    )
    if not tokens_ok:  # none yet, or an older release's short ones
        stored["tokens"] = {role: f"demo-{role}-{secrets.token_urlsafe(32)}" for role in DEMO_ROLES}
    private_dir(var)
    write_private(path, json.dumps(stored, indent=2))
    update: dict[str, object] = {}
    made: dict[str, str] = {}
    if not settings.api_tokens:
        tokens: dict[str, str] = stored["tokens"]  # type: ignore[assignment]
        update["api_tokens"] = {token: f"demo {role}:{role}" for role, token in tokens.items()}
        made = dict(tokens)
    if settings.link_secret is None:
        update["link_secret"] = SecretStr(str(stored["link_secret"]))
    return settings.model_copy(update=update), made


def local_identity_provider(settings: Settings, var: Path) -> tuple[Any, Settings, dict[str, str]]:
    """``demo --sso``: our small OpenID Connect provider (idp/) on a free port, one user per role
    (``demo-agent`` …, passwords kept in ``var/secrets.json``), and the settings that point the console
    at it. (idp handle, settings, user -> password)."""
    from idp import Client, Provider, User, free_socket, run_in_thread

    passwords, client_secret = demo_sso(var)
    sock = free_socket("127.0.0.1", 0)
    issuer = f"http://127.0.0.1:{sock.getsockname()[1]}"
    callbacks = tuple(
        f"http://{host}:{settings.service_port}/console/oidc/callback" for host in ("localhost", "127.0.0.1")
    )
    if settings.public_base_url:
        callbacks += (f"{settings.public_base_url.rstrip('/')}/console/oidc/callback",)
    users = {
        f"demo-{role}": User(password=pw, role=role, name=f"Demo {role}") for role, pw in passwords.items()
    }
    provider = Provider(
        issuer=issuer,
        users=users,
        clients={"collect-demo": Client(secret=client_secret, redirect_uris=callbacks)},
        role_claim=settings.oidc_role_claim,
    )
    handle = run_in_thread(provider, sock)
    settings = settings.model_copy(
        update={
            "oidc_issuer": issuer,
            "oidc_client_id": "collect-demo",
            "oidc_client_secret": SecretStr(client_secret),
        }
    )
    return handle, settings, {user: u.password for user, u in users.items()}
