"""Payload encryption: what Temporal stores about an account is ciphertext unless you hold a key.

Histories, workflow inputs, query answers and the UI's summaries already carry only masked data,
but they still say who owes what (account id, balance, plan terms). With ``COLLECT_CODEC_KEYS`` set,
every payload the SDK writes is sealed with AES-256-GCM before it leaves the process; the Temporal
server, its database backups and anyone with plain UI access see only ``binary/encrypted`` blobs.
Operators read them through the authorised codec endpoint (``service/codec.py``).

Key rotation: ``COLLECT_CODEC_KEYS="k2:<new>,k1:<old>"``: the first key seals new payloads, every key
listed opens old ones, and each payload names its key id in its (unencrypted) metadata. Drop an
old key only after every history sealed with it has aged out of retention.

Payloads *without* the encrypted encoding pass through untouched, so histories recorded before
encryption was switched on (and the committed replay histories) keep reading.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

SETTING = "codec_keys (COLLECT_CODEC_KEYS)"
ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
CIPHER = "encryption-cipher"
CIPHER_NAME = b"AES256-GCM"
NONCE_BYTES = 12
KEY_BYTES = 32


class CodecError(ValueError):
    """A payload that cannot be opened: unknown key id, or ciphertext that fails authentication."""


@dataclass(frozen=True)
class CodecKeys:
    """Parsed ``kid:base64key`` pairs; ``current`` seals, ``by_id`` opens."""

    current: str
    by_id: dict[str, bytes]

    def __repr__(self) -> str:  # never print key material
        return f"CodecKeys(current={self.current!r}, ids={list(self.by_id)!r})"


def parse_keys(spec: str) -> CodecKeys:
    """``'k2:BASE64,k1:BASE64'`` → keys. Any mistake fails here, at start-up, naming the setting.

    The message names the entry's position and key id but never echoes key material.
    """
    entries = [e.strip() for e in spec.split(",")]
    if not spec.strip() or not any(entries):
        raise ValueError(f"{SETTING}: empty; expected 'kid:base64(32 bytes)[,kid:...]'")
    by_id: dict[str, bytes] = {}
    for n, entry in enumerate(entries, start=1):
        kid, sep, encoded = entry.partition(":")
        kid = kid.strip()
        if not sep or not kid:
            raise ValueError(f"{SETTING}: entry {n} must be 'kid:base64(32 bytes)' (missing key id or ':')")
        if kid in by_id:
            raise ValueError(f"{SETTING}: key id {kid!r} is listed twice")
        try:
            key = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"{SETTING}: key {kid!r} is not valid base64") from None
        if len(key) != KEY_BYTES:
            raise ValueError(
                f"{SETTING}: key {kid!r} decodes to {len(key)} bytes; AES-256 needs exactly {KEY_BYTES}"
            )
        by_id[kid] = key
    return CodecKeys(current=next(iter(by_id)), by_id=by_id)


def generate_key_entry(kid: str) -> str:
    """A fresh ``kid:base64key`` entry for ``COLLECT_CODEC_KEYS`` (``python -m runtime.codec KID``)."""
    return f"{kid}:{base64.b64encode(os.urandom(KEY_BYTES)).decode()}"


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM over the whole serialized payload (its metadata included), key id as associated data.

    Binding the key id into the authentication tag means a payload whose ``encryption-key-id`` was
    edited fails to open instead of being tried under another key.
    """

    def __init__(self, keys: CodecKeys) -> None:
        self._keys = keys
        self._ciphers = {kid: AESGCM(key) for kid, key in keys.by_id.items()}

    @property
    def key_id(self) -> str:
        return self._keys.current

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.seal(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.open(p) for p in payloads]

    def seal(self, payload: Payload) -> Payload:
        kid = self._keys.current
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[kid].encrypt(nonce, payload.SerializeToString(), kid.encode())
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID: kid.encode(), CIPHER: CIPHER_NAME},
            data=nonce + sealed,
        )

    def open(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload  # recorded before encryption, or by an unencrypted deployment
        kid = payload.metadata.get(KEY_ID, b"").decode(errors="replace")
        cipher = self._ciphers.get(kid)
        if cipher is None:
            raise CodecError(
                f"payload sealed with key id {kid!r}, which is not in {SETTING} (known: "
                + ", ".join(self._ciphers)
                + ")"
            )
        if len(payload.data) <= NONCE_BYTES:
            raise CodecError(f"payload sealed with key id {kid!r} is truncated")
        try:
            plain = cipher.decrypt(payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:], kid.encode())
        except InvalidTag:
            raise CodecError(
                f"payload sealed with key id {kid!r} failed authentication: altered or sealed with another key"
            ) from None
        opened = Payload()
        opened.ParseFromString(plain)
        return opened


def codec_from_spec(spec: str | None) -> EncryptionCodec | None:
    """The codec for a ``codec_keys`` value; None (no encryption) when unset or blank."""
    if spec is None or not spec.strip():
        return None
    return EncryptionCodec(parse_keys(spec))


if __name__ == "__main__":
    import sys

    print(generate_key_entry(sys.argv[1] if len(sys.argv) > 1 else "k1"))
