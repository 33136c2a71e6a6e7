"""Connecting to Temporal the same way everywhere: pydantic payloads, TLS and API key from settings."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from runtime.settings import Settings


async def connect(settings: Settings) -> Client:
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        tls=settings.temporal_tls,
        api_key=settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None,
    )


async def register_search_attributes(client: Client, namespace: str = "default") -> None:
    """Create the typed search attributes on a server that doesn't have them (full server, test server).

    The dev-server launcher passes them on its command line instead; this is for everything else.
    """
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
    from temporalio.service import RPCError

    from workflows.search import CLI_TYPES

    kinds = {
        "Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
        "Int": IndexedValueType.INDEXED_VALUE_TYPE_INT,
        "Datetime": IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
    }
    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=namespace, search_attributes={name: kinds[k] for name, k in CLI_TYPES.items()}
            )
        )
    except RPCError as exc:
        if "already" not in str(exc).lower():
            raise
