"""The Lua GCRA against a real Redis gives the answers of the domain's gcra(): the same
burst, the same remaining counts, the same Retry-After, atomically under concurrency."""

from __future__ import annotations

import asyncio

from pushcamp.api.ratelimit import MemoryRateLimiter, RedisRateLimiter
from pushcamp.domain.ratelimit import RateDecision
from tests.integration.scaled.conftest import RedisUnderTest


def hits(
    shared: RedisUnderTest, key: str, limit: int, n: int, *, at_once: bool = False
) -> list[RateDecision]:
    """``n`` hits, one after the other, or all at once (in no particular order)."""

    async def run() -> list[RateDecision]:
        limiter = RedisRateLimiter(shared.url, prefix=shared.prefix)
        try:
            if at_once:
                return list(await asyncio.gather(*(limiter.hit(key, limit) for _ in range(n))))
            return [await limiter.hit(key, limit) for _ in range(n)]
        finally:
            await limiter.aclose()

    return asyncio.run(run())


def test_burst_then_refusal_like_the_memory_limiter(shared_redis: RedisUnderTest) -> None:
    from_redis = hits(shared_redis, "p:create", 30, 31)
    memory = MemoryRateLimiter()
    from_memory = [memory.take("p:create", 30) for _ in range(31)]
    assert (
        [d.allowed for d in from_redis] == [d.allowed for d in from_memory] == [True] * 30 + [False]
    )
    assert [d.remaining for d in from_redis] == [d.remaining for d in from_memory]
    refused = from_redis[-1]
    # One slot frees every 2 s, less the (real) time the 31 hits took.
    assert refused.remaining == 0 and 1.0 < refused.retry_after <= 2.0
    assert 58.0 < refused.reset_after <= 60.0
    assert abs((refused.reset_after - refused.retry_after) - 58.0) < 1e-6


def test_concurrent_hits_never_exceed_the_budget(shared_redis: RedisUnderTest) -> None:
    decisions = hits(shared_redis, "p:launch-v1", 30, 200, at_once=True)
    allowed = [d for d in decisions if d.allowed]
    assert len(allowed) == 30
    assert sorted(d.remaining for d in allowed) == list(range(30))


def test_state_is_one_expiring_key_per_budget(shared_redis: RedisUnderTest) -> None:
    hits(shared_redis, "a:create", 30, 3)
    hits(shared_redis, "b:delete", 60, 1)
    keys = sorted(shared_redis.stored_keys())
    assert keys == [
        f"{shared_redis.prefix}rl:a:create".encode(),
        f"{shared_redis.prefix}rl:b:delete".encode(),
    ]
    # Kept exactly until the budget is whole again (3 x 2 s here; 1 s for one of 60).
    assert 5000 < shared_redis.client.pttl(keys[0]) <= 6000
    assert 0 < shared_redis.client.pttl(keys[1]) <= 1000
    # A refused request does not move the TAT.
    before = shared_redis.client.get(keys[0])
    [refused] = hits(shared_redis, "a:create", 1, 1)  # at 1/min, 6 s of debt is too much
    assert not refused.allowed
    assert shared_redis.client.get(keys[0]) == before
