"""Signed, expiring self-service links: what the dunning SMS carries and what ``/me/<token>`` accepts.

Why a link and not a login: a debtor reading a text at 23:00 should see what they owe and pick a plan
with one tap, without an account or a password. The token is a capability for exactly one account,
so it must be unforgeable and short-lived:

* ``<account_id>.<expiry>.<signature>``: the expiry is Unix seconds in base 36, the signature the
  first 12 bytes (96 bits) of HMAC-SHA256 over both, keyed with ``Settings.link_secret``, in URL-safe
  base64. About 35 characters plus the account id: short enough for a text that must stay within 320.
* The signature is checked first and in constant time, so a forged or altered link (another account,
  a later expiry) is refused (403) before anything about the account is looked up; a genuine link
  past its expiry answers 410, so the page can say "ask for a new link" rather than "forged".
* Pure functions of (secret, account, time): the send activity issues links, the web service checks
  them, and neither needs a table of issued links. Rotating ``link_secret`` revokes every link.

Nothing here imports FastAPI: :mod:`activities.contact_text` uses :func:`self_service_link` too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

from pydantic import SecretStr

from domain.accounts import ACCOUNT_ID_RE
from runtime.settings import Settings

SIGNATURE_BYTES = 12
_PURPOSE = b"humane-collect/self-service/v1"


class LinkError(ValueError):
    """A self-service token that does not open the page."""


class LinkForged(LinkError):
    """Malformed, or its signature does not match (another secret, an edited account or expiry): 403."""


class LinkExpired(LinkError):
    """Genuine, but past its expiry: 410, the debtor needs a fresh link."""

    def __init__(self, account_id: str, expired_at: datetime):
        self.account_id = account_id
        self.expired_at = expired_at
        super().__init__(f"link expired at {expired_at.isoformat()}")


def _key(secret: SecretStr | str) -> bytes:
    raw = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    if not raw:
        raise ValueError("link_secret: is empty; set COLLECT_LINK_SECRET to issue self-service links")
    return raw.encode()


def _b36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rem = divmod(number, 36)
        out = digits[rem] + out
        if number == 0:
            return out


def _signature(key: bytes, account_id: str, expiry: str) -> str:
    mac = hmac.new(key, _PURPOSE + b"|" + account_id.encode() + b"|" + expiry.encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()[:SIGNATURE_BYTES]).decode().rstrip("=")


def issue(account_id: str, secret: SecretStr | str, *, now: datetime, ttl_days: int) -> str:
    """A token that opens ``account_id``'s page until ``now + ttl_days``."""
    if not ACCOUNT_ID_RE.match(account_id):
        raise ValueError(f"account_id: {account_id!r} is not a valid account id")
    if now.tzinfo is None:
        raise ValueError("now: must be timezone-aware")
    if ttl_days <= 0:
        raise ValueError("ttl_days: must be positive")
    expiry = _b36(int((now + timedelta(days=ttl_days)).timestamp()))
    return f"{account_id}.{expiry}.{_signature(_key(secret), account_id, expiry)}"


def verify(token: str, secret: SecretStr | str, *, now: datetime) -> str:
    """The account a token opens; :class:`LinkForged` or :class:`LinkExpired` otherwise."""
    return opened(token, secret, now=now)[0]


def issued_at(expires_at: datetime, ttl_days: int) -> datetime:
    """When a link that expires then was sent (links carry their expiry, issued ``ttl_days`` before)."""
    return expires_at - timedelta(days=ttl_days)


def opened(token: str, secret: SecretStr | str, *, now: datetime) -> tuple[str, datetime]:
    """The account a token opens and when the token expires; :class:`LinkForged` or
    :class:`LinkExpired` otherwise."""
    parts = token.rsplit(".", 2)
    if len(parts) != 3 or not ACCOUNT_ID_RE.match(parts[0]) or not parts[1].isalnum():
        raise LinkForged("not a self-service link")
    account_id, expiry, signature = parts
    expected = _signature(_key(secret), account_id, expiry)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise LinkForged("signature does not match")
    expires_at = datetime.fromtimestamp(int(expiry, 36), tz=UTC)
    if now >= expires_at:
        raise LinkExpired(account_id, expires_at)
    return account_id, expires_at


def self_service_link(settings: Settings, account_id: str, now: datetime | None = None) -> str:
    """The URL a message carries: ``<self_service_url>/<token>``, or the bare URL without a secret."""
    if settings.link_secret is None or not settings.link_secret.get_secret_value():
        return settings.self_service_url
    token = issue(
        account_id, settings.link_secret, now=now or datetime.now(UTC), ttl_days=settings.link_ttl_days
    )
    return f"{settings.self_service_url.rstrip('/')}/{token}"


__all__ = ["LinkError", "LinkExpired", "LinkForged", "issue", "self_service_link", "verify"]
