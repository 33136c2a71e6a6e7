"""Rate limits: how many failed tries a client gets before it must wait (429 with ``Retry-After``).

A moving window per key (``limits``). With ``COLLECT_RATE_LIMIT_STORAGE`` set to a Redis URL every
service replica counts in the same place; unset, each counts in its own memory (N replicas give a
guesser N times the figure: still minutes per thousand guesses against 32-byte tokens). Keys are the
client's address and, for sign-in, the digest of the token tried, so neither many addresses against
one token nor one address against many tokens goes fast.
"""

from __future__ import annotations

import threading
import time

from fastapi import Request
from limits import RateLimitItem, RateLimitItemPerHour, RateLimitItemPerMinute
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

MEMORY = "memory://"
_limiters: dict[str, MovingWindowRateLimiter] = {}
_storages: dict[str, Storage] = {}
_lock = threading.Lock()


def limiter(storage_uri: str = "") -> MovingWindowRateLimiter:
    """The limiter on that storage, made once per process (empty: this process's memory)."""
    uri = storage_uri or MEMORY
    with _lock:
        if uri not in _limiters:
            storage = (
                MemoryStorage() if uri == MEMORY else storage_from_string(uri, key_prefix="collect-limits")
            )
            _storages[uri] = storage
            _limiters[uri] = MovingWindowRateLimiter(storage)
        return _limiters[uri]


def client_address(request: Request) -> str:
    """The peer as uvicorn saw it (behind the documented proxy: ``--forwarded-allow-ips``)."""
    return request.client.host if request.client else "unknown"


def blocked_for(scope: str, per_minute: int, *keys: str, storage: str = "") -> int | None:
    """Seconds to wait before another try (None: go on), without counting one."""
    item = RateLimitItemPerMinute(per_minute)
    limits = limiter(storage)
    waits = [
        max(1, int(limits.get_window_stats(item, scope, key)[0] - time.time()) + 1)
        for key in keys
        if not limits.test(item, scope, key)
    ]
    return max(waits) if waits else None


def count(scope: str, per_minute: int, *keys: str, storage: str = "") -> None:
    """Count one try (a failed sign-in) under each key."""
    item = RateLimitItemPerMinute(per_minute)
    limits = limiter(storage)
    for key in keys:
        limits.hit(item, scope, key)


def take_hourly(scope: str, per_hour: dict[str, int], *, storage: str = "") -> int | None:
    """Use one try under every key at once (``{key: tries per hour}``: a sign-in code asked for counts
    against its number and the client's address), or, when any key is used up, count nothing and
    answer the seconds to wait."""
    items: dict[str, RateLimitItem] = {key: RateLimitItemPerHour(n) for key, n in per_hour.items()}
    limits = limiter(storage)
    waits = [
        max(1, int(limits.get_window_stats(item, scope, key)[0] - time.time()) + 1)
        for key, item in items.items()
        if not limits.test(item, scope, key)
    ]
    if waits:
        return max(waits)
    for key, item in items.items():
        limits.hit(item, scope, key)
    return None


def refused_too_often(request: Request, scope: str) -> int | None:
    """Seconds this client must wait because it was refused too often on ``scope`` (None: go on)."""
    from service.state import app_settings

    st = app_settings(request)
    return blocked_for(
        scope, st.refusals_per_minute, f"addr:{client_address(request)}", storage=st.rate_limit_storage
    )


def refused(request: Request, scope: str) -> None:
    """Count one refusal (a forged link or signature, a bad token) against this client."""
    from service.state import app_settings

    st = app_settings(request)
    count(scope, st.refusals_per_minute, f"addr:{client_address(request)}", storage=st.rate_limit_storage)


def reset() -> None:
    """Forget every count (tests)."""
    with _lock:
        for storage in _storages.values():
            storage.reset()
