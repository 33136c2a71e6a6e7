"""``python -m runtime.setup_temporal``: register the search attributes on a full Temporal server."""

from __future__ import annotations

import asyncio

from runtime.settings import get_settings
from runtime.temporal import connect, register_search_attributes


async def main() -> None:
    settings = get_settings()
    client = await connect(settings)
    await register_search_attributes(client, settings.temporal_namespace)
    print("search attributes registered in namespace", settings.temporal_namespace)


if __name__ == "__main__":
    asyncio.run(main())
