"""Certificates for mutual TLS between our processes and the Temporal frontend.

Why: the frontend can signal a payment, close or terminate any account; on a network it must talk
only to processes that prove who they are. ``docker compose`` runs ``python -m runtime.certs`` as a
one-shot job before Temporal starts: a private CA (kept, ten years), the frontend's certificate (its
DNS names) and one client certificate per process kind (worker, api, ui, cli), each valid
:data:`LEAF_DAYS` days. The job runs at every ``up``: a certificate that expires within
:data:`RENEW_DAYS` days, or whose names changed, is issued again (restart the services to load it);
the CA is never replaced by the job (README, Security: rotating the CA).

Keys are written owner-only from the moment they exist (``runtime/private.py``).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from runtime.private import write_private

CA_DAYS = 3650
LEAF_DAYS = 397
RENEW_DAYS = 30
SERVER = "server"
DEFAULT_SERVER_NAMES = ("temporal", "localhost", "127.0.0.1")
DEFAULT_CLIENTS = ("worker", "api", "ui", "cli")


@dataclass(frozen=True)
class Issued:
    name: str
    cert: Path
    key: Path
    renewed: bool


def ensure(
    directory: Path,
    *,
    server_names: tuple[str, ...] = DEFAULT_SERVER_NAMES,
    clients: tuple[str, ...] = DEFAULT_CLIENTS,
    owners: dict[str, int] | None = None,
    now: datetime | None = None,
) -> list[Issued]:
    """The CA, the server's and each client's certificate in ``directory``; issues what is missing,
    about to expire, or (the server's) for other names than ``server_names``.

    ``owners``: the user id that must read a certificate's key (``server``, a client's name), for
    containers that run as users of their own; the key stays readable by that user only.
    """
    now = now or datetime.now(UTC)
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = _ca(directory, now)
    out = [_leaf(directory, SERVER, server_names, ca_key, ca_cert, now, server=True)]
    out += [_leaf(directory, name, (name,), ca_key, ca_cert, now, server=False) for name in clients]
    for item in out:
        uid = (owners or {}).get(item.name)
        if uid is not None:
            os.chown(item.key, uid, -1)
    return out


def _ca(directory: Path, now: datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    cert_path, key_path = directory / "ca.pem", directory / "ca.key"
    if cert_path.is_file() and key_path.is_file():
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key, x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "humane-collect Temporal CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    _write(key_path, key)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert


def _leaf(
    directory: Path,
    name: str,
    dns: tuple[str, ...],
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    now: datetime,
    *,
    server: bool,
) -> Issued:
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    if cert_path.is_file() and key_path.is_file():
        current = x509.load_pem_x509_certificate(cert_path.read_bytes())
        fresh = current.not_valid_after_utc - now > timedelta(days=RENEW_DAYS)
        signed_by_ca = current.issuer == ca_cert.subject
        if fresh and signed_by_ca and set(_names(current)) == set(dns):
            return Issued(name, cert_path, key_path, renewed=False)
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for entry in dns:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(entry)))
        except ValueError:
            sans.append(x509.DNSName(entry))
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=LEAF_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write(key_path, key)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return Issued(name, cert_path, key_path, renewed=True)


def _names(cert: x509.Certificate) -> list[str]:
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [
        *sans.get_values_for_type(x509.DNSName),
        *(str(ip) for ip in sans.get_values_for_type(x509.IPAddress)),
    ]


def _write(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_private(path, pem.decode("ascii"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runtime.certs", description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path, help="where the CA, the server's and the clients' files go")
    parser.add_argument(
        "--server-name",
        action="append",
        dest="server_names",
        help=f"a name the frontend is reached by (repeat; default {', '.join(DEFAULT_SERVER_NAMES)})",
    )
    parser.add_argument(
        "--client",
        action="append",
        dest="clients",
        help=f"a client (repeat; default {', '.join(DEFAULT_CLIENTS)})",
    )
    parser.add_argument(
        "--owner",
        action="append",
        default=[],
        metavar="NAME=UID",
        help="the user id that reads NAME's key (a container's own user; run as root to use it)",
    )
    args = parser.parse_args(argv)
    owners: dict[str, int] = {}
    for given in args.owner:
        name, _, uid = given.partition("=")
        if not uid.isdigit():
            parser.error(f"--owner {given!r}: give NAME=UID, e.g. server=1000")
        owners[name] = int(uid)
    issued = ensure(
        args.directory,
        server_names=tuple(args.server_names or DEFAULT_SERVER_NAMES),
        clients=tuple(args.clients or DEFAULT_CLIENTS),
        owners=owners,
    )
    for item in issued:
        print(f"{item.name}: {'issued' if item.renewed else 'kept'} ({item.cert})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
