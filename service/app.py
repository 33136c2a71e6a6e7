"""One FastAPI application; each concern lives in its own router module and is mounted here.

Run with ``python starter.py service`` (or ``uvicorn service.app:create_app --factory``).
"""

from __future__ import annotations

from fastapi import FastAPI

from runtime.settings import Settings, get_settings
from service import agency, api, codec, console, dashboard, selfservice, webhooks


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="humane-collect",
        version="0.1.0",
        description="Negotiation API, Twilio webhooks and operator pages of the collection orchestrator.",
    )
    app.state.settings = settings
    for module in (webhooks, api, console, selfservice, codec, dashboard, agency):
        app.include_router(module.router)
    return app
