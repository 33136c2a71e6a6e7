"""Connecting to Temporal the same way everywhere: pydantic payloads, TLS and API key from settings.

``data_converter`` is the one place the payload format is decided (pydantic JSON, sealed with AES-GCM
when ``COLLECT_CODEC_KEYS`` is set): the client, the workers, the tests and the replayer all use it,
so nothing can write a payload the others cannot read.
"""

from __future__ import annotations

import dataclasses

from pydantic import SecretStr
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.service import TLSConfig

from runtime.codec import codec_from_spec
from runtime.settings import Settings
from runtime.tracing import temporal_interceptors


def data_converter(codec_keys: SecretStr | str | None = None, *, seal_failures: bool = True) -> DataConverter:
    """Pydantic payloads; with keys, every payload encrypted and failure messages moved into one too.

    A failure's message and stack trace are plain text in the history unless the failure converter
    encodes them (an exception text could quote a phone number), so with encryption on they are
    sealed like everything else. ``seal_failures=False`` keeps them readable where only developers
    look (the replay test, whose non-determinism report would otherwise read "Encoded failure").
    A bad key string raises here, at start-up, naming the setting.
    """
    spec = codec_keys.get_secret_value() if isinstance(codec_keys, SecretStr) else codec_keys
    codec = codec_from_spec(spec)
    if codec is None:
        return pydantic_data_converter
    if not seal_failures:
        return dataclasses.replace(pydantic_data_converter, payload_codec=codec)
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


class PlaintextRefused(RuntimeError):
    """Production without payload encryption: refused before anything reaches Temporal."""


def require_encryption(settings: Settings) -> None:
    """In production every payload is encrypted, or nothing connects (issue 16: the Temporal UI and
    its database would hold balances, plans and reasons in plain text)."""
    if settings.env == "production" and settings.codec_keys is None:
        raise PlaintextRefused(
            "COLLECT_CODEC_KEYS is required when COLLECT_ENV=production: without it every workflow "
            "payload reaches Temporal in plain text. Make a key with `python -m runtime.codec k1` and "
            "give the same value to the workers, the HTTP service and the CLI."
        )


class TLSFileError(ValueError):
    """A certificate or key named in the settings cannot be read."""


def tls_config(settings: Settings) -> TLSConfig | bool:
    """TLS as the settings ask: mutual TLS with files of our own CA, else plain TLS on or off."""
    files = {
        "temporal_tls_ca_file": settings.temporal_tls_ca_file,
        "temporal_tls_cert_file": settings.temporal_tls_cert_file,
        "temporal_tls_key_file": settings.temporal_tls_key_file,
    }
    if not any(files.values()) and settings.temporal_tls_server_name is None:
        return settings.temporal_tls
    read: dict[str, bytes | None] = {}
    for field, path in files.items():
        try:
            read[field] = path.read_bytes() if path is not None else None
        except OSError as err:
            raise TLSFileError(f"{field}: cannot read {path}: {err.strerror}") from None
    return TLSConfig(
        server_root_ca_cert=read["temporal_tls_ca_file"],
        client_cert=read["temporal_tls_cert_file"],
        client_private_key=read["temporal_tls_key_file"],
        domain=settings.temporal_tls_server_name,
    )


async def connect(settings: Settings) -> Client:
    require_encryption(settings)
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings.codec_keys),
        tls=tls_config(settings),
        api_key=settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None,
        interceptors=temporal_interceptors(),  # the trace goes on into workflows and activities
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
