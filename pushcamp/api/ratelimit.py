"""Per-partner, per-endpoint rate limits behind one small interface.

The embedded default keeps the state in this process (:class:`MemoryRateLimiter`); the
scaled-out mode (``PUSHCAMP_REDIS_URL``) shares it between API processes through Redis
(:class:`RedisRateLimiter`) with the same GCRA arithmetic, so both give the same answers.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from pushcamp.domain.ratelimit import RateDecision, gcra
from pushcamp.errors import DependencyUnavailable
from pushcamp.settings import Settings

WINDOW_SECONDS = 60.0
# Connections to Redis per API process.
MAX_CONNECTIONS = 50

T = TypeVar("T")


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int, window: float = WINDOW_SECONDS) -> RateDecision:
        """Count one request against ``key``'s budget and say whether it may proceed.
        Raises :class:`DependencyUnavailable` when the shared store cannot answer."""
        ...

    async def ping(self) -> None:
        """Readiness: raise :class:`DependencyUnavailable` unless the store answers."""
        ...

    async def aclose(self) -> None:
        """Release connections (at shutdown)."""
        ...


class MemoryRateLimiter:
    """GCRA state in a dict; safe across threads. Idle keys are pruned as they expire."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tats: dict[str, float] = {}
        self._lock = threading.Lock()
        self._next_prune = 0.0

    async def hit(self, key: str, limit: int, window: float = WINDOW_SECONDS) -> RateDecision:
        return self.take(key, limit, window)

    def take(self, key: str, limit: int, window: float = WINDOW_SECONDS) -> RateDecision:
        """:meth:`hit` without the event loop (it never waits on anything)."""
        with self._lock:
            now = self._clock()
            decision, tat = gcra(self._tats.get(key), now, limit, window)
            self._tats[key] = tat
            if now >= self._next_prune:
                self._prune(now)
                self._next_prune = now + window
            return decision

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    def _prune(self, now: float) -> None:
        # A TAT in the past means the key's budget is whole again: forgetting it is exact.
        for key in [k for k, tat in self._tats.items() if tat <= now]:
            del self._tats[key]


# The GCRA of pushcamp.domain.ratelimit.gcra, step for step, run atomically by Redis: read
# the key's TAT, decide, store the new TAT only when the request is allowed. The clock is
# Redis's own (TIME), so the API processes' clocks never matter. The TAT is kept until it
# is reached (PX): after that the budget is whole, which is what a missing key means.
# Returns whether it allowed the request, the TAT read (false when none) and the time as
# TIME gave it; the caller repeats gcra() on them for the decision's numbers (the same
# doubles in the same order, so the same answer: a disagreement is a bug, and raises).
GCRA_SCRIPT = """
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local stored = redis.call('GET', KEYS[1])
local tat = stored and tonumber(stored)
local interval = window / limit
local base = now
if tat and tat >= now then base = tat end
local new_tat = base + interval
local allowed = 0
if now >= new_tat - window then
  allowed = 1
  redis.call('SET', KEYS[1], string.format('%.17g', new_tat),
             'PX', math.max(1, math.ceil((new_tat - now) * 1000)))
end
return {allowed, stored or false, clock[1], clock[2]}
"""


class RedisRateLimiter:
    """GCRA state in Redis, shared by every API process that names the same Redis.

    Each decision is one EVALSHA of :data:`GCRA_SCRIPT` (one round trip, atomic). Every
    call is bounded by ``timeout`` seconds (connect and read) and a deadline around it,
    so a stalled Redis costs a request about a second, never a hang; any failure raises
    :class:`DependencyUnavailable` (the request gets 424: fail closed).
    """

    def __init__(self, url: str, *, prefix: str = "pushcamp:", timeout: float = 0.5) -> None:
        # Imported here: the embedded default never loads the client.
        from redis.asyncio import BlockingConnectionPool, Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self.prefix = prefix + "rl:"
        self.timeout = timeout
        # A decision holds a connection for one round trip, so a few dozen serve
        # thousands of requests a second; past that, requests wait their turn (within
        # the deadline) instead of failing as the default pool does when it is full.
        # One immediate retry: a pooled connection that Redis closed (a restart) is
        # replaced at once instead of failing the request that found it.
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=MAX_CONNECTIONS,
            timeout=timeout,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 1),
            health_check_interval=30,
        )
        self._redis = Redis.from_pool(pool)
        self._gcra = self._redis.register_script(GCRA_SCRIPT)

    async def hit(self, key: str, limit: int, window: float = WINDOW_SECONDS) -> RateDecision:
        reply = await self._call(
            self._gcra(keys=[self.prefix + key], args=[limit, _number(window)])
        )
        allowed, stored, seconds, micros = reply
        tat = float(stored) if stored else None
        now = int(seconds) + int(micros) / 1000000
        decision, _ = gcra(tat, now, limit, window)
        if decision.allowed != bool(allowed):
            raise RuntimeError(f"the Redis GCRA and gcra() disagree on {key!r}")
        return decision

    async def ping(self) -> None:
        await self._call(self._redis.ping())

    async def aclose(self) -> None:
        await self._redis.aclose()

    async def _call(self, work: Awaitable[T]) -> T:
        from redis.exceptions import RedisError

        try:
            async with asyncio.timeout(self.timeout * 3):
                return await work
        except (RedisError, OSError, TimeoutError) as exc:
            raise DependencyUnavailable(f"redis: {type(exc).__name__}") from exc


def _number(value: float) -> str:
    return repr(float(value))


def build_limiter(settings: Settings) -> RateLimiter:
    """The limiter the settings ask for: shared through Redis when
    ``PUSHCAMP_REDIS_URL`` is set, else this process's own."""
    if settings.redis_url:
        return RedisRateLimiter(
            settings.redis_url,
            prefix=settings.redis_key_prefix,
            timeout=settings.redis_timeout_seconds,
        )
    return MemoryRateLimiter()


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
