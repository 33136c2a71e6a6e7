"""Rate limits: how many failed tries a client gets before it must wait (429 with ``Retry-After``).

A moving window per key (``limits``), in this process's memory: each service replica counts on its
own, so with N replicas a guesser gets N times the figure, still minutes per thousand guesses
against 32-byte tokens. Keys are the client's address and, for sign-in, the digest of the token
tried, so neither many addresses against one token nor one address against many tokens goes fast.
"""

from __future__ import annotations

import time

from fastapi import Request
from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

_storage = MemoryStorage()
_limiter = MovingWindowRateLimiter(_storage)


def client_address(request: Request) -> str:
    """The peer as uvicorn saw it (behind the documented proxy: ``--forwarded-allow-ips``)."""
    return request.client.host if request.client else "unknown"


def blocked_for(scope: str, per_minute: int, *keys: str) -> int | None:
    """Seconds to wait before another try (None: go on), without counting one."""
    item = RateLimitItemPerMinute(per_minute)
    waits = [
        max(1, int(_limiter.get_window_stats(item, scope, key)[0] - time.time()) + 1)
        for key in keys
        if not _limiter.test(item, scope, key)
    ]
    return max(waits) if waits else None


def count(scope: str, per_minute: int, *keys: str) -> None:
    """Count one try (a failed sign-in) under each key."""
    item = RateLimitItemPerMinute(per_minute)
    for key in keys:
        _limiter.hit(item, scope, key)


def refused_too_often(request: Request, scope: str) -> int | None:
    """Seconds this client must wait because it was refused too often on ``scope`` (None: go on)."""
    from service.state import app_settings

    return blocked_for(scope, app_settings(request).refusals_per_minute, f"addr:{client_address(request)}")


def refused(request: Request, scope: str) -> None:
    """Count one refusal (a forged link or signature, a bad token) against this client."""
    from service.state import app_settings

    count(scope, app_settings(request).refusals_per_minute, f"addr:{client_address(request)}")


def reset() -> None:
    """Forget every count (tests)."""
    _storage.reset()
