"""Per-partner, per-endpoint rate limits behind one small interface.

The embedded default keeps the state in this process (:class:`MemoryRateLimiter`); the
scaled-out mode shares it between API processes through Redis with the same GCRA
arithmetic, so both give the same answers.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Protocol

from pushcamp.domain.ratelimit import RateDecision, gcra

WINDOW_SECONDS = 60.0


class RateLimiter(Protocol):
    def hit(self, key: str, limit: int, window: float = WINDOW_SECONDS) -> RateDecision:
        """Count one request against ``key``'s budget and say whether it may proceed."""
        ...


class MemoryRateLimiter:
    """GCRA state in a dict; safe across threads. Idle keys are pruned as they expire."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tats: dict[str, float] = {}
        self._lock = threading.Lock()
        self._next_prune = 0.0

    def hit(self, key: str, limit: int, window: float = WINDOW_SECONDS) -> RateDecision:
        with self._lock:
            now = self._clock()
            decision, tat = gcra(self._tats.get(key), now, limit, window)
            self._tats[key] = tat
            if now >= self._next_prune:
                self._prune(now)
                self._next_prune = now + window
            return decision

    def _prune(self, now: float) -> None:
        # A TAT in the past means the key's budget is whole again: forgetting it is exact.
        for key in [k for k, tat in self._tats.items() if tat <= now]:
            del self._tats[key]


def headers(policy: str, decision: RateDecision) -> list[tuple[bytes, bytes]]:
    """The rate-limit headers of a response: the X-RateLimit trio, the IETF
    ``RateLimit``/``RateLimit-Policy`` pair (structured-field form), and ``Retry-After``
    when the request was refused."""
    reset = max(0, math.ceil(decision.reset_after))
    out = [
        (b"x-ratelimit-limit", str(decision.limit).encode()),
        (b"x-ratelimit-remaining", str(decision.remaining).encode()),
        (b"x-ratelimit-reset", str(reset).encode()),
        (
            b"ratelimit-policy",
            f'"{policy}";q={decision.limit};w={int(decision.window)}'.encode(),
        ),
        (b"ratelimit", f'"{policy}";r={decision.remaining};t={reset}'.encode()),
    ]
    if not decision.allowed:
        out.append((b"retry-after", str(max(1, math.ceil(decision.retry_after))).encode()))
    return out
