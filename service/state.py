"""What every router reads from the app: its settings, one session factory, one Temporal client.

Kept in one place so the webhooks, the API, the consoles and the dashboard share the same engine
and the same connection instead of each building its own.
"""

from __future__ import annotations

import asyncio

from fastapi import Request
from sqlalchemy.orm import Session, sessionmaker
from temporalio.client import Client

from runtime.settings import Settings, get_settings
from store.db import make_engine, session_factory

_connecting = asyncio.Lock()


def app_settings(request: Request) -> Settings:
    return getattr(request.app.state, "settings", None) or get_settings()


def app_sessions(request: Request) -> sessionmaker[Session]:
    """One session factory per app, on the process-wide engine for the configured database."""
    state = request.app.state
    sessions = getattr(state, "sessions", None)
    if sessions is None:
        sessions = state.sessions = session_factory(make_engine(app_settings(request).database_url))
    return sessions  # type: ignore[no-any-return]


async def temporal_client(request: Request) -> Client:
    """``app.state.temporal_client``; if the app started while Temporal was down, connect now, once.

    A failed connection raises; each router decides what its caller sees (the API answers 503).
    """
    state = request.app.state
    client = getattr(state, "temporal_client", None)
    if client is not None:
        return client  # type: ignore[no-any-return]
    async with _connecting:
        client = getattr(state, "temporal_client", None)
        if client is None:
            from runtime.temporal import connect

            client = state.temporal_client = await connect(app_settings(request))
    return client  # type: ignore[no-any-return]
