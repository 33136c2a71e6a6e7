"""What every operator command shares: the two consoles, the database, the Temporal client.

A command that cannot reach what it needs says so in one line a script can grep and exits 2, instead
of a traceback; that is decided here once for the whole command line.
"""

from __future__ import annotations

from rich.console import Console

from runtime.settings import Settings

console = Console()
err = Console(stderr=True, soft_wrap=True)  # an error is one line a script can grep, never cut mid-phrase


def sessions_for(settings: Settings):  # type: ignore[no-untyped-def]
    from sqlalchemy.orm import sessionmaker

    from store.db import SchemaBehind, ensure_schema, make_engine

    try:
        ensure_schema(settings.database_url, migrate=settings.migrate_on_start)
    except SchemaBehind as exc:
        err.print(str(exc), highlight=False, soft_wrap=True)
        raise SystemExit(2) from None
    return sessionmaker(make_engine(settings.database_url), expire_on_commit=False)


async def client_for(settings: Settings):  # type: ignore[no-untyped-def]
    from runtime.temporal import PlaintextRefused, connect

    try:
        return await connect(settings)
    except PlaintextRefused as exc:
        err.print(f"[red]{exc}[/]", highlight=False, soft_wrap=True)
        raise SystemExit(2) from None
    except Exception as exc:
        err.print(f"[red]cannot reach Temporal at {settings.temporal_address}:[/] {exc}")
        err.print("start it with: ./collect demo   (or: ./collect server)")
        raise SystemExit(2) from None


def account_handle(client, account_id: str):  # type: ignore[no-untyped-def]
    from domain.accounts import workflow_id_for

    return client.get_workflow_handle(workflow_id_for(account_id))


def money(amount: int, currency: str) -> str:
    from domain.money import format_minor

    return format_minor(amount, currency)


def operator_name(args) -> str | None:  # type: ignore[no-untyped-def]
    """Who is acting: ``--as NAME``, else ``COLLECT_OPERATOR``; None (and a message) when neither is set."""
    import os

    name = (getattr(args, "actor", None) or os.environ.get("COLLECT_OPERATOR") or "").strip()
    if not name:
        err.print("[red]who is acting?[/] name yourself with --as NAME (or set COLLECT_OPERATOR)")
        return None
    return name
