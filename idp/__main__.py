"""``python -m idp``: the local identity provider on a port, users from a JSON file.

users.json: ``{"alice": {"password": "…", "role": "agent", "name": "Alice"}, …}``
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import uvicorn

from idp.app import Client, Provider, User, create_app


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8098)
    p.add_argument("--users", type=Path, required=True, help="JSON: user -> {password, role, name}")
    p.add_argument(
        "--client",
        action="append",
        required=True,
        help="client_id:secret:redirect_uri (repeatable); the console's is <service>/console/oidc/callback",
    )
    args = p.parse_args(argv)
    users = {k: User(**v) for k, v in json.loads(args.users.read_text()).items()}
    clients = {}
    for spec in args.client:
        client_id, secret, redirect = spec.split(":", 2)
        clients[client_id] = Client(secret=secret, redirect_uris=(redirect,))
    provider = Provider(issuer=f"http://{args.host}:{args.port}", users=users, clients=clients)
    uvicorn.run(create_app(provider), host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
