"""Standard Webhooks signatures (https://www.standardwebhooks.com, spec 1.0.0, symmetric ``v1``).

What we send the lender is signed the way the specification says, so the lender verifies it with any
Standard Webhooks library (``standardwebhooks`` on PyPI, npm, Go …) or these few lines:

* the secret is ``whsec_`` + base64 of 24 to 64 random bytes (we make 32);
* the signed content is ``{webhook-id}.{webhook-timestamp}.{body}``: the event's ID, the attempt's unix
  time in seconds, the body's exact bytes;
* ``webhook-signature`` is ``v1,`` + base64 of its HMAC-SHA256; several signatures are separated by
  spaces (during a secret rotation we sign with the new secret and the previous one).

Kept here rather than taken from the ``standardwebhooks`` package: it is a dozen lines of the standard
library, checked against the specification's published example in ``tests/events/test_signature.py``.
The receiving side (:func:`verify`) is what the tests' subscriber and the README's example use.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

PREFIX = "whsec_"
#: how far a receiver lets a timestamp be from its clock (the specification's libraries: 5 minutes)
TOLERANCE_SECONDS = 5 * 60
SECRET_BYTES = 32


class SignatureError(ValueError):
    """A delivery that does not verify: missing header, timestamp out of tolerance, no matching signature."""


def new_secret() -> str:
    """A fresh signing secret, ``whsec_`` + base64 of 32 random bytes (shown to the operator once)."""
    return PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The key bytes of a ``whsec_`` secret (the prefix is optional, as in the specification's libraries)."""
    text = secret.removeprefix(PREFIX)
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("secret: not base64 after 'whsec_'") from exc
    if not key:
        raise ValueError("secret: empty")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``."""
    if "." in msg_id:
        raise ValueError("msg_id: must not contain '.' (it delimits the signed content)")
    content = f"{msg_id}.{int(timestamp)}.".encode() + body
    digest = hmac.new(secret_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secrets_: Iterable[str], msg_id: str, body: bytes, at: datetime | None = None) -> dict[str, str]:
    """The three headers of one delivery attempt, signed with each secret (current first)."""
    timestamp = int((at or datetime.now(UTC)).timestamp())
    signatures = " ".join(sign(s, msg_id, timestamp, body) for s in secrets_)
    if not signatures:
        raise ValueError("secrets: at least one is needed to sign")
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp), "webhook-signature": signatures}


def verify(
    secret: str,
    body: bytes,
    received: Mapping[str, str],
    *,
    now: datetime | None = None,
    tolerance: int = TOLERANCE_SECONDS,
) -> Any:
    """The receiver's check: the parsed JSON body if one of the ``v1`` signatures matches and the
    timestamp is within ``tolerance`` of ``now``; :class:`SignatureError` otherwise."""
    lower = {k.lower(): v for k, v in received.items()}
    msg_id, stamp, signed = (lower.get(h) for h in ("webhook-id", "webhook-timestamp", "webhook-signature"))
    if not (msg_id and stamp and signed):
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise SignatureError(f"webhook-timestamp {stamp!r} is not a unix time") from None
    current = int((now or datetime.now(UTC)).timestamp())
    if abs(current - timestamp) > tolerance:
        raise SignatureError(f"webhook-timestamp is {current - timestamp} s from now: outside the tolerance")
    expected = sign(secret, msg_id, timestamp, body).encode()
    candidates = [s for s in signed.split(" ") if s.startswith("v1,")]
    if not any(hmac.compare_digest(expected, c.encode()) for c in candidates):
        raise SignatureError("no matching v1 signature")
    return json.loads(body)


__all__ = ["SignatureError", "headers", "new_secret", "secret_key", "sign", "verify"]
